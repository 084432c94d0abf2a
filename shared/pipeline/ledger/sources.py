"""Source rows: one per blob version and request, moved through its states conditionally.

Every transition is one ETag-conditional merge of the row (re-read and retried when another
writer got in between); the pending index (:mod:`~.pending`) is written before a row
becomes pending and dropped after it leaves.

Every write of a source row — creation, claim, transition, finish — goes through
:meth:`SourceRows._write_source`, the one place that knows the state before and after:
it writes the outbox row of a terminal state before the write (:mod:`~.outbox`) and
counts the change after it (:mod:`~.counters`). A state change made anywhere else would
be neither announced nor counted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any

from shared.pipeline.ledger.counters import CounterRows
from shared.pipeline.ledger.keys import SourceRef
from shared.pipeline.ledger.outbox import OutboxRows
from shared.pipeline.ledger.pending import PendingIndex
from shared.pipeline.ledger.records import (
    TERMINAL_STATES,
    WAITING_STATES,
    Claim,
    SourceKind,
    SourceRecord,
    SourceState,
    as_utc,
    clip_message,
    pack,
    source_fields,
)
from shared.pipeline.ledger.source_reads import SourceReads
from shared.redact import get_logger

_log = get_logger(__name__)


def _new_row(ref: SourceRef, kind: SourceKind) -> dict[str, Any]:
    """The keys and identity columns every new source row starts with."""
    return {
        "PartitionKey": ref.partition_key,
        "RowKey": ref.row_key,
        "Kind": kind.value,
        "Container": ref.container,
        "Path": ref.path,
        "ETag": ref.etag,
        "Origin": ref.origin,
    }


def _after(before: SourceRecord | None, fields: Mapping[str, Any]) -> SourceRecord:
    """The row as ``fields`` leave it, as far as the outbox and the counters need to know."""
    if before is None:
        return SourceRecord.from_entity(fields)
    seconds = fields.get("AudioSeconds")
    return dataclasses.replace(
        before,
        state=SourceState(fields.get("State") or before.state),
        route=fields.get("Route") or before.route,
        audio_seconds=float(seconds) if seconds is not None else before.audio_seconds,
        completed_at=as_utc(fields.get("CompletedAt")) or before.completed_at,
    )


def _move_detail(changes: Mapping[str, Any]) -> str:
    """What a history entry says of a state move: the job, or the error, it came with."""
    if changes.get("ErrorCode"):
        return f"{changes['ErrorCode']}: {changes.get('ErrorMessage') or ''}".strip()
    if changes.get("JobId"):
        return f"in job {changes['JobId']}"
    return ""


class SourceRows(SourceReads, PendingIndex, OutboxRows, CounterRows):
    """Reads and conditional transitions of source rows."""

    async def _write_source(
        self, before: SourceRecord | None, fields: Mapping[str, Any]
    ) -> str | None:
        """Write a source row: create ``fields`` (a whole entity) when ``before`` is None,
        else merge them if the row still has ``before``'s ETag. The new ETag, or None.

        The choke point of every source row write. A move into a terminal state writes its
        outbox row first (and stamps ``CompletedAt`` if the caller did not), so no terminal
        state is ever reached unannounced; a move out of one keeps the data of its event
        should it not be published yet. After the write, the change is counted; a counter
        failure is logged, never raised.
        """
        changes = dict(fields)
        state = SourceState(changes["State"]) if "State" in changes else None
        moved = state is not None and (before is None or state is not before.state)
        if moved and before is not None and not before.pending:
            await self.freeze_outbox(before)
        if moved and state in TERMINAL_STATES and as_utc(changes.get("CompletedAt")) is None:
            changes["CompletedAt"] = dt.datetime.now(dt.UTC)
        if moved and before is not None and "History" not in changes:
            # Every move is in the version's history; callers that say more write their own.
            assert state is not None
            changes["History"] = json.dumps(
                before.with_history(state.value, _move_detail(changes), now=dt.datetime.now(dt.UTC))
            )
        after = _after(before, changes) if moved else None
        if after is not None and not after.pending:
            await self.put_outbox(after, now=dt.datetime.now(dt.UTC))
        if before is None:
            etag = await self._create(changes)
        else:
            ref = before.ref
            etag = await self._merge(ref.partition_key, ref.row_key, changes, before.row_etag)
        if etag is not None and after is not None:
            await self.count_transition(before, after)
        return etag

    async def claim_source(
        self,
        ref: SourceRef,
        *,
        kind: SourceKind,
        now: dt.datetime,
        stale_after: dt.timedelta,
        max_attempts: int,
        extra: Mapping[str, Any] | None = None,
    ) -> Claim | None:
        """Claim this version for one intake; None when someone else holds or finished it.

        A row is created in state ``Received``. If it exists, it is taken over (with an
        ETag-conditional merge, so only one contender wins) when its claim was released by
        a failed attempt or is older than ``stale_after`` (the holder died); otherwise this
        is a duplicate delivery. ``extra`` goes onto a new row (size, manifest, ...).
        """
        entity: dict[str, Any] = {
            **_new_row(ref, kind),
            "State": SourceState.RECEIVED.value,
            "ReceivedAt": now,
            "ClaimedAt": now,
            "ClaimReleased": False,
            "Attempts": 1,
            "UpdatedAt": now,
            **(extra or {}),
        }
        # The index first: a claim is never without one, whatever happens in between.
        await self.ensure_pending(ref, kind, due_at=now + stale_after)
        etag = await self._write_source(None, entity)
        if etag is not None:
            record = SourceRecord.from_entity(entity)
            record.row_etag = etag
            return Claim(record, takeover=False, max_attempts=max_attempts)
        current = await self.get_source(ref)
        if current is None:
            # Source rows are never deleted; a vanished one is an outage: let the caller retry.
            raise RuntimeError(f"ledger row of {ref.display} exists and then does not")
        if current.state is not SourceState.RECEIVED:
            if not current.pending:
                await self.drop_pending(current)  # the index this duplicate just wrote
            return None
        claimed_at = current.claimed_at or now
        if not current.claim_released and claimed_at > now - stale_after:
            return None
        changes = {
            "ClaimedAt": now,
            "ClaimReleased": False,
            "Attempts": current.attempts + 1,
            "UpdatedAt": now,
        }
        new_etag = await self._write_source(current, changes)
        if new_etag is None:
            return None
        current.row_etag = new_etag
        current.claimed_at = now
        current.claim_released = False
        current.attempts += 1
        _log.info("took over the claim of %s (attempt %d)", ref.display, current.attempts)
        return Claim(current, takeover=True, max_attempts=max_attempts)

    async def update_claim(self, claim: Claim, changes: Mapping[str, Any]) -> bool:
        """Merge ``changes`` into the claimed row if the claim still holds."""
        record = claim.record
        etag = await self._write_source(record, changes)
        if etag is None:
            return False
        record.row_etag = etag
        if changes.get("State"):
            # What the row is now: a later write on this claim counts from here.
            record.state = SourceState(changes["State"])
        return True

    async def resolve_claim(self, claim: Claim, changes: Mapping[str, Any]) -> bool:
        """Leave ``Received`` (to Submitted, Rejected or Failed) and drop the claim's index.

        False when the claim was lost to a takeover meanwhile; the other holder resolves it.
        """
        resolved = await self.update_claim(claim, changes)
        if resolved:
            await self.drop_pending(claim.record)
        return resolved

    async def release_claim(
        self, claim: Claim, *, now: dt.datetime, code: str, message: str
    ) -> bool:
        """Give the claim up after a transient failure, so a retry may take it at once."""
        return await self.update_claim(
            claim,
            {
                "ClaimReleased": True,
                "UpdatedAt": now,
                "ErrorCode": code,
                "ErrorMessage": clip_message(message),
            },
        )

    async def store_plan(self, claim: Claim, plan: Any) -> bool:
        """Fix a manifest's resolved file list on its row, so every retry uses the same."""
        if await self.update_claim(claim, pack(plan, "Plan")):
            claim.record.plan = plan
            return True
        return False

    async def put_file(
        self, ref: SourceRef, *, kind: SourceKind, now: dt.datetime, fields: Mapping[str, Any]
    ) -> bool:
        """Record a manifest's file (Submitted or Rejected) unless it has moved on already.

        Created if absent. An existing row is updated only while it is not terminal and
        not held by another job, so a retry of the manifest never undoes the poller.
        Returns True when the row now carries ``fields``.
        """
        entity = {
            **_new_row(ref, kind),
            "ReceivedAt": now,
            "Attempts": 1,
            **fields,
        }
        if await self._write_source(None, entity) is not None:
            return True
        current = await self.get_source(ref)
        if current is None or current.state in TERMINAL_STATES:
            return False
        job_id = fields.get("JobId")
        if current.job_id and current.job_id != job_id:
            return False
        return await self._write_source(current, fields) is not None

    async def finish_source(
        self,
        ref: SourceRef,
        *,
        job_id: str,
        changes: Mapping[str, Any],
        batch: str | None = None,
    ) -> SourceRecord | None:
        """Move a job's source to a terminal state; None if it is not this job's to finish.

        Idempotent: a row already terminal is left as it is (a re-run of a crashed poll).
        A row still ``Received`` (the intake crashed after recording the job) is finished
        too: the job is the proof of submission.
        """
        for _ in range(3):
            current = await self.get_source(ref)
            if current is None:
                return None
            if current.state in TERMINAL_STATES:
                return current
            if not self._held_by(current, job_id, batch):
                return None
            fields = {"JobId": job_id, "Batch": "", **changes}
            if await self._write_source(current, fields) is not None:
                if current.state is SourceState.RECEIVED:
                    await self.drop_pending(current)
                return await self.get_source(ref)
        raise RuntimeError(f"{ref.display} kept changing while its job was being finished")

    @staticmethod
    def _held_by(current: SourceRecord, job_id: str, batch: str | None = None) -> bool:
        """:meth:`SourceRecord.held_by`, saying why not when another job holds the row."""
        held = current.held_by(job_id, batch)
        if not held and current.job_id and current.job_id != job_id:
            _log.warning(
                "%s belongs to job %s, not %s", current.ref.display, current.job_id, job_id
            )
        return held

    async def _transition(
        self,
        ref: SourceRef,
        allowed: Callable[[SourceRecord], bool],
        changes: Callable[[SourceRecord], Mapping[str, Any]],
    ) -> SourceRecord | None:
        """One conditional move of ``ref``'s row; the row after it, or None if not allowed.

        Re-read and retried when another writer got in between (a few times, then raise).
        """
        for _ in range(3):
            current = await self.get_source(ref)
            if current is None or not allowed(current):
                return None
            fields = changes(current)
            if await self._write_source(current, fields) is not None:
                return await self.get_source(ref)
        raise RuntimeError(f"{ref.display} kept changing while it was being moved on")

    async def schedule_retry(
        self,
        ref: SourceRef,
        *,
        job_id: str,
        batch: str | None = None,
        now: dt.datetime,
        retry_at: dt.datetime,
        code: str,
        message: str,
    ) -> SourceRecord | None:
        """``Submitted`` -> ``Retrying``: job ``job_id`` failed it transiently.

        Idempotent (a row already ``Retrying`` is returned as it is); None when the row is
        terminal or belongs to another job. Its queue entry is written first (the caller).
        """
        current = await self.get_source(ref)
        if current is None or not current.pending:
            return None
        if current.state is SourceState.RETRYING and not current.batch:
            return current  # already waiting for its next submission
        if not self._held_by(current, job_id, batch):
            return None
        return await self._transition(
            ref,
            lambda row: row.pending and self._held_by(row, job_id, batch),
            lambda _row: source_fields(
                state=SourceState.RETRYING,
                now=now,
                retry_at=retry_at,
                error_code=code,
                error_message=message,
                batch="",
            ),
        )

    async def close_source(
        self,
        ref: SourceRef,
        *,
        state: SourceState,
        now: dt.datetime,
        code: str,
        message: str,
        report_path: str | None = None,
        output_container: str | None = None,
        output_base: str | None = None,
    ) -> SourceRecord | None:
        """A pending row -> ``state`` (Failed or Superseded) whoever holds it; None if terminal."""
        moved = await self._transition(
            ref,
            lambda row: row.pending,
            lambda _row: source_fields(
                state=state,
                now=now,
                error_code=code,
                error_message=message,
                report_path=report_path,
                output_container=output_container,
                output_base=output_base,
            ),
        )
        if moved is not None:
            await self.drop_pending(moved)
        return moved

    async def note_outputs_removed(
        self, record: SourceRecord, *, now: dt.datetime, code: str, message: str
    ) -> bool:
        """Record that a terminal version's outputs were removed (its blob was deleted)."""
        fields = source_fields(
            now=now, outputs=[], outputs_removed=True, error_code=code, error_message=message
        )
        return await self._write_source(record, fields) is not None

    async def assign(self, ref: SourceRef, *, batch: str, now: dt.datetime) -> SourceRecord | None:
        """A queued version taken into ``batch`` (the job about to be submitted); None if not.

        Conditional: only a ``Queued`` or ``Retrying`` row that no other batch holds.
        """
        return await self._transition(
            ref,
            lambda row: row.state in WAITING_STATES and row.batch in (None, batch),
            lambda _row: source_fields(batch=batch, now=now),
        )

    async def mark_submitted(
        self,
        ref: SourceRef,
        *,
        batch: str,
        job_id: str,
        display_name: str,
        now: dt.datetime,
        warning: str | None = None,
    ) -> SourceRecord | None:
        """``Queued``/``Retrying`` -> ``Submitted`` in ``job_id``, if ``batch`` still holds it."""
        return await self._transition(
            ref,
            lambda row: row.state in WAITING_STATES and row.batch == batch,
            lambda row: source_fields(
                state=SourceState.SUBMITTED,
                now=now,
                job_id=job_id,
                display_name=display_name,
                error_code="",
                batch="",
                submissions=row.submissions + 1,
                warning=warning,
            ),
        )
