"""How the pipeline is doing, without scanning the ledger: states, the oldest wait, usage.

* :func:`state_counts` — versions in each state now, from the sharded counters
  (:mod:`shared.pipeline.ledger.counters`: one range query).
* :func:`oldest_waiting` — the version that has waited longest for the pipeline: the
  oldest due entry of each queue group (one query per group, a handful) and the oldest
  claims of the pending index (``Received``).
* :func:`usage` — files that reached a terminal state and the audio hours that succeeded,
  per day (UTC) and per top-level path prefix, with a cost estimate from
  ``PRICE_PER_AUDIO_HOUR_BATCH`` / ``_FAST`` in ``COST_CURRENCY``.

Counts are of audio files (uploads and the files manifests name), not of manifests. Day
figures count terminal transitions on that day, so a file re-run by an operator counts
again; prefix figures are since the counters began. The cost is the audio hours that
succeeded times the price of their route — an estimate of what Speech bills, which is per
second of audio processed — and None while a route that has audio has no price.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import TYPE_CHECKING

from shared.pipeline.api_model import ApiModel
from shared.pipeline.clock import utcnow
from shared.pipeline.concurrency import bounded
from shared.pipeline.ledger.counters import ROUTES, UsageRow
from shared.pipeline.ledger.records import TERMINAL_STATES, WAITING_STATES, SourceState

if TYPE_CHECKING:
    from shared.app_context import AppContext
    from shared.pipeline.ledger.records import GroupRow

#: ``days`` accepted by :func:`usage`.
MAX_DAYS = 366
#: Queue entries looked at per group to find one that still waits (the rest moved on).
_ENTRIES_PER_GROUP = 5
#: Pending index rows looked at for the oldest claim (the in-flight intakes).
_PENDING_LIMIT = 1000
_TERMINAL = sorted(state.value for state in TERMINAL_STATES)


class WaitingFile(ApiModel):
    """The version that has waited longest: since when, and how long that is."""

    container: str
    path: str
    etag: str
    #: ``Queued`` or ``Retrying`` (waiting for a job), or ``Received`` (for its intake).
    state: str
    #: When its wait began: the upload (queued), its retry time (retrying), or the claim.
    since: dt.datetime
    age_seconds: float


class DayUsage(ApiModel):
    """One UTC day: files by the terminal state they reached, audio that succeeded."""

    day: dt.date
    #: Terminal state -> files that reached it that day.
    files: dict[str, int]
    #: Route (``batch``, ``fast``) -> seconds of audio that succeeded.
    audio_seconds: dict[str, float]
    audio_hours: float
    cost: float | None


class PrefixUsage(ApiModel):
    """One top-level path prefix (``calls/``; ``(root)``), since counting began."""

    prefix: str
    files: dict[str, int]
    audio_seconds: dict[str, float]
    audio_hours: float
    cost: float | None


class UsageTotals(ApiModel):
    """The days of the window together."""

    files: dict[str, int]
    audio_seconds: dict[str, float]
    audio_hours: float
    cost: float | None
    #: Cost per day over the days that had any files, times 30; None without prices.
    month_estimate: float | None


class Usage(ApiModel):
    """Usage and cost over the last ``days`` days (oldest first) and per prefix."""

    currency: str
    #: Route -> price of an hour of audio (None: not set).
    price_per_hour: dict[str, float | None]
    days: list[DayUsage]
    prefixes: list[PrefixUsage]
    total: UsageTotals


async def state_counts(ctx: AppContext) -> dict[str, int]:
    """Every :class:`SourceState` value -> how many versions are in it now (0 when none)."""
    return await ctx.ledger.state_counts()


async def oldest_waiting(ctx: AppContext, *, now: dt.datetime | None = None) -> WaitingFile | None:
    """The queued, retrying or received version that has waited longest; None if none."""
    now = now or utcnow()
    groups = await ctx.ledger.groups(limit=1000)
    candidates = [
        *(c for c in await bounded(8, groups, lambda g: _oldest_in_group(ctx, g, now)) if c),
        *await _oldest_claims(ctx, now),
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda c: c.since)


async def _oldest_in_group(
    ctx: AppContext, group: GroupRow, now: dt.datetime
) -> WaitingFile | None:
    """The group's first due entry whose row still waits (entries of rows gone on linger)."""
    entries = await ctx.ledger.due_entries(group.group, now, limit=_ENTRIES_PER_GROUP)
    for entry in entries:
        record = await ctx.ledger.get_source_at(entry.source_partition, entry.source_row)
        if record is not None and record.state in WAITING_STATES:
            return _waiting(
                record.ref.container,
                record.ref.path,
                record.ref.etag,
                record.state,
                entry.due_at,
                now,
            )
    return None


async def _oldest_claims(ctx: AppContext, now: dt.datetime) -> list[WaitingFile]:
    """The oldest ``Received`` claim, from the pending index (the in-flight intakes only)."""
    rows = await ctx.ledger.due_pending(now + dt.timedelta(days=MAX_DAYS), limit=_PENDING_LIMIT)
    oldest = dt.datetime.max.replace(tzinfo=dt.UTC)
    for index in sorted(rows, key=lambda r: r.due_at or oldest)[:_ENTRIES_PER_GROUP]:
        record = await ctx.ledger.source_of(index)
        if record is not None and record.state is SourceState.RECEIVED:
            since = record.received_at or record.claimed_at or now
            ref = record.ref
            return [_waiting(ref.container, ref.path, ref.etag, record.state, since, now)]
    return []


def _waiting(
    container: str, path: str, etag: str, state: SourceState, since: dt.datetime, now: dt.datetime
) -> WaitingFile:
    return WaitingFile(
        container=container,
        path=path,
        etag=etag,
        state=state.value,
        since=since,
        age_seconds=max(0.0, (now - since).total_seconds()),
    )


async def usage(
    ctx: AppContext, *, days: int = 30, prefix_limit: int = 50, now: dt.datetime | None = None
) -> Usage:
    """Files and audio hours of the last ``days`` UTC days (today included), the
    ``prefix_limit`` prefixes with the most audio, and the cost where prices are set."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS}")
    if prefix_limit < 1:
        raise ValueError("prefix_limit must be at least 1")
    settings = ctx.settings
    prices = {
        "batch": settings.price_per_audio_hour_batch,
        "fast": settings.price_per_audio_hour_fast,
    }
    last = (now or utcnow()).astimezone(dt.UTC).date()
    first = last - dt.timedelta(days=days - 1)
    by_day, by_prefix = await asyncio.gather(
        ctx.ledger.usage_by_day(first, last), ctx.ledger.usage_by_prefix()
    )
    day_list = []
    total = UsageRow()
    active_days = 0
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        row = by_day.get(day, UsageRow())
        if any(row.files.values()) or any(row.seconds.values()):
            active_days += 1
        for state, count in row.files.items():
            total.files[state] = total.files.get(state, 0) + count
        for route, value in row.seconds.items():
            total.seconds[route] = total.seconds.get(route, 0.0) + value
        files, seconds, hours, cost = _figures(row, prices)
        day_list.append(
            DayUsage(day=day, files=files, audio_seconds=seconds, audio_hours=hours, cost=cost)
        )
    ranked = sorted(
        by_prefix.items(),
        key=lambda item: (-sum(item[1].seconds.values()), -sum(item[1].files.values()), item[0]),
    )
    prefixes = []
    for prefix, row in ranked[:prefix_limit]:
        files, seconds, hours, cost = _figures(row, prices)
        prefixes.append(
            PrefixUsage(
                prefix=prefix, files=files, audio_seconds=seconds, audio_hours=hours, cost=cost
            )
        )
    files, seconds, hours, cost = _figures(total, prices)
    estimate = None
    if cost is not None:
        estimate = round(cost / active_days * 30, 4) if active_days else 0.0
    return Usage(
        currency=settings.cost_currency,
        price_per_hour=prices,
        days=day_list,
        prefixes=prefixes,
        total=UsageTotals(
            files=files,
            audio_seconds=seconds,
            audio_hours=hours,
            cost=cost,
            month_estimate=estimate,
        ),
    )


def _figures(
    row: UsageRow, prices: dict[str, float | None]
) -> tuple[dict[str, int], dict[str, float], float, float | None]:
    """(files per terminal state, seconds per route, hours, cost) with every key present."""
    files = {state: int(row.files.get(state, 0)) for state in _TERMINAL}
    seconds = {route: round(row.seconds.get(route, 0.0), 3) for route in ROUTES}
    hours = round(sum(seconds.values()) / 3600, 6)
    return files, seconds, hours, _cost(seconds, prices)


def _cost(seconds: dict[str, float], prices: dict[str, float | None]) -> float | None:
    """Hours times the price of their route; None without prices, or when a route with
    audio has none (a partial sum would pass for the whole)."""
    if all(price is None for price in prices.values()):
        return None
    total = 0.0
    for route, value in seconds.items():
        if not value:
            continue
        price = prices.get(route)
        if price is None:
            return None
        total += value / 3600 * price
    return round(total, 4)
