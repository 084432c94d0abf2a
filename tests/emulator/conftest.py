"""Fixtures for the Speech emulator's HTTP tests: real uvicorn servers on loopback.

``emulator`` starts ``create_app`` (engine ``fixed``, a temp state dir, a clock tests can
move forward) and yields an :class:`EmulatorServer` with a key-authenticated httpx client.
Tests that need other settings call ``start_emulator(**overrides)``. ``entra`` is an RSA
key pair whose public half the emulator trusts, to sign Entra-style tokens in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# jsonschema ships no type information and the repo does not carry types-jsonschema.
from jsonschema import Draft4Validator  # type: ignore[import-untyped]
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from local.emulator.app import create_app
from local.emulator.clock import AdjustableClock
from local.emulator.settings import EmulatorSettings
from tests.contract.openapi import SPEC_DIR, SpeechSpec
from tests.support.server import serve

KEY = "emulator-test-key"
SECOND_KEY = "emulator-second-key"
ISSUER = "https://sts.windows.net/00000000-0000-0000-0000-000000000001/"
AUDIENCE = "https://cognitiveservices.azure.com"
RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000002/resourceGroups/rg/providers/"
    "Microsoft.CognitiveServices/accounts/speech-emulator"
)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "speech"
EXAMPLES = SPEC_DIR / "2024-11-15" / "examples"
VERSIONS = ("2024-11-15", "2025-10-15")
#: Nothing listens on port 1: downloads from here fail at once with a connection error.
UNREACHABLE_URL = "http://127.0.0.1:1/audio.wav"


@dataclass
class EntraKeys:
    """An RSA key pair standing in for the local identity endpoint's signing key."""

    private_key: rsa.RSAPrivateKey
    public_key_path: Path

    def token(self, **overrides: Any) -> str:
        """An RS256 token like the identity endpoint's; ``overrides`` change claims."""
        now = int(dt.datetime.now(dt.UTC).timestamp())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "oid": str(uuid.uuid4()),
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.private_key, algorithm="RS256")


@pytest.fixture(scope="session")
def entra(tmp_path_factory: pytest.TempPathFactory) -> EntraKeys:
    """A signing key pair; the public half is written where the emulator reads it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("entra") / "signing-key.pub.pem"
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return EntraKeys(key, path)


@dataclass
class EmulatorServer:
    """A running emulator: its URL, app, clock and a client that sends the test key."""

    url: str
    app: Starlette
    clock: AdjustableClock
    client: httpx.Client

    def call(
        self,
        method: str,
        path: str,
        version: str = "2024-11-15",
        *,
        params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """A request to ``path`` with ``api-version`` set (unless ``version`` is empty)."""
        query = dict(params or {})
        if version:
            query["api-version"] = version
        return self.client.request(method, path, params=query, **kwargs)

    def submit(self, body: dict[str, Any], version: str = "2024-11-15") -> httpx.Response:
        """``Transcriptions_Submit``."""
        return self.call("POST", "/speechtotext/transcriptions:submit", version, json=body)

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request to the admin API (no key)."""
        return httpx.request(method, self.url + path, timeout=10, **kwargs)


def settings_for(tmp_path: Path, **overrides: Any) -> EmulatorSettings:
    """Test settings: fixed engine, the test keys, no quota unless asked."""
    values: dict[str, Any] = {
        "keys": [KEY, SECOND_KEY],
        "engine": "fixed",
        "state_dir": tmp_path / "emulator-state",
        "jwt_issuer": ISSUER,
        "resource_id": RESOURCE_ID,
        "quota_enabled": False,
        "sweep_interval_seconds": 0.2,
    }
    values.update(overrides)
    return EmulatorSettings(**values)


StartEmulator = Callable[..., EmulatorServer]


def launch(
    stack: contextlib.ExitStack, state_dir: Path, entra: EntraKeys, **overrides: Any
) -> EmulatorServer:
    """Serve a new emulator until ``stack`` closes (client first, then the server)."""
    overrides.setdefault("jwt_public_key", entra.public_key_path)
    clock = AdjustableClock()
    app = create_app(settings_for(state_dir, **overrides), clock=clock)
    url = stack.enter_context(serve(app))
    client = stack.enter_context(
        httpx.Client(base_url=url, headers={"Ocp-Apim-Subscription-Key": KEY}, timeout=30)
    )
    return EmulatorServer(url, app, clock, client)


@pytest.fixture
def start_emulator(tmp_path: Path, entra: EntraKeys) -> Iterator[StartEmulator]:
    """Start emulators with custom settings; every one is stopped after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda **overrides: launch(stack, tmp_path, entra, **overrides)


@pytest.fixture
def emulator(start_emulator: StartEmulator) -> EmulatorServer:
    """One emulator with the default test settings."""
    return start_emulator()


def validate(
    operation: str, response: httpx.Response, version: str, *, headers: bool = True
) -> None:
    """The response validates strictly against the spec of ``version`` (body and headers)."""
    body = response.content or None
    SpeechSpec.load(version).validate_response(
        operation,
        response.status_code,
        body,
        dict(response.headers) if headers else None,
        strict=True,
    )


def example_request(name: str) -> dict[str, Any]:
    """The request body of one of Microsoft's 2024-11-15 examples."""
    example = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    parameters = example["parameters"]
    for key in ("transcription", "transcriptionUpdate"):
        if key in parameters:
            body: dict[str, Any] = parameters[key]
            return body
    raise KeyError(f"{name} has no request body")


def error_codes(response: httpx.Response) -> tuple[str | None, str | None]:
    """(code, innerError.code) of a spec ``Error`` body."""
    body = response.json()
    inner = body.get("innerError") or {}
    return body.get("code"), inner.get("code")


def job_id(response: httpx.Response) -> str:
    """The transcription id in a Transcription body's ``self``."""
    return str(response.json()["self"].partition("?")[0].rsplit("/", 1)[1])


def minimal_submission(**overrides: Any) -> dict[str, Any]:
    """A valid Submit body (2024-11-15 names)."""
    body: dict[str, Any] = {
        "displayName": "emulator test",
        "locale": "en-US",
        "contentUrls": [UNREACHABLE_URL],
        "properties": {"timeToLiveHours": 6},
    }
    body.update(overrides)
    return body


def assert_error(
    response: httpx.Response, status: int, code: str, inner: str | None = None
) -> None:
    """``response`` is a spec ``Error`` with this status, code and (if given) inner code."""
    assert response.status_code == status, response.text
    body = response.json()
    definitions = SpeechSpec.load(VERSIONS[1]).definitions
    validator = Draft4Validator({"$ref": "#/definitions/Error", "definitions": definitions})
    assert not list(validator.iter_errors(body)), body
    assert set(body) <= {"code", "message", "innerError", "details", "target"}
    assert (body["code"], (body.get("innerError") or {}).get("code")) == (code, inner), body
    assert body["message"]


def wait_for_status(
    server: EmulatorServer, transcription_id: str, *, timeout: float = 30.0
) -> dict[str, Any]:
    """Poll ``Transcriptions_Get`` until the job has Succeeded or Failed."""
    deadline = time.monotonic() + timeout
    while True:
        response = server.call("GET", f"/speechtotext/transcriptions/{transcription_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in ("Succeeded", "Failed"):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"job still {body['status']} after {timeout} s")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def audio_host() -> Iterator[str]:
    """Plain HTTP serving the fixture audio: ``/<name>``, ``/slow/<name>`` (2 s late),
    ``/forbidden/<name>`` (403) and 404 for anything missing."""

    async def fixture(request: Request) -> Response:
        if request.path_params.get("mode") == "forbidden":
            return Response(status_code=403)
        if request.path_params.get("mode") == "slow":
            await asyncio.sleep(2)
        path = FIXTURES / request.path_params["name"]
        if not path.is_file():
            return Response(status_code=404)
        return Response(path.read_bytes(), media_type="application/octet-stream")

    app = Starlette(routes=[Route("/{name}", fixture), Route("/{mode}/{name}", fixture)])
    with serve(app) as url:
        yield url
