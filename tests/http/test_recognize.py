"""POST /api/recognize over real HTTP, in front of the Speech emulator (whisper engine)."""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from local.emulator.asr.wer import word_error_rate
from shared.http.audio_rules import PCM_BYTES_PER_SECOND
from shared.http.wav import parse_header
from tests.http.conftest import (
    FIXTURES,
    KEY,
    OGG,
    WAV,
    WRONG_KEY,
    Stack,
    riff_chunk,
    wav,
)
from tests.support.scripted import Reply

SENTENCES: dict[str, str] = json.loads((FIXTURES / "sentences.json").read_text())["sentences"]


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


def _no_upstream_call(stack: Stack) -> None:
    assert stack.recorder.requests == [], "Speech was called for a request refused locally"


# ----------------------------------------------------------------------- recognition


def test_wav_is_recognised(http_stack: Stack) -> None:
    response = http_stack.recognize((FIXTURES / "sentence-01.wav").read_bytes())
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"status", "text", "offsetMs", "durationMs"}
    assert body["status"] == "Success"
    assert word_error_rate([SENTENCES["sentence-01.wav"]], [body["text"]]) <= 0.2, body
    assert 0 <= body["offsetMs"] < body["offsetMs"] + body["durationMs"] <= 4000


def test_ogg_opus_is_recognised(http_stack: Stack) -> None:
    response = http_stack.recognize((FIXTURES / "sentence-02.ogg").read_bytes(), content_type=OGG)
    assert response.status_code == 200, response.text
    assert word_error_rate([SENTENCES["sentence-02.wav"]], [response.json()["text"]]) <= 0.2
    (upstream,) = http_stack.recorder.requests
    assert upstream.headers["content-type"] == OGG


@pytest.mark.parametrize(
    "content_type", ["audio/wav", "audio/x-wav", "Audio/Wave; SampleRate=16000"]
)
def test_wav_content_type_variants(http_stack: Stack, content_type: str) -> None:
    response = http_stack.recognize(
        (FIXTURES / "sentence-13.wav").read_bytes(), content_type=content_type
    )
    assert response.status_code == 200, response.text
    # Speech always gets the canonical type, whatever spelling the caller used.
    assert http_stack.recorder.requests[0].headers["content-type"] == WAV


def test_detailed_format_has_nbest(http_stack: Stack) -> None:
    response = http_stack.recognize(
        (FIXTURES / "sentence-13.wav").read_bytes(),
        params={"language": "en-US", "format": "DETAILED", "profanity": "raw"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    (best,) = body["nbest"]
    assert set(best) == {"confidence", "lexical", "itn", "maskedItn", "display"}
    assert best["display"] == body["text"]
    assert word_error_rate([SENTENCES["sentence-13.wav"]], [best["lexical"]]) <= 0.2
    assert http_stack.recorder.requests[0].path.endswith("/cognitiveservices/v1")


def test_pronunciation_assessment(http_stack: Stack) -> None:
    reference = SENTENCES["sentence-08.wav"]
    response = http_stack.recognize(
        (FIXTURES / "sentence-08.wav").read_bytes(),
        params={
            "language": "en-US",
            "referenceText": reference,
            "gradingSystem": "hundredmark",
            "granularity": "Word",
            "dimension": "Comprehensive",
            "enableMiscue": "true",
        },
    )
    assert response.status_code == 200, response.text
    scores = response.json()["pronunciation"]
    for name in ("accuracyScore", "fluencyScore", "completenessScore", "pronScore"):
        assert 0 <= scores[name] <= 100, scores
    assert [w["word"].lower() for w in scores["words"]] == ["good", "morning", "everyone"]
    assert {w["errorType"] for w in scores["words"]} <= {"None", "Mispronunciation"}


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"gradingSystem": "TenPoint", "referenceText": "hi"}, "gradingSystem"),
        ({"granularity": "Letter", "referenceText": "hi"}, "granularity"),
        ({"dimension": "Full", "referenceText": "hi"}, "dimension"),
        ({"enableMiscue": "maybe", "referenceText": "hi"}, "enableMiscue"),
        ({"scenarioId": "not-a-guid", "referenceText": "hi"}, "scenarioId"),
        ({"granularity": "Word"}, "referenceText"),
    ],
)
def test_bad_pronunciation_parameters(
    http_stack: Stack, params: dict[str, str], parameter: str
) -> None:
    response = http_stack.recognize(
        (FIXTURES / "sentence-08.wav").read_bytes(), params={"language": "en-US", **params}
    )
    assert _error(response, 400, "InvalidParameter")["parameter"] == parameter
    _no_upstream_call(http_stack)


def test_silence_is_initial_silence_timeout(http_stack: Stack) -> None:
    response = http_stack.recognize((FIXTURES / "silence-1s.wav").read_bytes())
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["text"]) == ("InitialSilenceTimeout", "")
    assert "silence" in body["message"]


@pytest.mark.parametrize("status", ["NoMatch", "BabbleTimeout"])
def test_other_no_speech_outcomes_are_200(http_stack: Stack, status: str) -> None:
    http_stack.script["reply"] = Reply(
        200, {"RecognitionStatus": status, "Offset": 0, "Duration": 10_000_000}
    )
    response = http_stack.recognize(wav(1), profile="scripted")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": status,
        "text": "",
        "message": response.json()["message"],
        "offsetMs": 0,
        "durationMs": 1000,
    }


def test_recognition_error_status_is_502(http_stack: Stack) -> None:
    http_stack.script["reply"] = Reply(200, {"RecognitionStatus": "Error"})
    error = _error(http_stack.recognize(wav(1), profile="scripted"), 502, "RecognitionError")
    assert error["recognitionStatus"] == "Error"
    assert error["retryable"] is True


# -------------------------------------------------------------------------- streaming


def test_audio_is_streamed_with_chunked_transfer(http_stack: Stack) -> None:
    """Speech receives the first audio before the caller has sent the rest: no buffering."""
    audio = (FIXTURES / "sentence-14.wav").read_bytes()
    first, rest = audio[:48_000], audio[48_000:]
    waited: list[bool] = []

    def body() -> Iterator[bytes]:
        yield first
        # Had the handler buffered the upload, Speech would see nothing until the end.
        waited.append(http_stack.recorder.first_audio.wait(timeout=10))
        yield from (rest[i : i + 16_384] for i in range(0, len(rest), 16_384))

    response = http_stack.recognize(body())
    assert response.status_code == 200, response.text
    assert waited == [True]
    (upstream,) = http_stack.recorder.requests
    assert upstream.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in upstream.headers
    assert upstream.headers["expect"] == "100-continue"
    assert upstream.chunks > 1
    assert upstream.size == len(audio)


def _send_unfinished(
    url: str, path: str, payload: bytes, content_type: str = WAV
) -> tuple[int, dict[str, Any]]:
    """POST ``payload`` chunked but never send the final chunk; return the status and body.

    The body never ends, so an answer proves the server did not wait for all of it. Sending
    runs in a thread so the answer is read while the upload is still going.
    """
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=20)

    def send() -> None:
        try:
            for start in range(0, len(payload), 32_768):
                chunk = payload[start : start + 32_768]
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        except OSError:
            pass  # the server hung up after answering: expected

    with sock:
        sock.sendall(
            (
                f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: {content_type}\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
            ).encode()
        )
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            data = sock.recv(65_536)
            if not data:
                break
            reply += data
        sender.join(timeout=10)
    head, _, content = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(content)


@pytest.mark.parametrize("declared", [0, 0xFFFFFFFF])
def test_streamed_wav_over_60_s_is_stopped_at_60_s(http_stack: Stack, declared: int) -> None:
    header = wav(0, data_size=declared)
    payload = header + b"\x00\x00" * 16_000 * 90  # 90 s, and the body never ends
    status, body = _send_unfinished(
        http_stack.app_url, "/key/api/recognize?language=en-US", payload
    )
    assert status == 413
    assert body["error"]["code"] == "AudioTooLong"
    assert body["error"]["maxSeconds"] == 60
    sixty_seconds = len(header) + 60 * PCM_BYTES_PER_SECOND
    # The app stopped reading within a read or two of the limit, far short of the 90 s sent.
    assert sixty_seconds < http_stack.consumed.last <= sixty_seconds + 512 * 1024
    # Speech got at most 60 s before its request was aborted.
    (upstream,) = http_stack.recorder.requests
    assert upstream.size <= sixty_seconds


def test_declared_wav_over_60_s_is_refused_before_speech_is_called(http_stack: Stack) -> None:
    error = _error(http_stack.recognize(wav(60.5)), 413, "AudioTooLong")
    assert "60.5 seconds" in error["message"]
    assert "/api/transcribe" in error["message"]
    _no_upstream_call(http_stack)
    assert http_stack.recognize(wav(59.9)).status_code == 200


def _offset_past(audio: bytes, seconds: float) -> int:
    """Byte offset of the first Ogg page whose granule position is past ``seconds``."""
    position = 0
    pre_skip = struct.unpack_from("<H", audio, 27 + audio[26] + 10)[0]
    while position < len(audio):
        (granule,) = struct.unpack_from("<q", audio, position + 6)
        if granule >= 0 and (granule - pre_skip) / 48_000 > seconds:
            return position
        segments = audio[position + 26]
        position += 27 + segments + sum(audio[position + 27 : position + 27 + segments])
    raise AssertionError(f"the stream is not longer than {seconds} s")


def test_ogg_over_60_s_is_stopped_by_granule_position(http_stack: Stack) -> None:
    audio = (FIXTURES / "long-70s.ogg").read_bytes()
    status, body = _send_unfinished(
        http_stack.app_url, "/key/api/recognize?language=en-US", audio, OGG
    )
    assert (status, body["error"]["code"]) == (413, "AudioTooLong")
    # Nothing past the page that crossed 60 s reached Speech.
    limit = _offset_past(audio, 60.0)
    assert all(request.size <= limit for request in http_stack.recorder.requests)
    complete = http_stack.recognize(audio, content_type=OGG)
    assert _error(complete, 413, "AudioTooLong")["maxSeconds"] == 60


def test_byte_cap(http_stack: Stack) -> None:
    # 5 s of audio is 160 kB: within the duration limit, over this profile's 100 kB cap.
    error = _error(http_stack.recognize(wav(5), profile="small"), 413, "PayloadTooLarge")
    assert error["maxBytes"] == 100_000


# ------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("params", "status", "code", "parameter"),
    [
        ({}, 400, "MissingParameter", "language"),
        ({"language": " "}, 400, "MissingParameter", "language"),
        ({"language": "english please"}, 400, "InvalidParameter", "language"),
        ({"language": "en-US", "format": "full"}, 400, "InvalidParameter", "format"),
        ({"language": "en-US", "profanity": "bleep"}, 400, "InvalidParameter", "profanity"),
        ({"language": "en-US", "cid": "my-model"}, 400, "InvalidParameter", "cid"),
    ],
)
def test_bad_query_parameters(
    http_stack: Stack, params: dict[str, str], status: int, code: str, parameter: str
) -> None:
    error = _error(http_stack.recognize(wav(1), params=params), status, code)
    assert error["parameter"] == parameter
    if parameter in ("format", "profanity"):
        assert error["accepted"] in (["simple", "detailed"], ["masked", "removed", "raw"])
    _no_upstream_call(http_stack)


def test_repeated_parameter_is_refused(http_stack: Stack) -> None:
    response = http_stack.client.post(
        "/key/api/recognize?language=en-US&language=de-DE",
        content=wav(1),
        headers={"Content-Type": WAV},
    )
    assert _error(response, 400, "InvalidParameter")["parameter"] == "language"


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "audio/mpeg",
        "audio/wav; codecs=audio/pcm; samplerate=8000",
        "audio/wav; codecs=audio/alaw",
        "audio/ogg; codecs=vorbis",
        "application/octet-stream",
    ],
)
def test_unsupported_content_type_is_415(http_stack: Stack, content_type: str | None) -> None:
    error = _error(
        http_stack.recognize(wav(1), content_type=content_type), 415, "UnsupportedMediaType"
    )
    assert any("audio/wav" in item for item in error["accepted"])
    assert any("audio/ogg" in item for item in error["accepted"])
    _no_upstream_call(http_stack)


@pytest.mark.parametrize(
    ("audio", "content_type", "fragment"),
    [
        (wav(1, rate=8_000), WAV, "8000 Hz; it must be 16000 Hz"),
        (wav(1, rate=44_100), WAV, "44100 Hz"),
        ((FIXTURES / "stereo.wav").read_bytes(), WAV, "2 channels; it must be mono"),
        (wav(1, bits=8, samples=b"\x80" * 16_000), WAV, "8 bits per sample; it must be 16"),
        (wav(1, tag=3, bits=32, samples=b"\x00" * 64_000), WAV, "IEEE float (format 3)"),
        (wav(1, tag=7, bits=8, samples=b"\xff" * 16_000), WAV, "mu-law (format 7)"),
        ((FIXTURES / "not-audio.wav").read_bytes(), WAV, "does not start with 'RIFF'"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", WAV, "not WAVE audio"),
        (wav(1)[:30], WAV, "ends before its header does"),
        (wav(1, before_data=riff_chunk(b"LIST", b"x" * 300_000)), WAV, "no 'data' chunk"),
        ((FIXTURES / "sentence-01.wav").read_bytes(), OGG, "not an Ogg stream"),
        ((FIXTURES / "sentence-02.ogg").read_bytes()[:40], OGG, "ends before its OpusHead"),
    ],
    ids=[
        "8kHz",
        "44kHz",
        "stereo",
        "8-bit",
        "float",
        "mu-law",
        "text",
        "avi",
        "truncated",
        "header-too-long",
        "wav-as-ogg",
        "truncated-ogg",
    ],
)
def test_bad_audio_is_400(
    http_stack: Stack, audio: bytes, content_type: str, fragment: str
) -> None:
    error = _error(http_stack.recognize(audio, content_type=content_type), 400, "InvalidAudio")
    assert fragment in error["message"]
    assert len(error["accepted"]) == 2
    _no_upstream_call(http_stack)


def test_stereo_and_resampled_ogg_are_400(http_stack: Stack) -> None:
    original = (FIXTURES / "sentence-02.ogg").read_bytes()
    body = 27 + original[26]  # first page: header, segment table, then OpusHead
    stereo = original[: body + 9] + b"\x02" + original[body + 10 :]
    error = _error(http_stack.recognize(stereo, content_type=OGG), 400, "InvalidAudio")
    assert "2 channels" in error["message"]
    rate = original[: body + 12] + struct.pack("<I", 48_000) + original[body + 16 :]
    error = _error(http_stack.recognize(rate, content_type=OGG), 400, "InvalidAudio")
    assert "48000 Hz" in error["message"]
    _no_upstream_call(http_stack)


def test_long_metadata_before_the_samples_is_fine(http_stack: Stack) -> None:
    audio = (FIXTURES / "sentence-13.wav").read_bytes()
    header = parse_header(audio)
    assert header is not None
    assert header.data_size is not None
    samples = audio[header.data_offset : header.data_offset + header.data_size]
    padded = wav(before_data=riff_chunk(b"LIST", b"INFOISFT" + b"y" * 100_001), samples=samples)
    response = http_stack.recognize(padded)
    assert response.status_code == 200, response.text
    assert word_error_rate([SENTENCES["sentence-13.wav"]], [response.json()["text"]]) <= 0.2


def test_empty_body_is_400(http_stack: Stack) -> None:
    _error(http_stack.recognize(b""), 400, "EmptyBody")
    _no_upstream_call(http_stack)


# ---------------------------------------------------------------- upstream failures


def test_unsupported_language_passes_the_service_message(http_stack: Stack) -> None:
    error = _error(
        http_stack.recognize(wav(1), params={"language": "xx-XX"}), 400, "SpeechRejectedRequest"
    )
    assert "xx-XX" in error["message"]
    assert error["upstreamStatus"] == 400


def test_upstream_429_is_429_with_retry_after(http_stack: Stack) -> None:
    http_stack.script["reply"] = Reply(
        429,
        {"error": {"code": "TooManyRequests", "message": "Too many requests."}},
        headers={"Retry-After": "7"},
    )
    response = http_stack.recognize(wav(1), profile="scripted")
    error = _error(response, 429, "TooManyRequests")
    assert response.headers["retry-after"] == "7"
    assert error["retryAfterSeconds"] == 7
    assert error["retryable"] is True


def test_upstream_5xx_is_502_retryable(http_stack: Stack) -> None:
    http_stack.script["reply"] = Reply(
        503, {"error": {"code": "ServiceUnavailable", "message": "Busy."}}
    )
    error = _error(http_stack.recognize(wav(1), profile="scripted"), 502, "UpstreamError")
    assert error["retryable"] is True
    assert error["upstreamStatus"] == 503


def test_upstream_timeout_is_504(http_stack: Stack) -> None:
    http_stack.faults(latency_ms=2_000)
    error = _error(http_stack.recognize(wav(1), profile="impatient"), 504, "UpstreamTimeout")
    assert error["retryable"] is True


def test_unreachable_upstream_is_502(http_stack: Stack) -> None:
    error = _error(http_stack.recognize(wav(1), profile="nowhere"), 502, "UpstreamUnreachable")
    assert error["retryable"] is True


def test_wrong_key_is_502_with_hint_and_no_secret(http_stack: Stack) -> None:
    response = http_stack.recognize(wav(1), profile="wrongkey")
    error = _error(response, 502, "UpstreamAuthenticationFailed")
    assert error["upstreamStatus"] == 401
    assert "SPEECH_KEY" in error["hint"]
    assert WRONG_KEY not in response.text
    assert KEY not in response.text


def test_entra_short_audio_works(http_stack: Stack) -> None:
    response = http_stack.recognize((FIXTURES / "sentence-13.wav").read_bytes(), profile="entra")
    assert response.status_code == 200, response.text
    assert http_stack.recorder.requests[0].headers["authorization"].startswith("Bearer aad#")


def test_wrong_resource_id_is_502_with_hint_and_no_token(http_stack: Stack) -> None:
    response = http_stack.recognize(wav(1), profile="otherresource")
    error = _error(response, 502, "UpstreamAuthenticationFailed")
    assert error["upstreamStatus"] == 403
    assert "Cognitive Services Speech User" in error["hint"]
    assert "SPEECH_RESOURCE_ID" in error["hint"]
    assert not any(token in response.text for token in http_stack.credential.issued)
    assert "eyJ" not in response.text
