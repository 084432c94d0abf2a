"""Operator actions on file versions: re-run one or many, cancel one.

* :func:`retry_version` — ``POST /api/transcriptions/{path}:retry``: a ``Failed``,
  ``Superseded`` or ``Cancelled`` version back in its group's queue as a new attempt, with a
  fresh budget of submissions. Only a version that still exists can be re-run: an upload
  whose blob was overwritten is superseded for good (the newer version is what stands), and
  a manifest's file is the request for one version, so an overwritten one has nothing left
  to transcribe. Its old ``.error.json`` stays until the new outcome replaces it.
* :func:`retry_many` — ``POST /api/retry``: the same for one bounded page of versions in a
  state, with a continuation token to repeat with.
* :func:`cancel_version` — ``POST /api/transcriptions/{path}:cancel``: a version that only
  waits in its queue is ``Cancelled`` at once; one a job holds asks for it, and the job is
  deleted at the service once every file it holds has asked (a running job may refuse:
  then it finishes, and finishing ends each such file ``Cancelled`` without outputs).
  Cancelling writes no report (it is no failure) and removes nothing.

Every move is one conditional transition of the row (:mod:`~.ledger.actions`) and appears
in its history. Refusals raise :class:`ActionError`, which the HTTP layer answers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from shared.audio_formats import AudioRejected
from shared.pipeline.budget import SpeechBudget
from shared.pipeline.checks import check_audio_blob
from shared.pipeline.clock import utcnow
from shared.pipeline.concurrency import bounded
from shared.pipeline.grouping import group_of
from shared.pipeline.ledger.actions import RERUNNABLE
from shared.pipeline.ledger.records import WAITING_STATES, SourceKind, SourceRecord, SourceState
from shared.pipeline.options import OptionsError, options_from_metadata
from shared.pipeline.queries import (
    TranscriptionStatus,
    decode_continuation,
    encode_continuation,
    parse_state,
    to_status,
)
from shared.speech.errors import SpeechError
from shared.storage import normalize_etag

if TYPE_CHECKING:
    from shared.app_context import AppContext
    from shared.storage import BlobInfo

#: Versions of one bulk re-run handled at once (each: a HEAD, two upserts, a transition).
CONCURRENCY = 8
_RERUNNABLE_NAMES = ", ".join(state.value for state in sorted(RERUNNABLE))


class ActionError(Exception):
    """An action refused: HTTP status (400, 404, 409), a stable code, words, details."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


@dataclass
class CancelResult:
    """The version after a cancellation, and why it is not ``Cancelled`` yet, if it is not."""

    status: TranscriptionStatus
    #: Set while a job still holds the version: what has to happen before it ends.
    pending: str | None = None


class SkippedVersion(BaseModel):
    """A version a bulk re-run left as it was, and why."""

    path: str
    etag: str
    reason: str


class RetryManyResult(BaseModel):
    """One page of a bulk re-run; pass ``continuation`` back for the next (None: done)."""

    requeued: int
    skipped: list[SkippedVersion]
    continuation: str | None


def _target(ctx: AppContext, container: str | None, path: str) -> tuple[str, str]:
    path = path.lstrip("/")
    if not path:
        raise ActionError(400, "InvalidParameter", "path must name a blob", parameter="path")
    return container or ctx.settings.input_container, path


async def _version(ctx: AppContext, container: str, path: str, etag: str | None) -> SourceRecord:
    """The newest version of ``path`` (or the newest request for version ``etag``)."""
    records = await ctx.ledger.sources_for_path(container, path)
    if etag is not None:
        wanted = normalize_etag(etag)
        records = [record for record in records if record.ref.etag == wanted]
    if not records:
        what = f"version {etag} of {path!r}" if etag else repr(path)
        raise ActionError(
            404, "NotFound", f"no {what} is known in {container}", path=path, etag=etag
        )
    return records[0]


def _state_conflict(record: SourceRecord, action: str, allowed: str) -> ActionError:
    return ActionError(
        409,
        "InvalidState",
        f"{record.ref.path} (version {record.ref.etag}) is {record.state.value}; "
        f"{action} applies to {allowed}",
        state=record.state.value,
        etag=record.ref.etag,
    )


async def _check_current(ctx: AppContext, record: SourceRecord) -> BlobInfo:
    """The blob, if it still is this version; else why the version cannot be re-run."""
    ref = record.ref
    blob = await ctx.storage.get_properties(ref.container, ref.path)
    if blob is None:
        raise ActionError(
            409,
            "SourceDeleted",
            f"{ref.path} was deleted; there is nothing to transcribe",
            etag=ref.etag,
        )
    if blob.etag != ref.etag:
        if ref.origin:
            why = "the manifest asked for a version that no longer exists; send a manifest again"
        else:
            why = "the newer version is what stands, and it is transcribed on its own"
        raise ActionError(
            409,
            "SourceChanged",
            f"{ref.path} was overwritten: version {ref.etag} is gone, {blob.etag} replaced it; "
            + why,
            etag=ref.etag,
            newerEtag=blob.etag,
        )
    return blob


async def _options_for(ctx: AppContext, record: SourceRecord, blob: BlobInfo) -> dict[str, Any]:
    """The job options of a re-run: those it was queued with, else the blob's metadata.

    A version that never reached a queue (its intake gave up, or the fast lane failed it)
    has none stored; its checks are made again, as its intake would.
    """
    if record.options:
        return record.options
    checked = await check_audio_blob(ctx.storage, blob, max_bytes=ctx.settings.max_audio_bytes)
    if isinstance(checked, AudioRejected):
        raise ActionError(
            409, "NotAcceptable", f"{record.ref.path}: {checked}", reason=checked.code
        )
    try:
        return options_from_metadata(blob.metadata, ctx.settings).to_dict()
    except OptionsError as exc:
        raise ActionError(
            409,
            "InvalidMetadata",
            f"{record.ref.path}: metadata {exc}; correct it (that makes a new version)",
        ) from None


async def _rerun(ctx: AppContext, record: SourceRecord, now: dt.datetime) -> SourceRecord:
    """``record`` back in its group's queue as a new attempt; ActionError if it may not be."""
    if record.kind is SourceKind.MANIFEST:
        raise ActionError(
            409,
            "NotAFile",
            f"{record.ref.path} is a manifest; upload it again to run it again",
            etag=record.ref.etag,
        )
    if record.state not in RERUNNABLE:
        raise _state_conflict(record, "a re-run", _RERUNNABLE_NAMES)
    blob = await _check_current(ctx, record)
    options = await _options_for(ctx, record, blob)
    group, key = group_of(
        options,
        output_container=record.output_container or ctx.settings.output_container,
        destination_prefix=record.destination_prefix or "",
    )
    # The entry first, as for every queued version: a queued row always has one, and an
    # entry whose row did not move (it changed meanwhile) is dropped by the submitter.
    await ctx.ledger.enqueue(record.ref, group=group, key=key, due_at=now, now=now)
    moved = await ctx.ledger.rerun_source(record.ref, now=now, group=group, options=options)
    if moved is None:
        current = await ctx.ledger.get_source(record.ref)
        raise _state_conflict(current or record, "a re-run", _RERUNNABLE_NAMES)
    return moved


async def retry_version(
    ctx: AppContext, container: str | None, path: str, etag: str | None = None
) -> TranscriptionStatus:
    """Re-run the newest version of ``path`` (or version ``etag``); its new status."""
    target, path = _target(ctx, container, path)
    record = await _version(ctx, target, path, etag)
    return to_status(ctx, await _rerun(ctx, record, utcnow()))


def _rerunnable_state(value: str | None) -> SourceState:
    try:
        state = parse_state(value)
    except ValueError:
        state = None
    if state not in RERUNNABLE:
        got = f"; got {value!r}" if value else ""
        raise ActionError(
            400,
            "InvalidParameter",
            f"state must be one of {_RERUNNABLE_NAMES}{got}",
            parameter="state",
        )
    assert state is not None  # RERUNNABLE holds states only
    return state


async def retry_many(
    ctx: AppContext,
    *,
    state: str | None,
    prefix: str | None,
    container: str | None,
    limit: int | None,
    continuation: str | None,
) -> RetryManyResult:
    """Re-run one page of versions in ``state`` under ``prefix``, at most ``limit`` of them.

    ``limit`` defaults to, and may not exceed, ``RETRY_MAX_PER_CALL``. Versions that may
    not be re-run are listed in ``skipped`` with the reason; the rest are queued.
    """
    wanted = _rerunnable_state(state)
    cap = ctx.settings.retry_max_per_call
    if limit is not None and not 1 <= limit <= cap:
        raise ActionError(
            400,
            "InvalidParameter",
            f"limit must be from 1 to {cap} (RETRY_MAX_PER_CALL); got {limit}",
            parameter="limit",
        )
    try:
        token = decode_continuation(continuation)
    except ValueError as exc:
        raise ActionError(400, "InvalidParameter", str(exc), parameter="continuation") from None
    records, next_token = await ctx.ledger.query_sources(
        container or ctx.settings.input_container,
        state=wanted,
        prefix=(prefix or "").lstrip("/") or None,
        limit=limit or cap,
        continuation=token,
    )
    now = utcnow()

    async def one(record: SourceRecord) -> SkippedVersion | None:
        try:
            await _rerun(ctx, record, now)
        except ActionError as refused:
            return SkippedVersion(
                path=record.ref.path, etag=record.ref.etag, reason=refused.message
            )
        return None

    outcomes = await bounded(CONCURRENCY, records, one)
    skipped = [outcome for outcome in outcomes if outcome is not None]
    return RetryManyResult(
        requeued=len(records) - len(skipped),
        skipped=skipped,
        continuation=encode_continuation(next_token),
    )


async def cancel_version(
    ctx: AppContext, container: str | None, path: str, etag: str | None = None
) -> CancelResult:
    """Cancel the newest version of ``path`` (or version ``etag``) before it is transcribed."""
    target, path = _target(ctx, container, path)
    record: SourceRecord | None = await _version(ctx, target, path, etag)
    now = utcnow()
    # A row that changed between the read and the move is looked at again: a few times.
    for _ in range(3):
        assert record is not None  # source rows are never deleted
        result = await _cancel(ctx, record, now)
        if result is not None:
            return result
        record = await ctx.ledger.get_source(record.ref)
    raise ActionError(
        409, "Busy", f"{path} kept changing while it was being cancelled; try again in a moment"
    )


async def _cancel(ctx: AppContext, record: SourceRecord, now: dt.datetime) -> CancelResult | None:
    """One attempt at cancelling ``record``; None when the row moved meanwhile."""
    ref = record.ref
    if record.state is SourceState.RECEIVED:
        raise ActionError(
            409,
            "Busy",
            f"{ref.path} is being taken in; try again in a moment",
            state=record.state.value,
            retryable=True,
        )
    if not record.pending:
        raise _state_conflict(record, "cancelling", "versions not transcribed yet")
    if record.state in WAITING_STATES:
        if record.batch:
            raise ActionError(
                409,
                "Busy",
                f"{ref.path} is being submitted in a job right now; try again in a moment",
                state=record.state.value,
                retryable=True,
            )
        moved = await ctx.ledger.cancel_waiting(ref, now=now)
        return CancelResult(to_status(ctx, moved)) if moved is not None else None
    job_id = record.job_id or ""
    if not record.cancel_requested:
        marked = await ctx.ledger.request_cancel(ref, job_id=job_id, now=now)
        if marked is None:
            return None
        record = marked
    return await _cancel_job(ctx, record, job_id, now)


async def _cancel_job(
    ctx: AppContext, record: SourceRecord, job_id: str, now: dt.datetime
) -> CancelResult:
    """Delete ``job_id`` if every file it holds asked to be cancelled; else say what waits."""
    status = to_status(ctx, record)
    job = await ctx.ledger.get_job(job_id)
    if job is None:
        # The poller is finishing it right now: finishing honours the request.
        return CancelResult(
            status, f"the job {job_id} is being finished; this file ends Cancelled then"
        )
    total = len(job.sources)
    rows = await bounded(CONCURRENCY, job.sources, lambda s: ctx.ledger.get_source(s.ref))
    held = [row for row in rows if row is not None and row.held_by(job.job_id, job.batch)]
    asked = sum(row.cancel_requested for row in held)
    if asked < len(held):
        return CancelResult(
            status,
            f"the job {job_id} is cancelled once all its {total} files are ({asked} asked so "
            "far); if it finishes first, this file ends Cancelled without outputs",
        )
    budget = SpeechBudget(ctx.ledger, per_minute=ctx.settings.speech_requests_per_minute)
    if not await budget.take(1, now=now):
        return CancelResult(
            status,
            f"the job {job_id} is to be deleted, but this window's Speech request budget is "
            "spent; ask again in a few seconds (its files end Cancelled when it finishes)",
        )
    try:
        await ctx.speech.batch.delete_transcription(job_id, missing_ok=True)
    except SpeechError as exc:
        # The service refuses to delete a job that has not ended (DeleteNotAllowed): it
        # runs on, and finishing ends each file that asked Cancelled, without outputs.
        return CancelResult(
            status,
            f"the job {job_id} is cancelled once all its {total} files are, and they are, but "
            f"the service did not delete it ({exc.message}); it is left to finish, and its "
            "files end Cancelled then, without outputs",
        )
    detail = f"its job {job_id} was deleted at the service: all of its files asked"
    await bounded(
        CONCURRENCY,
        held,
        lambda row: ctx.ledger.cancel_held(
            row.ref, job_id=job.job_id, batch=job.batch, now=now, detail=detail
        ),
    )
    # The row is the poller's lease: if it was taken meanwhile, that poll finds the job
    # gone (404), finds its files Cancelled, and deletes the row itself.
    current = await ctx.ledger.get_job(job_id)
    if current is not None:
        await ctx.ledger.delete_job(current)
    final = await ctx.ledger.get_source(record.ref)
    return CancelResult(to_status(ctx, final or record))
