"""Audio intake on the offline stack: one job per blob version, reports for everything else."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from shared.pipeline.claims import IntakeStatus
from shared.pipeline.intake import audio_display_name, handle_audio_blob
from shared.pipeline.ledger.keys import SourceRef
from shared.pipeline.ledger.records import SourceState
from tests.pipeline.conftest import FIXTURES, Pipeline


async def test_happy_path_submits_one_job_with_the_metadata_options(pipeline: Pipeline) -> None:
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

    assert outcome.status is IntakeStatus.SUBMITTED, outcome
    assert outcome.job_id
    assert not outcome.reused_job
    job = await pipeline.ctx.speech.batch.get_transcription(outcome.job_id)
    assert job.display_name == outcome.display_name
    assert job.locale == "en-GB"
    assert job.properties is not None
    assert job.properties.diarization is not None
    assert job.properties.diarization.enabled is True
    assert job.properties.diarization.max_speakers == 3
    assert job.properties.word_level_timestamps_enabled is False
    assert job.properties.profanity_filter_mode == "Removed"
    assert job.custom_properties == {
        "source": f"{pipeline.settings.input_container}/{name}",
        "etag": outcome.etag,
    }
    rows = await pipeline.ctx.ledger.sources_for_path(pipeline.settings.input_container, name)
    assert [r.state for r in rows] == [SourceState.SUBMITTED]
    assert rows[0].job_id == outcome.job_id
    assert rows[0].options
    assert rows[0].options["maxSpeakers"] == 3
    job_row = await pipeline.ctx.ledger.get_job(outcome.job_id)
    assert job_row is not None
    assert [s.path for s in job_row.sources] == [name]
    assert await pipeline.admin.count("Transcriptions_Submit") == 1


async def test_fifty_concurrent_duplicates_make_exactly_one_job(pipeline: Pipeline) -> None:
    name = await pipeline.upload_fixture("sentence-02.wav")
    container = pipeline.settings.input_container

    outcomes = await asyncio.gather(
        *(handle_audio_blob(pipeline.ctx, container, name) for _ in range(50))
    )

    statuses = [o.status for o in outcomes]
    assert statuses.count(IntakeStatus.SUBMITTED) == 1, statuses
    assert statuses.count(IntakeStatus.DUPLICATE) == 49
    assert await pipeline.admin.count("Transcriptions_Submit") == 1
    rows = await pipeline.ctx.ledger.sources_for_path(container, name)
    assert len(rows) == 1
    assert rows[0].state is SourceState.SUBMITTED


async def test_crash_after_submit_is_recovered_through_the_display_name(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = await pipeline.upload_fixture("sentence-03.wav")
    container = pipeline.settings.input_container
    ledger = pipeline.ctx.ledger
    record_job = ledger.record_job

    async def crash(*args: object, **kwargs: object) -> bool:
        raise ConnectionResetError("worker died after submitting, before recording the job")

    # The first attempt submits, then dies before the ledger knows the job.
    monkeypatch.setattr(ledger, "record_job", crash)
    with pytest.raises(ConnectionResetError):
        await handle_audio_blob(pipeline.ctx, container, name)
    assert await pipeline.admin.count("Transcriptions_Submit") == 1
    monkeypatch.setattr(ledger, "record_job", record_job)

    outcome = await handle_audio_blob(pipeline.ctx, container, name)

    assert outcome.status is IntakeStatus.SUBMITTED
    assert outcome.reused_job is True
    assert await pipeline.admin.count("Transcriptions_Submit") == 1
    assert await pipeline.admin.count("Transcriptions_List") == 1, "looked up on the retry only"
    blob = await pipeline.ctx.storage.get_properties(container, name)
    assert blob is not None
    jobs = await pipeline.ctx.speech.batch.find_transcriptions(
        audio_display_name(SourceRef(container, name, blob.etag))
    ).to_list()
    assert [j.id for j in jobs] == [outcome.job_id]


async def test_a_transient_failure_raises_and_the_retry_proceeds(pipeline: Pipeline) -> None:
    name = await pipeline.upload_fixture("sentence-04.wav")
    container = pipeline.settings.input_container
    await pipeline.admin.faults(error_rate=1.0)

    with pytest.raises(Exception, match="HTTP 5"):
        await handle_audio_blob(pipeline.ctx, container, name)
    rows = await pipeline.ctx.ledger.sources_for_path(container, name)
    assert rows[0].state is SourceState.RECEIVED
    assert rows[0].claim_released, "a failed attempt releases its claim"

    await pipeline.admin.faults(error_rate=0.0)
    outcome = await handle_audio_blob(pipeline.ctx, container, name)

    assert outcome.status is IntakeStatus.SUBMITTED
    rows = await pipeline.ctx.ledger.sources_for_path(container, name)
    assert rows[0].state is SourceState.SUBMITTED
    assert rows[0].attempts == 2
    assert await pipeline.admin.count("Transcriptions_Submit") >= 1
    assert len([r for r in rows if r.job_id]) == 1


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
