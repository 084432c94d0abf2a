"""Source rows: one per blob version and request, moved through its states conditionally.

Every transition is one ETag-conditional merge of the row (re-read and retried when another
writer got in between); the pending index (:mod:`~.pending`) is written before a row
becomes pending and dropped after it leaves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from shared.pipeline.ledger.keys import (
    KEY_SEPARATOR,
    MAX_KEY_PATH_UNITS,
    SourceRef,
    clip_units,
    encode_key_part,
    key_upper_bound,
    path_key,
    source_partition,
    utf16_units,
)
from shared.pipeline.ledger.pending import PendingIndex
from shared.pipeline.ledger.records import (
    TERMINAL_STATES,
    Claim,
    SourceKind,
    SourceRecord,
    SourceState,
    clip_message,
    pack,
    source_fields,
)
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


class SourceRows(PendingIndex):
    """Reads and conditional transitions of source rows."""

    async def get_source_at(self, partition: str, row: str) -> SourceRecord | None:
        """The source row with these keys, if any (a queue entry knows only the keys)."""
        entity = await self._get(partition, row)
        return SourceRecord.from_entity(entity) if entity is not None else None

    async def get_source(self, ref: SourceRef) -> SourceRecord | None:
        """The source row of ``ref``, if any."""
        entity = await self._get(ref.partition_key, ref.row_key)
        return SourceRecord.from_entity(entity) if entity is not None else None

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
        etag = await self._create(entity)
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
        new_etag = await self._merge(ref.partition_key, ref.row_key, changes, current.row_etag)
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
        etag = await self._merge(
            record.ref.partition_key, record.ref.row_key, changes, record.row_etag
        )
        if etag is None:
            return False
        record.row_etag = etag
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
        if await self._create(entity) is not None:
            return True
        current = await self.get_source(ref)
        if current is None or current.state in TERMINAL_STATES:
            return False
        job_id = fields.get("JobId")
        if current.job_id and current.job_id != job_id:
            return False
        etag = await self._merge(ref.partition_key, ref.row_key, fields, current.row_etag)
        return etag is not None

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
            etag = await self._merge(ref.partition_key, ref.row_key, fields, current.row_etag)
            if etag is not None:
                if current.state is SourceState.RECEIVED:
                    await self.drop_pending(current)
                return await self.get_source(ref)
        raise RuntimeError(f"{ref.display} kept changing while its job was being finished")

    async def sources_for_path(self, container: str, path: str) -> list[SourceRecord]:
        """Every version and request of one path, newest first."""
        lower = f"{path_key(path)}{KEY_SEPARATOR}"
        entities, _ = await self._query_page(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi and Path eq @path",
            {
                "pk": source_partition(container),
                "lo": lower,
                "hi": key_upper_bound(lower),
                "path": path,
            },
            limit=1000,
        )
        records = [SourceRecord.from_entity(e) for e in entities]
        oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
        return sorted(records, key=lambda r: r.received_at or oldest, reverse=True)

    async def query_sources(
        self,
        container: str,
        *,
        state: SourceState | None = None,
        prefix: str | None = None,
        limit: int = 50,
        continuation: dict[str, str] | None = None,
        max_pages: int = 5,
    ) -> tuple[list[SourceRecord], dict[str, str] | None]:
        """One page of source rows in key order, and the token for the next page (or None).

        ``prefix`` filters on the path (a key range); ``state`` is a server-side filter,
        so pages may come back short: at most ``max_pages`` requests are made per call.
        """
        clauses = ["PartitionKey eq @pk"]
        parameters: dict[str, Any] = {"pk": source_partition(container)}
        clip_prefix = False
        if prefix:
            encoded = encode_key_part(prefix)
            if utf16_units(encoded) > MAX_KEY_PATH_UNITS:
                # Keys keep only the start of very long paths: range on that, filter exactly.
                encoded = clip_units(encoded, MAX_KEY_PATH_UNITS)
                clip_prefix = True
            clauses.append("RowKey ge @lo and RowKey lt @hi")
            parameters.update(lo=encoded, hi=key_upper_bound(encoded))
        if state is not None:
            clauses.append("State eq @state")
            parameters["state"] = state.value
        query = " and ".join(clauses)
        entities, token = await self._query_page(
            query, parameters, limit=limit, continuation=continuation, max_pages=max_pages
        )
        records = [SourceRecord.from_entity(e) for e in entities]
        if clip_prefix and prefix:
            records = [r for r in records if r.ref.path.startswith(prefix)]
        return records, token

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
            etag = await self._merge(ref.partition_key, ref.row_key, fields, current.row_etag)
            if etag is not None:
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
        ref = record.ref
        return (
            await self._merge(ref.partition_key, ref.row_key, fields, record.row_etag) is not None
        )

    async def sources_in_key_range(
        self, container: str, lower: str, upper: str, *, limit: int
    ) -> list[SourceRecord]:
        """Source rows of ``container`` with ``lower <= RowKey < upper`` (a sweep's join)."""
        entities, _ = await self._query_page(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            {"pk": source_partition(container), "lo": lower, "hi": upper},
            limit=limit,
            max_pages=max(1, limit // 1000 + 1),
        )
        return [SourceRecord.from_entity(e) for e in entities]

    async def page_sources(
        self, container: str, *, limit: int, continuation: dict[str, str] | None
    ) -> tuple[list[SourceRecord], dict[str, str] | None]:
        """The next ``limit`` source rows of ``container`` in key order (a sweep's pass)."""
        entities, token = await self._query_page(
            "PartitionKey eq @pk",
            {"pk": source_partition(container)},
            limit=limit,
            continuation=continuation,
        )
        return [SourceRecord.from_entity(e) for e in entities], token

    async def assign(self, ref: SourceRef, *, batch: str, now: dt.datetime) -> SourceRecord | None:
        """A queued version taken into ``batch`` (the job about to be submitted); None if not.

        Conditional: only a ``Queued`` or ``Retrying`` row that no other batch holds.
        """
        return await self._transition(
            ref,
            lambda row: (
                row.state in (SourceState.QUEUED, SourceState.RETRYING)
                and row.batch in (None, batch)
            ),
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
            lambda row: (
                row.state in (SourceState.QUEUED, SourceState.RETRYING) and row.batch == batch
            ),
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
