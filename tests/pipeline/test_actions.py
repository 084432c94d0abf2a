"""Re-run and cancel on the offline stack: every action ends in a state and in the history."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from local.emulator.asr.wer import word_error_rate
from shared.pipeline.actions import ActionError, cancel_version, retry_many, retry_version
from shared.pipeline.claims import IntakeStatus
from shared.pipeline.intake import handle_audio_blob
from shared.pipeline.ledger.records import SourceRecord, SourceState
from shared.speech.errors import NotFoundError
from shared.speech.models import Status
from tests.pipeline.conftest import SENTENCES, Pipeline

OUTPUTS = (".txt", ".srt", ".vtt", ".json", ".error.json")


async def take_in(pipeline: Pipeline, name: str) -> str:
    """Queue the blob's current version (no submission yet); its ETag."""
    outcome = await handle_audio_blob(pipeline.ctx, pipeline.settings.input_container, name)
    assert outcome.status is IntakeStatus.QUEUED, outcome
    assert outcome.etag is not None
    return outcome.etag


async def latest(pipeline: Pipeline, name: str) -> SourceRecord:
    rows = await pipeline.ctx.ledger.sources_for_path(pipeline.settings.input_container, name)
    assert rows, f"no row for {name}"
    return rows[0]


def events(record: SourceRecord) -> list[str]:
    return [entry["event"] for entry in record.history]


async def outputs_of(pipeline: Pipeline, name: str) -> list[str]:
    return [ext for ext in OUTPUTS if await pipeline.output(name + ext) is not None]


async def until_ended(pipeline: Pipeline, job_id: str, *, timeout: float = 60.0) -> None:
    """Wait until the service has finished the job (nobody polls it for the pipeline)."""
    deadline = time.monotonic() + timeout
    while True:
        job = await pipeline.ctx.speech.batch.get_transcription(job_id)
        if job.status in (Status.SUCCEEDED, Status.FAILED):
            return
        assert time.monotonic() < deadline, f"job {job_id} still {job.status}"
        await asyncio.sleep(0.2)


async def test_a_failed_file_is_rerun_and_succeeds_on_its_second_attempt(
    pipeline: Pipeline,
) -> None:
    # The emulator fails each matching path once (fail_files_times=1), as the service would
    # fail a file it could not decode then.
    await pipeline.admin.faults(fail_files="*/once/*", fail_files_kind="InvalidAudioFormat")
    name = await pipeline.upload_fixture("sentence-05.wav", "once/a.wav")
    await take_in(pipeline, name)
    await pipeline.settle()
    failed = await latest(pipeline, name)
    assert failed.state is SourceState.FAILED
    assert failed.submissions == 1

    status = await retry_version(pipeline.ctx, None, name)

    assert status.state is SourceState.QUEUED
    assert status.submissions == 0, "a fresh budget of submissions"
    assert status.error is None
    assert status.events[-1].event == "RetryRequested"
    assert status.events[-1].detail == "by an operator (API)"
    # The old report stands until the new outcome replaces it.
    assert await outputs_of(pipeline, name) == [".error.json"]

    await pipeline.settle()

    done = await latest(pipeline, name)
    assert done.state is SourceState.SUCCEEDED
    assert done.ref.etag == failed.ref.etag
    assert done.submissions == 1
    history = events(done)
    assert "RetryRequested" in history
    assert history.index("RetryRequested") > 0, "appended after the first attempt's events"
    assert await outputs_of(pipeline, name) == [".txt", ".srt", ".vtt", ".json"]
    text = (await pipeline.output(name + ".txt") or b"").decode()
    assert word_error_rate([SENTENCES["sentence-05.wav"]], [text]) <= 0.2, text
    assert await pipeline.admin.count("Transcriptions_Submit") == 2


async def test_a_rerun_is_refused_for_a_succeeded_or_an_overwritten_version(
    pipeline: Pipeline,
) -> None:
    name = "overwritten.wav"
    await pipeline.upload_fixture("sentence-14.wav", name)
    old = await take_in(pipeline, name)
    assert (await pipeline.submit()).jobs == 1
    await pipeline.upload_fixture("sentence-02.wav", name)
    new = await take_in(pipeline, name)
    await pipeline.settle()
    rows = await pipeline.ctx.ledger.sources_for_path(pipeline.settings.input_container, name)
    assert {row.ref.etag: row.state for row in rows} == {
        old: SourceState.SUPERSEDED,
        new: SourceState.SUCCEEDED,
    }

    with pytest.raises(ActionError) as succeeded:
        await retry_version(pipeline.ctx, None, name)  # the newest version by default
    with pytest.raises(ActionError) as overwritten:
        await retry_version(pipeline.ctx, None, name, etag=old)

    assert (succeeded.value.status, succeeded.value.code) == (409, "InvalidState")
    assert succeeded.value.details["state"] == "Succeeded"
    assert (overwritten.value.status, overwritten.value.code) == (409, "SourceChanged")
    assert overwritten.value.details["newerEtag"] == new
    assert "the newer version is what stands" in overwritten.value.message
    rows = await pipeline.ctx.ledger.sources_for_path(pipeline.settings.input_container, name)
    assert {row.state for row in rows} == {SourceState.SUPERSEDED, SourceState.SUCCEEDED}
    assert await pipeline.queued_entries() == 0


async def test_a_bulk_rerun_is_bounded_by_its_limit_and_resumes_from_its_token(
    pipeline: Pipeline,
) -> None:
    await pipeline.admin.faults(fail_files="*/bulk/*", fail_files_kind="InvalidAudioFormat")
    names = [
        await pipeline.upload_fixture(f"sentence-0{i}.wav", f"bulk/{letter}.wav")
        for i, letter in ((6, "a"), (7, "b"), (8, "c"))
    ]
    for name in names:
        await take_in(pipeline, name)
    await pipeline.settle()
    assert {(await latest(pipeline, n)).state for n in names} == {SourceState.FAILED}
    # The last one's blob is overwritten (its new version not taken in yet): not re-runnable.
    await pipeline.upload_fixture("sentence-09.wav", names[2])

    first = await retry_many(
        pipeline.ctx, state="failed", prefix="bulk/", container=None, limit=2, continuation=None
    )
    second = await retry_many(
        pipeline.ctx,
        state="Failed",
        prefix="bulk/",
        container=None,
        limit=2,
        continuation=first.continuation,
    )

    assert (first.requeued, first.skipped) == (2, [])
    assert first.continuation is not None
    assert second.requeued == 0
    assert [(s.path, "overwritten" in s.reason) for s in second.skipped] == [(names[2], True)]
    assert second.continuation is None
    states = [(await latest(pipeline, n)).state for n in names[:2]]
    assert states == [SourceState.QUEUED, SourceState.QUEUED]
    assert await pipeline.queued_entries() == 2
    with pytest.raises(ActionError) as refused:
        await retry_many(
            pipeline.ctx, state="Failed", prefix=None, container=None, limit=None, continuation="x"
        )
    assert refused.value.details == {"parameter": "continuation"}


async def test_a_queued_file_is_cancelled_at_once_and_never_submitted(
    make_pipeline: Callable[..., Awaitable[Pipeline]],
) -> None:
    pipeline = await make_pipeline(batch_window_seconds=3600)
    name = await pipeline.upload_fixture("sentence-10.wav", "waiting.wav")
    await take_in(pipeline, name)
    assert (await pipeline.submit()).waiting == 1, "its batch window is still open"

    result = await cancel_version(pipeline.ctx, None, name)

    assert result.pending is None
    assert result.status.state is SourceState.CANCELLED
    assert [e.event for e in result.status.events][-2:] == ["CancelRequested", "Cancelled"]
    assert await pipeline.queued_entries() == 0, "its queue entry went with it"
    summary = await pipeline.submit()
    assert (summary.due, summary.jobs) == (0, 0)
    assert await pipeline.admin.count("Transcriptions_Submit") == 0
    assert await pipeline.output_names() == [], "no report: a cancellation is no failure"
    with pytest.raises(ActionError) as again:
        await cancel_version(pipeline.ctx, None, name)
    assert (again.value.status, again.value.details["state"]) == (409, "Cancelled")

    # A cancelled version can be run after all.
    rerun = await retry_version(pipeline.ctx, None, name)
    assert rerun.state is SourceState.QUEUED
    assert [e.event for e in rerun.events][-3:] == [
        "CancelRequested",
        "Cancelled",
        "RetryRequested",
    ]
    assert await pipeline.queued_entries() == 1


async def test_a_job_is_deleted_once_all_its_files_are_cancelled(pipeline: Pipeline) -> None:
    names = [
        await pipeline.upload_fixture(f, f"all/{f}") for f in ("sentence-11.wav", "sentence-12.wav")
    ]
    for name in names:
        await take_in(pipeline, name)
    assert (await pipeline.submit()).jobs == 1
    job_id = await pipeline.job_of(names[0])
    # Ended at the service, not polled yet: a job the service lets us delete.
    await until_ended(pipeline, job_id)

    first = await cancel_version(pipeline.ctx, None, names[0])
    assert first.status.state is SourceState.SUBMITTED
    assert first.pending is not None
    assert "once all its 2 files are (1 asked so far)" in first.pending
    assert await pipeline.admin.count("Transcriptions_Delete") == 0

    second = await cancel_version(pipeline.ctx, None, names[1])

    assert second.pending is None
    assert second.status.state is SourceState.CANCELLED
    assert await pipeline.admin.count("Transcriptions_Delete") == 1
    with pytest.raises(NotFoundError):
        await pipeline.ctx.speech.batch.get_transcription(job_id)
    assert await pipeline.active_jobs() == 0
    for name in names:
        row = await latest(pipeline, name)
        assert row.state is SourceState.CANCELLED
        assert events(row)[-2:] == ["CancelRequested", "Cancelled"]
        assert await outputs_of(pipeline, name) == []


async def test_a_job_the_service_will_not_delete_ends_its_files_cancelled_all_the_same(
    pipeline: Pipeline,
) -> None:
    """A job that has not started refuses deletion; when it goes, its files end Cancelled."""
    await pipeline.admin.faults(job_start_delay_seconds=3600)
    name = await pipeline.upload_fixture("sentence-13.wav", "held/a.wav")
    await take_in(pipeline, name)
    assert (await pipeline.submit()).jobs == 1

    result = await cancel_version(pipeline.ctx, None, name)

    assert result.status.state is SourceState.SUBMITTED
    assert result.pending is not None
    assert "did not delete it" in result.pending
    assert "DeleteNotAllowed" in result.pending or "cannot be deleted" in result.pending
    # The job vanishes (expired, or a deletion that crashed before its rows were moved):
    # a file that asked to be cancelled is not sent again.
    await pipeline.admin.forget_jobs()
    await pipeline.settle()

    row = await latest(pipeline, name)
    assert row.state is SourceState.CANCELLED
    assert events(row)[-2:] == ["CancelRequested", "Cancelled"]
    assert await pipeline.admin.count("Transcriptions_Submit") == 1
    assert await pipeline.output_names() == []


async def test_cancelling_one_file_of_a_job_leaves_the_other_to_succeed(
    pipeline: Pipeline,
) -> None:
    kept, cancelled = [
        await pipeline.upload_fixture(f, f"half/{f}")
        for f in ("sentence-01.wav", "sentence-03.wav")
    ]
    for name in (kept, cancelled):
        await take_in(pipeline, name)
    assert (await pipeline.submit()).jobs == 1

    result = await cancel_version(pipeline.ctx, None, cancelled)
    assert result.pending is not None
    assert "if it finishes first, this file ends Cancelled without outputs" in result.pending
    await pipeline.settle()

    assert (await latest(pipeline, kept)).state is SourceState.SUCCEEDED
    assert await outputs_of(pipeline, kept) == [".txt", ".srt", ".vtt", ".json"]
    row = await latest(pipeline, cancelled)
    assert row.state is SourceState.CANCELLED
    assert events(row)[-2:] == ["CancelRequested", "Cancelled"]
    assert "no outputs were written" in row.history[-1]["detail"]
    assert await outputs_of(pipeline, cancelled) == []
    assert await pipeline.active_jobs() == 0
