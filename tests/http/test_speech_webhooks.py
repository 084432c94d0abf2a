"""``/api/speech/webhooks``: signatures, the challenge, and what a completion does."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.http.speech_webhooks import speech_webhook
from shared.settings import AppSettings

SECRET = "a-secret-of-more-than-16-characters"
JOB = "0f6e8a27-9d51-4c0b-bb4e-5a3c2d1e0f99"
BODY = json.dumps(
    {"self": f"https://speech.example/speechtotext/transcriptions/{JOB}", "status": "Succeeded"}
).encode()


def signature(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class FakeLedger:
    def __init__(self) -> None:
        self.hastened: list[str] = []

    async def hasten_job(self, job_id: str, *, now: dt.datetime, guard_seconds: float) -> bool:
        self.hastened.append(job_id)
        return True


@pytest_asyncio.fixture
async def hook() -> AsyncIterator[tuple[httpx.AsyncClient, FakeLedger]]:
    settings = AppSettings(
        AudioStorage="UseDevelopmentStorage=true",
        SPEECH_WEBHOOKS="on",
        SPEECH_WEBHOOK_SECRET=SECRET,
        WEBSITE_HOSTNAME="app.example",
    )
    ledger = FakeLedger()
    ctx: Any = SimpleNamespace(settings=settings, ledger=ledger)

    async def endpoint(request: Request) -> Response:
        return await speech_webhook(request, ctx)

    app = Starlette(routes=[Route("/api/speech/webhooks", endpoint, methods=["GET", "POST"])])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        yield client, ledger


def headers(event: str, sig: str | None) -> dict[str, str]:
    out = {"X-MicrosoftSpeechServices-Event": event, "Content-Type": "application/json"}
    if sig is not None:
        out["X-MicrosoftSpeechServices-Signature"] = sig
    return out


async def test_a_signed_completion_makes_its_job_due(hook: Any) -> None:
    client, ledger = hook
    response = await client.post(
        "/api/speech/webhooks",
        content=BODY,
        headers=headers("transcriptionCompletion", signature(BODY)),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"event": "transcriptionCompletion", "job": JOB, "due": True}
    assert ledger.hastened == [JOB]


@pytest.mark.parametrize(
    ("sig", "code"),
    [
        (None, "MissingSignature"),
        ("", "MissingSignature"),
        (signature(BODY, "another-secret-entirely-0000"), "InvalidSignature"),
        ("not base64 at all!", "InvalidSignature"),
        (signature(BODY + b" "), "InvalidSignature"),
    ],
)
async def test_a_delivery_without_the_right_signature_does_nothing(
    hook: Any, sig: str | None, code: str
) -> None:
    client, ledger = hook
    response = await client.post(
        "/api/speech/webhooks", content=BODY, headers=headers("transcriptionCompletion", sig)
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert SECRET not in response.text
    assert ledger.hastened == []


async def test_a_replayed_body_with_a_different_signature_is_refused(hook: Any) -> None:
    client, ledger = hook
    good = await client.post(
        "/api/speech/webhooks",
        content=BODY,
        headers=headers("transcriptionCompletion", signature(BODY)),
    )
    assert good.status_code == 200
    other = json.dumps({"self": "https://x/speechtotext/transcriptions/other"}).encode()
    replay = await client.post(
        "/api/speech/webhooks",
        content=BODY,
        headers=headers("transcriptionCompletion", signature(other)),
    )
    assert replay.status_code == 401
    assert ledger.hastened == [JOB]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_the_challenge_is_answered_with_its_token(hook: Any, method: str) -> None:
    client, _ = hook
    response = await client.request(
        method,
        "/api/speech/webhooks",
        params={"validationToken": "08d9c88813f34d26b82bbb15334fd75b"},
        headers={"X-MicrosoftSpeechServices-Event": "challenge"},
    )
    assert response.status_code == 200
    assert response.text == "08d9c88813f34d26b82bbb15334fd75b"
    assert response.headers["content-type"].startswith("text/plain")


async def test_a_signed_challenge_must_be_signed_right(hook: Any) -> None:
    client, _ = hook
    params = {"validationToken": "tok123"}
    good = await client.post(
        "/api/speech/webhooks", params=params, headers=headers("challenge", signature(b""))
    )
    assert good.text == "tok123"
    bad = await client.post(
        "/api/speech/webhooks", params=params, headers=headers("challenge", signature(b"x"))
    )
    assert bad.status_code == 401


async def test_a_challenge_token_that_is_no_token_is_not_reflected(hook: Any) -> None:
    client, _ = hook
    response = await client.post(
        "/api/speech/webhooks",
        params={"validationToken": "<script>alert(1)</script>"},
        headers={"X-MicrosoftSpeechServices-Event": "challenge"},
    )
    assert response.status_code == 400
    assert "<script>" not in response.text


async def test_ping_is_acknowledged(hook: Any) -> None:
    client, ledger = hook
    body = b'{"displayName": "x"}'
    response = await client.post(
        "/api/speech/webhooks", content=body, headers=headers("ping", signature(body))
    )
    assert response.status_code == 200
    assert response.json()["due"] is False
    assert ledger.hastened == []


async def test_a_body_too_large_is_refused(hook: Any) -> None:
    client, _ = hook
    body = b"x" * (1024**2 + 1)
    response = await client.post(
        "/api/speech/webhooks",
        content=body,
        headers=headers("transcriptionCompletion", signature(body)),
    )
    assert response.status_code == 413


async def test_hooks_off_answers_404() -> None:
    settings = AppSettings(AudioStorage="UseDevelopmentStorage=true")
    ctx: Any = SimpleNamespace(settings=settings, ledger=FakeLedger())

    async def endpoint(request: Request) -> Response:
        return await speech_webhook(request, ctx)

    app = Starlette(routes=[Route("/h", endpoint, methods=["POST"])])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://app"
    ) as client:
        response = await client.post("/h", content=BODY)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "WebHooksOff"


def test_hooks_on_need_a_secret_and_a_url() -> None:
    with pytest.raises(ValueError, match="SPEECH_WEBHOOK_SECRET"):
        AppSettings(
            AudioStorage="UseDevelopmentStorage=true",
            SPEECH_WEBHOOKS="on",
            WEBSITE_HOSTNAME="a",
        )
    with pytest.raises(ValueError, match="SPEECH_WEBHOOK_URL"):
        AppSettings(
            AudioStorage="UseDevelopmentStorage=true",
            SPEECH_WEBHOOKS="on",
            SPEECH_WEBHOOK_SECRET=SECRET,
        )
    settings = AppSettings(
        AudioStorage="UseDevelopmentStorage=true",
        SPEECH_WEBHOOKS="on",
        SPEECH_WEBHOOK_SECRET=SECRET,
        WEBSITE_HOSTNAME="func-x.azurewebsites.net",
    )
    assert settings.webhook_url == "https://func-x.azurewebsites.net/api/speech/webhooks"
    assert SECRET not in repr(settings)
