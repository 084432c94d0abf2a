"""POST /api/transcribe over real HTTP, in front of the Speech emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local.emulator.asr.wer import word_error_rate
from tests.http.conftest import FIXTURES, Stack

SENTENCES: dict[str, str] = json.loads((FIXTURES / "sentences.json").read_text())["sentences"]
PATH = "/api/transcribe"


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


def test_wav_is_transcribed(http_stack: Stack) -> None:
    audio = (FIXTURES / "sentence-04.wav").read_bytes()
    response = http_stack.post(
        PATH, audio, content_type="audio/wav", params={"locale": "en-US", "profanity": "none"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["durationMilliseconds"] > 3000
    assert body["phrases"], body
    assert all(phrase["locale"] == "en-US" for phrase in body["phrases"])
    (combined,) = body["combinedPhrases"]
    assert word_error_rate([SENTENCES["sentence-04.wav"]], [combined["text"]]) <= 0.2
    (upstream,) = http_stack.recorder.requests
    assert upstream.headers["transfer-encoding"] == "chunked"
    assert upstream.headers["content-type"].startswith("multipart/form-data; boundary=")


def test_mp3_without_locale_streams_from_a_generator(http_stack: Stack) -> None:
    audio = (FIXTURES / "sentence-03.mp3").read_bytes()

    def chunks() -> Iterator[bytes]:
        yield from (audio[i : i + 4096] for i in range(0, len(audio), 4096))

    response = http_stack.post(PATH, chunks(), content_type=None)
    assert response.status_code == 200, response.text
    text = response.json()["combinedPhrases"][0]["text"]
    assert word_error_rate([SENTENCES["sentence-03.wav"]], [text]) <= 0.3


def test_diarization_and_several_locales(http_stack: Stack) -> None:
    response = http_stack.post(
        PATH,
        (FIXTURES / "sentence-08.wav").read_bytes(),
        params={"locale": "en-US,de-DE", "maxSpeakers": "2"},
    )
    assert response.status_code == 200, response.text
    assert all("speaker" in phrase for phrase in response.json()["phrases"])


def test_declared_size_over_the_cap_is_refused_before_reading(http_stack: Stack) -> None:
    audio = (FIXTURES / "sentence-01.wav").read_bytes()  # 114 kB; the profile allows 60 kB
    error = _error(http_stack.post(PATH, audio, profile="small"), 413, "PayloadTooLarge")
    assert error["maxBytes"] == 60_000
    assert http_stack.consumed.last == 0
    assert http_stack.recorder.requests == []


def test_streamed_size_over_the_cap_is_stopped(http_stack: Stack) -> None:
    audio = (FIXTURES / "sentence-01.wav").read_bytes()

    def chunks() -> Iterator[bytes]:
        yield from (audio[i : i + 8192] for i in range(0, len(audio), 8192))

    error = _error(http_stack.post(PATH, chunks(), profile="small"), 413, "PayloadTooLarge")
    assert error["maxBytes"] == 60_000
    # Speech never got more than the cap before the upload to it was aborted.
    assert all(request.size <= 60_000 for request in http_stack.recorder.requests)


def test_audio_url_needs_api_version_2025_10_15(http_stack: Stack) -> None:
    url = f"{http_stack.static_url}/sentence-05.wav"
    error = _error(
        http_stack.post(PATH, json.dumps({"audioUrl": url}), content_type="application/json"),
        400,
        "AudioUrlNotSupported",
    )
    assert "SPEECH_API_VERSION" in error["message"]
    assert error["apiVersion"] == "2024-11-15"
    assert http_stack.recorder.requests == []

    response = http_stack.post(
        PATH,
        json.dumps({"audioUrl": url}),
        content_type="application/json",
        params={"locale": "en-US"},
        profile="v2025",
    )
    assert response.status_code == 200, response.text
    text = response.json()["combinedPhrases"][0]["text"]
    assert word_error_rate([SENTENCES["sentence-05.wav"]], [text]) <= 0.2


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("not json", 400, "InvalidJson"),
        ("[]", 400, "InvalidParameter"),
        (json.dumps({"audioUrl": "ftp://example.com/a.wav"}), 400, "InvalidParameter"),
        (
            json.dumps({"audioUrl": "https://example.com/a.wav", "locale": "x"}),
            400,
            "InvalidParameter",
        ),
        (json.dumps({"audioUrl": "https://example.com/" + "a" * 70_000}), 413, "PayloadTooLarge"),
    ],
    ids=["not-json", "not-object", "ftp", "unknown-field", "huge"],
)
def test_bad_json_bodies(http_stack: Stack, body: str, status: int, code: str) -> None:
    response = http_stack.post(PATH, body, content_type="application/json", profile="v2025")
    _error(response, status, code)
    assert http_stack.recorder.requests == []


def test_rejected_audio_url_is_not_echoed(http_stack: Stack) -> None:
    secret_url = "ftp://example.com/a.wav?sig=c2VjcmV0LXNpZ25hdHVyZQ"
    response = http_stack.post(
        PATH, json.dumps({"audioUrl": secret_url}), content_type="application/json", profile="v2025"
    )
    assert _error(response, 400, "InvalidParameter")["parameter"] == "audioUrl"
    assert "c2VjcmV0" not in response.text


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"maxSpeakers": "1"}, "maxSpeakers"),
        ({"maxSpeakers": "36"}, "maxSpeakers"),
        ({"maxSpeakers": "two"}, "maxSpeakers"),
        ({"maxSpeakers": "3", "diarization": "false"}, "maxSpeakers"),
        ({"diarization": "sometimes"}, "diarization"),
        ({"channels": "2"}, "channels"),
        ({"channels": "left"}, "channels"),
        ({"channels": "0,0"}, "channels"),
        ({"channels": "0,1", "diarization": "true"}, "channels"),
        ({"profanity": "bleep"}, "profanity"),
        ({"locale": "en-US,english"}, "locale"),
    ],
)
def test_bad_options(http_stack: Stack, params: dict[str, str], parameter: str) -> None:
    response = http_stack.post(PATH, (FIXTURES / "sentence-08.wav").read_bytes(), params=params)
    assert _error(response, 400, "InvalidParameter")["parameter"] == parameter
    assert http_stack.recorder.requests == []


def test_unsupported_locale_passes_the_service_message(http_stack: Stack) -> None:
    response = http_stack.post(
        PATH, (FIXTURES / "sentence-08.wav").read_bytes(), params={"locale": "xx-XX"}
    )
    error = _error(response, 400, "SpeechRejectedRequest")
    assert error["upstreamCode"] == "InvalidLocale"
    assert "xx-XX" in error["message"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"", "audio/wav", 400, "EmptyBody"),
        ((FIXTURES / "not-audio.wav").read_bytes(), "audio/wav", 415, "UnsupportedMediaType"),
        (b"--x\r\n\r\n--x--", "multipart/form-data; boundary=x", 415, "UnsupportedMediaType"),
    ],
    ids=["empty", "text", "form"],
)
def test_bad_bodies(
    http_stack: Stack, body: bytes, content_type: str, status: int, code: str
) -> None:
    error = _error(http_stack.post(PATH, body, content_type=content_type), status, code)
    if status == 415:
        assert "MP3" in error["accepted"]
    assert http_stack.recorder.requests == []


def test_undecodable_audio_is_422(http_stack: Stack) -> None:
    # Starts like an MP3 (ID3 tag), so it passes the sniff, but holds no audio.
    response = http_stack.post(PATH, b"ID3" + bytes(2000), content_type="audio/mpeg")
    error = _error(response, 422, "UnprocessableAudio")
    assert error["upstreamStatus"] == 422


def test_upstream_auth_failure_is_502(http_stack: Stack) -> None:
    response = http_stack.post(PATH, (FIXTURES / "sentence-08.wav").read_bytes(), profile="entra")
    assert response.status_code == 200, response.text
    error = _error(
        http_stack.post(PATH, (FIXTURES / "sentence-08.wav").read_bytes(), profile="wrongkey"),
        502,
        "UpstreamAuthenticationFailed",
    )
    assert "SPEECH_KEY" in error["hint"]
