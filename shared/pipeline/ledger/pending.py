"""The pending index: one ``active`` row per source version someone must still move on.

A claimed version (``Received``) and a version waiting to be submitted again
(``Retrying``) each have an index row, so the sweep finds them with one range query
instead of scanning every source row ever written. The index only points: the source row
decides. It is written *before* the state it indexes (create, then the source row), so
there is never a pending row without an index; an index whose row is missing or no longer
pending is dropped by the sweep.
"""

from __future__ import annotations

import datetime as dt

from shared.pipeline.ledger.keys import (
    ACTIVE_PARTITION,
    PENDING_PREFIX,
    SourceRef,
    digest,
)
from shared.pipeline.ledger.records import PendingIndexRow, SourceKind, SourceRecord, as_utc
from shared.pipeline.ledger.table import TableAccess
from shared.redact import get_logger

_log = get_logger(__name__)


def pending_row_key(partition: str, row: str) -> str:
    """``pending|<hash of the source keys>``."""
    return f"{PENDING_PREFIX}{digest(partition + '|' + row, 40)}"


class PendingIndex(TableAccess):
    """Index rows of pending source versions (``Received``, ``Retrying``)."""

    async def ensure_pending(
        self, ref: SourceRef, kind: SourceKind, *, due_at: dt.datetime
    ) -> None:
        """Point the index at ``ref``'s row, due for a look at ``due_at`` (an upsert)."""
        await self._upsert(
            {
                "PartitionKey": ACTIVE_PARTITION,
                "RowKey": pending_row_key(ref.partition_key, ref.row_key),
                "SourcePartition": ref.partition_key,
                "SourceRow": ref.row_key,
                "Kind": kind.value,
                "Container": ref.container,
                "Path": ref.path,
                "DueAt": due_at,
            }
        )

    async def drop_pending(self, record: SourceRecord) -> None:
        """Remove the index row of a version that is no longer pending; never raises."""
        # Unconditional on purpose: the version left its pending state, and a version that
        # becomes pending again writes a new index row first.
        ref = record.ref
        try:
            await self._delete(ACTIVE_PARTITION, pending_row_key(ref.partition_key, ref.row_key))
        except Exception:  # the sweep drops a leftover index row; never fail a transition
            _log.warning("could not delete the pending index of %s", ref.display)

    async def due_pending(self, now: dt.datetime, *, limit: int) -> list[PendingIndexRow]:
        """Index rows due at ``now``, oldest first as far as the table orders them."""
        entities = await self._active_until(PENDING_PREFIX, "DueAt", now, limit=limit)
        return [
            PendingIndexRow(
                row_key=str(e["RowKey"]),
                row_etag=str(e.metadata.get("etag") or ""),
                partition=str(e["SourcePartition"]),
                source_row=str(e["SourceRow"]),
                kind=SourceKind(e.get("Kind") or SourceKind.AUDIO),
                container=str(e["Container"]),
                path=str(e["Path"]),
                due_at=as_utc(e.get("DueAt")),
            )
            for e in entities
        ]

    async def source_of(self, index: PendingIndexRow) -> SourceRecord | None:
        """The source row an index row points at."""
        entity = await self._get(index.partition, index.source_row)
        return SourceRecord.from_entity(entity) if entity is not None else None

    async def drop_index(self, index: PendingIndexRow) -> None:
        """Delete an index row whose version is not pending (unless it changed meanwhile)."""
        await self._delete(ACTIVE_PARTITION, index.row_key, index.row_etag)
