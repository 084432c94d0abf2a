"""A local managed-identity endpoint: the App Service protocol, answering with signed JWTs.

With ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER`` set, azure-identity's
``ManagedIdentityCredential`` (and ``DefaultAzureCredential``) ask this server for tokens
exactly as they ask App Service / Azure Functions, so the production auth path runs
unchanged offline::

    GET /msi/token?api-version=2019-08-01&resource=https://storage.azure.com[&client_id=...]
    X-IDENTITY-HEADER: <secret>

    200 {"access_token": "<jwt>", "expires_on": "<epoch seconds>", "resource": "...",
         "token_type": "Bearer", "client_id": "..."}

What the clients parse (azure-identity 1.27 hands App Service to MSAL 1.39,
``msal.managed_identity._obtain_token_on_app_service``): ``access_token`` and
``expires_on`` (any ``int()``-able value) on success, ``statusCode`` and ``message`` on
failure; the async client also caches under ``resource``. Errors therefore use App
Service's own ``{"statusCode", "message"}`` shape.

Tokens are RS256 JWTs, signed with a key generated once per state dir. Their claims
follow Entra ID v1 access tokens for a managed identity, which is also what Azurite's
``--oauth basic`` checks: ``iss`` under ``https://sts.windows.net/``, ``aud`` one of its
storage audiences (``https://storage.azure.com``), and ``iat``/``nbf``/``exp`` present and
current (Azurite does not verify signatures; the Speech emulator does, with
``signing-key.pub.pem``). ``oid`` and ``tid`` feed Azurite's user-delegation keys.

Run it with ``uvicorn --factory local.identity:create_app``; it reads
``LOCAL_IDENTITY_DIR`` (the directory :func:`ensure_identity` filled) and
``LOCAL_IDENTITY_TOKEN_LIFETIME`` (seconds, default 3600).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from local.certs import write_atomic

API_VERSION = "2019-08-01"
TOKEN_PATH = "/msi/token"
HEALTH_PATH = "/health"
HEADER_NAME = "X-IDENTITY-HEADER"
ISSUER_PREFIX = "https://sts.windows.net/"
DEFAULT_TOKEN_LIFETIME = 3600
MAX_TOKEN_LIFETIME = 24 * 3600
ENV_DIR = "LOCAL_IDENTITY_DIR"
ENV_LIFETIME = "LOCAL_IDENTITY_TOKEN_LIFETIME"


@dataclass(frozen=True)
class IdentityState:
    """The one identity a stack impersonates, fixed per state dir so tokens survive restarts."""

    directory: Path
    tenant_id: str
    object_id: str
    client_id: str
    #: The ``IDENTITY_HEADER`` secret callers must present. Never logged.
    header_secret: str = field(repr=False)

    @property
    def issuer(self) -> str:
        """``iss`` of every token: Entra ID v1's form, which Azurite recognises."""
        return f"{ISSUER_PREFIX}{self.tenant_id}/"

    @property
    def signing_key_path(self) -> Path:
        """RSA private key (PEM, PKCS#8, mode 0600) that signs tokens."""
        return self.directory / "signing-key.pem"

    @property
    def public_key_path(self) -> Path:
        """Its public key (PEM, SubjectPublicKeyInfo), for verifiers such as the emulator."""
        return self.directory / "signing-key.pub.pem"

    @property
    def settings_path(self) -> Path:
        """The ids and header secret (JSON, mode 0600)."""
        return self.directory / "identity.json"


def _write_key_pair(state: IdentityState) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_atomic(state.signing_key_path, private_pem, private=True)
    write_atomic(state.public_key_path, public_pem)


def _read_state(directory: Path) -> IdentityState:
    data = json.loads((directory / "identity.json").read_text(encoding="utf-8"))
    return IdentityState(
        directory=directory,
        tenant_id=str(data["tenant_id"]),
        object_id=str(data["object_id"]),
        client_id=str(data["client_id"]),
        header_secret=str(data["identity_header"]),
    )


def load_identity(directory: Path) -> IdentityState:
    """Read an identity :func:`ensure_identity` created; raises if anything is missing."""
    state = _read_state(directory)
    for path in (state.signing_key_path, state.public_key_path):
        if not path.is_file():
            raise FileNotFoundError(f"identity key file missing: {path}")
    return state


def ensure_identity(directory: Path) -> IdentityState:
    """Create the identity (ids, header secret, signing key pair) once; reuse it after."""
    settings = directory / "identity.json"
    if settings.is_file():
        state = _read_state(directory)
    else:
        state = IdentityState(
            directory=directory,
            tenant_id=str(uuid.uuid4()),
            object_id=str(uuid.uuid4()),
            client_id=str(uuid.uuid4()),
            header_secret=secrets.token_hex(32),
        )
        payload = {
            "tenant_id": state.tenant_id,
            "object_id": state.object_id,
            "client_id": state.client_id,
            "identity_header": state.header_secret,
        }
        write_atomic(settings, json.dumps(payload, indent=2).encode(), private=True)
    if not (state.signing_key_path.is_file() and state.public_key_path.is_file()):
        _write_key_pair(state)
    return state


def audience_for(resource: str) -> str:
    """The ``aud`` Entra ID puts in a token for ``resource``: no ``/.default``, no trailing /."""
    audience = resource.strip()
    if audience.endswith("/.default"):
        audience = audience[: -len("/.default")]
    return audience.rstrip("/")


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """RFC 7638 JWK thumbprint: a stable ``kid`` derived from the key itself."""
    numbers = public_key.public_numbers()
    jwk = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
    canonical = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


class TokenIssuer:
    """Signs access tokens for the stack's identity."""

    def __init__(
        self,
        state: IdentityState,
        *,
        lifetime: int = DEFAULT_TOKEN_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 1 <= lifetime <= MAX_TOKEN_LIFETIME:
            raise ValueError(
                f"token lifetime must be 1..{MAX_TOKEN_LIFETIME} seconds, got {lifetime}"
            )
        key = serialization.load_pem_private_key(state.signing_key_path.read_bytes(), None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError(f"{state.signing_key_path} is not an RSA private key")
        self._key = key
        self._kid = key_id(key.public_key())
        self._state = state
        self._lifetime = lifetime
        self._clock = clock

    @property
    def kid(self) -> str:
        """The ``kid`` header of every token."""
        return self._kid

    def claims(self, resource: str) -> dict[str, Any]:
        """The claims of a token for ``resource`` issued now."""
        now = int(self._clock())
        state = self._state
        return {
            "aud": audience_for(resource),
            "iss": state.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + self._lifetime,
            "appid": state.client_id,
            "appidacr": "2",
            "idp": state.issuer,
            "idtyp": "app",
            "oid": state.object_id,
            "sub": state.object_id,
            "tid": state.tenant_id,
            # Unique per token, as in Entra ID: two tokens issued in one second still differ.
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
        }

    def issue(self, resource: str) -> tuple[str, int]:
        """A signed token for ``resource`` and its expiry (epoch seconds)."""
        claims = self.claims(resource)
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self._kid})
        return token, int(claims["exp"])


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"statusCode": status, "message": message}, status_code=status)


def _wrong_identity(request: Request, state: IdentityState) -> str | None:
    """Why the requested identity is not ours, or None when it is (or none was named)."""
    params = request.query_params
    if "mi_res_id" in params:
        return "mi_res_id is not supported by the local identity endpoint; use client_id"
    client_id = params.get("client_id")
    if client_id is not None and client_id.lower() != state.client_id:
        return "no managed identity with that client_id is assigned to this app"
    object_id = params.get("object_id") or params.get("principal_id")
    if object_id is not None and object_id.lower() != state.object_id:
        return "no managed identity with that object_id is assigned to this app"
    return None


def create_app(state: IdentityState | None = None, *, lifetime: int | None = None) -> Starlette:
    """The ASGI app. Without arguments (uvicorn ``--factory``) it reads its environment."""
    if state is None:
        directory = os.environ.get(ENV_DIR)
        if not directory:
            raise RuntimeError(f"{ENV_DIR} must name the identity directory of the stack")
        state = load_identity(Path(directory))
    if lifetime is None:
        lifetime = int(os.environ.get(ENV_LIFETIME, str(DEFAULT_TOKEN_LIFETIME)))
    issuer = TokenIssuer(state, lifetime=lifetime)
    expected_secret = state.header_secret.encode()

    async def token(request: Request) -> JSONResponse:
        presented = request.headers.get(HEADER_NAME)
        if presented is None:
            return _error(401, f"the {HEADER_NAME} header is required")
        if not hmac.compare_digest(presented.encode(), expected_secret):
            return _error(403, f"the {HEADER_NAME} header does not match IDENTITY_HEADER")
        api_version = request.query_params.get("api-version")
        if api_version != API_VERSION:
            return _error(400, f"api-version must be {API_VERSION}")
        resource = request.query_params.get("resource", "").strip()
        if not resource:
            return _error(400, "the resource query parameter is required")
        reason = _wrong_identity(request, state)
        if reason:
            return _error(400, reason)
        access_token, expires_on = issuer.issue(resource)
        return JSONResponse(
            {
                "access_token": access_token,
                "expires_on": str(expires_on),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": state.client_id,
            },
            headers={"Cache-Control": "no-store"},
        )

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route(TOKEN_PATH, token, methods=["GET"]),
            Route(HEALTH_PATH, health, methods=["GET"]),
        ]
    )
