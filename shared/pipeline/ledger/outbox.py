"""The outbox: one row per terminal state a version reached, until its event is published.

``active / outbox|<event id>`` is written *before* the transition to the terminal state
it announces (as the pending index is written before the state it indexes), by the source
rows' one write path (:meth:`~.sources.SourceRows._write_source`). So there is never a
terminal transition without its row, whatever dies when. The row holds the event's
identity — the version's keys, the state, the time of the transition — and the publisher
(:mod:`shared.pipeline.events`) decides from the source row what happened:

* the row is in that state with that completion time: the transition happened; publish,
  then delete the outbox row (a crash in between publishes again: at least once, with the
  same ``id``);
* otherwise the transition never happened (the writer died or lost a race): the row is
  dropped once older than a few minutes, and left alone before (its transition may be a
  storage call away);
* a version that leaves a terminal state again (an operator's re-run) first freezes the
  event data of that state into its outbox row, if one is still there, so the event of a
  state that did happen is never dropped for having been left.

The event id is deterministic: a digest of the version's keys, the state and the
transition time (milliseconds), so re-publishing an event repeats its id, while a version
that reaches the same state twice (re-run by an operator) announces it twice.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from shared.pipeline.ledger.keys import (
    ACTIVE_PARTITION,
    OUTBOX_PREFIX,
    SourceRef,
    digest,
    key_upper_bound,
)
from shared.pipeline.ledger.records import (
    SourceKind,
    SourceRecord,
    SourceState,
    as_utc,
)
from shared.pipeline.ledger.table import TableAccess

#: Longest error message an event carries (a queue message holds 64 KiB).
EVENT_MESSAGE_CHARS = 1000


def stamp(moment: dt.datetime) -> str:
    """A transition time to the millisecond, as the event id and the match use it."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def event_id(ref: SourceRef, state: SourceState, at: dt.datetime) -> str:
    """The id of the event announcing that ``ref`` reached ``state`` at ``at``."""
    return digest(f"{ref.partition_key}|{ref.row_key}|{state.value}|{stamp(at)}", 32)


def event_data(record: SourceRecord, state: SourceState) -> dict[str, Any]:
    """What an event says about ``record`` in ``state`` (JSON-ready, camelCase).

    ``outputs.container`` is None when the row names none (a version closed before any
    output was planned); the publisher fills in the app's output container.
    """
    error = None
    if record.error_code:
        message = record.error_message or ""
        if len(message) > EVENT_MESSAGE_CHARS:
            message = message[: EVENT_MESSAGE_CHARS - 1] + "…"
        error = {"code": record.error_code, "message": message}
    return {
        "container": record.ref.container,
        "path": record.ref.path,
        "etag": record.ref.etag,
        "kind": record.kind.value,
        "state": state.value,
        "completedAt": record.completed_at.isoformat() if record.completed_at else None,
        "outputs": {
            "container": record.output_container,
            "names": list(record.outputs),
        },
        "error": error,
        "reportPath": record.report_path,
        "audioSeconds": record.audio_seconds,
        "route": record.route,
        "jobId": record.job_id,
        "manifest": record.manifest,
    }


@dataclass
class OutboxRow:
    """An event to publish: which version reached which terminal state, and when."""

    event_id: str
    ref: SourceRef
    kind: SourceKind
    state: SourceState
    #: The transition's time (the row's ``CompletedAt``): the event's ``time``.
    at: dt.datetime
    created_at: dt.datetime
    #: Failed publication attempts so far.
    attempts: int = 0
    #: Destinations that have the event already (``queue``, ``eventgrid``).
    sent_to: frozenset[str] = frozenset()
    #: The event data, frozen when the version left the state before publication.
    data: dict[str, Any] | None = None
    row_etag: str = ""

    @property
    def row_key(self) -> str:
        """``outbox|<event id>``."""
        return f"{OUTBOX_PREFIX}{self.event_id}"

    def matches(self, record: SourceRecord) -> bool:
        """True if ``record`` shows this transition happened (its state and time)."""
        return (
            record.state is self.state
            and record.completed_at is not None
            and stamp(record.completed_at) == stamp(self.at)
        )

    @classmethod
    def from_entity(cls, entity: Any) -> OutboxRow:
        """Parse an outbox entity."""
        at = as_utc(entity.get("At")) or dt.datetime.now(dt.UTC)
        snapshot = entity.get("Data")
        return cls(
            event_id=str(entity["RowKey"])[len(OUTBOX_PREFIX) :],
            ref=SourceRef(
                container=str(entity["Container"]),
                path=str(entity["Path"]),
                etag=str(entity["Version"]),
                origin=str(entity.get("Origin") or ""),
            ),
            kind=SourceKind(entity.get("Kind") or SourceKind.AUDIO),
            state=SourceState(entity["State"]),
            at=at,
            created_at=as_utc(entity.get("CreatedAt")) or at,
            attempts=int(entity.get("Attempts") or 0),
            sent_to=frozenset(filter(None, str(entity.get("SentTo") or "").split(","))),
            data=json.loads(snapshot) if snapshot else None,
            row_etag=str(entity.metadata.get("etag") or ""),
        )


class OutboxRows(TableAccess):
    """Outbox rows in the ``active`` partition."""

    async def put_outbox(self, record: SourceRecord, *, now: dt.datetime) -> None:
        """Announce that ``record`` (as it will be) reaches its state at ``CompletedAt``.

        An upsert: a writer retrying the same transition (same time) writes the same row.
        Raises when it cannot be written, so the transition is not made without it.
        """
        at = record.completed_at or now
        await self._upsert(
            {
                "PartitionKey": ACTIVE_PARTITION,
                "RowKey": f"{OUTBOX_PREFIX}{event_id(record.ref, record.state, at)}",
                "SourcePartition": record.ref.partition_key,
                "SourceRow": record.ref.row_key,
                "Container": record.ref.container,
                "Path": record.ref.path,
                "Version": record.ref.etag,
                "Origin": record.ref.origin,
                "Kind": record.kind.value,
                "State": record.state.value,
                "At": at,
                "CreatedAt": now,
                "Attempts": 0,
            }
        )

    async def freeze_outbox(self, record: SourceRecord) -> None:
        """``record`` leaves its terminal state: keep its unpublished event's data, if any."""
        if record.completed_at is None:
            return
        row = f"{OUTBOX_PREFIX}{event_id(record.ref, record.state, record.completed_at)}"
        data = json.dumps(event_data(record, record.state))
        for _ in range(3):  # the publisher may be noting a failed attempt on it right now
            entity = await self._get(ACTIVE_PARTITION, row)
            if entity is None or entity.get("Data"):
                return  # published already (the usual case), or frozen before
            etag = str(entity.metadata.get("etag") or "")
            if await self._merge(ACTIVE_PARTITION, row, {"Data": data}, etag) is not None:
                return
        # Raised, not logged: the move out of the terminal state must not happen without it.
        raise RuntimeError(f"the unpublished event of {record.ref.display} kept changing")

    async def outbox_page(self, *, limit: int, max_attempts: int, stuck: bool) -> list[OutboxRow]:
        """Up to ``limit`` outbox rows with fewer than ``max_attempts`` failed attempts, or
        (``stuck``) with that many or more: each kind gets its own page, so rows that keep
        failing never crowd out new ones."""
        entities, _ = await self._query_page(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi and "
            + ("Attempts ge @n" if stuck else "Attempts lt @n"),
            {
                "pk": ACTIVE_PARTITION,
                "lo": OUTBOX_PREFIX,
                "hi": key_upper_bound(OUTBOX_PREFIX),
                "n": max_attempts,
            },
            limit=limit,
        )
        return [OutboxRow.from_entity(e) for e in entities]

    async def note_outbox_failure(self, row: OutboxRow, *, sent_to: set[str], error: str) -> None:
        """One more failed attempt at publishing ``row``, and where it did arrive already."""
        changes = {
            "Attempts": row.attempts + 1,
            "SentTo": ",".join(sorted(sent_to)),
            "LastError": error[:1000],
        }
        await self._merge(ACTIVE_PARTITION, row.row_key, changes, row.row_etag)

    async def drop_outbox(self, row: OutboxRow) -> None:
        """The event is published (or was never due): its row goes."""
        await self._delete(ACTIVE_PARTITION, row.row_key)
