"""Fast transcription: streamed multipart, and the 2025-10-15-only fields gated by version."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email import message_from_bytes, policy
from typing import TYPE_CHECKING

import httpx
import pytest

from shared.speech.auth import KeyAuth
from shared.speech.endpoints import SpeechEndpoints
from shared.speech.fast import FastTranscriptionClient
from shared.speech.models import PhraseListProperties, TranscribeDefinition
from tests.contract.openapi import SpecViolation, SpeechSpec
from tests.support.scripted import Recorded, Reply

if TYPE_CHECKING:
    from tests.speech.conftest import Scripted


KEY = "0123456789abcdef0123456789abcdef"
RESULT = {
    "durationMilliseconds": 2000,
    "combinedPhrases": [{"text": "Weather"}],
    "phrases": [
        {
            "offsetMilliseconds": 40,
            "durationMilliseconds": 320,
            "text": "Weather",
            "locale": "en-US",
            "confidence": 0.79,
        }
    ],
}
AUDIO = bytes(range(256)) * 1000


def client(url: str, http, version: str = "2024-11-15") -> FastTranscriptionClient:  # type: ignore[no-untyped-def]
    return FastTranscriptionClient(
        SpeechEndpoints.from_endpoint(url), KeyAuth(KEY), api_version=version, http_client=http
    )


def parts(req: Recorded) -> dict[str, tuple[bytes, str | None]]:
    raw = f"Content-Type: {req.headers['content-type']}\r\n\r\n".encode() + req.body
    message = message_from_bytes(raw, policy=policy.HTTP)
    found: dict[str, tuple[bytes, str | None]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(name, str)
        assert isinstance(payload, bytes)
        found[name] = (payload, part.get_filename())
    return found


async def test_audio_from_an_async_iterator_is_streamed_in_the_multipart_body(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(AUDIO), 50_000):
            yield AUDIO[start : start + 50_000]

    with scripted(lambda _r: Reply(200, RESULT)) as (url, app):
        result = await client(url, http).transcribe(
            chunks(), TranscribeDefinition(locales=["en-US", "de-DE"]), filename='we"ird.wav'
        )
    sent = app.requests[0]
    assert sent.headers["transfer-encoding"] == "chunked"
    assert sent.chunks > 1
    got = parts(sent)
    assert got["audio"] == (AUDIO, "we%22ird.wav")
    assert got["definition"][0] == b'{"locales":["en-US","de-DE"]}'
    assert result.phrases is not None
    assert result.phrases[0].offset_ms == 40
    assert result.duration_ms == 2000


async def test_2025_only_fields_are_refused_on_2024_11_15(http: httpx.AsyncClient) -> None:
    fast = client("http://127.0.0.1:9", http)
    with pytest.raises(ValueError, match="audioUrl need api_version 2025-10-15"):
        await fast.transcribe(None, TranscribeDefinition(audio_url="https://a.example/x.wav"))
    with pytest.raises(ValueError, match="phraseList"):
        await fast.transcribe(
            b"RIFF", TranscribeDefinition(phrase_list=PhraseListProperties(phrases=["Contoso"]))
        )


async def test_exactly_one_audio_source(http: httpx.AsyncClient) -> None:
    fast = client("http://127.0.0.1:9", http, "2025-10-15")
    with pytest.raises(ValueError, match="exactly one"):
        await fast.transcribe(None, TranscribeDefinition(locales=["en-US"]))
    with pytest.raises(ValueError, match="exactly one"):
        await fast.transcribe(b"RIFF", TranscribeDefinition(audio_url="https://a.example/x.wav"))


async def test_audio_url_alone_on_2025_10_15(scripted: Scripted, http: httpx.AsyncClient) -> None:
    """The spec marks the audio part required, while its own audioUrl text says audio may be
    left out ("If both Audio and AudioUrl are provided, Audio is used"). The client follows the
    documented behaviour, and this test pins that this is the one point where it departs."""
    with scripted(lambda _r: Reply(200, RESULT)) as (url, app):
        await client(url, http, "2025-10-15").transcribe(
            None, TranscribeDefinition(audio_url="https://a.example/x.wav", locales=["en-US"])
        )
    sent = app.requests[0]
    assert set(parts(sent)) == {"definition"}
    with pytest.raises(SpecViolation) as info:
        SpeechSpec.load("2025-10-15").validate_request(
            "POST", f"{url}{sent.path}?{sent.raw_query}", sent.headers, sent.body, base_url=url
        )
    assert len(info.value.problems) == 1
    assert "audio" in info.value.problems[0]
