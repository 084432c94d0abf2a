"""Sweep cursors: where a container's reconciliation pass stands, kept between ticks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from shared.pipeline.ledger.keys import ACTIVE_PARTITION, CURSOR_PREFIX
from shared.pipeline.ledger.records import as_utc
from shared.pipeline.ledger.table import TableAccess


@dataclass
class SweepCursor:
    """One container's pass: the listing marker to resume from and the last name seen."""

    container: str
    #: The service's continuation marker; None at the start of a pass.
    marker: str | None = None
    #: The last blob name of the previous page ("" at the start of a pass): rows between it
    #: and this page's last name whose blob is not listed were deleted.
    last_name: str = ""
    pass_started_at: dt.datetime | None = None
    #: Completed passes over the container.
    passes: int = 0
    row_etag: str = ""


class SweepCursors(TableAccess):
    """Reads and conditional writes of sweep cursors."""

    @staticmethod
    def _row(container: str) -> str:
        return f"{CURSOR_PREFIX}{container}"

    async def get_cursor(self, container: str) -> SweepCursor:
        """The cursor of ``container`` (a fresh one when none is stored yet)."""
        entity = await self._get(ACTIVE_PARTITION, self._row(container))
        if entity is None:
            return SweepCursor(container)
        meta = getattr(entity, "metadata", {}) or {}
        return SweepCursor(
            container=container,
            marker=str(entity["Marker"]) if entity.get("Marker") else None,
            last_name=str(entity.get("LastName") or ""),
            pass_started_at=as_utc(entity.get("PassStartedAt")),
            passes=int(entity.get("Passes") or 0),
            row_etag=str(meta.get("etag") or ""),
        )

    async def save_cursor(self, cursor: SweepCursor) -> bool:
        """Store ``cursor`` if nobody moved it since it was read; False if someone did."""
        fields = {
            "Marker": cursor.marker or "",
            "LastName": cursor.last_name,
            "PassStartedAt": cursor.pass_started_at,
            "Passes": cursor.passes,
        }
        entity = {"PartitionKey": ACTIVE_PARTITION, "RowKey": self._row(cursor.container)}
        if not cursor.row_etag:
            etag = await self._create({**entity, **fields})
        else:
            etag = await self._merge(
                ACTIVE_PARTITION, self._row(cursor.container), fields, cursor.row_etag
            )
        if etag is None:
            return False
        cursor.row_etag = etag
        return True
