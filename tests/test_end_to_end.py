"""The product, end to end, offline: the real ``function_app.app`` in the local functions host.

Blobs land in Azurite, the host delivers Event-Grid-shaped triggers to the intake, the
timer polls the Speech emulator (which really transcribes), and the outputs appear in the
transcripts container. HTTP functions are called with their function key.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.identity import DefaultAzureCredential
from azure.storage.blob import BlobServiceClient

from local.emulator.asr.wer import word_error_rate
from local.stack import StackInfo

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "speech"
SENTENCES: dict[str, str] = json.loads((FIXTURES / "sentences.json").read_text())["sentences"]
INPUT, REQUESTS, OUTPUT = "audio-input", "transcription-requests", "transcripts"
# Audio for manifests lives outside the input container, whose files are transcribed on arrival.
ARCHIVE = "audio-archive"
WAV = "audio/wav; codecs=audio/pcm; samplerate=16000"
OGG = "audio/ogg; codecs=opus"

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def app(local_stack_with_functions: StackInfo) -> StackInfo:
    service = blob_service(local_stack_with_functions)
    # INPUT, REQUESTS and OUTPUT exist: the stack provisions them (tests/local/test_stack.py).
    if not service.get_container_client(ARCHIVE).exists():
        service.create_container(ARCHIVE)
    return local_stack_with_functions


@pytest.fixture
def emulator(app: StackInfo) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=app.speech_url, timeout=10) as client:
        yield client
        client.put("/admin/faults", json={"quota_enabled": False, "error_rate": 0.0})


def blob_service(info: StackInfo) -> BlobServiceClient:
    credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    return BlobServiceClient(
        info.blob_endpoint, credential=credential, connection_verify=info.ca_bundle
    )


def upload(info: StackInfo, container: str, name: str, data: bytes) -> None:
    blob_service(info).get_blob_client(container, name).upload_blob(data, overwrite=True)


def wait_for_output(info: StackInfo, name: str, timeout: float = 120) -> bytes:
    """The output blob ``name`` once it exists; the ``.json`` is written last."""
    blob = blob_service(info).get_blob_client(OUTPUT, name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if blob.exists():
            return bytes(blob.download_blob().readall())
        time.sleep(0.5)
    raise AssertionError(f"{OUTPUT}/{name} did not appear within {timeout} s")


def output(info: StackInfo, name: str) -> str:
    return bytes(
        blob_service(info).get_blob_client(OUTPUT, name).download_blob().readall()
    ).decode()


def submits(emulator: httpx.Client) -> int:
    stats = emulator.get("/admin/stats").json()
    return int(
        stats["requests"]["byOperationAndStatus"].get("Transcriptions_Submit", {}).get("201", 0)
    )


def call(info: StackInfo, method: str, route: str, **kwargs: Any) -> httpx.Response:
    headers = {"x-functions-key": info.functions_key, **kwargs.pop("headers", {})}
    with httpx.Client(base_url=info.functions_url, timeout=60) as client:
        return client.request(method, f"/api/{route}", headers=headers, **kwargs)


def test_an_uploaded_file_becomes_json_txt_srt_and_vtt(app: StackInfo) -> None:
    name = f"e2e/{uuid.uuid4().hex[:8]}/meeting.wav"
    upload(app, INPUT, name, (FIXTURES / "sentence-06.wav").read_bytes())

    result = json.loads(wait_for_output(app, f"{name}.json"))
    text = output(app, f"{name}.txt")
    assert word_error_rate([SENTENCES["sentence-06.wav"]], [text]) <= 0.15
    assert "-->" in output(app, f"{name}.srt")
    assert output(app, f"{name}.vtt").startswith("WEBVTT")
    assert result["combinedRecognizedPhrases"]

    status = call(app, "GET", f"transcriptions/{name}")
    assert status.status_code == 200, status.text
    latest = status.json()["latest"]
    assert latest["state"] == "Succeeded"
    assert any(o["name"].endswith(".vtt") for o in latest["outputs"])


def test_junk_gets_an_error_report_and_no_retry_loop(
    app: StackInfo, emulator: httpx.Client
) -> None:
    before = submits(emulator)
    name = f"e2e/{uuid.uuid4().hex[:8]}/notes.wav"
    upload(app, INPUT, name, b"this is a shopping list, not audio")

    report = json.loads(wait_for_output(app, f"{name}.error.json"))
    assert report["code"] == "NotAudio"
    assert report["status"] == "Rejected"
    time.sleep(3)  # a retry loop would show up as more invocations or submits by now
    assert submits(emulator) == before
    listing = call(app, "GET", "transcriptions", params={"state": "Rejected", "prefix": "e2e/"})
    assert listing.status_code == 200
    assert name in [item["path"] for item in listing.json()["items"]]


def test_a_manifest_of_three_files_is_one_job(app: StackInfo, emulator: httpx.Client) -> None:
    folder = f"bulk-{uuid.uuid4().hex[:8]}"
    names = ["sentence-09.wav", "sentence-10.wav", "sentence-11.wav"]
    for name in names:
        upload(app, ARCHIVE, f"{folder}/{name}", (FIXTURES / name).read_bytes())
    before = submits(emulator)
    manifest = {
        "container": ARCHIVE,
        "prefix": f"{folder}/",
        "diarization": True,
        "destinationPrefix": "bulk-out/",
    }
    upload(app, REQUESTS, f"{folder}.json", json.dumps(manifest).encode())

    texts = []
    for name in names:
        wait_for_output(app, f"bulk-out/{folder}/{name}.json")
        texts.append(output(app, f"bulk-out/{folder}/{name}.txt"))
    assert submits(emulator) - before == 1
    assert all(t.startswith("Speaker 1: ") for t in texts), "diarized text names the speaker"
    spoken = [t.removeprefix("Speaker 1: ") for t in texts]
    assert word_error_rate([SENTENCES[n] for n in names], spoken) <= 0.15


def test_recognize_wav_and_ogg(app: StackInfo) -> None:
    wav = call(
        app,
        "POST",
        "recognize",
        params={"language": "en-US"},
        headers={"Content-Type": WAV},
        content=(FIXTURES / "sentence-01.wav").read_bytes(),
    )
    assert wav.status_code == 200, wav.text
    assert word_error_rate([SENTENCES["sentence-01.wav"]], [wav.json()["text"]]) <= 0.15
    ogg = call(
        app,
        "POST",
        "recognize",
        params={"language": "en-US", "format": "detailed"},
        headers={"Content-Type": OGG},
        content=(FIXTURES / "sentence-02.ogg").read_bytes(),
    )
    assert ogg.status_code == 200, ogg.text
    assert word_error_rate([SENTENCES["sentence-02.wav"]], [ogg.json()["text"]]) <= 0.15


@pytest.mark.parametrize(
    ("params", "headers", "body", "status", "code"),
    [
        ({}, {"Content-Type": WAV}, "sentence-01.wav", 400, "MissingParameter"),
        (
            {"language": "en-US"},
            {"Content-Type": "audio/mpeg"},
            "sentence-03.mp3",
            415,
            "UnsupportedMediaType",
        ),
        ({"language": "en-US"}, {"Content-Type": WAV}, "stereo.wav", 400, "InvalidAudio"),
        ({"language": "en-US"}, {"Content-Type": OGG}, "long-70s.ogg", 413, "AudioTooLong"),
        (
            {"language": "en-US", "format": "verbose"},
            {"Content-Type": WAV},
            "sentence-01.wav",
            400,
            "InvalidParameter",
        ),
    ],
)
def test_bad_recognize_inputs_get_json_errors(
    app: StackInfo,
    params: dict[str, str],
    headers: dict[str, str],
    body: str,
    status: int,
    code: str,
) -> None:
    response = call(
        app,
        "POST",
        "recognize",
        params=params,
        headers=headers,
        content=(FIXTURES / body).read_bytes(),
    )
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_http_functions_need_the_function_key(app: StackInfo) -> None:
    with httpx.Client(base_url=app.functions_url) as client:
        assert client.get("/api/health").status_code == 401
    health = call(app, "GET", "health")
    assert health.status_code == 200, health.text
    assert health.json()["status"] == "ok"


def test_a_429_storm_and_5xx_faults_still_transcribe_every_file(
    app: StackInfo, emulator: httpx.Client
) -> None:
    faults = {
        "quota_enabled": True,
        # Few requests now (files share jobs): a tight quota so the storm still happens.
        "quota_requests": 2,
        "quota_window_seconds": 3,
        "error_rate": 0.3,
    }
    assert emulator.put("/admin/faults", json=faults).status_code == 200
    folder = f"storm-{uuid.uuid4().hex[:8]}"
    names = ["sentence-12.wav", "sentence-13.wav", "sentence-14.wav", "sentence-07.wav"]
    for name in names:
        upload(app, INPUT, f"{folder}/{name}", (FIXTURES / name).read_bytes())

    for name in names:
        wait_for_output(app, f"{folder}/{name}.json", timeout=240)
    texts = [output(app, f"{folder}/{name}.txt") for name in names]
    assert word_error_rate([SENTENCES[n] for n in names], texts) <= 0.15
    stats = emulator.get("/admin/stats").json()
    injected = stats["faultsInjected"]
    assert injected.get("quota", 0) + injected.get("error", 0) > 0, "the storm really happened"


def test_transcribe_returns_the_phrases(app: StackInfo) -> None:
    response = call(
        app,
        "POST",
        "transcribe",
        params={"locale": "en-US"},
        headers={"Content-Type": "audio/wav"},
        content=(FIXTURES / "sentence-05.wav").read_bytes(),
    )
    assert response.status_code == 200, response.text
    phrases = " ".join(p["text"] for p in response.json()["phrases"])
    assert word_error_rate([SENTENCES["sentence-05.wav"]], [phrases]) <= 0.15


def test_a_file_marked_fast_is_transcribed_by_the_fast_lane_in_the_host(
    app: StackInfo, emulator: httpx.Client
) -> None:
    before = submits(emulator)
    name = f"e2e/{uuid.uuid4().hex[:8]}/voicemail.wav"
    blob_service(app).get_blob_client(INPUT, name).upload_blob(
        (FIXTURES / "sentence-07.wav").read_bytes(), metadata={"mode": "fast"}
    )

    result = json.loads(wait_for_output(app, f"{name}.json", timeout=60))

    assert "combinedPhrases" in result, "the fast transcription result, as returned"
    text = output(app, f"{name}.txt")
    assert word_error_rate([SENTENCES["sentence-07.wav"]], [text]) <= 0.15
    assert submits(emulator) == before, "no batch job"
    latest = call(app, "GET", f"transcriptions/{name}").json()["latest"]
    assert latest["state"] == "Succeeded"
    assert latest["route"] == "fast"
    assert [e["event"] for e in latest["events"]] == ["RoutedFast", "Transcribed"]
