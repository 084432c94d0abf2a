"""The three auth modes, and the key-for-token exchange under concurrency."""

from __future__ import annotations

import asyncio
import itertools
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from azure.core.credentials import AccessToken

from shared.speech.auth import EntraAuth, KeyAuth, Surface
from shared.speech.endpoints import SpeechEndpoints
from shared.speech.errors import AuthenticationError
from shared.speech.issued_token import IssuedTokenAuth
from shared.speech.pipeline import Pipeline
from shared.speech.short_audio import ShortAudioClient
from tests.support.scripted import Recorded, Reply

if TYPE_CHECKING:
    from tests.speech.conftest import Scripted


KEY = "fedcba9876543210fedcba9876543210"
RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg"
    "/providers/Microsoft.CognitiveServices/accounts/contoso-speech"
)
RECOGNIZED = {"RecognitionStatus": "Success", "DisplayText": "Hi.", "Offset": 0, "Duration": 1}


class SyncCredential:
    """Shaped like azure-identity's sync credentials (``TokenCredential``)."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("entra-token-abc", int(time.time()) + 3600)


class AsyncCredential:
    """Shaped like azure-identity's aio credentials (``AsyncTokenCredential``)."""

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        return AccessToken("entra-token-async", int(time.time()) + 3600)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> AsyncCredential:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.close()


async def test_key_auth_sends_the_subscription_key_everywhere() -> None:
    auth = KeyAuth(KEY)
    for surface in Surface:
        assert await auth.headers(surface) == {"Ocp-Apim-Subscription-Key": KEY}
    assert KEY not in repr(auth)
    with pytest.raises(ValueError, match="SPEECH_KEY"):
        KeyAuth("  ")


async def test_entra_bearer_for_batch_and_aad_form_for_short_audio() -> None:
    cred = SyncCredential()
    auth = EntraAuth(
        cred, scope="https://cognitiveservices.azure.com/.default", resource_id=RESOURCE_ID
    )
    assert await auth.headers(Surface.BATCH) == {"Authorization": "Bearer entra-token-abc"}
    assert await auth.headers(Surface.SHORT_AUDIO) == {
        "Authorization": f"Bearer aad#{RESOURCE_ID}#entra-token-abc"
    }
    assert cred.scopes == [("https://cognitiveservices.azure.com/.default",)] * 2


async def test_entra_accepts_async_credentials() -> None:
    auth = EntraAuth(AsyncCredential(), scope="https://cognitiveservices.azure.cn/.default")
    assert await auth.headers(Surface.BATCH) == {"Authorization": "Bearer entra-token-async"}


async def test_entra_short_audio_without_resource_id_names_the_setting() -> None:
    auth = EntraAuth(SyncCredential(), scope="s")
    assert auth.supports(Surface.BATCH) is None
    with pytest.raises(ValueError, match="SPEECH_RESOURCE_ID"):
        await auth.headers(Surface.SHORT_AUDIO)
    with pytest.raises(ValueError, match="SPEECH_RESOURCE_ID"):
        ShortAudioClient(SpeechEndpoints.from_region("westus"), auth)


def token_server(counter: list[int], delay: float = 0.05):  # type: ignore[no-untyped-def]
    """Issues JWT-looking tokens at /sts and recognises audio that carries one."""
    tokens = (f"eyJhbGciOi.eyJ{n:04d}.sig{n:04d}" for n in itertools.count(1))
    issued: set[str] = set()

    async def handler(req: Recorded) -> Reply:
        if req.path == "/sts/v1.0/issueToken":
            if req.headers.get("ocp-apim-subscription-key") != KEY:
                return Reply(401, {"error": {"code": "401", "message": "bad key"}})
            await asyncio.sleep(delay)  # long enough for every caller to pile up
            counter.append(1)
            token = next(tokens)
            issued.add(token)
            return Reply(200, token)
        bearer = req.headers.get("authorization", "").removeprefix("Bearer ")
        if bearer not in issued:
            return Reply(401, {"error": {"code": "401", "message": "expired"}})
        return Reply(200, RECOGNIZED)

    return handler, issued


async def test_100_concurrent_short_audio_calls_make_one_token_exchange(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    exchanges: list[int] = []
    handler, _issued = token_server(exchanges)
    with scripted(handler) as (url, app):
        endpoints = SpeechEndpoints.from_endpoint(url)
        auth = IssuedTokenAuth(
            KEY, issue_token_url=endpoints.issue_token_url, pipeline=Pipeline(http)
        )
        client = ShortAudioClient(endpoints, auth, http_client=http)
        results = await asyncio.gather(
            *(client.recognize(b"RIFF....WAVE", language="en-US") for _ in range(100))
        )
    assert all(r.text == "Hi." for r in results)
    assert len(exchanges) == 1
    assert auth.exchanges == 1
    recognitions = [r for r in app.requests if r.path.endswith("/cognitiveservices/v1")]
    assert len(recognitions) == 100
    assert len({r.headers["authorization"] for r in recognitions}) == 1


async def test_token_is_reused_for_nine_minutes_then_exchanged_again(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    exchanges: list[int] = []
    handler, _issued = token_server(exchanges, delay=0)
    clock = [1000.0]
    with scripted(handler) as (url, _app):
        endpoints = SpeechEndpoints.from_endpoint(url)
        auth = IssuedTokenAuth(
            KEY,
            issue_token_url=endpoints.issue_token_url,
            pipeline=Pipeline(http),
            clock=lambda: clock[0],
        )
        first = await auth.headers(Surface.SHORT_AUDIO)
        clock[0] += 539
        assert await auth.headers(Surface.BATCH) == first
        clock[0] += 2  # past 9 minutes
        second = await auth.headers(Surface.SHORT_AUDIO)
    assert second != first
    assert len(exchanges) == 2


async def test_a_401_drops_the_cached_token_and_retries_once(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    exchanges: list[int] = []
    handler, issued = token_server(exchanges, delay=0)
    with scripted(handler) as (url, _app):
        endpoints = SpeechEndpoints.from_endpoint(url)
        auth = IssuedTokenAuth(
            KEY, issue_token_url=endpoints.issue_token_url, pipeline=Pipeline(http)
        )
        client = ShortAudioClient(endpoints, auth, http_client=http)
        await client.recognize(b"RIFF", language="en-US")
        issued.clear()  # the service revokes every token it issued
        result = await client.recognize(b"RIFF", language="en-US")
    assert result.text == "Hi."
    assert len(exchanges) == 2


async def test_a_wrong_key_fails_the_exchange_with_an_auth_error(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    handler, _issued = token_server([], delay=0)
    with scripted(handler) as (url, _app):
        endpoints = SpeechEndpoints.from_endpoint(url)
        auth = IssuedTokenAuth(
            "wrong-key-0000000000000000000000",
            issue_token_url=endpoints.issue_token_url,
            pipeline=Pipeline(http),
        )
        with pytest.raises(AuthenticationError, match="bad key"):
            await auth.headers(Surface.SHORT_AUDIO)
