"""Audio intake on the offline stack: each version queued once, reports for everything else."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from shared.pipeline.claims import IntakeStatus
from shared.pipeline.intake import handle_audio_blob
from shared.pipeline.ledger.records import SourceState
from tests.pipeline.conftest import FIXTURES, Pipeline


async def test_happy_path_queues_the_version_with_its_metadata_options(
    pipeline: Pipeline,
) -> None:
    name = await pipeline.upload_fixture(
        "sentence-01.wav",
        "calls/2026/first call.wav",
        metadata={
            "locale": "en-GB",
            "Diarization": "TRUE",
            "max_speakers": "3",
            "wordtimestamps": "false",
            "profanity": "removed",
            "color": "ignored: not an option",
        },
    )
    outcome = await handle_audio_blob(pipeline.ctx, pipeline.settings.input_container, name)

    assert outcome.status is IntakeStatus.QUEUED, outcome
    assert await pipeline.admin.count("Transcriptions_Submit") == 0, "no Speech call at intake"
    rows = await pipeline.ctx.ledger.sources_for_path(pipeline.settings.input_container, name)
    assert [r.state for r in rows] == [SourceState.QUEUED]
    assert rows[0].group
    blob = await pipeline.ctx.storage.get_properties(pipeline.settings.input_container, name)
    assert blob is not None
    assert rows[0].queued_at == blob.last_modified, "the batch window counts from the upload"
    assert rows[0].options
    assert rows[0].options["maxSpeakers"] == 3
    assert rows[0].options["locale"] == "en-GB"
    assert await pipeline.queued_entries() == 1

    assert (await pipeline.submit()).jobs == 1
    job = await pipeline.ctx.speech.batch.get_transcription(await pipeline.job_of(name))
    assert job.locale == "en-GB"
    assert job.properties is not None
    assert job.properties.diarization is not None
    assert job.properties.diarization.enabled is True
    assert job.properties.diarization.max_speakers == 3
    assert job.properties.word_level_timestamps_enabled is False
    assert job.properties.profanity_filter_mode == "Removed"
    assert job.custom_properties is not None
    assert job.custom_properties["files"] == "1"


async def test_fifty_concurrent_duplicates_queue_exactly_once(pipeline: Pipeline) -> None:
    name = await pipeline.upload_fixture("sentence-02.wav")
    container = pipeline.settings.input_container

    outcomes = await asyncio.gather(
        *(handle_audio_blob(pipeline.ctx, container, name) for _ in range(50))
    )

    statuses = [o.status for o in outcomes]
    assert statuses.count(IntakeStatus.QUEUED) == 1, statuses
    assert statuses.count(IntakeStatus.DUPLICATE) == 49
    rows = await pipeline.ctx.ledger.sources_for_path(container, name)
    assert len(rows) == 1
    assert rows[0].state is SourceState.QUEUED
    assert await pipeline.queued_entries() == 1
    assert (await pipeline.submit()).jobs == 1
    assert await pipeline.admin.count("Transcriptions_Submit") == 1


async def test_a_transient_failure_raises_and_the_retry_proceeds(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.core.exceptions import ServiceRequestError

    name = await pipeline.upload_fixture("sentence-04.wav")
    container = pipeline.settings.input_container
    storage = pipeline.ctx.storage
    read_head = storage.read_head

    async def unreachable(*args: object, **kwargs: object) -> bytes:
        raise ServiceRequestError("storage unreachable")

    monkeypatch.setattr(storage, "read_head", unreachable)
    with pytest.raises(ServiceRequestError):
        await handle_audio_blob(pipeline.ctx, container, name)
    rows = await pipeline.ctx.ledger.sources_for_path(container, name)
    assert rows[0].state is SourceState.RECEIVED
    assert rows[0].claim_released, "a failed attempt releases its claim"

    monkeypatch.setattr(storage, "read_head", read_head)
    outcome = await handle_audio_blob(pipeline.ctx, container, name)

    assert outcome.status is IntakeStatus.QUEUED
    rows = await pipeline.ctx.ledger.sources_for_path(container, name)
    assert rows[0].state is SourceState.QUEUED
    assert rows[0].attempts == 2


@pytest.mark.parametrize(
    ("fixture", "name", "metadata", "code", "names"),
    [
        ("not-audio.wav", "junk.wav", None, "NotAudio", None),
        ("sentence-05.wav", "notes.txt", None, "UnsupportedExtension", ".txt"),
        ("sentence-05.wav", "big.wav", None, "FileTooLarge", "limit"),
        ("sentence-02.ogg", "mislabelled.wav", None, "ExtensionMismatch", "OGG"),
        ("sentence-05.wav", "spk.wav", {"maxSpeakers": "99"}, "InvalidMetadata", "maxSpeakers"),
        ("sentence-05.wav", "rude.wav", {"profanity": "bleep"}, "InvalidMetadata", "profanity"),
        ("sentence-05.wav", "chan.wav", {"channels": "2"}, "InvalidMetadata", "channels"),
    ],
)
async def test_invalid_blobs_get_an_error_report_and_no_job(
    make_pipeline: Callable[..., Awaitable[Pipeline]],
    fixture: str,
    name: str,
    metadata: dict[str, str] | None,
    code: str,
    names: str | None,
) -> None:
    # The size limit is faked small for one case: the check is on the size, not the bytes.
    pipeline = await make_pipeline(max_audio_bytes=1000 if name == "big.wav" else 1024**3)
    await pipeline.upload(name, (FIXTURES / fixture).read_bytes(), metadata=metadata)

    outcome = await handle_audio_blob(pipeline.ctx, pipeline.settings.input_container, name)

    assert outcome.status is IntakeStatus.REJECTED
    assert outcome.code == code
    report = await pipeline.output_json(f"{name}.error.json")
    assert report["status"] == "Rejected"
    assert report["code"] == code
    assert report["source"] == f"{pipeline.settings.input_container}/{name}"
    assert report["etag"] == outcome.etag
    assert report["accepted"]
    assert "timestamp" in report
    if names:
        assert names in report["message"], report["message"]
    assert "sig=" not in report["sourceUrl"]
    rows = await pipeline.ctx.ledger.sources_for_path(pipeline.settings.input_container, name)
    assert rows[0].state is SourceState.REJECTED
    assert rows[0].error_code == code
    assert await pipeline.admin.count("Transcriptions_Submit") == 0
    # A redelivery of the same version does nothing at all.
    again = await handle_audio_blob(pipeline.ctx, pipeline.settings.input_container, name)
    assert again.status is IntakeStatus.DUPLICATE


async def test_a_deleted_blob_is_missing_not_an_error(pipeline: Pipeline) -> None:
    outcome = await handle_audio_blob(pipeline.ctx, pipeline.settings.input_container, "gone.wav")
    assert outcome.status is IntakeStatus.MISSING
