"""Table access: the conditional reads and writes every ledger row family is built on.

Every write is conditional (create-if-absent, or merge/delete with the ETag read before)
except the pending index's upsert, which only points at a row that decides for itself.
The sync SDK runs in worker threads and is imported lazily (cold start). Every call to the
service is a span (operation and table; never a key or an entity).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared.pipeline.ledger.keys import ACTIVE_PARTITION, key_upper_bound
from shared.telemetry import storage_span

if TYPE_CHECKING:
    from azure.data.tables import TableClient
    from opentelemetry.trace import Span


class TableAccess:
    """The ledger table, async over the sync client."""

    def __init__(self, table: TableClient) -> None:
        self.table = table

    def _span(self, operation: str) -> AbstractContextManager[Span]:
        return storage_span(
            "table",
            operation,
            resource=self.table.table_name,
            server=urlsplit(self.table.url).hostname,
        )

    async def _get(self, partition: str, row: str) -> Any | None:
        from azure.core.exceptions import ResourceNotFoundError

        # "Not found" is an answer here, not a failed call: the span ends normally.
        with self._span("get_entity"):
            try:
                return await asyncio.to_thread(self.table.get_entity, partition, row)
            except ResourceNotFoundError:
                return None

    async def _create(self, entity: dict[str, Any]) -> str | None:
        """Create ``entity``; its new ETag, or None if a row with its keys exists."""
        from azure.core.exceptions import ResourceExistsError

        # A lost race (the row exists) or a changed ETag is a conditional write's answer.
        with self._span("create_entity"):
            try:
                meta = await asyncio.to_thread(self.table.create_entity, entity)
            except ResourceExistsError:
                return None
        return str(meta.get("etag") or "")

    async def _merge(
        self, partition: str, row: str, changes: Mapping[str, Any], etag: str
    ) -> str | None:
        """Merge ``changes`` if the row still has ``etag``; the new ETag, or None if not."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        entity = {"PartitionKey": partition, "RowKey": row, **changes}
        with self._span("merge_entity"):
            try:
                meta = await asyncio.to_thread(
                    self.table.update_entity,
                    entity,
                    mode=UpdateMode.MERGE,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                return None
        return str(meta.get("etag") or "")

    async def _delete(self, partition: str, row: str, etag: str | None = None) -> bool:
        """Delete a row (only if it still has ``etag``, when given); False if not deleted."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError

        kwargs: dict[str, Any] = {}
        if etag:
            kwargs = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        with self._span("delete_entity"):
            try:
                # Deleting a row that is gone already succeeds in this SDK.
                await asyncio.to_thread(lambda: self.table.delete_entity(partition, row, **kwargs))
            except ResourceModifiedError:
                return False
        return True

    async def _query(self, query: str, parameters: Mapping[str, Any], *, limit: int) -> list[Any]:
        def run() -> list[Any]:
            found: list[Any] = []
            pages = self.table.query_entities(
                query, parameters=dict(parameters), results_per_page=min(limit, 1000)
            )
            for entity in pages:
                found.append(entity)
                if len(found) >= limit:
                    break
            return found

        with self._span("query_entities"):
            return await asyncio.to_thread(run)

    async def _upsert(self, entity: dict[str, Any]) -> None:
        """Create or merge ``entity`` unconditionally (only for rows that merely point)."""
        from azure.data.tables import UpdateMode

        with self._span("upsert_entity"):
            await asyncio.to_thread(self.table.upsert_entity, entity, mode=UpdateMode.MERGE)

    async def _transact(self, operations: list[Any]) -> None:
        """One entity-group transaction (same partition, at most 100 operations)."""
        with self._span("submit_transaction"):
            await asyncio.to_thread(self.table.submit_transaction, operations)

    async def _active_until(
        self, prefix: str, column: str, moment: Any, *, limit: int
    ) -> list[Any]:
        """``active`` rows whose key starts with ``prefix`` and ``column`` is at most ``moment``."""
        entities, _ = await self._query_page(
            f"PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi and {column} le @until",
            {"pk": ACTIVE_PARTITION, "lo": prefix, "hi": key_upper_bound(prefix), "until": moment},
            limit=limit,
        )
        return entities

    async def _query_page(
        self,
        query: str,
        parameters: Mapping[str, Any],
        *,
        limit: int,
        continuation: Any = None,
        select: list[str] | None = None,
        max_pages: int = 5,
    ) -> tuple[list[Any], Any]:
        """Up to ``limit`` rows from ``continuation`` on, and the token for the rest (or None).

        A server-side filter may return short pages: at most ``max_pages`` requests.
        """

        def run() -> tuple[list[Any], Any]:
            found: list[Any] = []
            token: Any = continuation
            for _ in range(max_pages):
                pager: Any = self.table.query_entities(
                    query,
                    parameters=dict(parameters),
                    results_per_page=min(1000, limit - len(found)),
                    select=select,
                ).by_page(continuation_token=token)
                page = next(pager, None)
                if page is not None:
                    found.extend(page)
                token = pager.continuation_token
                if not token or len(found) >= limit:
                    break
            return found, token or None

        with self._span("query_entities"):
            return await asyncio.to_thread(run)
