"""Budget rows: how many Speech requests each short window has used, shared by every timer.

One row per window slot (``active / budget|<slot>``), reused in a ring: a row whose
``WindowStart`` is an older window is reset by the first taker of the new one. Every take
is an ETag-conditional merge, so two instances (or the poller and another timer) never
both spend the same request.
"""

from __future__ import annotations

import datetime as dt

from shared.pipeline.ledger.keys import ACTIVE_PARTITION, BUDGET_PREFIX
from shared.pipeline.ledger.records import as_utc
from shared.pipeline.ledger.table import TableAccess

#: Window slots in the ring; windows older than this many are never read again.
SLOTS = 60
#: Attempts at one take when other takers keep winning the race.
_CONTENDED_ATTEMPTS = 8


class BudgetRows(TableAccess):
    """Conditional counters of Speech requests per window."""

    async def take_budget(
        self, window_start: dt.datetime, slot: int, *, wanted: int, limit: int, pool: str = ""
    ) -> int:
        """Reserve up to ``wanted`` of the window's ``limit`` requests; how many were granted.

        ``pool`` names a quota of its own (``""`` the batch REST API, ``"fast-"`` fast
        transcription): each pool has its own ring of rows.
        """
        row = f"{BUDGET_PREFIX}{pool}{slot % SLOTS:02d}"
        for _ in range(_CONTENDED_ATTEMPTS):
            entity = await self._get(ACTIVE_PARTITION, row)
            if entity is None:
                granted = min(wanted, limit)
                created = await self._create(
                    {
                        "PartitionKey": ACTIVE_PARTITION,
                        "RowKey": row,
                        "WindowStart": window_start,
                        "Used": granted,
                    }
                )
                if created is not None:
                    return granted
                continue
            same_window = as_utc(entity.get("WindowStart")) == window_start
            used = int(entity.get("Used") or 0) if same_window else 0
            granted = max(0, min(wanted, limit - used))
            if granted == 0 and same_window:
                return 0
            etag = str(entity.metadata.get("etag") or "")
            changes = {"WindowStart": window_start, "Used": used + granted}
            if await self._merge(ACTIVE_PARTITION, row, changes, etag) is not None:
                return granted
        return 0  # so contended that waiting for the next window is the polite answer
