"""Typed ledger records: what a source row holds and how it is stored, claims, queue rows."""

from __future__ import annotations

import base64
import datetime as dt
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared.pipeline.ledger.keys import SourceRef

#: Longest error message kept on a row (string properties may hold 32 K characters).
MAX_MESSAGE_CHARS = 4000
#: History entries kept per source row (~200 bytes each; the oldest go first).
HISTORY_LIMIT = 40
#: Binary properties hold at most 64 KiB; packed lists are split into chunks of this size.
_CHUNK_BYTES = 60_000
#: An entity may hold 1 MiB; packed data is kept well below, beside the other properties.
MAX_PACKED_BYTES = 800_000


class SourceState(StrEnum):
    """Where a source blob version is in the pipeline (docs/architecture.md has the machine)."""

    #: Claimed by an intake; no job recorded yet.
    RECEIVED = "Received"
    #: Accepted and waiting in its group's queue for the submitter (``Group``); ``Batch``
    #: names the job it is being submitted in, once the submitter has taken it.
    QUEUED = "Queued"
    #: A Speech job holds it (``JobId``).
    SUBMITTED = "Submitted"
    #: A transient failure (the job vanished, storage was unreachable, the service's
    #: ``Internal``/``Timeout``/``Transient``); submitted again at ``RetryAt``.
    RETRYING = "Retrying"
    #: Outputs written.
    SUCCEEDED = "Succeeded"
    #: The job or this file failed for good, or its outputs could not be written; an error
    #: report says why.
    FAILED = "Failed"
    #: Not accepted (not audio, too large, bad options or manifest); an error report says why.
    REJECTED = "Rejected"
    #: A newer version of the same path exists, or the blob was deleted: this version's
    #: outputs are never written over the newer one's.
    SUPERSEDED = "Superseded"
    #: An operator cancelled it before it was transcribed (``POST ...:cancel``).
    CANCELLED = "Cancelled"


TERMINAL_STATES = frozenset(
    {
        SourceState.SUCCEEDED,
        SourceState.FAILED,
        SourceState.REJECTED,
        SourceState.SUPERSEDED,
        SourceState.CANCELLED,
    }
)


#: Waiting in a queue group for the submitter (a batch may have taken it already).
WAITING_STATES = frozenset({SourceState.QUEUED, SourceState.RETRYING})


class SourceKind(StrEnum):
    """What a source row stands for."""

    AUDIO = "audio"
    MANIFEST = "manifest"
    MANIFEST_FILE = "manifest-file"


# -------------------------------------------------------------------------------- records


def as_utc(value: Any) -> dt.datetime | None:
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def clip_message(message: str | None) -> str:
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
    #: How many jobs this version has been submitted in (0 before the first).
    submissions: int = 0
    #: When a ``Retrying`` version is submitted again.
    retry_at: dt.datetime | None = None
    #: True once the outputs were removed because the blob was deleted.
    outputs_removed: bool = False
    #: The queue group (same job options) and, once taken, the batch it is submitted in.
    group: str | None = None
    batch: str | None = None
    queued_at: dt.datetime | None = None
    #: Something a person should know although nothing failed (a model soon deprecated).
    warning: str | None = None
    #: ``fast`` or ``batch``: the API that transcribes (or transcribed) this version.
    route: str | None = None
    #: Audio length in seconds, from the header (routing) and then from the result.
    audio_seconds: float | None = None
    #: What happened to this version, oldest first (:meth:`with_history` adds one).
    history: list[dict[str, str]] = field(default_factory=list)
    #: W3C ``traceparent`` of the trace this version's whole life is recorded in.
    trace_parent: str | None = None
    #: An operator asked to cancel it while a job held it; the job is cancelled once all
    #: of its files are.
    cancel_requested: bool = False

    @property
    def pending(self) -> bool:
        """Not in a terminal state: someone still has to move it on."""
        return self.state not in TERMINAL_STATES

    def held_by(self, job_id: str, batch: str | None) -> bool:
        """True if job ``job_id`` (submitted as ``batch``) may finish this row.

        A ``Queued``/``Retrying`` row is the job's only when assigned to its batch: it was
        submitted in it, and only its mark as ``Submitted`` was lost. Any other pending row
        is the job's unless it names another job.
        """
        if self.state in WAITING_STATES:
            return batch is not None and self.batch == batch
        return self.pending and self.job_id in (None, job_id)

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
            received_at=as_utc(entity.get("ReceivedAt")),
            claimed_at=as_utc(entity.get("ClaimedAt")),
            claim_released=bool(entity.get("ClaimReleased")),
            attempts=int(entity.get("Attempts") or 0),
            submitted_at=as_utc(entity.get("SubmittedAt")),
            completed_at=as_utc(entity.get("CompletedAt")),
            updated_at=as_utc(entity.get("UpdatedAt")),
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
            submissions=int(entity.get("Submissions") or 0),
            retry_at=as_utc(entity.get("RetryAt")),
            outputs_removed=bool(entity.get("OutputsRemoved")),
            group=text("Group"),
            batch=text("Batch"),
            queued_at=as_utc(entity.get("QueuedAt")),
            warning=text("Warning"),
            route=text("Route"),
            audio_seconds=(
                float(entity["AudioSeconds"]) if entity.get("AudioSeconds") is not None else None
            ),
            history=json.loads(entity["History"]) if entity.get("History") else [],
            trace_parent=text("TraceParent"),
            cancel_requested=bool(entity.get("CancelRequested")),
        )

    def with_history(self, event: str, detail: str, *, now: dt.datetime) -> list[dict[str, str]]:
        """This row's history with one more entry, the oldest dropped past the cap."""
        entry = {"at": now.isoformat(), "event": event, "detail": clip_message(detail)[:500]}
        return [*self.history, entry][-HISTORY_LIMIT:]


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
    size: int | None = None,
    manifest: str | None = None,
    destination_prefix: str | None = None,
    job_ids: list[str] | None = None,
    file_count: int | None = None,
    rejected_count: int | None = None,
    submissions: int | None = None,
    retry_at: dt.datetime | None = None,
    outputs_removed: bool | None = None,
    group: str | None = None,
    batch: str | None = None,
    queued_at: dt.datetime | None = None,
    warning: str | None = None,
    route: str | None = None,
    audio_seconds: float | None = None,
    history: list[dict[str, str]] | None = None,
    trace_parent: str | None = None,
    cancel_requested: bool | None = None,
) -> dict[str, Any]:
    """Properties to merge into a source row; None leaves a property unchanged.

    The one place that knows the source row's column names. Error fields are written
    together: giving ``error_code`` also overwrites the message.
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
        changes["ErrorMessage"] = clip_message(error_message)
    if report_path is not None:
        changes["ReportPath"] = report_path
    if output_container is not None:
        changes["OutputContainer"] = output_container
    if output_base is not None:
        changes["OutputBase"] = output_base
    if outputs is not None:
        changes["Outputs"] = json.dumps(outputs)
    optional: dict[str, Any] = {
        "Size": size,
        "Manifest": manifest,
        "DestinationPrefix": destination_prefix,
        "JobIds": json.dumps(job_ids) if job_ids is not None else None,
        "FileCount": file_count,
        "RejectedCount": rejected_count,
        "Submissions": submissions,
        "RetryAt": retry_at,
        "OutputsRemoved": outputs_removed,
        "Group": group,
        "Batch": batch,
        "QueuedAt": queued_at,
        "Warning": clip_message(warning) if warning is not None else None,
        "Route": route,
        "AudioSeconds": audio_seconds,
        "History": json.dumps(history) if history is not None else None,
        "TraceParent": trace_parent,
        "CancelRequested": cancel_requested,
    }
    changes.update({key: value for key, value in optional.items() if value is not None})
    return changes


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
class PendingIndexRow:
    """An ``active`` row pointing at a pending source version (see ``ledger.pending``)."""

    row_key: str
    row_etag: str
    partition: str
    source_row: str
    kind: SourceKind
    container: str
    path: str
    due_at: dt.datetime | None


@dataclass(frozen=True)
class QueueEntry:
    """One queued version in its group's partition, in the order it is due."""

    group: str
    row_key: str
    source_partition: str
    source_row: str
    due_at: dt.datetime
    enqueued_at: dt.datetime


@dataclass
class GroupRow:
    """A queue group: versions whose jobs may share one request (same options, destination)."""

    group: str
    #: The job options and destination every member shares (JSON-ready).
    key: dict[str, Any]
    last_enqueued_at: dt.datetime | None
    row_etag: str = ""
