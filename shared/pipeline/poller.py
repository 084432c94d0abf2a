"""The poller: follow submitted jobs to the end (the poll timer's whole job).

``poll_once`` is one tick. It polls due jobs (at most ``poll_batch_size``,
``poll_concurrency`` at a time). Each job is leased first: an ETag-conditional update
that moves its next poll forward, so two pollers never poll one job, and no job is polled
more than once per ``poll_min_interval_seconds``. The interval doubles up to
``poll_max_interval_seconds`` and never undercuts the service's ``Retry-After``. A 429
stops the tick (the rest wait for the next one) and pushes the throttled job back by the
service's hint.

A job that ended is finished (:mod:`~.finishing`): outputs, retries, reports. A job stuck
(NotStarted/Running) beyond ``stuck_after_hours`` is reported ``Stuck``; a job the service
no longer knows (404) sends its inputs back for another submission. While a healthy Speech
web hook announces completions (:mod:`~.speech_hook`), a job is polled only every
``webhook_poll_interval_seconds``: the hook makes it due the moment it ends. Then the job is
deleted from the service and its row from the ledger (the source rows keep the outcome).
Everything is idempotent: a tick that crashed half-way is repeated by the next one.

Traces: a tick is a span, each polled job a span in it; finishing writes each file's outputs
in a span of that file's own trace, linked to the job's (:mod:`~.finishing`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.pipeline.budget import WINDOW_SECONDS, SpeechBudget
from shared.pipeline.clock import utcnow
from shared.pipeline.finishing import POLL_RETRY, FinishTally, JobFinish
from shared.pipeline.ledger.job_records import JobRecord
from shared.pipeline.speech_hook import hooks_healthy
from shared.redact import get_logger, redact
from shared.speech.errors import NotFoundError, RateLimitError, SpeechError
from shared.speech.models import Status, Transcription
from shared.telemetry import record_file_state, traced

if TYPE_CHECKING:
    from shared.app_context import AppContext

_log = get_logger(__name__)

#: Result files per page of ``Transcriptions_ListFiles`` (the service's default page size).
FILES_PER_PAGE = 100


def finish_requests(job: JobRecord) -> int:
    """Requests a finish makes besides the poll: the result-file pages, then the delete.

    A job lists one result per input plus its report, a page of 100 at a time.
    """
    return -(-(len(job.sources) + 1) // FILES_PER_PAGE) + 1


@dataclass
class PollSummary:
    """What one tick did (logged by the timer function; asserted by tests)."""

    #: Jobs that were due.
    due: int = 0
    #: Jobs whose status was fetched.
    polled: int = 0
    #: Due jobs left for a later tick (rate limited, or another poller had them).
    deferred: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    stuck: int = 0
    missing: int = 0
    #: Files transcribed (outputs written), reported failed, sent back, superseded.
    files_succeeded: int = 0
    files_failed: int = 0
    files_retrying: int = 0
    files_superseded: int = 0
    #: Jobs whose finish failed this time (retried at their next poll, bounded).
    unfinished: int = 0
    #: Jobs that hit an unexpected error (retried on a later tick).
    errors: int = 0
    rate_limited: bool = False
    #: Due jobs left because the request budget of the window was spent.
    budget_limited: bool = False

    def add(self, tally: FinishTally) -> None:
        """Count a finished job's inputs (here and in the ``transcription.files`` metric)."""
        for state, count in (
            ("Succeeded", tally.succeeded),
            ("Failed", tally.failed),
            ("Retrying", tally.retrying),
            ("Superseded", tally.superseded),
        ):
            record_file_state(state, stage="finishing", count=count)
        self.files_succeeded += tally.succeeded
        self.files_failed += tally.failed
        self.files_retrying += tally.retrying
        self.files_superseded += tally.superseded


def next_interval(job: JobRecord, min_seconds: float, max_seconds: float) -> float:
    """The wait after this poll: twice the last wait (submission waited the minimum), capped."""
    if job.poll_interval_seconds <= 0:
        return min_seconds
    return min(max_seconds, max(min_seconds, job.poll_interval_seconds * 2))


async def poll_once(ctx: AppContext, *, now: dt.datetime | None = None) -> PollSummary:
    """One tick of the poller, as one span. ``now`` is for tests."""
    with traced("poll tick") as span:
        summary = await _tick(ctx, now or utcnow())
        span.set_attributes(
            {"transcription.jobs": summary.polled, "transcription.due": summary.due}
        )
    return summary


async def _tick(ctx: AppContext, now: dt.datetime) -> PollSummary:
    summary = PollSummary()
    settings = ctx.settings
    jobs = await ctx.ledger.due_jobs(now, limit=settings.poll_batch_size)
    summary.due = len(jobs)
    budget = SpeechBudget(ctx.ledger, per_minute=settings.speech_requests_per_minute)
    granted = await budget.take(len(jobs), now=now)
    if granted < len(jobs):
        # The window's budget is spent: the rest stay due and go first next tick.
        summary.deferred += len(jobs) - granted
        summary.budget_limited = True
        jobs = jobs[:granted]
    stop = asyncio.Event()
    semaphore = asyncio.Semaphore(settings.poll_concurrency)
    # A healthy web hook announces each job's end: polls are then only the backstop.
    backstop = settings.webhook_poll_interval_seconds if jobs and await hooks_healthy(ctx) else 0.0

    async def run(job: JobRecord) -> None:
        async with semaphore:
            if stop.is_set():
                summary.deferred += 1
                return
            try:
                with traced(
                    "poll job",
                    attributes={
                        "transcription.job_id": job.job_id,
                        "transcription.files": len(job.sources),
                    },
                ):
                    await _poll_job(ctx, job, now, stop, summary, backstop=backstop)
            except Exception:
                summary.errors += 1
                _log.exception("polling job %s failed; it is retried on a later tick", job.job_id)

    await asyncio.gather(*(run(job) for job in jobs))
    # An idle tick every few seconds would drown the log; say something when work was done.
    idle = not (summary.due or summary.errors or summary.rate_limited or summary.budget_limited)
    _log.log(logging.DEBUG if idle else logging.INFO, "poll: %s", summary)
    return summary


async def _poll_job(
    ctx: AppContext,
    job: JobRecord,
    now: dt.datetime,
    stop: asyncio.Event,
    summary: PollSummary,
    *,
    backstop: float = 0.0,
) -> None:
    settings = ctx.settings
    interval = max(
        backstop,
        next_interval(job, settings.poll_min_interval_seconds, settings.poll_max_interval_seconds),
    )
    if not await ctx.ledger.lease_job(job, now=now, interval=interval):
        summary.deferred += 1
        return
    try:
        try:
            transcription = await ctx.speech.batch.get_transcription(job.job_id, retry=POLL_RETRY)
        except NotFoundError:
            summary.polled += 1
            summary.missing += 1
            message = (
                f"the transcription job {job.job_id} no longer exists at the service "
                "(deleted or expired) before its results were collected"
            )
            await _finish(ctx, job, None, now, summary, reason=("JobNotFound", message))
            return
        summary.polled += 1
        status = transcription.status
        if status in (Status.SUCCEEDED, Status.FAILED):
            # Listing the results and deleting the job: two more requests of the budget.
            budget = SpeechBudget(ctx.ledger, per_minute=settings.speech_requests_per_minute)
            needed = finish_requests(job)
            if await budget.take(needed, now=now) < needed:
                summary.budget_limited = True
                await ctx.ledger.defer_job(job, until=now + dt.timedelta(seconds=WINDOW_SECONDS))
                return
            if await _finish(ctx, job, transcription, now, summary):
                if status == Status.SUCCEEDED:
                    summary.succeeded += 1
                else:
                    summary.failed += 1
        elif now - job.submitted_at >= dt.timedelta(hours=settings.stuck_after_hours):
            hours = (now - job.submitted_at).total_seconds() / 3600
            message = (
                f"the transcription job {job.job_id} was still {status} after {hours:.1f} "
                f"hours (limit {settings.stuck_after_hours:g} h); it was given up and deleted"
            )
            await _finish(ctx, job, None, now, summary, reason=("Stuck", message))
            summary.stuck += 1
        else:
            summary.running += 1
            hint = transcription.retry_after
            later = now + dt.timedelta(seconds=hint) if hint and hint > interval else None
            await ctx.ledger.note_job_status(job, status=str(status), next_poll_at=later)
    except RateLimitError as exc:
        stop.set()
        summary.rate_limited = True
        wait = max(exc.retry_after or interval, interval)
        _log.warning("rate limited at job %s; polling resumes in %.0f s", job.job_id, wait)
        await ctx.ledger.defer_job(job, until=now + dt.timedelta(seconds=wait))
    except SpeechError as exc:
        # 5xx after retries, connection problems, auth: the lease already moved the next
        # poll out by one interval; count and note the failure, try again then.
        summary.errors += 1
        _log.warning("polling job %s failed: %s", job.job_id, exc)
        await ctx.ledger.note_job_error(job, message=redact(str(exc)))


async def _finish(
    ctx: AppContext,
    job: JobRecord,
    transcription: Transcription | None,
    now: dt.datetime,
    summary: PollSummary,
    *,
    reason: tuple[str, str] | None = None,
) -> bool:
    """Finish a job that ended (or, with ``reason``, one with no results); True when done.

    When outputs could not be written, the job stays for its next poll, until
    ``finish_max_attempts`` attempts have failed; then the unwritten inputs are reported.
    """
    finish = JobFinish(ctx, job, now)
    tally = finish.tally
    if transcription is not None:
        try:
            await finish.collect(transcription)
        except RateLimitError:
            raise
        except SpeechError as exc:
            # Results that cannot be fetched count against the same bound as outputs
            # that cannot be written: a finished job is never polled forever.
            why = f"the results could not be fetched: {redact(str(exc))[:300]}"
            tally.unwritten = dict.fromkeys(job.sources, why)
    else:
        assert reason is not None
        await finish.settle_all(list(job.sources), lambda _source: reason)
    if tally.unwritten:
        if job.finish_failures + 1 < ctx.settings.finish_max_attempts:
            first = next(iter(tally.unwritten.values()))
            summary.add(tally)
            summary.unfinished += 1
            _log.warning(
                "job %s: %d output(s) not written (%s); retried at its next poll",
                job.job_id,
                len(tally.unwritten),
                first,
            )
            wait = job.poll_interval_seconds or ctx.settings.poll_min_interval_seconds
            await ctx.ledger.note_finish_failure(
                job, message=first, next_poll_at=now + dt.timedelta(seconds=wait)
            )
            return False
        await finish.give_up_writing()
    summary.add(tally)
    await _delete_job(ctx, job)
    return True


async def _delete_job(ctx: AppContext, job: JobRecord) -> None:
    """Delete the job at the service (best effort) and its ledger row."""
    try:
        await ctx.speech.batch.delete_transcription(job.job_id, missing_ok=True, retry=POLL_RETRY)
    except SpeechError as exc:
        # Its results are safe already; redoing them for a delete would only cost quota.
        # The service removes the job itself after timeToLiveHours (and refuses to delete
        # a running one, e.g. a stuck job).
        _log.warning("could not delete job %s: %s", job.job_id, exc)
    await ctx.ledger.delete_job(job)
