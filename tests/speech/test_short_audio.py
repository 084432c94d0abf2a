"""Short audio: streamed with chunked transfer, typed parameters, checked before sending."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from shared.speech.auth import KeyAuth
from shared.speech.endpoints import SpeechEndpoints
from shared.speech.errors import ServerError
from shared.speech.models import (
    Dimension,
    GradingSystem,
    Granularity,
    OutputFormat,
    PronunciationAssessmentParams,
    RecognitionStatus,
    ShortAudioProfanity,
)
from shared.speech.retry import RetryPolicy
from shared.speech.short_audio import OGG_OPUS, WAV_PCM_16K, ShortAudioClient
from tests.support.scripted import Reply

if TYPE_CHECKING:
    from tests.speech.conftest import Scripted


KEY = "0123456789abcdef0123456789abcdef"
DETAILED = {
    "RecognitionStatus": "Success",
    "Offset": "400000",
    "Duration": "11000000",
    "NBest": [
        {
            "Confidence": "0.87",
            "Lexical": "good morning",
            "ITN": "good morning",
            "MaskedITN": "good morning",
            "Display": "Good morning.",
            "PronScore": 84.4,
            "AccuracyScore": 100.0,
            "FluencyScore": 74.0,
            "CompletenessScore": 100.0,
            "Words": [
                {
                    "Word": "Good",
                    "AccuracyScore": 100.0,
                    "ErrorType": "None",
                    "Offset": 500000,
                    "Duration": 2700000,
                }
            ],
        }
    ],
}
AUDIO = b"RIFF" + bytes(200_000)  # several 64 KiB chunks


def client(url: str, http, **kw) -> ShortAudioClient:  # type: ignore[no-untyped-def]
    return ShortAudioClient(
        SpeechEndpoints.from_endpoint(url), KeyAuth(KEY), http_client=http, **kw
    )


async def test_audio_is_streamed_chunked_with_the_documented_headers(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(AUDIO), 10_000):
            yield AUDIO[start : start + 10_000]

    params = PronunciationAssessmentParams(
        reference_text="Good morning.",
        grading_system=GradingSystem.HUNDRED_MARK,
        granularity=Granularity.FULL_TEXT,
        dimension=Dimension.COMPREHENSIVE,
    )
    with scripted(lambda _r: Reply(200, DETAILED)) as (url, app):
        result = await client(url, http).recognize(
            chunks(),
            language="en-US",
            format=OutputFormat.DETAILED,
            profanity=ShortAudioProfanity.RAW,
            cid="11111111-2222-3333-4444-555555555555",
            pronunciation_assessment=params,
        )
    sent = app.requests[0]
    assert sent.path == "/stt/speech/recognition/conversation/cognitiveservices/v1"
    assert sent.query == {
        "language": "en-US",
        "format": "detailed",
        "profanity": "raw",
        "cid": "11111111-2222-3333-4444-555555555555",
    }
    assert sent.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in sent.headers
    assert sent.headers["content-type"] == WAV_PCM_16K
    assert sent.headers["accept"] == "application/json"
    assert sent.headers["expect"] == "100-continue"
    assert sent.body == AUDIO
    assert sent.chunks > 1, "the body arrived in pieces, not as one buffer"
    assert json.loads(base64.b64decode(sent.headers["pronunciation-assessment"])) == {
        "ReferenceText": "Good morning.",
        "GradingSystem": "HundredMark",
        "Granularity": "FullText",
        "Dimension": "Comprehensive",
    }
    assert result.recognition_status == RecognitionStatus.SUCCESS
    assert result.text == "Good morning."
    assert result.n_best is not None
    assert result.n_best[0].confidence == pytest.approx(0.87)
    assert result.offset_ms == 40


async def test_a_file_is_streamed_and_retried_from_the_start(
    scripted: Scripted, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    path = tmp_path / "clip.ogg"
    path.write_bytes(AUDIO)
    replies = iter([Reply(503), Reply(200, {"RecognitionStatus": "NoMatch", "Offset": 0})])
    with scripted(lambda _r: next(replies)) as (url, app):
        result = await client(url, http, retry=RetryPolicy(backoff_base=0)).recognize(
            path, language="en-US", content_type=OGG_OPUS
        )
    assert result.recognition_status == RecognitionStatus.NO_MATCH
    assert result.text == ""
    assert [r.body == AUDIO for r in app.requests] == [True, True]
    assert app.requests[0].headers["content-type"] == "audio/ogg; codecs=opus"
    assert app.requests[0].headers["transfer-encoding"] == "chunked"


async def test_a_one_shot_stream_is_not_replayed(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    async def once() -> AsyncIterator[bytes]:
        yield AUDIO

    with (
        scripted(lambda _r: Reply(503, {"code": "ServiceUnavailable"})) as (url, app),
        pytest.raises(ServerError),
    ):
        await client(url, http).recognize(once(), language="en-US")
    assert len(app.requests) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"language": ""}, "language is required"),
        ({"language": "  "}, "language is required"),
        ({"language": "en-US", "content_type": "audio/mpeg"}, "content_type must be one of"),
        ({"language": "en-US", "content_type": "audio/wav"}, "content_type must be one of"),
        ({"language": "en-US", "format": "verbose"}, "OutputFormat"),
        ({"language": "en-US", "profanity": "Masked"}, "ShortAudioProfanity"),
        ({"language": "en-US", "cid": " "}, "cid"),
    ],
)
async def test_bad_arguments_fail_before_sending(
    http: httpx.AsyncClient, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await client("http://127.0.0.1:9", http).recognize(b"RIFF", **kwargs)


@pytest.mark.parametrize(
    ("audio", "message"),
    [(b"", "empty"), ("/nonexistent/clip.wav", "not found")],
)
async def test_bad_audio_fails_before_sending(
    http: httpx.AsyncClient, audio: bytes | str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await client("http://127.0.0.1:9", http).recognize(audio, language="en-US")


async def test_audio_of_the_wrong_type_is_a_type_error(http: httpx.AsyncClient) -> None:
    with pytest.raises(TypeError, match="async iterable"):
        await client("http://127.0.0.1:9", http).recognize(12, language="en-US")  # type: ignore[arg-type]


async def test_upstream_recognition_error_statuses_are_results_not_exceptions(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    body = {"RecognitionStatus": "InitialSilenceTimeout", "Offset": 0, "Duration": 50000000}
    with scripted(lambda _r: Reply(200, body)) as (url, _app):
        result = await client(url, http).recognize(b"RIFF", language="en-US")
    assert result.recognition_status == RecognitionStatus.INITIAL_SILENCE_TIMEOUT
    assert result.duration_ms == 5000
