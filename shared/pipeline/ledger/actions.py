"""Source-row moves an operator asks for: re-run a version, cancel one.

Each is one conditional transition (:meth:`SourceRows._transition`), allowed only from the
states the action applies to, and each appends to the version's history, so the status
API shows who moved it and why. Which version may be re-run or cancelled, and what the
answer says, is :mod:`shared.pipeline.actions`'s business; this module only moves rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from shared.pipeline.ledger.keys import SourceRef
from shared.pipeline.ledger.queue import entry_row_key, queue_partition
from shared.pipeline.ledger.records import (
    WAITING_STATES,
    SourceRecord,
    SourceState,
    source_fields,
)
from shared.pipeline.ledger.sources import SourceRows

#: Who asks: the only caller of these moves is the HTTP API (and the status page over it).
BY_OPERATOR = "by an operator (API)"
#: States a version is re-run from: it ended without a transcript, or was set aside.
RERUNNABLE = frozenset({SourceState.FAILED, SourceState.SUPERSEDED, SourceState.CANCELLED})


def _with_events(
    row: SourceRecord, *events: tuple[str, str], now: dt.datetime
) -> list[dict[str, str]]:
    """``row``'s history with ``events`` (event, detail) appended in order."""
    history = row.history
    for event, detail in events:
        history = replace(row, history=history).with_history(event, detail, now=now)
    return history


class ActionRows(SourceRows):
    """Re-runs and cancellations of source rows."""

    async def rerun_source(
        self,
        ref: SourceRef,
        *,
        now: dt.datetime,
        group: str,
        options: dict[str, Any],
    ) -> SourceRecord | None:
        """A re-runnable row -> ``Queued`` as a new attempt; None if it is not re-runnable.

        The caller has written its queue entry (``group``, due at ``now``) first. The row
        gets a fresh budget of submissions, its error, batch and job cleared, and its
        cancellation request withdrawn. ``RetryAt`` cannot be erased by a merge: it is set
        to ``now``, the time the attempt is due (only ``Retrying`` rows show it).
        """
        return await self._transition(
            ref,
            lambda row: row.state in RERUNNABLE,
            lambda row: source_fields(
                state=SourceState.QUEUED,
                now=now,
                group=group,
                options=options,
                queued_at=now,
                retry_at=now,
                submissions=0,
                error_code="",
                batch="",
                job_id="",
                cancel_requested=False,
                route="batch",
                history=row.with_history("RetryRequested", BY_OPERATOR, now=now),
            ),
        )

    async def cancel_waiting(self, ref: SourceRef, *, now: dt.datetime) -> SourceRecord | None:
        """A queued row no batch holds -> ``Cancelled``; None if it is not one any more.

        Its queue entry is deleted afterwards (best effort: an entry whose row is not
        queued is dropped by the submitter anyway when it comes due).
        """
        taken: list[SourceRecord] = []

        def changes(row: SourceRecord) -> dict[str, Any]:
            taken.append(row)  # the row as it was when the move succeeded is the last one
            return source_fields(
                state=SourceState.CANCELLED,
                now=now,
                error_code="",
                cancel_requested=True,
                history=_with_events(
                    row,
                    ("CancelRequested", BY_OPERATOR),
                    ("Cancelled", "before it was submitted"),
                    now=now,
                ),
            )

        moved = await self._transition(
            ref, lambda row: row.state in WAITING_STATES and not row.batch, changes
        )
        before = taken[-1] if moved is not None else None
        if before is not None and before.group:
            # The entry's key is its due time: the retry time for a Retrying version, the
            # time it was queued otherwise (as the intake, finishing and the sweep write it).
            due = before.retry_at if before.state is SourceState.RETRYING else before.queued_at
            if due is not None:
                await self._delete(queue_partition(before.group), entry_row_key(ref, due))
        return moved

    async def request_cancel(
        self, ref: SourceRef, *, job_id: str, now: dt.datetime
    ) -> SourceRecord | None:
        """Note on a ``Submitted`` row of ``job_id`` that it is to be cancelled; None if not.

        The job keeps running: the row ends ``Cancelled`` when the job is deleted (all of its
        files asked) or when it finishes anyway (:mod:`shared.pipeline.finishing`).
        """
        return await self._transition(
            ref,
            lambda row: (
                row.state is SourceState.SUBMITTED
                and row.job_id == job_id
                and not row.cancel_requested
            ),
            lambda row: source_fields(
                now=now,
                cancel_requested=True,
                history=row.with_history("CancelRequested", BY_OPERATOR, now=now),
            ),
        )

    async def cancel_held(
        self,
        ref: SourceRef,
        *,
        job_id: str,
        batch: str | None,
        now: dt.datetime,
        detail: str,
    ) -> SourceRecord | None:
        """A row job ``job_id`` holds and that asked to be cancelled -> ``Cancelled``.

        None when the job does not hold it (any more) or no cancellation was asked for.
        """
        return await self._transition(
            ref,
            lambda row: row.cancel_requested and row.held_by(job_id, batch),
            lambda row: source_fields(
                state=SourceState.CANCELLED,
                now=now,
                error_code="",
                batch="",
                history=row.with_history("Cancelled", detail, now=now),
            ),
        )
