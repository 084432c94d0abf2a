"""The poller on the offline stack: results, failures, stuck and vanished jobs, backoff, storms."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

import pytest

from local.emulator.asr.wer import word_error_rate
from shared.pipeline.claims import IntakeStatus
from shared.pipeline.intake import IntakeOutcome, handle_audio_blob
from shared.pipeline.ledger.records import SourceState
from shared.pipeline.poller import poll_once
from shared.speech.errors import NotFoundError
from tests.pipeline.conftest import SENTENCES, Pipeline

OUTPUTS = (".txt", ".srt", ".vtt", ".json")


async def intake(pipeline: Pipeline, name: str) -> str:
    """Take the file in and submit it on its own (the window is 0 here); its job id."""
    outcome = await handle_audio_blob(pipeline.ctx, pipeline.settings.input_container, name)
    assert outcome.status is IntakeStatus.QUEUED, outcome
    assert (await pipeline.submit()).jobs == 1
    return await pipeline.job_of(name)


async def intake_with_host_retries(pipeline: Pipeline, name: str) -> IntakeOutcome:
    """What the Functions host does: re-invoke the function while it raises."""
    for _ in range(30):
        try:
            return await handle_audio_blob(pipeline.ctx, pipeline.settings.input_container, name)
        except Exception:
            await asyncio.sleep(0.3)
    raise AssertionError(f"intake of {name} never succeeded")


async def transcript_wer(pipeline: Pipeline, names: dict[str, str]) -> float:
    """WER of the ``.txt`` outputs (``output base -> fixture``) against what was said."""
    hypotheses = []
    for base in names:
        text = await pipeline.output(base + ".txt")
        assert text is not None, f"no transcript for {base}"
        hypotheses.append(text.decode())
    return word_error_rate([SENTENCES[f] for f in names.values()], hypotheses)


async def test_succeeded_job_writes_outputs_json_last_and_is_deleted(pipeline: Pipeline) -> None:
    files = {"meeting/one.wav": "sentence-06.wav", "meeting/two.wav": "sentence-07.wav"}
    for name, fixture in files.items():
        await pipeline.upload_fixture(fixture, name)
    job_ids = [await intake(pipeline, name) for name in files]
    pipeline.record_writes()

    summaries = await pipeline.poll_until_idle()

    assert sum(s.succeeded for s in summaries) == 2
    assert sum(s.files_succeeded for s in summaries) == 2
    for name in files:
        order = [w for w in pipeline.writes if w.startswith(name + ".")]
        assert sorted(order) == sorted(name + ext for ext in OUTPUTS)
        assert order[-1] == name + ".json", f"the completion marker must come last: {order}"
        result = await pipeline.output_json(name + ".json")
        assert result["combinedRecognizedPhrases"], "the service's result, unchanged"
        assert (await pipeline.output(name + ".srt") or b"").count(b"-->") >= 1
        assert (await pipeline.output(name + ".vtt") or b"").startswith(b"WEBVTT")
        rows = await pipeline.ctx.ledger.sources_for_path(pipeline.settings.input_container, name)
        assert rows[0].state is SourceState.SUCCEEDED
        assert sorted(rows[0].outputs) == sorted(name + ext for ext in OUTPUTS)
    assert await transcript_wer(pipeline, files) <= 0.2
    for job_id in job_ids:
        with pytest.raises(NotFoundError):
            await pipeline.ctx.speech.batch.get_transcription(job_id)
    assert await pipeline.active_jobs() == 0


async def test_diarized_results_carry_speaker_labels(pipeline: Pipeline) -> None:
    name = await pipeline.upload_fixture("sentence-14.wav", metadata={"diarization": "true"})
    await intake(pipeline, name)
    await pipeline.poll_until_idle()
    text = (await pipeline.output(name + ".txt") or b"").decode()
    vtt = (await pipeline.output(name + ".vtt") or b"").decode()
    assert text.startswith("Speaker 1:"), text
    assert "<v Speaker 1>" in vtt


async def test_a_failed_job_gets_error_reports(
    make_pipeline: Callable[..., Awaitable[Pipeline]],
) -> None:
    # One submission allowed: the job's Internal error is final at once.
    pipeline = await make_pipeline(retry_max_submissions=1)
    await pipeline.admin.faults(fail_jobs="*doomed*")
    name = await pipeline.upload_fixture("sentence-08.wav", "doomed.wav")
    job_id = await intake(pipeline, name)

    summaries = await pipeline.poll_until_idle()

    assert sum(s.failed for s in summaries) == 1
    report = await pipeline.output_json("doomed.wav.error.json")
    assert report["status"] == "Failed"
    assert report["code"] == "Internal"
    assert "internal error" in report["message"]
    assert report["jobId"] == job_id
    assert await pipeline.output("doomed.wav.json") is None
    rows = await pipeline.ctx.ledger.sources_for_path(pipeline.settings.input_container, name)
    assert rows[0].state is SourceState.FAILED
    assert rows[0].error_code == "Internal"


async def test_a_stuck_job_is_given_up_with_a_report(pipeline: Pipeline) -> None:
    await pipeline.admin.faults(job_start_delay_seconds=3600)
    name = await pipeline.upload_fixture("sentence-09.wav")
    await intake(pipeline, name)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=pipeline.settings.stuck_after_hours + 1)

    summary = await poll_once(pipeline.ctx, now=later)

    assert summary.stuck == 1
    report = await pipeline.output_json(name + ".error.json")
    assert report["code"] == "Stuck"
    assert "NotStarted" in report["message"]
    rows = await pipeline.ctx.ledger.sources_for_path(pipeline.settings.input_container, name)
    assert rows[0].state is SourceState.FAILED
    assert await pipeline.active_jobs() == 0, "no endless polling"
    assert await pipeline.admin.count("Transcriptions_Delete") == 1, "deletion attempted"


async def test_a_vanished_job_is_reported_when_no_submission_is_left(
    make_pipeline: Callable[..., Awaitable[Pipeline]],
) -> None:
    pipeline = await make_pipeline(retry_max_submissions=1)
    await pipeline.admin.faults(job_start_delay_seconds=3600)
    name = await pipeline.upload_fixture("sentence-10.wav")
    await intake(pipeline, name)
    await pipeline.admin.reset(jobs=True)  # the service forgot the job

    summaries = await pipeline.poll_until_idle()

    assert sum(s.missing for s in summaries) == 1
    report = await pipeline.output_json(name + ".error.json")
    assert report["code"] == "JobNotFound"
    assert "gave up after 1 submissions" in report["message"]


async def test_per_job_backoff_polls_at_most_once_per_interval(
    make_pipeline: Callable[..., Awaitable[Pipeline]],
) -> None:
    pipeline = await make_pipeline(poll_min_interval_seconds=60, poll_max_interval_seconds=600)
    await pipeline.admin.faults(job_start_delay_seconds=3600)
    name = await pipeline.upload_fixture("sentence-11.wav")
    start = dt.datetime.now(dt.UTC)
    await intake(pipeline, name)

    def at(seconds: float) -> dt.datetime:
        return start + dt.timedelta(seconds=seconds)

    assert (await poll_once(pipeline.ctx, now=at(30))).due == 0, "not before the minimum"
    assert (await poll_once(pipeline.ctx, now=at(61))).polled == 1
    assert await pipeline.admin.count("Transcriptions_Get") == 1
    assert (await poll_once(pipeline.ctx, now=at(62))).due == 0
    # The interval doubled: 120 s after the first poll, not 60.
    assert (await poll_once(pipeline.ctx, now=at(61 + 100))).due == 0
    assert await pipeline.admin.count("Transcriptions_Get") == 1
    assert (await poll_once(pipeline.ctx, now=at(61 + 121))).polled == 1
    assert await pipeline.admin.count("Transcriptions_Get") == 2


async def test_a_rate_limited_tick_stops_early(
    make_pipeline: Callable[..., Awaitable[Pipeline]],
) -> None:
    # One poll at a time, so "stops early" is visible: nothing else is in flight.
    pipeline = await make_pipeline(poll_concurrency=1)
    await pipeline.admin.faults(job_start_delay_seconds=3600)
    for index in range(4):
        name = await pipeline.upload_fixture("sentence-12.wav", f"rl-{index}.wav")
        await intake(pipeline, name)
    # Fresh quota windows (the intake's requests counted), then two requests a minute.
    await pipeline.admin.reset()
    await pipeline.admin.faults(quota_enabled=True, quota_requests=2, quota_window_seconds=60)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)

    summary = await poll_once(pipeline.ctx, now=later)

    assert summary.rate_limited
    assert summary.polled == 2
    assert summary.deferred == 1, "the job after the throttled one waits for the next tick"
    assert await pipeline.admin.count("Transcriptions_Get") == 3
    # The throttled job waits for the service's hint (60 s here); the other three are due
    # again after their (test-short) intervals.
    soon = await poll_once(pipeline.ctx, now=later + dt.timedelta(seconds=2))
    assert soon.due == 3


async def test_storm_of_429_and_5xx_still_transcribes_every_file(pipeline: Pipeline) -> None:
    fixtures = ("sentence-01.wav", "sentence-03.wav", "sentence-05.wav", "sentence-08.wav")
    files = {f"storm/{n}": n for n in fixtures}
    for name, fixture in files.items():
        await pipeline.upload_fixture(fixture, name)
    await pipeline.admin.faults(
        quota_enabled=True, quota_requests=3, quota_window_seconds=2, error_rate=0.5
    )

    # Events arrive together, as Event Grid delivers a burst of uploads.
    outcomes = await asyncio.gather(*(intake_with_host_retries(pipeline, n) for n in files))
    assert all(o.status is IntakeStatus.QUEUED for o in outcomes), outcomes
    await pipeline.poll_until_idle(timeout=90)

    stats = await pipeline.admin.stats()
    assert stats["faultsInjected"].get("quota", 0) > 0, stats["faultsInjected"]
    assert stats["faultsInjected"].get("error", 0) > 0, stats["faultsInjected"]
    submitted = stats["requests"]["byOperationAndStatus"]["Transcriptions_Submit"]
    assert submitted.get("201", 0) == 1, f"one job for the four files: {submitted}"
    for name in files:
        rows = await pipeline.ctx.ledger.sources_for_path(pipeline.settings.input_container, name)
        assert rows[0].state is SourceState.SUCCEEDED, rows[0]
    assert await transcript_wer(pipeline, files) <= 0.2


async def test_a_finish_that_crashed_half_way_is_repeated(pipeline: Pipeline) -> None:
    name = await pipeline.upload_fixture("sentence-13.wav")
    await intake(pipeline, name)
    storage = pipeline.ctx.storage
    original = storage.write_output
    crashed: list[str] = []

    async def crash_once(target: str, data: bytes | str, *, container: str | None = None) -> str:
        if target.endswith(".srt") and not crashed:
            crashed.append(target)
            raise ConnectionError("simulated crash while writing outputs")
        return await original(target, data, container=container)

    storage.write_output = crash_once  # type: ignore[method-assign]

    summaries = await pipeline.poll_until_idle()

    assert crashed
    assert sum(s.unfinished for s in summaries) == 1
    assert sum(s.succeeded for s in summaries) == 1
    for extension in OUTPUTS:
        assert await pipeline.output(name + extension) is not None
    rows = await pipeline.ctx.ledger.sources_for_path(pipeline.settings.input_container, name)
    assert rows[0].state is SourceState.SUCCEEDED
