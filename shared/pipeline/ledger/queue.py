"""The submission queue: groups of versions that can share a job, and batches being sent.

* ``groups / <group id>`` — one row per group (same job options and destination), holding
  the options every member shares. Upserted on every enqueue, so a group that is being
  dropped because it ran empty notices a new member (its ETag changed).
* ``queue|<group id> / <due ticks>|<source digest>`` — one entry per queued version, in
  the order it is due (enqueue time, or the retry time after a transient failure). The
  submitter reads a group's due entries with one range query, ``limit`` rows, however
  long the queue is; it never scans the ledger.
* ``active / batch|<id>`` — a job being submitted: its members, written before any of
  them is assigned and before Speech is called, so a crash at any point is resumed with
  the same members and the same display name.

Entries are written before the source row becomes ``Queued`` and dropped after it left,
like the pending index: a queued row always has an entry; an entry whose row moved on is
dropped by the submitter when it meets it.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from shared.pipeline.ledger.job_records import BatchRecord, JobSource
from shared.pipeline.ledger.keys import (
    ACTIVE_PARTITION,
    BATCH_PREFIX,
    GROUPS_PARTITION,
    QUEUE_PARTITION_PREFIX,
    SourceRef,
    digest,
    key_upper_bound,
)
from shared.pipeline.ledger.records import GroupRow, QueueEntry, as_utc, pack, unpack
from shared.pipeline.ledger.table import TableAccess

#: Ticks (100 ns since 0001-01-01) make due times sort as text, 19 digits wide.
_EPOCH = dt.datetime(1, 1, 1, tzinfo=dt.UTC)


def _ticks(moment: dt.datetime) -> str:
    delta = moment - _EPOCH
    return f"{(delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10:019d}"


def queue_partition(group: str) -> str:
    """``queue|<group id>``."""
    return f"{QUEUE_PARTITION_PREFIX}{group}"


def entry_row_key(ref: SourceRef, due_at: dt.datetime) -> str:
    """``<due ticks>|<digest of the source keys>``: due order, one per version and due time."""
    return f"{_ticks(due_at)}|{digest(ref.partition_key + '|' + ref.row_key, 32)}"


class QueueRows(TableAccess):
    """Queue groups, their entries, and batches being submitted."""

    async def enqueue(
        self,
        ref: SourceRef,
        *,
        group: str,
        key: dict[str, Any],
        due_at: dt.datetime,
        now: dt.datetime,
    ) -> None:
        """Put ``ref`` in ``group``'s queue, due at ``due_at`` (the group row first)."""
        await self._upsert(
            {
                "PartitionKey": GROUPS_PARTITION,
                "RowKey": group,
                "Key": json.dumps(key, sort_keys=True),
                "LastEnqueuedAt": now,
            }
        )
        await self._upsert(
            {
                "PartitionKey": queue_partition(group),
                "RowKey": entry_row_key(ref, due_at),
                "SourcePartition": ref.partition_key,
                "SourceRow": ref.row_key,
                "DueAt": due_at,
                "EnqueuedAt": now,
            }
        )

    async def groups(self, *, limit: int) -> list[GroupRow]:
        """Every queue group (a handful: one per distinct set of job options)."""
        entities, _ = await self._query_page(
            "PartitionKey eq @pk", {"pk": GROUPS_PARTITION}, limit=limit
        )
        return [
            GroupRow(
                group=str(e["RowKey"]),
                key=json.loads(e.get("Key") or "{}"),
                last_enqueued_at=as_utc(e.get("LastEnqueuedAt")),
                row_etag=str(e.metadata.get("etag") or ""),
            )
            for e in entities
        ]

    async def due_entries(self, group: str, now: dt.datetime, *, limit: int) -> list[QueueEntry]:
        """The group's entries due at ``now``, oldest due first, at most ``limit``."""
        entities, _ = await self._query_page(
            "PartitionKey eq @pk and RowKey lt @hi",
            {"pk": queue_partition(group), "hi": key_upper_bound(_ticks(now))},
            limit=limit,
            max_pages=max(1, limit // 1000 + 1),
        )
        return [
            QueueEntry(
                group=group,
                row_key=str(e["RowKey"]),
                source_partition=str(e["SourcePartition"]),
                source_row=str(e["SourceRow"]),
                due_at=as_utc(e.get("DueAt")) or now,
                enqueued_at=as_utc(e.get("EnqueuedAt")) or now,
            )
            for e in entities
        ]

    async def queued_count(self, group: str, *, limit: int) -> int:
        """Entries in the group, due or not, counted up to ``limit``."""
        entities, _ = await self._query_page(
            "PartitionKey eq @pk", {"pk": queue_partition(group)}, limit=limit, select=["RowKey"]
        )
        return len(entities)

    async def drop_entries(self, entries: list[QueueEntry]) -> None:
        """Delete entries (in transactions of 100 within their group's partition)."""
        from azure.data.tables import TransactionOperation

        by_group: dict[str, list[QueueEntry]] = {}
        for entry in entries:
            by_group.setdefault(entry.group, []).append(entry)
        for group, members in by_group.items():
            partition = queue_partition(group)
            for start in range(0, len(members), 100):
                operations = [
                    (
                        TransactionOperation.DELETE,
                        {"PartitionKey": partition, "RowKey": entry.row_key},
                    )
                    for entry in members[start : start + 100]
                ]
                await self._transact(operations)

    async def drop_group(self, group: GroupRow) -> bool:
        """Remove an empty group's row, unless someone enqueued meanwhile (its ETag moved)."""
        return await self._delete(GROUPS_PARTITION, group.group, group.row_etag)

    # -- batches ----------------------------------------------------------------------------

    async def create_batch(self, batch: BatchRecord) -> bool:
        """Record a batch before its members are assigned; False if it exists already."""
        entity: dict[str, Any] = {
            "PartitionKey": ACTIVE_PARTITION,
            "RowKey": f"{BATCH_PREFIX}{batch.batch_id}",
            "Group": batch.group,
            "DisplayName": batch.display_name,
            "CreatedAt": batch.created_at,
            **pack([s.to_json() for s in batch.sources], "Sources"),
        }
        etag = await self._create(entity)
        if etag is None:
            return False
        batch.row_etag = etag
        return True

    async def stale_batches(self, cutoff: dt.datetime, *, limit: int) -> list[BatchRecord]:
        """Batches created at or before ``cutoff`` that no tick finished."""
        entities = await self._active_until(BATCH_PREFIX, "CreatedAt", cutoff, limit=limit)
        return [
            BatchRecord(
                batch_id=str(e["RowKey"])[len(BATCH_PREFIX) :],
                group=str(e.get("Group") or ""),
                display_name=str(e.get("DisplayName") or ""),
                sources=[JobSource.from_json(item) for item in unpack(e, "Sources") or []],
                created_at=as_utc(e.get("CreatedAt")) or cutoff,
                row_etag=str(e.metadata.get("etag") or ""),
            )
            for e in entities
        ]

    async def delete_batch(self, batch: BatchRecord) -> None:
        """The batch is a job now (or came to nothing): its row goes."""
        await self._delete(ACTIVE_PARTITION, f"{BATCH_PREFIX}{batch.batch_id}")
