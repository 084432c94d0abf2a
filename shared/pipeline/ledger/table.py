"""Table access: every ledger read and conditional write (async over the sync client)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared.pipeline.ledger.keys import (
    ACTIVE_PARTITION,
    CLAIM_PREFIX,
    JOB_PREFIX,
    KEY_SEPARATOR,
    MAX_KEY_PATH_UNITS,
    SourceRef,
    clip_units,
    digest,
    encode_key_part,
    key_upper_bound,
    path_key,
    source_partition,
    utf16_units,
)
from shared.pipeline.ledger.records import (
    TERMINAL_STATES,
    Claim,
    ClaimIndex,
    JobRecord,
    SourceKind,
    SourceRecord,
    SourceState,
    as_utc,
    clip_message,
    pack,
)
from shared.redact import get_logger

if TYPE_CHECKING:
    from azure.data.tables import TableClient

_log = get_logger(__name__)


# --------------------------------------------------------------------------------- ledger


class Ledger:
    """Conditional reads and writes of the ledger table (async over the sync client)."""

    def __init__(self, table: TableClient) -> None:
        self.table = table

    # -- low level ------------------------------------------------------------------------

    async def _get(self, partition: str, row: str) -> Any | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return await asyncio.to_thread(self.table.get_entity, partition, row)
        except ResourceNotFoundError:
            return None

    async def _create(self, entity: dict[str, Any]) -> str | None:
        """Create ``entity``; its new ETag, or None if a row with its keys exists."""
        from azure.core.exceptions import ResourceExistsError

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

        return await asyncio.to_thread(run)

    # -- sources --------------------------------------------------------------------------

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
            "PartitionKey": ref.partition_key,
            "RowKey": ref.row_key,
            "Kind": kind.value,
            "Container": ref.container,
            "Path": ref.path,
            "ETag": ref.etag,
            "Origin": ref.origin,
            "State": SourceState.RECEIVED.value,
            "ReceivedAt": now,
            "ClaimedAt": now,
            "ClaimReleased": False,
            "Attempts": 1,
            "UpdatedAt": now,
            **(extra or {}),
        }
        etag = await self._create(entity)
        if etag is not None:
            record = SourceRecord.from_entity(entity)
            record.row_etag = etag
            await self._ensure_claim_index(record)
            return Claim(record, takeover=False, max_attempts=max_attempts)
        current = await self.get_source(ref)
        if current is None:
            # Source rows are never deleted; a vanished one is an outage: let the caller retry.
            raise RuntimeError(f"ledger row of {ref.display} exists and then does not")
        if current.state is not SourceState.RECEIVED:
            return None
        claimed_at = current.claimed_at or now
        if not current.claim_released and claimed_at > now - stale_after:
            # The holder may have died before it indexed its claim; make sure the
            # poller can find the claim once it is stale (idempotent).
            await self._ensure_claim_index(current)
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
        await self._ensure_claim_index(current)
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
            await self._drop_claim_index(claim.record)
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
            "PartitionKey": ref.partition_key,
            "RowKey": ref.row_key,
            "Kind": kind.value,
            "Container": ref.container,
            "Path": ref.path,
            "ETag": ref.etag,
            "Origin": ref.origin,
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
        self, ref: SourceRef, *, job_id: str, changes: Mapping[str, Any]
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
            if current.job_id and current.job_id != job_id:
                _log.warning("%s belongs to job %s, not %s", ref.display, current.job_id, job_id)
                return None
            fields = {"JobId": job_id, **changes}
            etag = await self._merge(ref.partition_key, ref.row_key, fields, current.row_etag)
            if etag is not None:
                if current.state is SourceState.RECEIVED:
                    await self._drop_claim_index(current)
                return await self.get_source(ref)
        raise RuntimeError(f"{ref.display} kept changing while its job was being finished")

    async def sources_for_path(self, container: str, path: str) -> list[SourceRecord]:
        """Every version and request of one path, newest first."""
        lower = f"{path_key(path)}{KEY_SEPARATOR}"
        entities = await self._query(
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

        def run() -> tuple[list[Any], dict[str, str] | None]:
            found: list[Any] = []
            # The SDK's continuation token is a dict of next keys (typed as str).
            token: Any = continuation
            for _ in range(max_pages):
                pager: Any = self.table.query_entities(
                    query, parameters=parameters, results_per_page=limit - len(found)
                ).by_page(continuation_token=token)
                page = next(pager, None)
                if page is not None:
                    found.extend(page)
                token = pager.continuation_token
                if not token or len(found) >= limit:
                    break
            return found, token or None

        entities, token = await asyncio.to_thread(run)
        records = [SourceRecord.from_entity(e) for e in entities]
        if clip_prefix and prefix:
            records = [r for r in records if r.ref.path.startswith(prefix)]
        return records, token

    # -- claims index ---------------------------------------------------------------------

    @staticmethod
    def _claim_row(record: SourceRecord) -> str:
        return f"{CLAIM_PREFIX}{digest(record.ref.partition_key + '|' + record.ref.row_key, 40)}"

    async def _ensure_claim_index(self, record: SourceRecord) -> None:
        """Create the claim's index row unless it exists (create-if-absent, like all writes).

        The index only points at the source row, which decides: a leftover index row is
        removed by the poller's sweep once it sees the claim resolved.
        """
        await self._create(
            {
                "PartitionKey": ACTIVE_PARTITION,
                "RowKey": self._claim_row(record),
                "SourcePartition": record.ref.partition_key,
                "SourceRow": record.ref.row_key,
                "Kind": record.kind.value,
                "Container": record.ref.container,
                "Path": record.ref.path,
                "ClaimedAt": record.claimed_at or dt.datetime.now(dt.UTC),
            }
        )

    async def _drop_claim_index(self, record: SourceRecord) -> None:
        # Unconditional on purpose: the claim is resolved, so no later claim of this source
        # can need the row (a resolved row is never claimed again).
        try:
            await self._delete(ACTIVE_PARTITION, self._claim_row(record))
        except Exception:  # the sweep removes a leftover index row; never fail a resolve
            _log.warning("could not delete the claim index of %s", record.ref.display)

    async def stale_claims(self, cutoff: dt.datetime, *, limit: int) -> list[ClaimIndex]:
        """Index rows of claims made before ``cutoff`` (candidates for recovery)."""
        entities = await self._query(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi and ClaimedAt le @cutoff",
            {
                "pk": ACTIVE_PARTITION,
                "lo": CLAIM_PREFIX,
                "hi": key_upper_bound(CLAIM_PREFIX),
                "cutoff": cutoff,
            },
            limit=limit,
        )
        return [
            ClaimIndex(
                row_key=str(e["RowKey"]),
                row_etag=str(e.metadata.get("etag") or ""),
                partition=str(e["SourcePartition"]),
                source_row=str(e["SourceRow"]),
                kind=SourceKind(e.get("Kind") or SourceKind.AUDIO),
                container=str(e["Container"]),
                path=str(e["Path"]),
                claimed_at=as_utc(e.get("ClaimedAt")),
            )
            for e in entities
        ]

    async def source_of(self, index: ClaimIndex) -> SourceRecord | None:
        """The source row an index row points at."""
        entity = await self._get(index.partition, index.source_row)
        return SourceRecord.from_entity(entity) if entity is not None else None

    async def drop_index(self, index: ClaimIndex) -> None:
        """Delete an index row whose claim is resolved (unless it was refreshed meanwhile)."""
        await self._delete(ACTIVE_PARTITION, index.row_key, index.row_etag)

    # -- jobs -----------------------------------------------------------------------------

    async def record_job(self, job: JobRecord) -> bool:
        """Create the job row; False if it exists already (a retry recorded it)."""
        etag = await self._create(job.to_entity())
        if etag is None:
            return False
        job.row_etag = etag
        return True

    async def get_job(self, job_id: str) -> JobRecord | None:
        """The job row, if the job is still active."""
        entity = await self._get(ACTIVE_PARTITION, f"{JOB_PREFIX}{job_id}")
        return JobRecord.from_entity(entity) if entity is not None else None

    async def due_jobs(self, now: dt.datetime, *, limit: int) -> list[JobRecord]:
        """Active jobs whose next poll is due at ``now``, at most ``limit``."""
        entities = await self._query(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi and NextPollAt le @now",
            {
                "pk": ACTIVE_PARTITION,
                "lo": JOB_PREFIX,
                "hi": key_upper_bound(JOB_PREFIX),
                "now": now,
            },
            limit=limit,
        )
        return [JobRecord.from_entity(e) for e in entities]

    async def update_job(self, job: JobRecord, changes: Mapping[str, Any]) -> bool:
        """Merge ``changes`` into the job row if nobody changed it since it was read."""
        etag = await self._merge(ACTIVE_PARTITION, job.row_key, changes, job.row_etag)
        if etag is None:
            return False
        job.row_etag = etag
        return True

    async def delete_job(self, job: JobRecord) -> bool:
        """Remove a finished job's row (only the holder of its current ETag may)."""
        return await self._delete(ACTIVE_PARTITION, job.row_key, job.row_etag)
