"""The production code path, offline: managed identity, keyless storage, a real batch job.

Speech from the fixtures goes to Azurite; a user-delegation SAS is signed with a key obtained
through the local managed identity; the typed client submits one job for every sentence with
an Entra token (``DefaultAzureCredential``, exactly as in Azure), polls it, and downloads the
results, which must match what was said.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from local.emulator.asr.wer import word_error_rate
from local.stack import StackInfo
from shared.speech import SpeechClients, SpeechSettings
from shared.speech.models import (
    FileKind,
    Status,
    TranscriptionRequest,
    TranscriptionRequestProperties,
)
from tests.support.blobs import upload_with_user_delegation_sas

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "speech"
SENTENCES: dict[str, str] = json.loads((FIXTURES / "sentences.json").read_text())["sentences"]

pytestmark = pytest.mark.stack


async def test_batch_round_trip_transcribes_every_sentence(local_stack: StackInfo) -> None:
    names = sorted(SENTENCES)
    assert len(names) >= 8
    files = {name: (FIXTURES / name).read_bytes() for name in names}
    urls = await asyncio.to_thread(
        upload_with_user_delegation_sas, local_stack, files, prefix="round-trip"
    )
    settings = SpeechSettings(endpoint=local_stack.speech_url, resource_id=local_stack.resource_id)
    async with SpeechClients(settings) as speech:
        job = await speech.batch.submit_transcription(
            TranscriptionRequest(
                display_name=f"round-trip-{uuid.uuid4()}",
                locale="en-US",
                content_urls=[urls[n] for n in names],
                properties=TranscriptionRequestProperties(word_level_timestamps_enabled=True),
            )
        )
        assert job.id is not None
        for _ in range(600):
            job = await speech.batch.get_transcription(job.id)
            if job.is_terminal:
                break
            await asyncio.sleep(min(job.retry_after or 0.5, 0.5))
        assert job.status == Status.SUCCEEDED, job.to_dict()

        results = {}
        async for file in speech.batch.list_transcription_files(
            job.id, kind=FileKind.TRANSCRIPTION
        ):
            result = await speech.batch.download_result(file)
            assert result.source is not None
            name = result.source.rsplit("/", 1)[-1].split("?", 1)[0]
            results[name] = result
        reports = await speech.batch.list_transcription_files(
            job.id, kind=FileKind.TRANSCRIPTION_REPORT
        ).to_list()
        report = await speech.batch.download_report(reports[0])
        assert await speech.batch.delete_transcription(job.id)

    assert report.successful_transcriptions_count == len(names)
    assert report.failed_transcriptions_count == 0
    assert sorted(results) == names
    hypotheses = [
        " ".join(c.display or "" for c in results[n].combined_recognized_phrases or [])
        for n in names
    ]
    wer = word_error_rate([SENTENCES[n] for n in names], hypotheses)
    print(f"round trip: {len(names)} sentences, WER {wer:.1%}")
    assert wer <= 0.15
    for name in names:
        phrase = (results[name].recognized_phrases or [])[0]
        assert phrase.n_best
        assert phrase.n_best[0].words, "word timestamps were asked for"
