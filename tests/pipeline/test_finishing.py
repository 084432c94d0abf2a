"""Finishing jobs under faults: stale versions, transient failures, unwritable outputs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from azure.storage.blob import BlobLeaseClient

from local.emulator.asr.wer import word_error_rate
from shared.pipeline.claims import IntakeStatus
from shared.pipeline.intake import handle_audio_blob
from shared.pipeline.ledger.keys import SourceRef
from shared.pipeline.ledger.records import SourceState
from tests.pipeline.conftest import SENTENCES, Pipeline

OUTPUTS = (".txt", ".srt", ".vtt", ".json")


async def intake(pipeline: Pipeline, name: str) -> str:
    """Take the blob's current version in; its ETag."""
    outcome = await handle_audio_blob(pipeline.ctx, pipeline.settings.input_container, name)
    assert outcome.status is IntakeStatus.QUEUED, outcome
    assert outcome.etag is not None
    assert (await pipeline.submit()).jobs == 1
    return outcome.etag


async def rows(pipeline: Pipeline, name: str) -> dict[str, SourceState]:
    found = await pipeline.ctx.ledger.sources_for_path(pipeline.settings.input_container, name)
    return {row.ref.etag: row.state for row in found}


async def test_an_older_version_never_overwrites_the_newer_ones_transcript(
    pipeline: Pipeline,
) -> None:
    """Fault 1: a long file's job outlives an overwrite with a short clip."""
    name = "ow/x.wav"
    await pipeline.upload_fixture("sentence-14.wav", name)
    old = await intake(pipeline, name)
    await pipeline.upload_fixture("sentence-02.wav", name)
    new = await intake(pipeline, name)

    await pipeline.settle()

    assert await rows(pipeline, name) == {
        old: SourceState.SUPERSEDED,
        new: SourceState.SUCCEEDED,
    }
    text = (await pipeline.output(name + ".txt") or b"").decode()
    assert word_error_rate([SENTENCES["sentence-02.wav"]], [text]) <= 0.2, text


async def test_a_file_the_service_could_not_fetch_is_submitted_again(pipeline: Pipeline) -> None:
    """Storage was unreachable for Speech (InvalidUri): transient, so retried, then done."""
    await pipeline.admin.faults(fail_files="*/flaky/*", fail_files_kind="InvalidUri")
    name = await pipeline.upload_fixture("sentence-05.wav", "flaky/a.wav")
    etag = await intake(pipeline, name)

    polls, sweeps = await pipeline.settle()

    assert sum(p.files_retrying for p in polls) == 1
    assert sweeps, "settled by the poller, the submitter and the sweep together"
    assert await rows(pipeline, name) == {etag: SourceState.SUCCEEDED}
    row = await pipeline.ctx.ledger.get_source(
        SourceRef(pipeline.settings.input_container, name, etag)
    )
    assert row is not None
    assert row.submissions == 2
    assert await pipeline.admin.count("Transcriptions_Submit") == 2
    assert await pipeline.output(name + ".error.json") is None
    text = (await pipeline.output(name + ".txt") or b"").decode()
    assert word_error_rate([SENTENCES["sentence-05.wav"]], [text]) <= 0.2


async def test_a_job_the_service_lost_is_submitted_again(pipeline: Pipeline) -> None:
    """Fault 3: a 404 for a job while its audio still exists is not the file's failure."""
    await pipeline.admin.faults(job_start_delay_seconds=3600)
    names = [await pipeline.upload_fixture(f, f"lost-job/{f}") for f in ("sentence-09.wav",)]
    for name in names:
        await intake(pipeline, name)
    await pipeline.admin.faults(job_start_delay_seconds=0)
    await pipeline.admin.forget_jobs()  # the service restarted and forgot its jobs

    polls, _ = await pipeline.settle()

    assert sum(p.missing for p in polls) == len(names)
    for name in names:
        assert set((await rows(pipeline, name)).values()) == {SourceState.SUCCEEDED}
        assert await pipeline.output(name + ".json") is not None
    assert await pipeline.admin.count("Transcriptions_Submit") == 2 * len(names)


async def test_transient_failures_end_in_a_report_when_submissions_run_out(
    make_pipeline: Callable[..., Awaitable[Pipeline]],
) -> None:
    pipeline = await make_pipeline(retry_max_submissions=3)
    await pipeline.admin.faults(
        fail_files="*/hopeless/*", fail_files_kind="Transient", fail_files_times=0
    )
    name = await pipeline.upload_fixture("sentence-06.wav", "hopeless/a.wav")
    etag = await intake(pipeline, name)

    await pipeline.settle()

    assert await rows(pipeline, name) == {etag: SourceState.FAILED}
    report = await pipeline.output_json(name + ".error.json")
    assert report["code"] == "Transient"
    assert "gave up after 3 submissions" in report["message"]
    assert await pipeline.admin.count("Transcriptions_Submit") == 3


async def test_outputs_that_cannot_be_written_end_in_failed_and_the_job_is_deleted(
    make_pipeline: Callable[..., Awaitable[Pipeline]],
) -> None:
    """Fault 5: a leased output blob refuses every write; finishing is bounded."""
    pipeline = await make_pipeline(finish_max_attempts=3)
    name = await pipeline.upload_fixture("sentence-07.wav", "leased.wav")
    await pipeline.ctx.storage.write_output(name + ".txt", "someone else's")
    txt = pipeline.ctx.blob_service.get_blob_client(
        pipeline.settings.output_container, name + ".txt"
    )
    lease = BlobLeaseClient(txt)
    await asyncio.to_thread(lease.acquire, -1)
    etag = await intake(pipeline, name)

    polls, _ = await pipeline.settle()

    assert sum(p.unfinished for p in polls) == 2, "two failed attempts, the third settles"
    assert await rows(pipeline, name) == {etag: SourceState.FAILED}
    report = await pipeline.output_json(name + ".error.json")
    assert report["code"] == "OutputWriteFailed"
    assert "after 3 attempts" in report["message"]
    assert "leased" in report["message"]
    assert "<?xml" not in report["message"]
    assert await pipeline.active_jobs() == 0
    assert await pipeline.admin.count("Transcriptions_Delete") == 1
    await asyncio.to_thread(lease.release)


async def test_a_failed_newer_version_removes_the_older_transcript(pipeline: Pipeline) -> None:
    name = "replaced-by-junk.wav"
    await pipeline.upload_fixture("sentence-08.wav", name)
    await intake(pipeline, name)
    await pipeline.settle()
    assert await pipeline.output(name + ".txt") is not None

    await pipeline.upload(name, b"RIFF....not audio at all....")
    outcome = await handle_audio_blob(pipeline.ctx, pipeline.settings.input_container, name)

    assert outcome.status is IntakeStatus.REJECTED
    assert (await pipeline.output_json(name + ".error.json"))["status"] == "Rejected"
    for extension in OUTPUTS:
        assert await pipeline.output(name + extension) is None, extension
