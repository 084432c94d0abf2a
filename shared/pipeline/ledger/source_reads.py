"""Source rows read back: one version, one path, a page, a key range (no writes here)."""

from __future__ import annotations

import datetime as dt
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
from shared.pipeline.ledger.records import SourceRecord, SourceState
from shared.pipeline.ledger.table import TableAccess


class SourceReads(TableAccess):
    """Queries of source rows, for the stages and the status API."""

    async def get_source_at(self, partition: str, row: str) -> SourceRecord | None:
        """The source row with these keys, if any (a queue entry knows only the keys)."""
        entity = await self._get(partition, row)
        return SourceRecord.from_entity(entity) if entity is not None else None

    async def get_source(self, ref: SourceRef) -> SourceRecord | None:
        """The source row of ``ref``, if any."""
        entity = await self._get(ref.partition_key, ref.row_key)
        return SourceRecord.from_entity(entity) if entity is not None else None

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
