"""Sharded counters: how many versions are in each state, and what each day and prefix used.

Every state change of a source row is counted by :meth:`CounterRows.count_transition`,
called by the source rows' one write path (:meth:`~.sources.SourceRows._write_source`)
after the row's write succeeded, so nothing ever scans the source rows to count them:

* ``stats / state|<shard>`` — one property per :class:`SourceState`: -1 on the state a
  version left, +1 on the state it entered (the same row, one merge).
* ``stats / day|<yyyy-mm-dd>|<shard>`` — terminal transitions on that UTC day (when the row
  became terminal), one property per terminal state, and ``Seconds<Route>``: the audio
  seconds of the versions that succeeded, per route (``fast``/``batch``; a row without a
  route went through batch, the only lane of manifests and of rows older than routing).
* ``stats / prefix|<enc(first path segment)>|<shard>`` — the same, per top-level prefix
  (``calls/``; ``(root)`` for a path with no ``/``), since the counters began.

Manifest rows are not counted: they are requests, not audio (their files are).

**Shards.** A writer picks a random shard of :attr:`CounterRows.counter_shards` and does an
ETag-conditional read-modify-merge (create when absent), retrying on another random shard
when it loses a race; a reader sums whatever shards exist with one key-range query, so the
shard count can change without a migration. Eight shards take a few hundred transitions
a second before writers start retrying.

**Drift.** A counter update comes after the state write and never makes it fail: a process
that dies between the two, or a counter merge that still fails after its retries (logged
as an error with the lost deltas), leaves the counters one transition off, for good. The
bound is one unit per such failure: the window is the time between two storage calls, and
a failed merge is already an outage. No recount runs behind them — that would be the scan
they exist to avoid — so they are exact as long as no process dies mid-transition, which
the tests show under concurrency; the source rows stay the truth
(``GET /api/transcriptions?state=``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.pipeline.ledger.keys import (
    DAY_STATS_PREFIX,
    PREFIX_STATS_PREFIX,
    STATE_COUNT_PREFIX,
    STATS_PARTITION,
    encode_key_part,
    key_upper_bound,
)
from shared.pipeline.ledger.records import (
    TERMINAL_STATES,
    SourceKind,
    SourceRecord,
    SourceState,
)
from shared.pipeline.ledger.table import TableAccess
from shared.redact import get_logger

_log = get_logger(__name__)

#: The prefix of a path with no folder.
ROOT_PREFIX = "(root)"
#: Routes counted on their own; anything else (None: rows before routing, manifests) is batch.
ROUTES = ("batch", "fast")
#: Conflicts one counter update survives (each on a freshly drawn shard) before giving up,
#: and the longest pause between two (the whole is bounded to about ten seconds).
_ATTEMPTS = 30
_MAX_PAUSE_SECONDS = 0.5
#: Most counter rows a usage read takes in (prefixes x shards); beyond it, the rest is left out.
MAX_STATS_ROWS = 20_000


def top_prefix(path: str) -> str:
    """The first path segment with its slash (``calls/``), or :data:`ROOT_PREFIX`."""
    head, slash, _ = path.partition("/")
    return f"{head}/" if slash and head else ROOT_PREFIX


def seconds_property(route: str | None) -> str:
    """``SecondsBatch`` / ``SecondsFast``: the property of a route's audio seconds."""
    return f"Seconds{(route if route in ROUTES else 'batch').capitalize()}"


def day_row_prefix(day: dt.date) -> str:
    """``day|<yyyy-mm-dd>|``: the shards of one day."""
    return f"{DAY_STATS_PREFIX}{day.isoformat()}|"


def prefix_row_prefix(prefix: str) -> str:
    """``prefix|<enc(prefix)>|``: the shards of one top-level prefix."""
    return f"{PREFIX_STATS_PREFIX}{encode_key_part(prefix)}|"


def _number(value: Any) -> float:
    """A counter property's value (an Int64 comes back wrapped as ``EntityProperty``)."""
    raw = getattr(value, "value", value)
    return float(raw) if isinstance(raw, int | float) else 0.0


@dataclass
class UsageRow:
    """Terminal files per state and succeeded audio seconds per route, summed over shards."""

    files: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, entity: Mapping[str, Any]) -> None:
        """Add one shard's properties."""
        for state in TERMINAL_STATES:
            if state.value in entity:
                count = self.files.get(state.value, 0) + int(_number(entity[state.value]))
                self.files[state.value] = count
        for route in ROUTES:
            name = seconds_property(route)
            if name in entity:
                self.seconds[route] = self.seconds.get(route, 0.0) + _number(entity[name])


@dataclass(frozen=True)
class CounterDeltas:
    """What one transition changes: the state row, and for a terminal one its day and prefix."""

    states: dict[str, int]
    usage: dict[str, float]
    day: dt.date | None = None
    prefix: str | None = None


def transition_deltas(before: SourceRecord | None, after: SourceRecord) -> CounterDeltas | None:
    """The counter changes of ``before`` -> ``after`` (None: nothing to count)."""
    if after.kind is SourceKind.MANIFEST or (before is not None and before.state is after.state):
        return None
    states = {after.state.value: 1}
    if before is not None:
        states[before.state.value] = -1
    if after.state not in TERMINAL_STATES:
        return CounterDeltas(states, {})
    usage: dict[str, float] = {after.state.value: 1}
    if after.state is SourceState.SUCCEEDED and after.audio_seconds:
        usage[seconds_property(after.route)] = float(after.audio_seconds)
    day = (after.completed_at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).date()
    return CounterDeltas(states, usage, day, top_prefix(after.ref.path))


class CounterRows(TableAccess):
    """Sharded counter rows in the ``stats`` partition (see the module docstring)."""

    #: Shards per counter; readers sum whatever exists, so this may change at any time.
    counter_shards: int = 8

    async def count_transition(self, before: SourceRecord | None, after: SourceRecord) -> None:
        """Count one state change that was written; never raises (see "Drift" above)."""
        deltas = transition_deltas(before, after)
        if deltas is None:
            return
        try:
            await self.add_counts(deltas)
        except Exception as exc:  # counters must never fail the transition they count
            _log.error(
                "counters of %s (%s -> %s) not updated: %s: %s",
                after.ref.display,
                before.state.value if before else "new",
                after.state.value,
                type(exc).__name__,
                exc,
            )

    async def add_counts(self, deltas: CounterDeltas) -> None:
        """Apply ``deltas`` to a random shard of each counter it touches (raises on failure)."""
        bumps = [self._bump(STATE_COUNT_PREFIX, deltas.states)] if deltas.states else []
        if deltas.day is not None:
            bumps.append(self._bump(day_row_prefix(deltas.day), deltas.usage))
        if deltas.prefix is not None:
            extra = {"Prefix": deltas.prefix}
            bumps.append(self._bump(prefix_row_prefix(deltas.prefix), deltas.usage, extra))
        results = await asyncio.gather(*bumps, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]

    async def _bump(
        self,
        row_prefix: str,
        deltas: Mapping[str, float],
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Add ``deltas`` to one shard of the counter ``row_prefix``: conditional, retried."""
        for attempt in range(_ATTEMPTS):
            if attempt:
                # Lost a race: step aside (jittered, growing to half a second) before another
                # shard is drawn, so a burst of writers spreads out instead of colliding again.
                pause = min(_MAX_PAUSE_SECONDS, 0.01 * 2**attempt)
                await asyncio.sleep(random.uniform(0, pause))  # noqa: S311
            row = f"{row_prefix}{random.randrange(self.counter_shards):02d}"  # noqa: S311
            entity = await self._get(STATS_PARTITION, row)
            if entity is None:
                fresh = {"PartitionKey": STATS_PARTITION, "RowKey": row, **(extra or {})}
                fresh.update({name: _typed(name, value) for name, value in deltas.items()})
                if await self._create(fresh) is not None:
                    return
                continue
            changes = {
                name: _typed(name, _number(entity.get(name)) + value)
                for name, value in deltas.items()
            }
            etag = str(entity.metadata.get("etag") or "")
            if await self._merge(STATS_PARTITION, row, changes, etag) is not None:
                return
        raise RuntimeError(f"counter {row_prefix} stayed contended for {_ATTEMPTS} attempts")

    async def state_counts(self) -> dict[str, int]:
        """Versions in each state now: every :class:`SourceState` (0 when none)."""
        counts = {state.value: 0 for state in SourceState}
        upper = key_upper_bound(STATE_COUNT_PREFIX)
        for entity in await self._stats_range(STATE_COUNT_PREFIX, upper):
            for state in SourceState:
                counts[state.value] += int(_number(entity.get(state.value)))
        return counts

    async def usage_by_day(self, first: dt.date, last: dt.date) -> dict[dt.date, UsageRow]:
        """Terminal files and audio of each day from ``first`` to ``last`` that has any."""
        rows: dict[dt.date, UsageRow] = {}
        entities = await self._stats_range(
            day_row_prefix(first), key_upper_bound(day_row_prefix(last))
        )
        for entity in entities:
            day = dt.date.fromisoformat(str(entity["RowKey"]).split("|")[1])
            rows.setdefault(day, UsageRow()).add(entity)
        return rows

    async def usage_by_prefix(self) -> dict[str, UsageRow]:
        """Terminal files and audio per top-level prefix, since counting began."""
        rows: dict[str, UsageRow] = {}
        entities = await self._stats_range(
            PREFIX_STATS_PREFIX, key_upper_bound(PREFIX_STATS_PREFIX)
        )
        for entity in entities:
            rows.setdefault(str(entity.get("Prefix") or ROOT_PREFIX), UsageRow()).add(entity)
        return rows

    async def _stats_range(self, lower: str, upper: str) -> list[Any]:
        entities, _ = await self._query_page(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            {"pk": STATS_PARTITION, "lo": lower, "hi": upper},
            limit=MAX_STATS_ROWS,
            max_pages=MAX_STATS_ROWS // 1000,
        )
        return entities


def _typed(name: str, value: float) -> int | float:
    """File counts are integers; audio seconds are doubles."""
    return float(value) if name.startswith("Seconds") else int(value)
