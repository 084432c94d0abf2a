"""Reconciliation: the input container is the truth, and the ledger converges on it.

Events are hints: they arrive late, twice, or never (a storage outage longer than the
host's retries ends in the poison queue; Event Grid gives up after its own retries). One
timer tick (``SWEEP_SCHEDULE``) does four bounded things (after, with
``SPEECH_WEBHOOKS=on``, checking the Speech web hook: :func:`~.speech_hook.ensure_hook`):

1. **Poison queue** — blobs the host gave up on are taken in again (:mod:`~.poison`).
2. **Pending index** — due ``Received`` claims whose holder died are run again; leftover
   index rows go. (Queued and retrying versions belong to the submitter.)
3. **Blob pass** over the input and requests containers — one page of
   ``SWEEP_PAGE_SIZE`` blobs per container per tick (``SWEEP_PAGES_PER_TICK``), resumed
   from a cursor in the ledger. Each page is joined with the ledger in one key-range
   query; a version the ledger does not know (and older than ``SWEEP_GRACE_SECONDS``, so
   its own event has had its chance) is taken in like an upload.
4. **Row pass** over the input container's ledger rows, one page per tick, also resumed
   from a cursor: each path with a pending row or live outputs is checked against the
   blob (one HEAD). Older pending versions become ``Superseded``; a deleted blob's pending
   versions become ``Superseded`` and its outputs are removed; a pending current version
   with no owner in sight is put back on the pending index or in its queue.

``docs/architecture.md`` works out what a pass costs for a million blobs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from itertools import groupby
from typing import TYPE_CHECKING

from shared.pipeline.clock import utcnow
from shared.pipeline.intake import handle_audio_blob, recover_audio
from shared.pipeline.ledger.keys import KEY_SEPARATOR, key_upper_bound, path_key
from shared.pipeline.ledger.records import WAITING_STATES, SourceKind, SourceRecord, SourceState
from shared.pipeline.manifest import handle_manifest_blob, recover_manifest
from shared.pipeline.outputs import SUPERSEDED_MESSAGES, Currency, remove_outputs
from shared.pipeline.poison import PoisonBlob, drain
from shared.pipeline.queueing import requeue
from shared.pipeline.speech_hook import ensure_hook
from shared.redact import get_logger

if TYPE_CHECKING:
    from shared.app_context import AppContext
    from shared.storage import BlobInfo

_log = get_logger(__name__)

#: Ledger rows read per listed blob at most in one join (versions, manifest requests).
JOIN_ROWS_PER_BLOB = 20
#: Suffix of the row pass's cursor name.
ROWS_CURSOR = "|rows"


@dataclass
class SweepSummary:
    """What one tick did (logged by the timer function; asserted by tests)."""

    poison: int = 0
    pending: int = 0
    recovered: int = 0
    listed: int = 0
    taken_in: int = 0
    rows_checked: int = 0
    superseded: int = 0
    outputs_removed: int = 0
    requeued: int = 0
    passes: int = 0
    errors: int = 0


async def sweep_once(ctx: AppContext, *, now: dt.datetime | None = None) -> SweepSummary:
    """One tick of the sweep (the timer function's whole job). ``now`` is for tests."""
    now = now or utcnow()
    summary = SweepSummary()
    settings = ctx.settings
    take_in = {
        settings.input_container: handle_audio_blob,
        settings.requests_container: handle_manifest_blob,
    }

    async def poisoned(blob: PoisonBlob) -> None:
        handler = take_in.get(blob.container)
        if handler is None:
            _log.warning("poison blob in %s: not a container this app reads", blob.container)
            return
        _log.info("poison queue: taking in %s/%s again", blob.container, blob.name)
        await handler(ctx, blob.container, blob.name)
        summary.poison += 1

    steps: list[Callable[[], Awaitable[object]]] = [
        partial(ensure_hook, ctx, now=now),
        partial(drain, ctx, poisoned, limit=settings.poll_batch_size),
        partial(_pending_pass, ctx, now, summary),
        *(
            partial(_blob_pass, ctx, container, handler, now, summary)
            for container, handler in take_in.items()
        ),
        partial(_row_pass, ctx, settings.input_container, now, summary),
    ]
    for step in steps:
        try:
            await step()
        except Exception:
            # One broken step (storage down) must not starve the others of their turn.
            summary.errors += 1
            _log.exception("sweep step failed; retried on the next tick")
    # An idle tick every few seconds (offline) would drown the log: speak when work was done.
    worked = any(
        (
            summary.poison,
            summary.recovered,
            summary.taken_in,
            summary.superseded,
            summary.outputs_removed,
            summary.requeued,
            summary.errors,
        )
    )
    _log.log(logging.INFO if worked else logging.DEBUG, "sweep: %s", summary)
    return summary


async def _pending_pass(ctx: AppContext, now: dt.datetime, summary: SweepSummary) -> None:
    settings = ctx.settings
    stale = dt.timedelta(minutes=settings.intake_stale_minutes)
    for index in await ctx.ledger.due_pending(now, limit=settings.poll_batch_size):
        summary.pending += 1
        leftover = index.due_at is None or index.due_at <= now - stale
        try:
            record = await ctx.ledger.source_of(index)
            if record is None or not record.pending or record.state is SourceState.SUBMITTED:
                # Written first, so a fresh index may be ahead of its row: wait a while.
                if leftover or (record is not None and not record.pending):
                    await ctx.ledger.drop_index(index)
                continue
            if record.state is not SourceState.RECEIVED:
                await ctx.ledger.drop_index(index)  # queued versions are the submitter's
                continue
            fresh = record.claimed_at is not None and record.claimed_at > now - stale
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
            _log.exception("moving on %s/%s failed", index.container, index.path)


async def _blob_pass(
    ctx: AppContext,
    container: str,
    take_in: Callable[[AppContext, str, str], Awaitable[object]],
    now: dt.datetime,
    summary: SweepSummary,
) -> None:
    settings = ctx.settings
    grace = dt.timedelta(seconds=settings.sweep_grace_seconds)
    cursor = await ctx.ledger.get_cursor(container)
    for _ in range(settings.sweep_pages_per_tick):
        if cursor.pass_started_at is None:
            cursor.pass_started_at = now
        blobs, marker = await ctx.storage.list_page(
            container, marker=cursor.marker, size=settings.sweep_page_size
        )
        summary.listed += len(blobs)
        for blob in await _unknown(ctx, container, blobs):
            if blob.last_modified is not None and now - blob.last_modified < grace:
                continue
            try:
                _log.info("sweep: %s/%s@%s is not in the ledger", container, blob.name, blob.etag)
                await take_in(ctx, container, blob.name)
                summary.taken_in += 1
            except Exception:
                summary.errors += 1
                _log.exception("taking in %s/%s failed", container, blob.name)
        cursor.marker = marker
        if marker is None:
            cursor.passes += 1
            cursor.pass_started_at = None
            summary.passes += 1
        if not await ctx.ledger.save_cursor(cursor):
            return  # another sweep moved the cursor: it has this container now
        if marker is None:
            return


async def _unknown(ctx: AppContext, container: str, blobs: list[BlobInfo]) -> list[BlobInfo]:
    """The listed blob versions the ledger has no upload row for (one range query)."""
    if not blobs:
        return []
    keys = [path_key(blob.name) for blob in blobs]
    rows = await ctx.ledger.sources_in_key_range(
        container,
        min(keys),
        key_upper_bound(max(keys) + KEY_SEPARATOR),
        limit=len(blobs) * JOIN_ROWS_PER_BLOB,
    )
    known = {(row.ref.path, row.ref.etag) for row in rows if not row.ref.origin}
    return [blob for blob in blobs if (blob.name, blob.etag) not in known]


async def _row_pass(
    ctx: AppContext, container: str, now: dt.datetime, summary: SweepSummary
) -> None:
    settings = ctx.settings
    cursor = await ctx.ledger.get_cursor(container + ROWS_CURSOR)
    if cursor.pass_started_at is None:
        cursor.pass_started_at = now
    token = json.loads(cursor.marker) if cursor.marker else None
    rows, token = await ctx.ledger.page_sources(
        container, limit=settings.sweep_page_size, continuation=token
    )
    uploads = [row for row in rows if not row.ref.origin]
    summary.rows_checked += len(rows)
    for path, group in groupby(uploads, key=lambda row: row.ref.path):
        try:
            await _check_path(ctx, container, path, list(group), now, summary)
        except Exception:
            summary.errors += 1
            _log.exception("checking %s/%s failed", container, path)
    cursor.marker = json.dumps(token) if token else None
    if token is None:
        cursor.passes += 1
        cursor.pass_started_at = None
        summary.passes += 1
    await ctx.ledger.save_cursor(cursor)


def _has_outputs(row: SourceRecord) -> bool:
    live = row.state is SourceState.SUCCEEDED or (
        row.state is SourceState.FAILED and row.report_path is not None
    )
    return live and not row.outputs_removed


async def _check_path(
    ctx: AppContext,
    container: str,
    path: str,
    rows: list[SourceRecord],
    now: dt.datetime,
    summary: SweepSummary,
) -> None:
    """Compare one path's rows with its blob (a HEAD only when something depends on it)."""
    if not any(row.pending or _has_outputs(row) for row in rows):
        return
    blob = await ctx.storage.get_properties(container, path)
    stale = dt.timedelta(minutes=ctx.settings.intake_stale_minutes)
    for row in rows:
        if blob is not None and row.ref.etag == blob.etag:
            if row.pending and row.updated_at and row.updated_at <= now - stale:
                # Its owner may have lost sight of it (a row written before its index or
                # queue entry came first): put it back where its owner looks.
                summary.requeued += await _back_in_sight(ctx, row, now)
            continue
        reason = Currency.DELETED if blob is None else Currency.CHANGED
        if row.pending:
            closed = await ctx.ledger.close_source(
                row.ref,
                state=SourceState.SUPERSEDED,
                now=now,
                code=reason.value,
                message=SUPERSEDED_MESSAGES[reason],
            )
            summary.superseded += closed is not None
    if blob is not None:
        return
    with_outputs = [row for row in rows if _has_outputs(row)]
    if not with_outputs:
        return
    base = with_outputs[0].output_base or path
    output_container = with_outputs[0].output_container or ctx.settings.output_container
    removed = await remove_outputs(ctx, container=output_container, base=base, report_too=True)
    summary.outputs_removed += len(removed)
    for row in with_outputs:
        await ctx.ledger.note_outputs_removed(
            row,
            now=now,
            code=Currency.DELETED.value,
            message="the blob was deleted; its outputs were removed",
        )


async def _back_in_sight(ctx: AppContext, row: SourceRecord, now: dt.datetime) -> int:
    """A pending row to its owner again (the pending index, or its queue); 1 if moved.

    A ``Submitted`` row's owner is its job row, which the poller reads: nothing to do.
    """
    if row.state is SourceState.RECEIVED:
        await ctx.ledger.ensure_pending(row.ref, row.kind, due_at=now)
        return 1
    if row.state in WAITING_STATES and not row.batch:
        # Idempotent: the entry's key is the version and its due time.
        due = row.retry_at if row.state is SourceState.RETRYING else row.queued_at
        await requeue(ctx, row, row.ref, due_at=due or now, now=now)
        return 1
    return 0
