"""The emulator as the offline stack runs it: its own process, Whisper, the managed identity.

Nothing here is faked: the identity endpoint's tokens authenticate to Azurite (a
user-delegation SAS for the audio) and to the emulator (Entra bearer tokens, and the
``aad#<resourceId>#<token>`` form for short audio), and the audio really is transcribed.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from local.stack import StackInfo
from tests.emulator.conftest import FIXTURES
from tests.support.blobs import upload_with_user_delegation_sas

SCOPE = "https://cognitiveservices.azure.com/.default"
WAV = "audio/wav; codecs=audio/pcm; samplerate=16000"


def _words(text: str) -> list[str]:
    return "".join(c.lower() if c.isalnum() or c.isspace() else " " for c in text).split()


def _audio_url(info: StackInfo, fixture: str) -> str:
    """Upload a fixture to Azurite and sign it with a user-delegation SAS (managed identity)."""
    files = {fixture: (FIXTURES / fixture).read_bytes()}
    return upload_with_user_delegation_sas(info, files, prefix="stack")[fixture]


def test_batch_job_with_managed_identity_and_whisper(local_stack: StackInfo) -> None:
    info = local_stack
    token = info.credential().get_token(SCOPE).token
    headers = {"Authorization": f"Bearer {token}"}
    body: dict[str, Any] = {
        "displayName": f"stack-{uuid.uuid4()}",
        "locale": "en-US",
        "contentUrls": [_audio_url(info, "sentence-01.wav")],
        "properties": {"timeToLiveHours": 6, "wordLevelTimestampsEnabled": True},
    }
    with httpx.Client(base_url=info.speech_url, headers=headers, timeout=30) as client:
        params = {"api-version": "2024-11-15"}
        created = client.post("/speechtotext/transcriptions:submit", params=params, json=body)
        assert created.status_code == 201, created.text
        self_url = created.json()["self"]
        deadline = time.monotonic() + 60
        while (job := client.get(self_url).json())["status"] not in ("Succeeded", "Failed"):
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["status"] == "Succeeded", job
        listing = {**params, "filter": "kind eq 'Transcription'"}
        files = client.get(job["links"]["files"].partition("?")[0], params=listing)
        assert files.status_code == 200, files.text
        (result_file,) = files.json()["values"]
    result = httpx.get(result_file["links"]["contentUrl"]).json()
    said = _words(result["combinedRecognizedPhrases"][0]["lexical"])
    expected = _words("Please transcribe this audio file into text.")
    assert sum(w in said for w in expected) >= len(expected) - 1, said


def test_short_audio_with_aad_resource_token_and_whisper(local_stack: StackInfo) -> None:
    info = local_stack
    token = info.credential().get_token(SCOPE).token
    response = httpx.post(
        f"{info.speech_url}/stt/speech/recognition/conversation/cognitiveservices/v1",
        params={"language": "en-US", "format": "detailed"},
        headers={
            "Authorization": f"Bearer aad#{info.resource_id}#{token}",
            "Content-Type": WAV,
        },
        content=(FIXTURES / "sentence-08.wav").read_bytes(),
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["RecognitionStatus"] == "Success"
    assert _words(body["NBest"][0]["Lexical"])[:2] == ["good", "morning"]
    stats = httpx.get(f"{info.speech_url}/admin/stats").json()
    assert stats["requests"]["byOperationAndStatus"]["ShortAudio_Recognize"]["200"] >= 1
