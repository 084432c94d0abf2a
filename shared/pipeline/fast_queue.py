"""The submitter's fast lane: queued versions in a fast group, transcribed one by one.

A manifest's files routed ``fast`` (:mod:`~.routing`) wait in a group of their own (its key
says ``route: fast``). Each submitter tick takes up to twice ``FAST_CONCURRENCY`` due entries
within the fast budget, and each one like a batch of one: the batch row first, then the
version assigned to it, so a tick that dies mid-way leaves a batch row the next tick resumes
as a batch *job* (:func:`~.submitter.submit_once`): the file is never lost, only slower. The
request is :mod:`~.fast_request`'s; the outputs go to the version's own output base (the
manifest's destination); a fallback puts the version in its batch group; a 422 about the
audio is a report.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ValidationError

from shared.pipeline.budget import SpeechBudget
from shared.pipeline.concurrency import bounded
from shared.pipeline.fast_request import (
    FastOutcome,
    definition_for,
    request_fast,
    transcribed_detail,
)
from shared.pipeline.fast_result import write_fast_transcript
from shared.pipeline.grouping import group_of
from shared.pipeline.ledger.job_records import BatchRecord
from shared.pipeline.ledger.records import (
    WAITING_STATES,
    GroupRow,
    QueueEntry,
    SourceRecord,
    SourceState,
    source_fields,
)
from shared.pipeline.options import options_from_record
from shared.pipeline.outputs import report_failure
from shared.pipeline.submission import batch_id_of, display_name_for, job_source
from shared.redact import get_logger
from shared.storage import BlobInfo
from shared.telemetry import record_audio_seconds

if TYPE_CHECKING:
    from shared.app_context import AppContext

_log = get_logger(__name__)

#: A fast group left this long without entries is dropped (a later file makes it again).
IDLE_GROUP = dt.timedelta(seconds=60)


@dataclass
class FastTally:
    """What one drain of a fast group did."""

    transcribed: int = 0
    failed: int = 0
    handed_back: int = 0
    budget_limited: bool = False


async def drain_fast_group(ctx: AppContext, group: GroupRow, now: dt.datetime) -> FastTally:
    """Transcribe a fast group's due entries (a bounded number per tick)."""
    tally = FastTally()
    settings = ctx.settings
    limit = 2 * settings.fast_concurrency
    entries = await ctx.ledger.due_entries(group.group, now, limit=limit)
    if not entries:
        idle_since = group.last_enqueued_at or now
        if idle_since <= now - IDLE_GROUP and not await ctx.ledger.queued_count(
            group.group, limit=1
        ):
            await ctx.ledger.drop_group(group)
        return tally
    budget = SpeechBudget.fast(ctx.ledger, per_minute=settings.fast_requests_per_minute)
    granted = await budget.take(len(entries), now=now)
    if granted < len(entries):
        tally.budget_limited = True
        entries = entries[:granted]
    done: list[QueueEntry] = []

    async def one(entry: QueueEntry) -> None:
        row = await ctx.ledger.get_source_at(entry.source_partition, entry.source_row)
        if row is None or row.state is SourceState.RECEIVED or row.batch:
            return  # not written yet, or a batch (a crashed attempt) holds it
        if row.state not in WAITING_STATES:
            done.append(entry)
            return
        await _one(ctx, group, row, now, tally)
        done.append(entry)

    await bounded(settings.fast_concurrency, entries, one)
    await ctx.ledger.drop_entries(done)
    return tally


async def _one(
    ctx: AppContext, group: GroupRow, row: SourceRecord, now: dt.datetime, tally: FastTally
) -> None:
    ref = row.ref
    batch_id = batch_id_of([row], lane="fast")
    batch = BatchRecord(
        batch_id=batch_id,
        group=group.group,
        display_name=display_name_for("batch", batch_id, f"1 file: {ref.container}/{ref.path}"),
        sources=[job_source(ctx, row)],
        created_at=now,
    )
    await ctx.ledger.create_batch(batch)
    if await ctx.ledger.assign(ref, batch=batch.batch_id, now=now) is None:
        await ctx.ledger.delete_batch(batch)
        return
    try:
        options, candidates, _ = options_from_record(row.options or {})
    except ValidationError as exc:
        await _hand_back(ctx, row, batch, now, f"its options no longer validate: {exc}")
        tally.handed_back += 1
        return
    blob = BlobInfo(ref.container, ref.path, row.size or 0, ref.etag)
    answer = await request_fast(ctx, blob, definition_for(options, candidates), budget_taken=True)
    container = row.output_container or ctx.settings.output_container
    base = row.output_base or ref.path
    if answer.outcome is FastOutcome.FALLBACK:
        await _hand_back(ctx, row, batch, now, answer.reason)
        tally.handed_back += 1
    elif answer.outcome is FastOutcome.FAILED:
        code = answer.code or "InvalidAudio"
        message = f"fast transcription could not transcribe the audio: {answer.reason}"
        report = await report_failure(
            ctx,
            ref,
            output_base=base,
            output_container=container,
            status="Failed",
            code=code,
            message=message,
            manifest=row.manifest,
            now=now,
        )
        await ctx.ledger.finish_source(
            ref,
            job_id="",
            batch=batch.batch_id,
            changes=source_fields(
                state=SourceState.FAILED,
                now=now,
                error_code=code,
                error_message=message,
                report_path=report,
            ),
        )
        tally.failed += 1
    else:
        result = answer.result
        assert result is not None
        source = ctx.storage.blob_url(ref.container, ref.path)
        written = await write_fast_transcript(
            ctx, result, container=container, base=base, source=source
        )
        seconds = result.duration_ms / 1000 if result.duration_ms is not None else None
        await ctx.ledger.finish_source(
            ref,
            job_id="",
            batch=batch.batch_id,
            changes=source_fields(
                state=SourceState.SUCCEEDED,
                now=now,
                error_code="",
                outputs=written,
                audio_seconds=seconds,
                history=row.with_history("Transcribed", transcribed_detail(answer), now=now),
            ),
        )
        record_audio_seconds(seconds, route="fast")
        tally.transcribed += 1
    await ctx.ledger.delete_batch(batch)


async def _hand_back(
    ctx: AppContext, row: SourceRecord, batch: BatchRecord, now: dt.datetime, reason: str
) -> None:
    """Queue a version the fast lane could not transcribe in its batch group, entry first."""
    group, key = group_of(
        row.options or {},
        output_container=row.output_container or ctx.settings.output_container,
        destination_prefix=row.destination_prefix or "",
    )
    await ctx.ledger.enqueue(row.ref, group=group, key=key, due_at=now, now=now)
    await ctx.ledger.hand_back(row.ref, batch=batch.batch_id, group=group, now=now, reason=reason)
    _log.info("%s goes to batch: %s", row.ref.display, reason)
