"""Fast transcription (``transcriptions:transcribe``): multipart in, TranscribeResult out."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from local.emulator import routes_fast
from local.emulator.asr.engines import DEFAULT_FIXED_TEXT
from tests.emulator.conftest import (
    EXAMPLES,
    FIXTURES,
    VERSIONS,
    EmulatorServer,
    assert_error,
    validate,
)

PATH = "/speechtotext/transcriptions:transcribe"


def _transcribe(
    server: EmulatorServer,
    version: str,
    *,
    definition: dict[str, Any] | str | None = None,
    audio: bytes | None = None,
) -> httpx.Response:
    files: dict[str, Any] = {}
    if definition is not None:
        text = definition if isinstance(definition, str) else json.dumps(definition)
        files["definition"] = (None, text, "application/json")
    if audio is not None:
        files["audio"] = ("audio.wav", audio, "application/octet-stream")
    return server.call("POST", PATH, version, files=files)


@pytest.mark.parametrize("version", VERSIONS)
def test_transcribe_conforms(emulator: EmulatorServer, version: str) -> None:
    audio = (FIXTURES / "sentence-01.wav").read_bytes()
    response = _transcribe(emulator, version, definition={"locales": ["en-US"]}, audio=audio)
    validate("Transcriptions_Transcribe", response, version)
    body = response.json()
    assert body["combinedPhrases"] == [{"text": DEFAULT_FIXED_TEXT}]
    (phrase,) = body["phrases"]
    assert phrase["locale"] == "en-US"
    assert phrase["words"]
    assert 3000 < body["durationMilliseconds"] < 5000

    no_definition = _transcribe(emulator, version, audio=audio)
    validate("Transcriptions_Transcribe", no_definition, version)


@pytest.mark.parametrize("version", VERSIONS)
def test_channels_and_diarization(emulator: EmulatorServer, version: str) -> None:
    stereo = (FIXTURES / "stereo.wav").read_bytes()
    split = _transcribe(emulator, version, definition={"channels": [0, 1]}, audio=stereo)
    validate("Transcriptions_Transcribe", split, version)
    assert [c["channel"] for c in split.json()["combinedPhrases"]] == [0, 1]
    assert {p["channel"] for p in split.json()["phrases"]} == {0, 1}
    merged = _transcribe(emulator, version, definition={}, audio=stereo)
    assert [set(c) for c in merged.json()["combinedPhrases"]] == [{"text"}]
    diarized = _transcribe(
        emulator,
        version,
        definition={"diarization": {"enabled": True, "maxSpeakers": 2}},
        audio=(FIXTURES / "sentence-01.wav").read_bytes(),
    )
    validate("Transcriptions_Transcribe", diarized, version)
    assert all("speaker" in p for p in diarized.json()["phrases"])
    refused = _transcribe(
        emulator,
        version,
        definition={"channels": [0, 1], "diarization": {"enabled": True}},
        audio=stereo,
    )
    assert_error(refused, 400, "InvalidRequest", "InvalidChannels")


def test_microsofts_example_definition_is_malformed_json(emulator: EmulatorServer) -> None:
    example = json.loads((EXAMPLES / "transcribe_file.json").read_text())
    definition = example["parameters"]["definition"]  # '{ "locales":  "en-US"] }'
    response = _transcribe(
        emulator,
        "2024-11-15",
        definition=definition,
        audio=(FIXTURES / "sentence-01.wav").read_bytes(),
    )
    assert_error(response, 400, "InvalidRequest", "InvalidRequestBodyFormat")


def test_bad_requests(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    audio = (FIXTURES / "sentence-01.wav").read_bytes()
    version = "2025-10-15"
    cases: list[tuple[dict[str, Any] | str | None, bytes | None, int, str, str | None]] = [
        ({"locales": ["nl-NL"]}, audio, 400, "InvalidRequest", "InvalidLocale"),
        ({"locales": "en-US"}, audio, 400, "InvalidRequest", "InvalidParameterValue"),
        ({"profanityFilterMode": "Loud"}, audio, 400, "InvalidRequest", "InvalidParameterValue"),
        (
            {"diarization": {"enabled": True, "maxSpeakers": 40}},
            audio,
            400,
            "InvalidRequest",
            "InvalidParameterValue",
        ),
        ({"channels": [0, 1, 2]}, audio, 400, "InvalidRequest", "InvalidChannels"),
        ("[1, 2]", audio, 400, "InvalidRequest", "InvalidRequestBodyFormat"),
        ({"locales": ["en-US"]}, None, 400, "InvalidRequest", "InvalidParameterValue"),
        (None, (FIXTURES / "not-audio.wav").read_bytes(), 422, "UnprocessableEntity", None),
        (None, audio, 422, "UnprocessableEntity", None),  # over the (lowered) limit
    ]
    # 120 minutes of audio is 230 MB; lowering the limit tests the same check.
    monkeypatch.setattr(routes_fast, "MAX_AUDIO_SECONDS", 2.0)
    inner_422 = ["InvalidAudioFormat", "AudioLengthLimitExceeded"]
    for definition, data, status, code, inner in cases:
        response = _transcribe(emulator, version, definition=definition, audio=data)
        expected_inner = inner if status != 422 else inner_422.pop(0)
        assert_error(response, status, code, expected_inner)
    # 2024-11-15's DetailedErrorCode has no audio codes: the 422 carries no inner error.
    old = _transcribe(emulator, "2024-11-15", audio=(FIXTURES / "not-audio.wav").read_bytes())
    assert_error(old, 422, "UnprocessableEntity")
    not_multipart = emulator.call("POST", PATH, version, json={"locales": ["en-US"]})
    assert_error(not_multipart, 415, "UnsupportedMediaType")


def test_audio_url_only_in_2025_10_15(emulator: EmulatorServer, audio_host: str) -> None:
    definition = {"locales": ["en-US"], "audioUrl": f"{audio_host}/sentence-01.wav"}
    linked = _transcribe(emulator, "2025-10-15", definition=definition)
    validate("Transcriptions_Transcribe", linked, "2025-10-15")
    assert linked.json()["combinedPhrases"][0]["text"] == DEFAULT_FIXED_TEXT
    # 2024-11-15 has no audioUrl: the audio part is required there.
    ignored = _transcribe(emulator, "2024-11-15", definition=definition)
    assert ignored.status_code == 400
    missing = {"audioUrl": f"{audio_host}/missing.wav"}
    assert_error(
        _transcribe(emulator, "2025-10-15", definition=missing),
        400,
        "InvalidRequest",
        "InvalidParameterValue",
    )
