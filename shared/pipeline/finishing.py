"""Finishing a job: results to outputs, failures to retries or reports, bounded.

For each input of a job that ended, exactly one of:

* **Succeeded** — ``.txt``, ``.srt``, ``.vtt`` and then the ``.json`` marker, when the
  version is still its blob's current one;
* **Superseded** — the blob was overwritten or deleted meanwhile: nothing is written over
  the newer version's outputs (a deleted blob's outputs are removed);
* **Retrying** — a transient failure (the job vanished; the service's ``InvalidUri``,
  ``Internal``, ``Timeout``, ``Transient``) while submissions are left: the sweep submits
  the version again after a backoff;
* **Failed** — anything else, or no submissions left: ``.error.json`` with the reason;
* **Cancelled** — an operator asked while the job ran (``cancel_requested``): nothing is
  written, nothing reported.

Collecting results and writing outputs may fail (storage down, a leased output blob, a
403). A job whose finish fails is retried at its next poll, up to ``finish_max_attempts``;
then its unfinished inputs are reported ``Failed`` (``OutputWriteFailed``, the report
written where possible, the ledger row either way) and the job is deleted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from shared.pipeline.concurrency import bounded
from shared.pipeline.ledger.job_records import JobRecord, JobSource
from shared.pipeline.ledger.records import SourceRecord, SourceState
from shared.pipeline.ledger.records import source_fields as fields
from shared.pipeline.outputs import (
    SUPERSEDED_MESSAGES,
    Currency,
    currency,
    remove_outputs,
    report_failure,
    write_transcript,
)
from shared.pipeline.queueing import requeue
from shared.redact import get_logger, redact
from shared.speech.errors import SpeechError
from shared.speech.models import (
    FileKind,
    Status,
    Transcription,
    TranscriptionFile,
    TranscriptionReport,
    TranscriptionResult,
)
from shared.speech.retry import RetryPolicy
from shared.storage_errors import classify_storage_error
from shared.telemetry import file_span, record_audio_seconds

if TYPE_CHECKING:
    from shared.app_context import AppContext

_log = get_logger(__name__)

#: Status polls and result downloads retry server errors quickly but never sleep through
#: a 429: the tick stops and the job waits for the service's hint instead.
POLL_RETRY = RetryPolicy(max_attempts=3, retry_statuses=frozenset({408, 500, 502, 503, 504}))
#: Results of one job processed at a time (downloads and output writes).
FILE_CONCURRENCY = 8
#: Per-file failures that another submission can cure (the Ingestion Client retries the
#: same four); ``JobNotFound`` is ours: the service lost or expired the job.
TRANSIENT_FILE_ERRORS = frozenset({"InvalidUri", "Internal", "Timeout", "Transient", "JobNotFound"})


@dataclass
class FinishTally:
    """What finishing did to a job's inputs (added into the poller's summary)."""

    succeeded: int = 0
    failed: int = 0
    retrying: int = 0
    superseded: int = 0
    #: Inputs whose outputs could not be written this time, with the reason.
    unwritten: dict[JobSource, str] = field(default_factory=dict)


def _url_key(url: str) -> str:
    """A URL reduced to what identifies the blob: host and unquoted path, no query."""
    parts = urlsplit(url)
    return f"{parts.netloc.lower()}{unquote(parts.path)}"


class SourceMatcher:
    """Maps a result's or report line's ``source`` back to the job's input."""

    def __init__(self, sources: list[JobSource]) -> None:
        self.sources = sources
        self._by_url = {_url_key(s.url): s for s in sources}
        self._by_path: dict[str, list[JobSource]] = {}
        for source in sources:
            self._by_path.setdefault(source.path, []).append(source)

    def match(self, reported: str | None) -> JobSource | None:
        """The input ``reported`` names, or None."""
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


def retry_delay(ctx: AppContext, submissions: int) -> dt.timedelta:
    """The wait before submission number ``submissions + 1``: doubling from the setting."""
    base = ctx.settings.retry_backoff_seconds
    return dt.timedelta(seconds=base * 2 ** max(0, submissions - 1))


def _storage_reason(exc: BaseException) -> str:
    problem = classify_storage_error(exc)
    if problem is not None:
        return f"{problem.message} ({problem.code})"
    return redact(f"{type(exc).__name__}: {exc}")[:500]


class JobFinish:
    """One attempt at finishing one job: each input to its next state, counted in ``tally``."""

    def __init__(self, ctx: AppContext, job: JobRecord, now: dt.datetime) -> None:
        self.ctx = ctx
        self.job = job
        self.now = now
        self.tally = FinishTally()
        self.container = job.output_container or ctx.settings.output_container

    async def _held_row(self, source: JobSource) -> tuple[bool, SourceRecord | None]:
        """(the input's row waits for this job, the row): not finished, moved or retried.

        A manifest file whose row a crash never wrote has none: the job is the proof.
        """
        record = await self.ctx.ledger.get_source(source.ref)
        if record is None:
            return True, None
        return record.held_by(self.job.job_id, self.job.batch), record

    async def _cancelled(self, source: JobSource, record: SourceRecord | None) -> bool:
        """True (and the input ``Cancelled``, nothing written) if an operator asked for it."""
        if record is None or not record.cancel_requested:
            return False
        await self.ctx.ledger.cancel_held(
            source.ref,
            job_id=self.job.job_id,
            batch=self.job.batch,
            now=self.now,
            detail=f"its job {self.job.job_id} ended; no outputs were written",
        )
        return True

    async def _superseded(self, source: JobSource) -> bool:
        """True (and the input closed) if its blob changed or vanished."""
        state = await currency(self.ctx, source.ref)
        if state is Currency.CURRENT:
            return False
        closed = await self.ctx.ledger.close_source(
            source.ref,
            state=SourceState.SUPERSEDED,
            now=self.now,
            code=state.value,
            message=SUPERSEDED_MESSAGES[state],
        )
        if closed is not None:
            self.tally.superseded += 1
            if state is Currency.DELETED:
                await remove_outputs(
                    self.ctx, container=self.container, base=source.output_base, report_too=True
                )
        return True

    async def deliver(self, source: JobSource, raw: bytes, result: TranscriptionResult) -> None:
        """One transcribed input: outputs if it is still current, else Superseded.

        An input whose cancellation was asked for while its job ran ends Cancelled instead.
        """
        held, record = await self._held_row(source)
        if not held or await self._cancelled(source, record) or await self._superseded(source):
            return
        # The outputs are part of the file's own trace, linked to the job's poll.
        with file_span(
            f"outputs {source.path}",
            record.trace_parent if record is not None else None,
            {"transcription.job_id": self.job.job_id},
        ):
            seconds = result.duration_ms / 1000 if result.duration_ms is not None else None
            written = await write_transcript(
                self.ctx, container=self.container, base=source.output_base, raw=raw, result=result
            )
            # Overwritten while the outputs were written: the newer version's own job rewrites
            # them, and this version must not claim them.
            if await self._superseded(source):
                return
            finished = await self.ctx.ledger.finish_source(
                source.ref,
                job_id=self.job.job_id,
                batch=self.job.batch,
                changes=fields(
                    state=SourceState.SUCCEEDED,
                    now=self.now,
                    error_code="",
                    outputs=written,
                    output_container=self.container,
                    output_base=source.output_base,
                    audio_seconds=seconds,
                ),
            )
            if finished is not None and finished.state is SourceState.SUCCEEDED:
                self.tally.succeeded += 1
                record_audio_seconds(seconds, route="batch")

    async def settle_failure(self, source: JobSource, code: str, message: str) -> None:
        """One failed input: Superseded, Retrying (transient, submissions left) or Failed."""
        held, record = await self._held_row(source)
        if not held or await self._cancelled(source, record) or await self._superseded(source):
            return
        settings = self.ctx.settings
        submissions = max(1, record.submissions if record is not None else 1)
        transient = code in TRANSIENT_FILE_ERRORS
        if transient and submissions < settings.retry_max_submissions:
            retry_at = self.now + retry_delay(self.ctx, submissions)
            # Back in its group's queue, due at the retry time: the submitter owns it now.
            await requeue(self.ctx, record, source.ref, due_at=retry_at, now=self.now)
            scheduled = await self.ctx.ledger.schedule_retry(
                source.ref,
                job_id=self.job.job_id,
                batch=self.job.batch,
                now=self.now,
                retry_at=retry_at,
                code=code,
                message=f"{message} (submission {submissions} of "
                f"{settings.retry_max_submissions}; submitted again at {retry_at:%H:%M:%S} UTC)",
            )
            if scheduled is not None:
                self.tally.retrying += 1
                _log.info("%s: %s, submitted again at %s", source.ref.display, code, retry_at)
            return
        if transient:
            message = f"{message} (gave up after {submissions} submissions)"
        await self.fail(source, code, message)

    async def fail(self, source: JobSource, code: str, message: str) -> None:
        """Report an input Failed: ``.error.json`` where it can be written, the ledger always.

        An input whose cancellation was asked for is not reported: it ends Cancelled.
        """
        held, record = await self._held_row(source)
        if not held or await self._cancelled(source, record):
            return
        report: str | None
        try:
            report = await report_failure(
                self.ctx,
                source.ref,
                output_base=source.output_base,
                output_container=self.container,
                status="Failed",
                code=code,
                message=message,
                job_id=self.job.job_id,
                manifest=source.origin or None,
                now=self.now,
            )
        except Exception as exc:
            if code != "OutputWriteFailed":
                raise  # finishing is retried; only the last attempt settles without a report
            _log.warning("no report for %s: %s", source.ref.display, _storage_reason(exc))
            report = None
        finished = await self.ctx.ledger.finish_source(
            source.ref,
            job_id=self.job.job_id,
            batch=self.job.batch,
            changes=fields(
                state=SourceState.FAILED,
                now=self.now,
                error_code=code,
                error_message=message,
                report_path=report,
                output_container=self.container,
                output_base=source.output_base,
            ),
        )
        if finished is not None and finished.state is SourceState.FAILED:
            self.tally.failed += 1

    async def _guarded(self, source: JobSource, work: Awaitable[None]) -> None:
        """Run one input's step; a storage failure is noted for the bounded retry."""
        try:
            await work
        except (SpeechError, asyncio.CancelledError):
            raise
        except Exception as exc:
            self.tally.unwritten[source] = _storage_reason(exc)

    async def collect(self, transcription: Transcription) -> None:
        """Every input of a Succeeded or Failed job to its next state; raises if listing fails."""
        batch = self.ctx.speech.batch
        job = self.job
        files: list[TranscriptionFile] = []
        async for file in batch.list_transcription_files(job.job_id, retry=POLL_RETRY):
            files.append(file)
        matcher = SourceMatcher(job.sources)
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
            if source in done:
                return
            done.add(source)
            await self._guarded(source, self.deliver(source, raw, result))

        await bounded(
            FILE_CONCURRENCY, [f for f in files if f.kind == FileKind.TRANSCRIPTION], transcribed
        )

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
        error = transcription.properties.error if transcription.properties else None
        if transcription.status == Status.FAILED:
            fallback = (
                (error.code if error and error.code else "TranscriptionFailed"),
                (error.message if error and error.message else "the transcription job failed"),
            )
        else:
            fallback = ("NoResult", "the job succeeded but returned no result for this file")
        await self.settle_all(
            [s for s in job.sources if s not in done], lambda s: failures.get(s, fallback)
        )

    async def settle_all(
        self, sources: list[JobSource], reason: Callable[[JobSource], tuple[str, str]]
    ) -> None:
        """Settle each failed input with its (code, message); write failures are noted."""

        async def one(source: JobSource) -> None:
            await self._guarded(source, self.settle_failure(source, *reason(source)))

        await bounded(FILE_CONCURRENCY, sources, one)

    async def give_up_writing(self) -> None:
        """The last finish attempt failed: report the unwritten inputs Failed."""
        unwritten = dict(self.tally.unwritten)
        self.tally.unwritten.clear()
        attempts = self.job.finish_failures + 1

        async def one(source: JobSource) -> None:
            why = f"the outputs could not be written after {attempts} attempts: {unwritten[source]}"
            await self.fail(source, "OutputWriteFailed", why)

        await bounded(FILE_CONCURRENCY, list(unwritten), one)
