"""Putting an accepted version in its group's queue: the entry first, then the row."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from shared.pipeline.grouping import group_of
from shared.pipeline.ledger.keys import SourceRef
from shared.pipeline.ledger.records import Claim, SourceRecord, SourceState, source_fields
from shared.telemetry import current_traceparent

if TYPE_CHECKING:
    from shared.app_context import AppContext


async def enqueue_claimed(
    ctx: AppContext,
    claim: Claim,
    *,
    group: str,
    key: dict[str, Any],
    options: dict[str, Any],
    output_container: str,
    output_base: str,
    now: dt.datetime,
    due_at: dt.datetime | None = None,
    history: list[dict[str, str]] | None = None,
) -> bool:
    """``Received`` -> ``Queued``: the queue entry is written before the claim resolves.

    ``due_at`` (default ``now``) is when the file's wait began: the upload, so the batch
    window counts from when the user dropped the file, not from when the event came.

    In that order a queued row always has an entry; an entry whose claim was lost is
    dropped by the submitter when it meets the row in another state. False when the
    claim was taken over meanwhile (the new holder queues the same entry again).

    The row keeps the current span's ``traceparent`` (the intake's): the submitter and the
    poller continue the file's trace from it.
    """
    ref = claim.record.ref
    await ctx.ledger.enqueue(ref, group=group, key=key, due_at=due_at or now, now=now)
    return await ctx.ledger.resolve_claim(
        claim,
        source_fields(
            state=SourceState.QUEUED,
            now=now,
            group=group,
            queued_at=due_at or now,
            options=options,
            error_code="",
            output_container=output_container,
            output_base=output_base,
            route="batch",
            history=history,
            trace_parent=current_traceparent(),
        ),
    )


async def requeue(
    ctx: AppContext,
    record: SourceRecord | None,
    ref: SourceRef,
    *,
    due_at: dt.datetime,
    now: dt.datetime,
) -> None:
    """Put a version back in its group's queue, due at ``due_at`` (idempotent per due time).

    The group is the one it was queued in; a row from before groups existed (or a
    manifest file whose row a crash never wrote) gets it from its stored options.
    """
    options = (record.options if record is not None else None) or {}
    container = (record.output_container if record is not None else None) or (
        ctx.settings.output_container
    )
    destination = (record.destination_prefix if record is not None else None) or ""
    computed, key = group_of(options, output_container=container, destination_prefix=destination)
    group = (record.group if record is not None else None) or computed
    await ctx.ledger.enqueue(ref, group=group, key=key, due_at=due_at, now=now)
