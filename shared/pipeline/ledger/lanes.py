"""Moving a queued version between lanes: from the fast group back to its batch group."""

from __future__ import annotations

import datetime as dt

from shared.pipeline.ledger.keys import SourceRef
from shared.pipeline.ledger.records import SourceRecord, SourceState, source_fields
from shared.pipeline.ledger.sources import SourceRows


class LaneRows(SourceRows):
    """The submitter's fast lane for queued versions (manifest files routed ``fast``)."""

    async def hand_back(
        self,
        ref: SourceRef,
        *,
        batch: str,
        group: str,
        now: dt.datetime,
        reason: str,
    ) -> SourceRecord | None:
        """A version the fast lane took (as ``batch``) -> queued in batch ``group``.

        The caller has written its entry in ``group`` first. None if ``batch`` no longer
        holds the row (it moved on meanwhile).
        """
        return await self._transition(
            ref,
            lambda row: row.state is SourceState.QUEUED and row.batch == batch,
            lambda row: source_fields(
                now=now,
                group=group,
                batch="",
                route="batch",
                history=row.with_history("FellBackToBatch", reason, now=now),
            ),
        )
