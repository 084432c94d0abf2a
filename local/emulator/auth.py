"""Who is calling: subscription keys, issueToken tokens and Entra (managed identity) tokens.

The rules follow the Speech service (seed 001, "Authentication" and "Use Microsoft Entra
authentication"):

* ``Ocp-Apim-Subscription-Key: <key>`` works everywhere.
* ``Authorization: Bearer <token>`` where the token came from this emulator's
  ``/sts/v1.0/issueToken`` (HS256 with a secret only this process knows, 10 minutes).
* ``Authorization: Bearer <jwt>`` from the local identity endpoint (RS256, checked against
  ``EMULATOR_JWT_PUBLIC_KEY``, ``iss``, ``aud``, ``exp``/``nbf``) on the REST API.
* Short audio with Entra wants ``Bearer aad#<resourceId>#<jwt>``; the resource id must be
  this resource's (``EMULATOR_RESOURCE_ID``), otherwise the valid identity gets 403.

Failures: no credentials or a bad key/token -> 401 with the front end's ``{"error": ...}``
body; a good identity for another resource -> 403. Nothing here logs a key or a token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from local.emulator.clock import Clock
from local.emulator.errors import (
    INVALID_KEY_MESSAGE,
    INVALID_TOKEN_MESSAGE,
    MISSING_KEY_MESSAGE,
    ApiError,
    front_end_error,
)
from local.emulator.settings import SettingsError

KEY_HEADER = "ocp-apim-subscription-key"
#: issueToken tokens: Cognitive Services' issuer and the Speech audience, as in real tokens.
STS_ISSUER = "urn:ms.cognitiveservices"
STS_AUDIENCE = "urn:ms.speech"
#: "Each access token is valid for 10 minutes" (seed 001).
STS_TOKEN_LIFETIME = dt.timedelta(minutes=10)
_AAD_PREFIX = "aad#"


class Surface(Enum):
    """Where a request arrived: the REST API (batch, models, fast) or short audio."""

    REST = "rest"
    SHORT_AUDIO = "short-audio"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``bucket`` groups requests for the quota (never a secret)."""

    kind: str  # "key" | "sts" | "entra"
    bucket: str


def _fingerprint(secret: str) -> str:
    """A short, non-reversible name for a key, usable in stats and quota buckets."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def _unauthorized(message: str) -> ApiError:
    return front_end_error(401, "401", message)


class Authenticator:
    """Checks request credentials and issues the STS tokens."""

    def __init__(
        self,
        *,
        keys: list[str],
        clock: Clock,
        public_key_path: Path | None,
        issuer: str | None,
        audiences: list[str],
        resource_id: str | None,
    ) -> None:
        self._keys = [k.encode() for k in keys]
        self._clock = clock
        self._sts_secret = secrets.token_bytes(32)
        self._public_key: Any = None
        if public_key_path is not None:
            try:
                self._public_key = load_pem_public_key(public_key_path.read_bytes())
            except (OSError, ValueError) as exc:
                raise SettingsError(
                    f"EMULATOR_JWT_PUBLIC_KEY: not a PEM public key ({public_key_path}): {exc}"
                ) from None
        self._issuer = issuer
        self._audiences = {a.rstrip("/") for a in audiences}
        self._resource_id = resource_id
        self._token_message = INVALID_TOKEN_MESSAGE.format(audience=sorted(self._audiences)[0])

    # -- keys and STS tokens -----------------------------------------------------------

    def key_is_valid(self, key: str) -> bool:
        """True if ``key`` is one of ``EMULATOR_KEYS`` (constant-time comparison)."""
        presented = key.strip().encode()
        found = False
        for candidate in self._keys:
            found |= hmac.compare_digest(presented, candidate)
        return found

    def issue_token(self, key: str) -> str:
        """A 10-minute bearer token for ``key`` (which the caller has already checked)."""
        now = self._clock.now()
        claims = {
            "iss": STS_ISSUER,
            "aud": STS_AUDIENCE,
            "subscription-id": _fingerprint(key.strip()),
            "jti": str(uuid.uuid4()),
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int((now + STS_TOKEN_LIFETIME).timestamp()),
        }
        return jwt.encode(claims, self._sts_secret, algorithm="HS256")

    # -- request authentication --------------------------------------------------------

    def authenticate(self, headers: Mapping[str, str], surface: Surface) -> Principal:
        """The caller of a request with these (lower-cased) headers, or an :class:`ApiError`."""
        if KEY_HEADER in headers:
            key = headers[KEY_HEADER]
            if not key.strip():
                raise _unauthorized(MISSING_KEY_MESSAGE)
            if not self.key_is_valid(key):
                raise _unauthorized(INVALID_KEY_MESSAGE)
            return Principal("key", "key:" + _fingerprint(key.strip()))
        authorization = headers.get("authorization")
        if authorization is None:
            raise _unauthorized(MISSING_KEY_MESSAGE)
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized(self._token_message)
        if token.startswith(_AAD_PREFIX):
            return self._aad_token(token)
        if self._algorithm(token) == "HS256":
            return self._sts_token(token)
        if surface is Surface.SHORT_AUDIO:
            # Short audio takes Entra tokens only as aad#<resourceId>#<token> (seed 001).
            raise _unauthorized(self._token_message)
        return self._entra_token(token)

    def _algorithm(self, token: str) -> str | None:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _unauthorized(self._token_message) from None
        alg = header.get("alg")
        return alg if isinstance(alg, str) else None

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        """``exp`` must lie ahead and ``nbf`` (if present) behind, on the emulator's clock."""
        now = self._clock.now().timestamp()
        exp = claims.get("exp")
        nbf = claims.get("nbf")
        if not isinstance(exp, int | float) or exp <= now:
            raise _unauthorized(self._token_message)
        if nbf is not None and (not isinstance(nbf, int | float) or nbf > now):
            raise _unauthorized(self._token_message)

    def _sts_token(self, token: str) -> Principal:
        try:
            # Expiry is checked against the injectable clock below, not PyJWT's time.time().
            claims = jwt.decode(
                token,
                self._sts_secret,
                algorithms=["HS256"],
                audience=STS_AUDIENCE,
                issuer=STS_ISSUER,
                options={"verify_exp": False, "verify_nbf": False, "require": ["exp"]},
            )
        except jwt.PyJWTError:
            raise _unauthorized(self._token_message) from None
        self._check_times(claims)
        return Principal("sts", "key:" + str(claims.get("subscription-id", "")))

    def _entra_token(self, token: str) -> Principal:
        if self._public_key is None:
            raise _unauthorized(self._token_message)
        try:
            claims = jwt.decode(
                token,
                self._public_key,
                # Only RS256: "none" and HS256 (with the public key as the secret) never pass.
                algorithms=["RS256"],
                options={
                    "verify_aud": False,
                    "verify_iss": False,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "require": ["exp", "iss", "aud"],
                },
            )
        except jwt.PyJWTError:
            raise _unauthorized(self._token_message) from None
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if not any(isinstance(a, str) and a.rstrip("/") in self._audiences for a in audiences):
            raise _unauthorized(self._token_message)
        if self._issuer is not None and claims.get("iss") != self._issuer:
            raise _unauthorized(self._token_message)
        self._check_times(claims)
        subject = claims.get("oid") or claims.get("sub") or "unknown"
        return Principal("entra", f"entra:{subject}")

    def _aad_token(self, value: str) -> Principal:
        parts = value.split("#")
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise _unauthorized(self._token_message)
        _, resource_id, token = parts
        principal = self._entra_token(token)
        # ARM ids are case-insensitive; unset EMULATOR_RESOURCE_ID accepts any resource.
        if self._resource_id is not None and resource_id.lower() != self._resource_id.lower():
            raise front_end_error(
                403,
                "403",
                "Access denied: the resource ID in the authorization token does not match "
                "this Speech resource.",
            )
        return principal
