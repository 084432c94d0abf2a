"""The submitter on the offline stack: few big jobs, exactly once, models checked first."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable

import pytest

from local.emulator.catalog import _fixed_id
from shared.pipeline.claims import IntakeStatus
from shared.pipeline.intake import handle_audio_blob
from shared.pipeline.ledger.records import SourceState
from shared.pipeline.submitter import submit_once
from tests.pipeline.conftest import Pipeline

WHISPER_RETIRED = "69adf293-9664-4040-932b-02ed16332e00"  # transcription until 2026-04-15


async def queue(
    pipeline: Pipeline, name: str, fixture: str = "sentence-01.wav", **kw: object
) -> None:
    await pipeline.upload_fixture(fixture, name, **kw)  # type: ignore[arg-type]
    outcome = await handle_audio_blob(pipeline.ctx, pipeline.settings.input_container, name)
    assert outcome.status is IntakeStatus.QUEUED, outcome


async def test_files_with_the_same_options_share_one_job(pipeline: Pipeline) -> None:
    for index in range(3):
        await queue(pipeline, f"same/{index}.wav")
    await queue(pipeline, "other/de.wav", metadata={"locale": "de-DE"})

    summary = await pipeline.submit()

    assert summary.jobs == 2
    assert summary.files == 4
    assert await pipeline.admin.count("Transcriptions_Submit") == 2
    jobs = {await pipeline.job_of(f"same/{index}.wav") for index in range(3)}
    assert len(jobs) == 1, "one job for the three files whose options agree"
    assert await pipeline.job_of("other/de.wav") not in jobs
    job = await pipeline.ctx.speech.batch.get_transcription(jobs.pop())
    assert job.custom_properties is not None
    assert job.custom_properties["files"] == "3"
    assert await pipeline.queued_entries() == 0
    await pipeline.settle()
    for index in range(3):
        assert await pipeline.output(f"same/{index}.wav.json") is not None


async def test_a_lone_file_waits_one_window_then_goes(
    make_pipeline: Callable[..., Awaitable[Pipeline]],
) -> None:
    pipeline = await make_pipeline(batch_window_seconds=60)
    await queue(pipeline, "lone.wav")
    now = dt.datetime.now(dt.UTC)

    early = await submit_once(pipeline.ctx, now=now + dt.timedelta(seconds=30))
    assert early.waiting == 1
    assert early.jobs == 0
    late = await submit_once(pipeline.ctx, now=now + dt.timedelta(seconds=61))

    assert late.jobs == 1
    rows = await pipeline.ctx.ledger.sources_for_path(pipeline.settings.input_container, "lone.wav")
    assert rows[0].state is SourceState.SUBMITTED
    assert rows[0].submissions == 1


async def test_a_full_group_goes_at_once_in_jobs_of_the_maximum(
    make_pipeline: Callable[..., Awaitable[Pipeline]],
) -> None:
    pipeline = await make_pipeline(batch_window_seconds=600, max_files_per_job=2)
    for index in range(5):
        await queue(pipeline, f"full/{index}.wav")

    summary = await pipeline.submit()

    assert summary.jobs == 2, "two full jobs at once; the fifth file waits for its window"
    assert summary.files == 4
    assert summary.waiting == 1
    assert await pipeline.queued_entries() == 1


async def test_a_crash_between_submit_and_record_is_resumed_without_a_second_job(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(2):
        await queue(pipeline, f"crash/{index}.wav")
    ledger = pipeline.ctx.ledger
    record_job = ledger.record_job

    async def crash(*args: object, **kwargs: object) -> bool:
        raise ConnectionResetError("worker died after submitting, before recording the job")

    monkeypatch.setattr(ledger, "record_job", crash)
    assert (await pipeline.submit()).errors == 1
    assert await pipeline.admin.count("Transcriptions_Submit") == 1
    monkeypatch.setattr(ledger, "record_job", record_job)

    summary = await pipeline.submit()

    assert summary.recovered == 1
    assert await pipeline.admin.count("Transcriptions_Submit") == 1, "adopted, not submitted"
    assert await pipeline.admin.count("Transcriptions_List") == 1, "looked up on resume only"
    assert len({await pipeline.job_of(f"crash/{index}.wav") for index in range(2)}) == 1
    await pipeline.settle()
    assert await pipeline.output("crash/1.wav.json") is not None


@pytest.mark.parametrize(
    ("model_id", "code"),
    [(str(uuid.uuid4()), "ModelNotFound"), (WHISPER_RETIRED, "ModelDeprecated")],
)
async def test_a_model_no_job_can_use_is_reported_before_any_job(
    pipeline: Pipeline, model_id: str, code: str
) -> None:
    model = f"{pipeline.stack.speech_url}/speechtotext/models/base/{model_id}"
    await queue(pipeline, "model.wav", metadata={"model": model})

    summary = await pipeline.submit()

    assert summary.rejected == 1
    assert await pipeline.admin.count("Transcriptions_Submit") == 0
    report = await pipeline.output_json("model.wav.error.json")
    assert report["code"] == code
    rows = await pipeline.ctx.ledger.sources_for_path(
        pipeline.settings.input_container, "model.wav"
    )
    assert rows[0].state is SourceState.FAILED


async def test_a_model_retiring_soon_is_used_with_a_warning_and_fetched_once(
    pipeline: Pipeline,
) -> None:
    model = f"{pipeline.stack.speech_url}/speechtotext/models/base/{_fixed_id('en-US-20241218')}"
    for index in range(2):
        await queue(pipeline, f"soon/{index}.wav", metadata={"model": model})
    ten_days_before = dt.datetime(2028, 1, 5, tzinfo=dt.UTC)  # it retires on 2028-01-15

    summary = await submit_once(pipeline.ctx, now=ten_days_before)

    assert summary.jobs == 1
    assert await pipeline.admin.count("Models_GetBaseModel") == 1
    rows = await pipeline.ctx.ledger.sources_for_path(
        pipeline.settings.input_container, "soon/0.wav"
    )
    assert rows[0].warning is not None
    assert "stops transcribing on 2028-01-15" in rows[0].warning


async def test_a_member_whose_submitted_mark_was_lost_is_finished_by_its_job(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job row is written, the member's mark is not: the job still owns the member."""
    await queue(pipeline, "unmarked.wav")
    ledger = pipeline.ctx.ledger
    mark_submitted = ledger.mark_submitted

    async def lost(*args: object, **kwargs: object) -> None:
        raise ConnectionResetError("storage went away before the mark")

    monkeypatch.setattr(ledger, "mark_submitted", lost)
    assert (await pipeline.submit()).errors == 1
    rows = await ledger.sources_for_path(pipeline.settings.input_container, "unmarked.wav")
    assert rows[0].state is SourceState.QUEUED
    assert rows[0].batch

    await pipeline.poll_until_idle()
    monkeypatch.setattr(ledger, "mark_submitted", mark_submitted)
    resumed = await pipeline.submit()

    rows = await ledger.sources_for_path(pipeline.settings.input_container, "unmarked.wav")
    assert rows[0].state is SourceState.SUCCEEDED
    assert await pipeline.output("unmarked.wav.json") is not None
    assert resumed.jobs == 0, "the resumed batch has no member left to send"
    assert await pipeline.admin.count("Transcriptions_Submit") == 1


async def test_each_retry_of_the_same_files_is_a_job_of_its_own_name(
    make_pipeline: Callable[..., Awaitable[Pipeline]],
) -> None:
    pipeline = await make_pipeline(retry_max_submissions=3)
    await pipeline.admin.faults(
        fail_files="*/twice/*", fail_files_kind="Transient", fail_files_times=2
    )
    for index in range(2):
        await queue(pipeline, f"twice/{index}.wav")

    await pipeline.settle()

    names = (await pipeline.admin.stats())["submittedDisplayNames"]
    assert len(names) == 3, names
    assert set(names.values()) == {1}, "no display name reused: a resume never adopts an old job"
    rows = await pipeline.ctx.ledger.sources_for_path(
        pipeline.settings.input_container, "twice/0.wav"
    )
    assert rows[0].state is SourceState.SUCCEEDED
    assert rows[0].submissions == 3
