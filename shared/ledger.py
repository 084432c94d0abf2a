"""The job ledger: which blob version became which Speech job, on Azure Table Storage.

Layout (one table, ``settings.ledger_table``)::

    PartitionKey     RowKey                                  what
    src|<container>  <enc(path)>|<enc(etag)>[|m<origin>]     one source blob version (+ request)
    active           job|<job id>                            a job still being polled
    active           claim|<hash of the source keys>         a claim not yet resolved

* **Source rows** are permanent: the history the status API reads. ``enc`` percent-encodes
  the characters Table Storage forbids in keys (``/ \\ # ?``, control characters) plus ``%``
  and the separator ``|``, one character at a time, so the encoded form of a path prefix is
  a prefix of the encoded path and prefix queries are key-range scans. The raw path is a
  property. Paths too long for a key keep their first :data:`MAX_KEY_PATH_UNITS` units and a
  hash. A file named by a manifest gets ``|m<hash of the manifest version>``: the same
  audio asked for again by a manifest (another destination, other options) is another
  request, not a duplicate of the per-file upload.
* **The ``active`` partition** holds only what is in flight: job rows from submission until
  the poller has finished them (then they are deleted; the source rows keep the record),
  and an index row per open claim so the poller can find abandoned claims without
  scanning every source row ever written.

Every write is conditional: create-if-absent, or merge with the ETag read before
(``MatchConditions.IfNotModified``), so two instances can never both act on one row.
The sync SDK runs in worker threads and is imported lazily (cold start).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from shared.speech.redact import get_logger

if TYPE_CHECKING:
    from azure.data.tables import TableClient

_log = get_logger(__name__)

ACTIVE_PARTITION = "active"
SOURCE_PARTITION_PREFIX = "src|"
JOB_PREFIX = "job|"
CLAIM_PREFIX = "claim|"
#: Separator inside source row keys; encoded wherever it occurs in a path or ETag.
KEY_SEPARATOR = "|"
#: Table Storage keys are at most 1 KiB of UTF-16 (512 units); the path gets this much.
MAX_KEY_PATH_UNITS = 400
#: Longest error message kept on a row (string properties may hold 32 K characters).
MAX_MESSAGE_CHARS = 4000
#: Binary properties hold at most 64 KiB; packed lists are split into chunks of this size.
_CHUNK_BYTES = 60_000
#: An entity may hold 1 MiB; packed data is kept well below, beside the other properties.
MAX_PACKED_BYTES = 800_000

_KEY_ESCAPES = frozenset("/\\#?%|")


class SourceState(StrEnum):
    """Where a source blob version is in the pipeline."""

    #: Claimed by an intake; no job recorded yet.
    RECEIVED = "Received"
    #: A Speech job holds it (``JobId``).
    SUBMITTED = "Submitted"
    #: Outputs written.
    SUCCEEDED = "Succeeded"
    #: The job or this file failed, got stuck or vanished; an error report says why.
    FAILED = "Failed"
    #: Not accepted (not audio, too large, bad options or manifest); an error report says why.
    REJECTED = "Rejected"


TERMINAL_STATES = frozenset({SourceState.SUCCEEDED, SourceState.FAILED, SourceState.REJECTED})


class SourceKind(StrEnum):
    """What a source row stands for."""

    AUDIO = "audio"
    MANIFEST = "manifest"
    MANIFEST_FILE = "manifest-file"


# ----------------------------------------------------------------------------------- keys


def encode_key_part(text: str) -> str:
    """``text`` safe inside a Table Storage key; char-wise, so prefixes stay prefixes."""
    out = []
    for char in text:
        code = ord(char)
        if char in _KEY_ESCAPES or code < 0x20 or 0x7F <= code <= 0x9F:
            out.append("".join(f"%{byte:02X}" for byte in char.encode("utf-8")))
        else:
            out.append(char)
    return "".join(out)


def _utf16_units(text: str) -> int:
    return sum(2 if ord(char) > 0xFFFF else 1 for char in text)


def _clip_units(text: str, units: int) -> str:
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > units:
            return text[:index]
    return text


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def path_key(path: str) -> str:
    """The key form of a blob path: encoded, and clipped with a hash when too long."""
    encoded = encode_key_part(path)
    if _utf16_units(encoded) <= MAX_KEY_PATH_UNITS:
        return encoded
    return f"{_clip_units(encoded, MAX_KEY_PATH_UNITS)}~{_digest(path, 24)}"


def source_partition(container: str) -> str:
    """Partition of the source rows of one container."""
    return f"{SOURCE_PARTITION_PREFIX}{container}"


def key_upper_bound(prefix: str) -> str:
    """The smallest string greater than every string that starts with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


@dataclass(frozen=True)
class SourceRef:
    """One source blob version, as one request: container, path, ETag and origin.

    ``origin`` is empty for a blob uploaded on its own, and identifies the manifest
    version for a file a manifest names.
    """

    container: str
    path: str
    etag: str
    origin: str = ""

    @property
    def partition_key(self) -> str:
        """``src|<container>``."""
        return source_partition(self.container)

    @property
    def row_key(self) -> str:
        """``<enc(path)>|<enc(etag)>`` plus ``|m<hash>`` for manifest-origin requests."""
        key = f"{path_key(self.path)}{KEY_SEPARATOR}{encode_key_part(self.etag)}"
        if self.origin:
            key += f"{KEY_SEPARATOR}m{_digest(self.origin, 16)}"
        return key

    @property
    def display(self) -> str:
        """``container/path@etag`` for logs and reports."""
        return f"{self.container}/{self.path}@{self.etag}"


# -------------------------------------------------------------------------------- records


def _as_utc(value: Any) -> dt.datetime | None:
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _clip_message(message: str | None) -> str:
    text = message or ""
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def pack(value: Any, name: str) -> dict[str, bytes]:
    """``value`` as compressed JSON in binary properties ``<name>0``, ``<name>1``, ..."""
    data = zlib.compress(json.dumps(value, separators=(",", ":")).encode("utf-8"), 6)
    if len(data) > MAX_PACKED_BYTES:
        raise ValueError(f"{name} is {len(data)} bytes packed; a row holds {MAX_PACKED_BYTES}")
    chunks = [data[i : i + _CHUNK_BYTES] for i in range(0, len(data), _CHUNK_BYTES)] or [b""]
    return {f"{name}{index}": chunk for index, chunk in enumerate(chunks)}


def packed_size(value: Any) -> int:
    """Bytes :func:`pack` would store for ``value``."""
    return len(zlib.compress(json.dumps(value, separators=(",", ":")).encode("utf-8"), 6))


def unpack(entity: Mapping[str, Any], name: str) -> Any:
    """The value :func:`pack` stored under ``name``; None when there is none."""
    chunks = []
    index = 0
    while f"{name}{index}" in entity:
        chunk = entity[f"{name}{index}"]
        chunks.append(base64.b64decode(chunk) if isinstance(chunk, str) else bytes(chunk))
        index += 1
    if not chunks or not any(chunks):
        return None
    return json.loads(zlib.decompress(b"".join(chunks)))


@dataclass
class SourceRecord:
    """A source row as read from the ledger (``row_etag`` is the entity's ETag)."""

    ref: SourceRef
    kind: SourceKind
    state: SourceState
    row_etag: str
    received_at: dt.datetime | None = None
    claimed_at: dt.datetime | None = None
    claim_released: bool = False
    attempts: int = 0
    submitted_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    size: int | None = None
    job_id: str | None = None
    display_name: str | None = None
    options: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None
    report_path: str | None = None
    output_container: str | None = None
    output_base: str | None = None
    outputs: list[str] = field(default_factory=list)
    manifest: str | None = None
    destination_prefix: str | None = None
    job_ids: list[str] = field(default_factory=list)
    file_count: int | None = None
    rejected_count: int | None = None
    #: For a manifest row: the resolved file list, fixed by the first attempt.
    plan: Any = None

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> SourceRecord:
        """Parse a source entity."""
        meta = getattr(entity, "metadata", {}) or {}

        def text(name: str) -> str | None:
            value = entity.get(name)
            return str(value) if value not in (None, "") else None

        def listed(name: str) -> list[str]:
            raw = entity.get(name)
            return [str(item) for item in json.loads(raw)] if raw else []

        options = entity.get("Options")
        return cls(
            ref=SourceRef(
                container=str(entity["Container"]),
                path=str(entity["Path"]),
                etag=str(entity["ETag"]),
                origin=str(entity.get("Origin") or ""),
            ),
            kind=SourceKind(entity.get("Kind") or SourceKind.AUDIO),
            state=SourceState(entity["State"]),
            row_etag=str(meta.get("etag") or ""),
            received_at=_as_utc(entity.get("ReceivedAt")),
            claimed_at=_as_utc(entity.get("ClaimedAt")),
            claim_released=bool(entity.get("ClaimReleased")),
            attempts=int(entity.get("Attempts") or 0),
            submitted_at=_as_utc(entity.get("SubmittedAt")),
            completed_at=_as_utc(entity.get("CompletedAt")),
            updated_at=_as_utc(entity.get("UpdatedAt")),
            size=int(entity["Size"]) if entity.get("Size") is not None else None,
            job_id=text("JobId"),
            display_name=text("DisplayName"),
            options=json.loads(options) if options else None,
            error_code=text("ErrorCode"),
            error_message=text("ErrorMessage"),
            report_path=text("ReportPath"),
            output_container=text("OutputContainer"),
            output_base=text("OutputBase"),
            outputs=listed("Outputs"),
            manifest=text("Manifest"),
            destination_prefix=text("DestinationPrefix"),
            job_ids=listed("JobIds"),
            file_count=int(entity["FileCount"]) if entity.get("FileCount") is not None else None,
            rejected_count=(
                int(entity["RejectedCount"]) if entity.get("RejectedCount") is not None else None
            ),
            plan=unpack(entity, "Plan"),
        )


def source_fields(
    *,
    state: SourceState | None = None,
    now: dt.datetime | None = None,
    job_id: str | None = None,
    display_name: str | None = None,
    options: Mapping[str, Any] | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    report_path: str | None = None,
    output_container: str | None = None,
    output_base: str | None = None,
    outputs: list[str] | None = None,
) -> dict[str, Any]:
    """Properties to merge into a source row; None leaves a property unchanged.

    Error fields are written together: giving ``error_code`` also overwrites the message.
    """
    changes: dict[str, Any] = {}
    if state is not None:
        changes["State"] = state.value
    if now is not None:
        changes["UpdatedAt"] = now
        if state is SourceState.SUBMITTED:
            changes["SubmittedAt"] = now
        elif state in TERMINAL_STATES:
            changes["CompletedAt"] = now
    if job_id is not None:
        changes["JobId"] = job_id
    if display_name is not None:
        changes["DisplayName"] = display_name
    if options is not None:
        changes["Options"] = json.dumps(dict(options), sort_keys=True)
    if error_code is not None:
        changes["ErrorCode"] = error_code
        changes["ErrorMessage"] = _clip_message(error_message)
    if report_path is not None:
        changes["ReportPath"] = report_path
    if output_container is not None:
        changes["OutputContainer"] = output_container
    if output_base is not None:
        changes["OutputBase"] = output_base
    if outputs is not None:
        changes["Outputs"] = json.dumps(outputs)
    return changes


@dataclass(frozen=True)
class JobSource:
    """One input of a job: how to recognise its result and where its row and outputs are."""

    #: The blob URL without its query (what the service reports as the result's source).
    url: str
    container: str
    path: str
    etag: str
    origin: str
    #: Output blob name without extension: ``<destination prefix><path>``.
    output_base: str

    @property
    def ref(self) -> SourceRef:
        """The ledger key of this source."""
        return SourceRef(self.container, self.path, self.etag, self.origin)

    def to_json(self) -> list[str]:
        """Compact form for the job row."""
        return [self.url, self.container, self.path, self.etag, self.origin, self.output_base]

    @classmethod
    def from_json(cls, item: list[str]) -> JobSource:
        """Inverse of :meth:`to_json`."""
        url, container, path, etag, origin, output_base = item
        return cls(url, container, path, etag, origin, output_base)


@dataclass
class JobRecord:
    """A job row: a submitted Speech job the poller follows until it is finished."""

    job_id: str
    display_name: str
    kind: SourceKind
    submitted_at: dt.datetime
    next_poll_at: dt.datetime
    poll_interval_seconds: float
    sources: list[JobSource]
    output_container: str
    last_status: str = "NotStarted"
    polls: int = 0
    errors: int = 0
    last_error: str | None = None
    last_polled_at: dt.datetime | None = None
    manifest: str | None = None
    row_etag: str = ""

    @property
    def row_key(self) -> str:
        """``job|<id>``."""
        return f"{JOB_PREFIX}{self.job_id}"

    def to_entity(self) -> dict[str, Any]:
        """The full entity for creation."""
        entity: dict[str, Any] = {
            "PartitionKey": ACTIVE_PARTITION,
            "RowKey": self.row_key,
            "JobId": self.job_id,
            "DisplayName": self.display_name,
            "Kind": self.kind.value,
            "State": "Active",
            "SubmittedAt": self.submitted_at,
            "NextPollAt": self.next_poll_at,
            "PollIntervalSeconds": float(self.poll_interval_seconds),
            "LastStatus": self.last_status,
            "Polls": self.polls,
            "Errors": self.errors,
            "SourceCount": len(self.sources),
            "OutputContainer": self.output_container,
        }
        if self.manifest:
            entity["Manifest"] = self.manifest
        entity.update(pack([s.to_json() for s in self.sources], "Sources"))
        return entity

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> JobRecord:
        """Parse a job entity."""
        meta = getattr(entity, "metadata", {}) or {}
        submitted = _as_utc(entity.get("SubmittedAt")) or dt.datetime.now(dt.UTC)
        return cls(
            job_id=str(entity["JobId"]),
            display_name=str(entity.get("DisplayName") or ""),
            kind=SourceKind(entity.get("Kind") or SourceKind.AUDIO),
            submitted_at=submitted,
            next_poll_at=_as_utc(entity.get("NextPollAt")) or submitted,
            poll_interval_seconds=float(entity.get("PollIntervalSeconds") or 0.0),
            sources=[JobSource.from_json(item) for item in unpack(entity, "Sources") or []],
            output_container=str(entity.get("OutputContainer") or ""),
            last_status=str(entity.get("LastStatus") or "NotStarted"),
            polls=int(entity.get("Polls") or 0),
            errors=int(entity.get("Errors") or 0),
            last_error=str(entity["LastError"]) if entity.get("LastError") else None,
            last_polled_at=_as_utc(entity.get("LastPolledAt")),
            manifest=str(entity["Manifest"]) if entity.get("Manifest") else None,
            row_etag=str(meta.get("etag") or ""),
        )


@dataclass
class Claim:
    """This invocation's hold on a source row (state ``Received``) until it resolves it."""

    record: SourceRecord
    #: True when an abandoned or released claim was taken over (an earlier attempt may
    #: have submitted a job before it failed).
    takeover: bool
    #: ``intake_max_attempts`` when the claim was made.
    max_attempts: int

    @property
    def exhausted(self) -> bool:
        """True when this attempt is beyond the allowed number: give up, do not retry."""
        return self.record.attempts > self.max_attempts


@dataclass(frozen=True)
class ClaimIndex:
    """An ``active`` row pointing at a source row whose claim is not resolved yet."""

    row_key: str
    row_etag: str
    partition: str
    source_row: str
    kind: SourceKind
    container: str
    path: str
    claimed_at: dt.datetime | None


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
                "ErrorMessage": _clip_message(message),
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
            if _utf16_units(encoded) > MAX_KEY_PATH_UNITS:
                # Keys keep only the start of very long paths: range on that, filter exactly.
                encoded = _clip_units(encoded, MAX_KEY_PATH_UNITS)
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
        return f"{CLAIM_PREFIX}{_digest(record.ref.partition_key + '|' + record.ref.row_key, 40)}"

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
                claimed_at=_as_utc(e.get("ClaimedAt")),
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
