"""Short audio REST API: formats, limits, streaming and pronunciation assessment (seed 001)."""

from __future__ import annotations

import base64
import io
import json
import socket
import wave
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from local.emulator.asr.engines import DEFAULT_FIXED_TEXT
from tests.emulator.conftest import FIXTURES, KEY, EmulatorServer, StartEmulator

PATH = "/speech/recognition/conversation/cognitiveservices/v1"
WAV = "audio/wav; codecs=audio/pcm; samplerate=16000"
OGG = "audio/ogg; codecs=opus"


def _recognize(
    server: EmulatorServer,
    content: bytes | Iterator[bytes],
    *,
    content_type: str | None = WAV,
    path: str = PATH,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    query = {"language": "en-US"} if params is None else params
    sent = dict(headers or {})
    if content_type is not None:
        sent["Content-Type"] = content_type
    return server.client.post(path, params=query, content=content, headers=sent)


def _wav(seconds: float, *, rate: int = 16_000, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x01\x00" * int(seconds * rate) * channels)
    return buffer.getvalue()


def _bad(response: httpx.Response, fragment: str) -> None:
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]["message"]


def test_wav_simple_and_detailed(emulator: EmulatorServer) -> None:
    audio = (FIXTURES / "sentence-08.wav").read_bytes()
    simple = _recognize(emulator, audio)
    assert simple.status_code == 200, simple.text
    body = simple.json()
    assert set(body) == {"RecognitionStatus", "DisplayText", "Offset", "Duration"}
    assert body["RecognitionStatus"] == "Success"
    assert body["DisplayText"] == DEFAULT_FIXED_TEXT
    assert isinstance(body["Offset"], int)
    assert body["Duration"] > 0

    detailed = _recognize(emulator, audio, params={"language": "en-US", "format": "detailed"})
    (best,) = detailed.json()["NBest"]
    assert set(best) >= {"Confidence", "Lexical", "ITN", "MaskedITN", "Display"}
    assert best["Lexical"] == best["Lexical"].lower()

    custom_subdomain = _recognize(emulator, audio, path="/stt" + PATH)
    assert custom_subdomain.json() == body
    other_mode = _recognize(emulator, audio, path=PATH.replace("conversation", "interactive"))
    assert other_mode.status_code == 200


def test_ogg_opus(emulator: EmulatorServer) -> None:
    response = _recognize(emulator, (FIXTURES / "sentence-02.ogg").read_bytes(), content_type=OGG)
    assert response.status_code == 200, response.text
    assert response.json()["RecognitionStatus"] == "Success"


def test_chunked_upload(emulator: EmulatorServer) -> None:
    audio = (FIXTURES / "sentence-08.wav").read_bytes()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(audio), 1024):
            yield audio[start : start + 1024]

    response = _recognize(emulator, chunks(), headers={"Expect": "100-continue"})
    assert response.status_code == 200, response.text
    assert response.request.headers["Transfer-Encoding"] == "chunked"


@pytest.mark.parametrize(
    "content_type",
    [
        "audio/wav;codecs=audio/pcm;samplerate=16000",
        "Audio/WAV; SampleRate=16000; Codecs=audio/PCM",
        'audio/wav; codecs="audio/pcm"; samplerate=16000',
    ],
)
def test_content_type_parameters_are_tolerant(emulator: EmulatorServer, content_type: str) -> None:
    audio = (FIXTURES / "sentence-08.wav").read_bytes()
    assert _recognize(emulator, audio, content_type=content_type).status_code == 200


@pytest.mark.parametrize(
    "content_type",
    [None, "audio/mpeg", "audio/wav", "audio/wav; codecs=audio/pcm; samplerate=8000", "audio/ogg"],
)
def test_other_content_types_are_415(emulator: EmulatorServer, content_type: str | None) -> None:
    audio = (FIXTURES / "sentence-08.wav").read_bytes()
    response = _recognize(emulator, audio, content_type=content_type)
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "UnsupportedMediaType"


def test_query_parameters(emulator: EmulatorServer) -> None:
    audio = (FIXTURES / "sentence-08.wav").read_bytes()
    _bad(_recognize(emulator, audio, params={}), "'language' query parameter is required")
    _bad(_recognize(emulator, audio, params={"language": "xx-XX"}), "not supported")
    _bad(_recognize(emulator, audio, params={"language": "en-US", "format": "full"}), "format")
    _bad(_recognize(emulator, audio, params={"language": "en-US", "profanity": "x"}), "profanity")
    _bad(_recognize(emulator, audio, params={"language": "en-US", "cid": "abc"}), "cid")
    lowercase = _recognize(emulator, audio, params={"language": "EN-us", "profanity": "raw"})
    assert lowercase.status_code == 200


def test_audio_checks(emulator: EmulatorServer) -> None:
    _bad(_recognize(emulator, b""), "no audio")
    _bad(_recognize(emulator, (FIXTURES / "not-audio.wav").read_bytes()), "not a WAV")
    _bad(_recognize(emulator, _wav(1, rate=8_000)), "16 kHz, mono")
    _bad(_recognize(emulator, (FIXTURES / "stereo.wav").read_bytes()), "16 kHz, mono")
    _bad(_recognize(emulator, b"OggS-not-really", content_type=OGG), "could not be decoded")


def test_longer_than_60_seconds_is_400(emulator: EmulatorServer) -> None:
    _bad(
        _recognize(emulator, (FIXTURES / "long-70s.ogg").read_bytes(), content_type=OGG),
        "at most 60 seconds",
    )
    _bad(_recognize(emulator, _wav(60.5)), "at most 60 seconds")
    assert _recognize(emulator, _wav(59)).status_code == 200


def test_too_long_streams_are_refused_before_the_end(emulator: EmulatorServer) -> None:
    """The 400 arrives while the client is still sending: the body is not buffered first."""
    header = _wav(0)[:44]  # a WAV header whose data chunk size is 0 (streamed WAV)
    url = urlsplit(emulator.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(
            (
                f"POST {PATH}?language=en-US HTTP/1.1\r\nHost: {url.netloc}\r\n"
                f"Ocp-Apim-Subscription-Key: {KEY}\r\nContent-Type: {WAV}\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
            ).encode()
        )
        second = b"\x00\x00" * 16_000
        payload = header + second * 61  # 61 seconds; the final chunk is never sent
        for start in range(0, len(payload), 64 * 1024):
            chunk = payload[start : start + 64 * 1024]
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        reply = ""
        while "at most 60 seconds" not in reply:
            data = sock.recv(65536)
            if not data:
                break
            reply += data.decode("latin-1")
    assert reply.startswith("HTTP/1.1 400"), reply[:200]
    assert "at most 60 seconds" in reply


def test_byte_cap(start_emulator: StartEmulator) -> None:
    server = start_emulator(short_audio_max_bytes=50_000)
    _bad(_recognize(server, (FIXTURES / "sentence-08.wav").read_bytes()), "larger than 50000")


def _assessment(params: object) -> str:
    return base64.b64encode(json.dumps(params).encode()).decode()


def test_pronunciation_assessment(emulator: EmulatorServer) -> None:
    audio = (FIXTURES / "sentence-08.wav").read_bytes()
    header = _assessment(
        {
            "ReferenceText": DEFAULT_FIXED_TEXT,
            "GradingSystem": "HundredMark",
            "Granularity": "Word",
            "Dimension": "Comprehensive",
        }
    )
    response = _recognize(emulator, audio, headers={"Pronunciation-Assessment": header})
    assert response.status_code == 200, response.text
    (best,) = response.json()["NBest"]
    for score in ("PronScore", "AccuracyScore", "FluencyScore", "CompletenessScore"):
        assert 0 <= best[score] <= 100
    assert best["Words"][0]["ErrorType"] == "None"

    for bad, fragment in (
        ("%%%not base64", "base64-encoded JSON"),
        (base64.b64encode(b"not json").decode(), "base64-encoded JSON"),
        (_assessment(["ReferenceText"]), "JSON object"),
        (_assessment({"GradingSystem": "HundredMark"}), "ReferenceText"),
        (_assessment({"ReferenceText": "hi", "Granularity": "Letter"}), "Granularity"),
    ):
        _bad(_recognize(emulator, audio, headers={"Pronunciation-Assessment": bad}), fragment)
