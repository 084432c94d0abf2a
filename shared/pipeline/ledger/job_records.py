"""Typed job records: a submitted job's row, its inputs, and a batch being submitted."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.pipeline.ledger.keys import ACTIVE_PARTITION, JOB_PREFIX, SourceRef
from shared.pipeline.ledger.records import SourceKind, as_utc, pack, unpack


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
    #: Attempts at collecting results and writing outputs that failed (bounded).
    finish_failures: int = 0
    last_polled_at: dt.datetime | None = None
    manifest: str | None = None
    #: The batch its members were assigned to (their rows carry it until marked).
    batch: str | None = None
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
        if self.batch:
            entity["Batch"] = self.batch
        entity.update(pack([s.to_json() for s in self.sources], "Sources"))
        return entity

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> JobRecord:
        """Parse a job entity."""
        meta = getattr(entity, "metadata", {}) or {}
        submitted = as_utc(entity.get("SubmittedAt")) or dt.datetime.now(dt.UTC)
        return cls(
            job_id=str(entity["JobId"]),
            display_name=str(entity.get("DisplayName") or ""),
            kind=SourceKind(entity.get("Kind") or SourceKind.AUDIO),
            submitted_at=submitted,
            next_poll_at=as_utc(entity.get("NextPollAt")) or submitted,
            poll_interval_seconds=float(entity.get("PollIntervalSeconds") or 0.0),
            sources=[JobSource.from_json(item) for item in unpack(entity, "Sources") or []],
            output_container=str(entity.get("OutputContainer") or ""),
            last_status=str(entity.get("LastStatus") or "NotStarted"),
            polls=int(entity.get("Polls") or 0),
            errors=int(entity.get("Errors") or 0),
            finish_failures=int(entity.get("FinishFailures") or 0),
            last_error=str(entity["LastError"]) if entity.get("LastError") else None,
            last_polled_at=as_utc(entity.get("LastPolledAt")),
            manifest=str(entity["Manifest"]) if entity.get("Manifest") else None,
            batch=str(entity["Batch"]) if entity.get("Batch") else None,
            row_etag=str(meta.get("etag") or ""),
        )


@dataclass
class BatchRecord:
    """A job being submitted: its members, fixed before anything is sent to Speech."""

    batch_id: str
    group: str
    display_name: str
    sources: list[JobSource]
    created_at: dt.datetime
    row_etag: str = ""
