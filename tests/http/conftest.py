"""Fixtures for the HTTP handlers: a real Speech emulator, the handlers in a Starlette app.

``stack`` starts, once for these tests, the Speech emulator (engine ``whisper``, as the tests
judge the spoken text; keys and Entra tokens both accepted) behind a recorder
that notes what reached it, a scripted upstream for answers the emulator does not give on
this surface (429, 503, a recognition ``Error``), a static file server for ``audioUrl``,
and the app under test. The app mounts the handlers under ``/<profile>/api/...``; a profile
picks the Speech client's configuration (key, wrong key, Entra, wrong resource id, ...), so
one server covers every case. Each request builds its clients and closes them, so no
connection pool outlives the server's event loop.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import struct
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from azure.core.credentials import AccessToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from local.emulator.app import create_app
from local.emulator.settings import EmulatorSettings
from shared.http import recognize, transcribe
from shared.settings import AppSettings
from shared.speech.auth import EntraAuth, KeyAuth, SpeechAuth
from shared.speech.config import AuthMode, SpeechSettings
from shared.speech.endpoints import SpeechEndpoints
from shared.speech.fast import FastTranscriptionClient
from shared.speech.retry import RetryPolicy
from shared.speech.short_audio import ShortAudioClient
from tests.support.scripted import Recorded, Reply, ScriptedApp
from tests.support.server import free_port, serve

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "speech"
KEY = "http-tests-emulator-key-0123456789"
WRONG_KEY = "http-tests-wrong-key-9876543210"
ISSUER = "https://sts.windows.net/00000000-0000-0000-0000-0000000000aa/"
RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-0000000000bb/resourceGroups/rg/providers/"
    "Microsoft.CognitiveServices/accounts/speech-http-tests"
)
OTHER_RESOURCE_ID = RESOURCE_ID.replace("speech-http-tests", "someone-elses-speech")
WAV = "audio/wav; codecs=audio/pcm; samplerate=16000"
OGG = "audio/ogg; codecs=opus"
#: Paths of the two Speech operations the handlers call.
UPSTREAM_PATHS = ("/cognitiveservices/v1", "/transcriptions:transcribe")


# ------------------------------------------------------------------------------ audio


def wav(
    seconds: float = 1.0,
    *,
    rate: int = 16_000,
    channels: int = 1,
    bits: int = 16,
    tag: int = 1,
    data_size: int | None = None,
    before_data: bytes = b"",
    samples: bytes | None = None,
) -> bytes:
    """A WAV file built by hand, so every header field can be wrong on purpose.

    ``data_size`` overrides the declared size (0 or 0xFFFFFFFF for a streamed WAV);
    ``before_data`` is inserted as chunks between ``fmt `` and ``data``.
    """
    width = bits // 8
    audio = samples if samples is not None else b"\x01\x00" * int(seconds * rate) * channels
    fmt = struct.pack(
        "<HHIIHH", tag, channels, rate, rate * channels * width, channels * width, bits
    )
    size = len(audio) if data_size is None else data_size
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + before_data
        + b"data"
        + struct.pack("<I", size)
        + audio
    )
    return b"RIFF" + struct.pack("<I", min(len(body), 0xFFFFFFFF)) + body


def riff_chunk(chunk_id: bytes, body: bytes) -> bytes:
    """One RIFF chunk, padded to an even length."""
    return chunk_id + struct.pack("<I", len(body)) + body + b"\x00" * (len(body) & 1)


# --------------------------------------------------------------------------- recording


@dataclass
class Upstream:
    """One request as it reached the emulator: headers and how the body arrived."""

    path: str
    headers: dict[str, str]
    chunks: int = 0
    size: int = 0
    status: int | None = None


@dataclass
class Recorder:
    """Requests to the Speech operations, and an event set when audio first arrives."""

    requests: list[Upstream] = field(default_factory=list)
    first_audio: threading.Event = field(default_factory=threading.Event)

    def reset(self) -> None:
        """Forget what was recorded."""
        self.requests.clear()
        self.first_audio.clear()


def recording(app: Any, recorder: Recorder) -> Any:
    """``app`` behind an ASGI layer that records what reaches the Speech operations."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith(UPSTREAM_PATHS):
            await app(scope, receive, send)
            return
        entry = Upstream(
            scope["path"], {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        )
        recorder.requests.append(entry)

        async def counting_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request" and message.get("body"):
                entry.chunks += 1
                entry.size += len(message["body"])
                recorder.first_audio.set()
            return message

        async def noting_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                entry.status = message["status"]
            await send(message)

        await app(scope, counting_receive, noting_send)

    return wrapped


@dataclass
class Consumed:
    """Bytes of each request body that the app under test actually read."""

    sizes: list[int] = field(default_factory=list)

    @property
    def last(self) -> int:
        """Body bytes read for the latest request."""
        return self.sizes[-1]


def counting(app: Any, consumed: Consumed) -> Any:
    """``app`` behind an ASGI layer that counts the request body bytes it reads."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        consumed.sizes.append(0)
        index = len(consumed.sizes) - 1

        async def counting_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                consumed.sizes[index] += len(message.get("body", b""))
            return message

        await app(scope, counting_receive, send)

    return wrapped


# ------------------------------------------------------------------------- identities


class SigningCredential:
    """An async azure-identity credential whose tokens the emulator verifies (RS256)."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._key = key
        self.issued: list[str] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """A fresh token for the Speech audience."""
        now = int(dt.datetime.now(dt.UTC).timestamp())
        claims = {
            "iss": ISSUER,
            "aud": "https://cognitiveservices.azure.com",
            "oid": str(uuid.uuid4()),
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
        }
        token = jwt.encode(claims, self._key, algorithm="RS256")
        self.issued.append(token)
        return AccessToken(token, now + 3600)


# ------------------------------------------------------------------------------ stack


@dataclass
class Profile:
    """How the app under test builds its Speech clients for one path prefix."""

    auth: Callable[[], SpeechAuth]
    endpoint: str
    mode: AuthMode = AuthMode.KEY
    api_version: str = "2024-11-15"
    timeout: float = 30.0
    attempts: int = 1
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class Stack:
    """Everything the HTTP tests talk to."""

    app_url: str
    emulator_url: str
    static_url: str
    recorder: Recorder
    consumed: Consumed
    scripted: ScriptedApp
    script: dict[str, Reply]
    credential: SigningCredential
    client: httpx.Client

    def post(
        self,
        path: str,
        content: Any = b"",
        *,
        content_type: str | None = WAV,
        params: dict[str, str] | None = None,
        profile: str = "key",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST to ``/<profile><path>`` of the app under test."""
        sent = dict(headers or {})
        if content_type is not None:
            sent["Content-Type"] = content_type
        return self.client.post(
            f"/{profile}{path}", params=params or {}, content=content, headers=sent
        )

    def recognize(self, content: Any, **kwargs: Any) -> httpx.Response:
        """POST /api/recognize, ``language=en-US`` unless ``params`` say otherwise."""
        kwargs.setdefault("params", {"language": "en-US"})
        return self.post("/api/recognize", content, **kwargs)

    def emulator_stats(self) -> dict[str, Any]:
        """The emulator's request counters."""
        stats: dict[str, Any] = httpx.get(self.emulator_url + "/admin/stats", timeout=10).json()
        return stats

    def faults(self, **changes: Any) -> None:
        """Change the emulator's fault settings."""
        httpx.put(self.emulator_url + "/admin/faults", json=changes, timeout=10).raise_for_status()

    def reset(self) -> None:
        """Emulator faults and stats back to defaults; recordings forgotten."""
        httpx.post(self.emulator_url + "/admin/reset", timeout=10).raise_for_status()
        self.recorder.reset()


def _app_settings(profile: Profile) -> AppSettings:
    settings = AppSettings(AudioStorage="UseDevelopmentStorage=true", **profile.overrides)
    # The hint for a refused credential depends on the auth mode the app runs with.
    settings.speech = SpeechSettings(
        endpoint=profile.endpoint,
        auth_mode=profile.mode,
        key=KEY if profile.mode is not AuthMode.ENTRA else None,
        resource_id=RESOURCE_ID,
        api_version=profile.api_version,
    )
    return settings


def app_under_test(profiles: dict[str, Profile]) -> Starlette:
    """The handlers mounted as the functions will mount them, one copy per profile."""
    settings = {name: _app_settings(profile) for name, profile in profiles.items()}

    def client_kwargs(profile: Profile) -> dict[str, Any]:
        return {
            "api_version": profile.api_version,
            "timeout": profile.timeout,
            "retry": RetryPolicy(max_attempts=profile.attempts, backoff_base=0.01),
        }

    async def recognize_route(request: Request) -> Response:
        name = request.path_params["profile"]
        profile = profiles[name]
        endpoints = SpeechEndpoints.from_endpoint(profile.endpoint)
        async with ShortAudioClient(endpoints, profile.auth(), **client_kwargs(profile)) as client:
            return await recognize(request, client, settings[name])

    async def transcribe_route(request: Request) -> Response:
        name = request.path_params["profile"]
        profile = profiles[name]
        endpoints = SpeechEndpoints.from_endpoint(profile.endpoint)
        client = FastTranscriptionClient(endpoints, profile.auth(), **client_kwargs(profile))
        async with client:
            return await transcribe(request, client, settings[name])

    return Starlette(
        routes=[
            Route("/{profile}/api/recognize", recognize_route, methods=["POST"]),
            Route("/{profile}/api/transcribe", transcribe_route, methods=["POST"]),
        ]
    )


def _static_files() -> Starlette:
    async def fixture(request: Request) -> Response:
        path = FIXTURES / request.path_params["name"]
        if not path.is_file():
            return Response(status_code=404)
        return Response(path.read_bytes(), media_type="application/octet-stream")

    return Starlette(routes=[Route("/{name}", fixture)])


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The emulator, the scripted upstream, a file server and the app under test."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_key = tmp_path_factory.mktemp("http-entra") / "signing-key.pub.pem"
    public_key.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    credential = SigningCredential(key)
    recorder = Recorder()
    consumed = Consumed()
    script: dict[str, Reply] = {"reply": Reply(200, {"RecognitionStatus": "Success"})}

    def scripted_reply(request: Recorded) -> Reply:
        return script["reply"]

    scripted = ScriptedApp(scripted_reply)
    emulator_settings = EmulatorSettings(
        keys=[KEY],
        engine="whisper",
        state_dir=tmp_path_factory.mktemp("http-emulator"),
        jwt_public_key=public_key,
        jwt_issuer=ISSUER,
        resource_id=RESOURCE_ID,
        quota_enabled=False,
    )
    with contextlib.ExitStack() as stack:
        emulator_url = stack.enter_context(
            serve(recording(create_app(emulator_settings), recorder))
        )
        scripted_url = stack.enter_context(serve(scripted))
        static_url = stack.enter_context(serve(_static_files()))

        def key_auth(value: str = KEY) -> Callable[[], SpeechAuth]:
            return lambda: KeyAuth(value)

        def entra(resource_id: str) -> Callable[[], SpeechAuth]:
            return lambda: EntraAuth(
                credential,
                scope="https://cognitiveservices.azure.com/.default",
                resource_id=resource_id,
            )

        small = {"recognize_max_bytes": 100_000, "transcribe_max_bytes": 60_000}
        profiles = {
            "key": Profile(key_auth(), emulator_url),
            "v2025": Profile(key_auth(), emulator_url, api_version="2025-10-15"),
            "small": Profile(key_auth(), emulator_url, overrides=small),
            "wrongkey": Profile(key_auth(WRONG_KEY), emulator_url),
            "entra": Profile(entra(RESOURCE_ID), emulator_url, mode=AuthMode.ENTRA),
            "otherresource": Profile(entra(OTHER_RESOURCE_ID), emulator_url, mode=AuthMode.ENTRA),
            "scripted": Profile(key_auth(), scripted_url),
            "impatient": Profile(key_auth(), emulator_url, timeout=0.5),
            "nowhere": Profile(key_auth(), f"http://127.0.0.1:{free_port()}"),
        }
        app_url = stack.enter_context(serve(counting(app_under_test(profiles), consumed)))
        client = stack.enter_context(httpx.Client(base_url=app_url, timeout=60))
        # Load the ASR model now, so the first test is not charged for it.
        client.post(
            "/key/api/recognize",
            params={"language": "en-US"},
            content=(FIXTURES / "sentence-08.wav").read_bytes(),
            headers={"Content-Type": WAV},
        ).raise_for_status()
        yield Stack(
            app_url=app_url,
            emulator_url=emulator_url,
            static_url=static_url,
            recorder=recorder,
            consumed=consumed,
            scripted=scripted,
            script=script,
            credential=credential,
            client=client,
        )


@pytest.fixture
def http_stack(stack: Stack) -> Iterator[Stack]:
    """The shared stack, reset before and after each test."""
    stack.reset()
    try:
        yield stack
    finally:
        stack.reset()
