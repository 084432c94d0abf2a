"""The poller: follow submitted jobs to the end and turn their results into files.

``poll_once`` is one timer tick:

1. **Recover abandoned claims**: an intake that died (or failed and was never retried)
   left its row ``Received``; after ``intake_stale_minutes`` the intake is run again.
2. **Poll due jobs** (at most ``poll_batch_size``, ``poll_concurrency`` at a time). Each job
   is leased first: an ETag-conditional update that moves its next poll forward, so two
   pollers never poll one job, and no job is polled more than once per
   ``poll_min_interval_seconds``. The interval doubles up to ``poll_max_interval_seconds``
   and never undercuts the service's ``Retry-After``. A 429 stops the tick (the rest wait
   for the next one) and pushes the throttled job back by the service's hint.
3. **Finish** jobs that ended:

   * Succeeded: for every result, ``<path>.txt``, ``.srt``, ``.vtt`` and then ``<path>.json``
     (the service's result byte for byte) *last*, as the completion marker, under the input
     path or the manifest's destination prefix. Files the report marks failed, and inputs
     with no result at all, get ``<path>.error.json``.
   * Failed: ``<path>.error.json`` with the service's code and message for every file.
   * Stuck (NotStarted/Running beyond ``stuck_after_hours``): error report ``Stuck``,
     deletion attempted, no more polling. Vanished (404): error report ``JobNotFound``.

   Then the job is deleted from the service and its row from the ledger (the source rows
   keep the outcome). Everything is idempotent: a tick that crashed half-way is repeated
   by the next one, which rewrites the same files and reaches the same state.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from shared.pipeline.clock import utcnow
from shared.pipeline.intake import recover_audio
from shared.pipeline.ledger.records import (
    TERMINAL_STATES,
    JobRecord,
    JobSource,
    SourceKind,
    SourceState,
    source_fields,
)
from shared.pipeline.manifest import recover_manifest
from shared.pipeline.reports import report_path, write_error_report
from shared.redact import get_logger, redact
from shared.render import to_srt, to_text, to_vtt
from shared.speech.errors import NotFoundError, RateLimitError, SpeechError
from shared.speech.models import (
    FileKind,
    Status,
    Transcription,
    TranscriptionFile,
    TranscriptionReport,
    TranscriptionResult,
)
from shared.speech.retry import RetryPolicy

if TYPE_CHECKING:
    from shared.app_context import AppContext

_log = get_logger(__name__)

#: Status polls retry server errors quickly but never sleep through a 429: the tick stops
#: and the job waits for the service's hint instead (that is what the backoff is for).
POLL_RETRY = RetryPolicy(max_attempts=3, retry_statuses=frozenset({408, 500, 502, 503, 504}))
#: Results of one job processed at a time (downloads and output writes).
FILE_CONCURRENCY = 8
OUTPUT_EXTENSIONS = (".txt", ".srt", ".vtt", ".json")


@dataclass
class PollSummary:
    """What one tick did (logged by the timer function; asserted by tests)."""

    #: Abandoned claims whose intake was run again.
    recovered: int = 0
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
    #: Files transcribed (outputs written) and files that got an error report.
    files_succeeded: int = 0
    files_failed: int = 0
    #: Jobs or claims that hit an unexpected error (retried on a later tick).
    errors: int = 0
    rate_limited: bool = False


def next_interval(job: JobRecord, min_seconds: float, max_seconds: float) -> float:
    """The wait after this poll: twice the last wait (submission waited the minimum), capped."""
    if job.poll_interval_seconds <= 0:
        return min_seconds
    return min(max_seconds, max(min_seconds, job.poll_interval_seconds * 2))


def _url_key(url: str) -> str:
    """A URL reduced to what identifies the blob: host and unquoted path, no query."""
    parts = urlsplit(url)
    return f"{parts.netloc.lower()}{unquote(parts.path)}"


class _SourceMatcher:
    """Maps a result's or report line's ``source`` back to the job's input."""

    def __init__(self, sources: list[JobSource]) -> None:
        self.sources = sources
        self._by_url = {_url_key(s.url): s for s in sources}
        self._by_path: dict[str, list[JobSource]] = {}
        for source in sources:
            self._by_path.setdefault(source.path, []).append(source)

    def match(self, reported: str | None) -> JobSource | None:
        if not reported:
            return self.sources[0] if len(self.sources) == 1 else None
        if "://" in reported:
            found = self._by_url.get(_url_key(reported))
            if found is not None:
                return found
            reported = unquote(urlsplit(reported).path)
        # Container input reports the blob path; be lenient about a container prefix.
        for path, candidates in self._by_path.items():
            if len(candidates) == 1 and (reported == path or reported.endswith("/" + path)):
                return candidates[0]
        return None


async def poll_once(ctx: AppContext, *, now: dt.datetime | None = None) -> PollSummary:
    """One tick of the poller (the timer function's whole job). ``now`` is for tests."""
    now = now or utcnow()
    summary = PollSummary()
    await _recover_claims(ctx, now, summary)

    settings = ctx.settings
    jobs = await ctx.ledger.due_jobs(now, limit=settings.poll_batch_size)
    summary.due = len(jobs)
    stop = asyncio.Event()
    semaphore = asyncio.Semaphore(settings.poll_concurrency)

    async def run(job: JobRecord) -> None:
        async with semaphore:
            if stop.is_set():
                summary.deferred += 1
                return
            try:
                await _poll_job(ctx, job, now, stop, summary)
            except Exception:
                summary.errors += 1
                _log.exception("polling job %s failed; it is retried on a later tick", job.job_id)

    await asyncio.gather(*(run(job) for job in jobs))
    # An idle tick every few seconds would drown the log; say something when work was done.
    idle = not (summary.recovered or summary.due or summary.errors or summary.rate_limited)
    _log.log(logging.DEBUG if idle else logging.INFO, "poll: %s", summary)
    return summary


async def _recover_claims(ctx: AppContext, now: dt.datetime, summary: PollSummary) -> None:
    settings = ctx.settings
    cutoff = now - dt.timedelta(minutes=settings.intake_stale_minutes)
    for index in await ctx.ledger.stale_claims(cutoff, limit=settings.poll_batch_size):
        try:
            record = await ctx.ledger.source_of(index)
            if record is None or record.state is not SourceState.RECEIVED:
                await ctx.ledger.drop_index(index)
                continue
            fresh = record.claimed_at is not None and record.claimed_at > cutoff
            if fresh and not record.claim_released:
                continue
            _log.info("recovering the abandoned intake of %s", record.ref.display)
            if record.kind is SourceKind.MANIFEST:
                await recover_manifest(ctx, record, now=now)
            else:
                await recover_audio(ctx, record, now=now)
            summary.recovered += 1
        except Exception:
            summary.errors += 1
            _log.exception("recovering %s/%s failed", index.container, index.path)


async def _poll_job(
    ctx: AppContext,
    job: JobRecord,
    now: dt.datetime,
    stop: asyncio.Event,
    summary: PollSummary,
) -> None:
    settings = ctx.settings
    interval = next_interval(
        job, settings.poll_min_interval_seconds, settings.poll_max_interval_seconds
    )
    leased = await ctx.ledger.update_job(
        job,
        {
            "NextPollAt": now + dt.timedelta(seconds=interval),
            "PollIntervalSeconds": interval,
            "LastPolledAt": now,
            "Polls": job.polls + 1,
        },
    )
    if not leased:
        summary.deferred += 1
        return
    try:
        try:
            transcription = await ctx.speech.batch.get_transcription(job.job_id, retry=POLL_RETRY)
        except NotFoundError:
            summary.polled += 1
            summary.missing += 1
            await _finish_without_results(
                ctx,
                job,
                now,
                summary,
                code="JobNotFound",
                message=f"the transcription job {job.job_id} no longer exists at the service "
                "(deleted or expired) before its results were collected",
            )
            return
        summary.polled += 1
        status = transcription.status
        if status == Status.SUCCEEDED:
            await _finish(ctx, job, transcription, now, summary)
            summary.succeeded += 1
        elif status == Status.FAILED:
            await _finish(ctx, job, transcription, now, summary)
            summary.failed += 1
        elif now - job.submitted_at >= dt.timedelta(hours=settings.stuck_after_hours):
            await _finish_stuck(ctx, job, str(status), now, summary)
            summary.stuck += 1
        else:
            summary.running += 1
            changes: dict[str, Any] = {}
            if str(status) != job.last_status:
                changes["LastStatus"] = str(status)
            hint = transcription.retry_after
            if hint is not None and hint > interval:
                changes["NextPollAt"] = now + dt.timedelta(seconds=hint)
            if changes:
                await ctx.ledger.update_job(job, changes)
    except RateLimitError as exc:
        stop.set()
        summary.rate_limited = True
        wait = max(exc.retry_after or interval, interval)
        _log.warning("rate limited at job %s; polling resumes in %.0f s", job.job_id, wait)
        await ctx.ledger.update_job(job, {"NextPollAt": now + dt.timedelta(seconds=wait)})
    except SpeechError as exc:
        # 5xx after retries, connection problems, auth: the lease already moved the next
        # poll out by one interval; count and note the failure, try again then.
        summary.errors += 1
        _log.warning("polling job %s failed: %s", job.job_id, exc)
        await ctx.ledger.update_job(
            job, {"Errors": job.errors + 1, "LastError": redact(str(exc))[:1000]}
        )


async def _bounded(items: list[Any], work: Callable[[Any], Awaitable[None]]) -> None:
    semaphore = asyncio.Semaphore(FILE_CONCURRENCY)

    async def one(item: Any) -> None:
        async with semaphore:
            await work(item)

    await asyncio.gather(*(one(item) for item in items))


async def _owned(ctx: AppContext, job: JobRecord, source: JobSource) -> bool:
    """True if the source's row is this job's to write for (and not finished otherwise)."""
    record = await ctx.ledger.get_source(source.ref)
    if record is None or record.job_id in (None, job.job_id):
        return True
    _log.warning("skipping %s: its row belongs to job %s", source.ref.display, record.job_id)
    return False


async def _write_outputs(
    ctx: AppContext,
    job: JobRecord,
    source: JobSource,
    raw: bytes,
    result: TranscriptionResult,
    now: dt.datetime,
) -> None:
    """Outputs of one transcribed file, the ``.json`` completion marker last; ledger after."""
    storage = ctx.storage
    container = job.output_container or ctx.settings.output_container
    base = source.output_base
    rendered = {".txt": to_text(result), ".srt": to_srt(result), ".vtt": to_vtt(result)}
    for extension, text in rendered.items():
        await storage.write_output(base + extension, text, container=container)
    # A report from an earlier, failed version of this path is no longer true.
    await storage.delete_output(report_path(base), container=container)
    await storage.write_output(base + ".json", raw, container=container)
    await ctx.ledger.finish_source(
        source.ref,
        job_id=job.job_id,
        changes=source_fields(
            state=SourceState.SUCCEEDED,
            now=now,
            error_code="",
            outputs=[base + extension for extension in OUTPUT_EXTENSIONS],
            output_container=container,
            output_base=base,
        ),
    )


async def _fail_source(
    ctx: AppContext,
    job: JobRecord,
    source: JobSource,
    now: dt.datetime,
    *,
    code: str,
    message: str,
) -> bool:
    """Error report + ledger Failed for one input; False if the row is not this job's."""
    record = await ctx.ledger.get_source(source.ref)
    if record is not None and record.job_id not in (None, job.job_id):
        return False
    if (
        record is not None
        and record.state in TERMINAL_STATES
        and record.state is not (SourceState.FAILED)
    ):
        # Finished otherwise by an earlier run of this very step: keep that outcome.
        return False
    container = job.output_container or ctx.settings.output_container
    report = await write_error_report(
        ctx.storage,
        output_base=source.output_base,
        container=source.container,
        path=source.path,
        etag=source.etag,
        status="Failed",
        code=code,
        message=message,
        job_id=job.job_id,
        manifest=source.origin or None,
        now=now,
        output_container=container,
    )
    await ctx.ledger.finish_source(
        source.ref,
        job_id=job.job_id,
        changes=source_fields(
            state=SourceState.FAILED,
            now=now,
            error_code=code,
            error_message=message,
            report_path=report,
            output_container=container,
            output_base=source.output_base,
        ),
    )
    return True


async def _finish(
    ctx: AppContext,
    job: JobRecord,
    transcription: Transcription,
    now: dt.datetime,
    summary: PollSummary,
) -> None:
    """Collect a Succeeded or Failed job's files, write outputs and reports, clean up."""
    batch = ctx.speech.batch
    failed_job = transcription.status == Status.FAILED
    error = transcription.properties.error if transcription.properties else None
    files: list[TranscriptionFile] = []
    async for file in batch.list_transcription_files(job.job_id, retry=POLL_RETRY):
        files.append(file)
    matcher = _SourceMatcher(job.sources)
    done: set[JobSource] = set()

    async def transcribed(file: TranscriptionFile) -> None:
        url = file.links.content_url if file.links else None
        if not url:
            return
        raw = await batch.download_file(url)
        result = TranscriptionResult.model_validate_json(raw)
        source = matcher.match(result.source)
        if source is None:
            _log.warning("job %s: a result for an unknown source; ignored", job.job_id)
            return
        if source in done or not await _owned(ctx, job, source):
            return
        done.add(source)
        await _write_outputs(ctx, job, source, raw, result, now)
        summary.files_succeeded += 1

    await _bounded([f for f in files if f.kind == FileKind.TRANSCRIPTION], transcribed)

    failures: dict[JobSource, tuple[str, str]] = {}
    for file in files:
        if file.kind != FileKind.TRANSCRIPTION_REPORT:
            continue
        report: TranscriptionReport = await batch.download_report(file)
        for detail in report.details or []:
            source = matcher.match(detail.effective_source)
            if source is None or source in done or detail.status == Status.SUCCEEDED:
                continue
            failures[source] = (
                detail.error_kind or "TranscriptionFailed",
                detail.error_message or "the service could not transcribe this file",
            )
    if failed_job:
        fallback = (
            (error.code if error and error.code else "TranscriptionFailed"),
            (error.message if error and error.message else "the transcription job failed"),
        )
    else:
        fallback = ("NoResult", "the job succeeded but returned no result for this file")

    async def failed(source: JobSource) -> None:
        code, message = failures.get(source, fallback)
        if await _fail_source(ctx, job, source, now, code=code, message=message):
            summary.files_failed += 1

    await _bounded([s for s in job.sources if s not in done], failed)
    await _delete_job(ctx, job)


async def _finish_stuck(
    ctx: AppContext, job: JobRecord, status: str, now: dt.datetime, summary: PollSummary
) -> None:
    hours = (now - job.submitted_at).total_seconds() / 3600
    message = (
        f"the transcription job {job.job_id} was still {status} after {hours:.1f} hours "
        f"(limit {ctx.settings.stuck_after_hours:g} h); it was given up and deleted"
    )
    await _finish_without_results(ctx, job, now, summary, code="Stuck", message=message)


async def _finish_without_results(
    ctx: AppContext,
    job: JobRecord,
    now: dt.datetime,
    summary: PollSummary,
    *,
    code: str,
    message: str,
) -> None:
    async def failed(source: JobSource) -> None:
        if await _fail_source(ctx, job, source, now, code=code, message=message):
            summary.files_failed += 1

    await _bounded(list(job.sources), failed)
    await _delete_job(ctx, job)


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
