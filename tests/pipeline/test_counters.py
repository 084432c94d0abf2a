"""The sharded counters follow every state change; usage and cost add up per day and prefix.

Against the offline stack: real Azurite, the real intake, submitter and poller. The counts
are read the way the status page reads them (:mod:`shared.pipeline.stats`), never by
scanning source rows, and checked against the source rows themselves.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

import pytest

from shared.pipeline.intake import handle_audio_blob
from shared.pipeline.ledger.counters import CounterDeltas, top_prefix
from shared.pipeline.ledger.keys import STATS_PARTITION, SourceRef
from shared.pipeline.ledger.records import Claim, SourceKind, SourceState, source_fields
from shared.pipeline.queueing import enqueue_claimed
from shared.pipeline.stats import oldest_waiting, state_counts, usage
from tests.pipeline.conftest import Pipeline

NOW = dt.datetime(2026, 12, 1, 15, 0, tzinfo=dt.UTC)
MakePipeline = Callable[..., Awaitable[Pipeline]]


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {state: count for state, count in counts.items() if count}


async def ingest(pipeline: Pipeline, fixture: str, name: str) -> None:
    await pipeline.upload_fixture(fixture, name)
    await handle_audio_blob(pipeline.ctx, pipeline.settings.input_container, name)


async def test_counts_follow_a_file_to_succeeded_and_another_to_rejected(
    pipeline: Pipeline,
) -> None:
    ctx = pipeline.ctx
    now = dt.datetime.now(dt.UTC)
    assert await state_counts(ctx) == {state.value: 0 for state in SourceState}
    ref = SourceRef(pipeline.settings.input_container, "calls/held.wav", "0x1")

    async def claim_it() -> Claim | None:
        return await ctx.ledger.claim_source(
            ref,
            kind=SourceKind.AUDIO,
            now=now,
            stale_after=dt.timedelta(minutes=10),
            max_attempts=3,
        )

    claim = await claim_it()
    assert claim is not None
    assert nonzero(await state_counts(ctx)) == {"Received": 1}
    assert await claim_it() is None, "a duplicate delivery"
    assert nonzero(await state_counts(ctx)) == {"Received": 1}, "changes nothing"
    await ctx.ledger.resolve_claim(claim, source_fields(state=SourceState.SUPERSEDED, now=now))
    assert nonzero(await state_counts(ctx)) == {"Superseded": 1}

    await ingest(pipeline, "sentence-01.wav", "calls/one.wav")
    await ingest(pipeline, "not-audio.wav", "junk.wav")
    assert nonzero(await state_counts(ctx)) == {"Superseded": 1, "Queued": 1, "Rejected": 1}
    assert (await pipeline.submit()).jobs == 1
    assert nonzero(await state_counts(ctx)) == {"Superseded": 1, "Submitted": 1, "Rejected": 1}
    await pipeline.poll_until_idle()
    counts = await state_counts(ctx)
    assert nonzero(counts) == {"Superseded": 1, "Succeeded": 1, "Rejected": 1}
    assert set(counts) == {state.value for state in SourceState}, "every state, 0 when none"

    # The counters agree with the rows they count.
    rows, _ = await ctx.ledger.query_sources(pipeline.settings.input_container, limit=100)
    by_state: dict[str, int] = {}
    for row in rows:
        by_state[row.state.value] = by_state.get(row.state.value, 0) + 1
    assert nonzero(counts) == by_state

    succeeded = next(r for r in rows if r.state is SourceState.SUCCEEDED)
    assert succeeded.audio_seconds
    assert succeeded.completed_at
    # Two days: the test may cross midnight (UTC), and the day is the transition's.
    today = await usage(ctx, days=2, now=succeeded.completed_at)
    assert today.days[-1].day == succeeded.completed_at.date()
    assert today.total.files == {
        "Cancelled": 0,
        "Failed": 0,
        "Rejected": 1,
        "Succeeded": 1,
        "Superseded": 1,
    }
    assert today.days[-1].audio_seconds["batch"] == pytest.approx(succeeded.audio_seconds)
    assert today.days[-1].cost is None, "no price set: no cost"
    assert today.total.month_estimate is None
    prefixes = {p.prefix: p for p in today.prefixes}
    assert prefixes["calls/"].files["Succeeded"] == 1
    assert prefixes["calls/"].files["Superseded"] == 1
    assert prefixes["(root)"].files["Rejected"] == 1


async def test_concurrent_transitions_on_two_shards_stay_exact(pipeline: Pipeline) -> None:
    ledger = pipeline.ctx.ledger
    ledger.counter_shards = 2  # few shards, many writers: conflicts on every other write
    container = pipeline.settings.input_container

    async def one(index: int) -> None:
        ref = SourceRef(container, f"burst/{index:03d}.wav", "0x1")
        claim = await ledger.claim_source(
            ref,
            kind=SourceKind.AUDIO,
            now=NOW,
            stale_after=dt.timedelta(minutes=10),
            max_attempts=3,
        )
        assert claim is not None
        state = SourceState.REJECTED if index % 3 == 0 else SourceState.SUCCEEDED
        await ledger.resolve_claim(
            claim,
            source_fields(state=state, now=NOW, route="fast", audio_seconds=1.5),
        )

    await asyncio.gather(*(one(i) for i in range(60)))

    assert nonzero(await state_counts(pipeline.ctx)) == {"Rejected": 20, "Succeeded": 40}
    shards = await asyncio.to_thread(
        lambda: list(
            pipeline.ctx.ledger_table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": STATS_PARTITION}
            )
        )
    )
    assert {s["RowKey"] for s in shards if s["RowKey"].startswith("state|")} <= {
        "state|00",
        "state|01",
    }
    day = (await usage(pipeline.ctx, days=1, now=NOW)).days[0]
    assert day.files["Succeeded"] == 40
    assert day.files["Rejected"] == 20
    assert day.audio_seconds == {"batch": 0.0, "fast": pytest.approx(60.0)}


async def test_usage_per_day_prefix_and_route_with_prices(make_pipeline: MakePipeline) -> None:
    pipeline = await make_pipeline(
        price_per_audio_hour_batch=0.36, price_per_audio_hour_fast=1.2, cost_currency="EUR"
    )
    ledger = pipeline.ctx.ledger
    container = pipeline.settings.input_container
    yesterday = NOW - dt.timedelta(days=1)
    done = [
        ("calls/a.wav", SourceState.SUCCEEDED, "batch", 3600.0, yesterday),
        ("calls/b.wav", SourceState.SUCCEEDED, "fast", 1800.0, NOW),
        ("calls/c.wav", SourceState.FAILED, "batch", 99.0, NOW),  # failed: no billed audio
        ("memo.wav", SourceState.SUCCEEDED, None, 900.0, NOW),  # no route: batch
        ("old/d.wav", SourceState.SUCCEEDED, "batch", 60.0, NOW - dt.timedelta(days=40)),
    ]
    for path, state, route, seconds, when in done:
        claim = await ledger.claim_source(
            SourceRef(container, path, "0x1"),
            kind=SourceKind.AUDIO,
            now=when,
            stale_after=dt.timedelta(minutes=10),
            max_attempts=3,
        )
        assert claim is not None
        await ledger.resolve_claim(
            claim, source_fields(state=state, now=when, route=route, audio_seconds=seconds)
        )

    report = await usage(pipeline.ctx, days=2, now=NOW)

    assert report.currency == "EUR"
    assert report.price_per_hour == {"batch": 0.36, "fast": 1.2}
    assert [d.day for d in report.days] == [yesterday.date(), NOW.date()]
    first, second = report.days
    assert first.audio_seconds == {"batch": 3600.0, "fast": 0.0}
    assert first.audio_hours == 1.0
    assert first.cost == pytest.approx(0.36)
    assert second.files["Succeeded"] == 2
    assert second.files["Failed"] == 1
    assert second.audio_seconds == {"batch": 900.0, "fast": 1800.0}
    assert second.cost == pytest.approx(0.25 * 0.36 + 0.5 * 1.2)
    assert report.total.audio_hours == pytest.approx(1.75)
    assert report.total.cost == pytest.approx(0.36 + 0.09 + 0.6)
    assert report.total.month_estimate == pytest.approx((0.36 + 0.09 + 0.6) / 2 * 30)
    # Prefixes are since counting began (the 40-day-old file too), most audio first.
    assert [p.prefix for p in report.prefixes] == ["calls/", "(root)", "old/"]
    calls = report.prefixes[0]
    assert calls.audio_seconds == {"batch": 3600.0, "fast": 1800.0}
    assert calls.files["Failed"] == 1
    assert calls.cost == pytest.approx(0.36 + 0.6)
    assert [p.prefix for p in (await usage(pipeline.ctx, prefix_limit=1, now=NOW)).prefixes] == [
        "calls/"
    ]
    body = report.model_dump(mode="json")
    assert body["total"]["monthEstimate"] == pytest.approx(report.total.month_estimate)
    assert body["days"][0]["audioSeconds"]["batch"] == 3600.0
    with pytest.raises(ValueError, match="days"):
        await usage(pipeline.ctx, days=0)


async def test_a_price_missing_for_a_route_with_audio_gives_no_cost(
    make_pipeline: MakePipeline,
) -> None:
    pipeline = await make_pipeline(price_per_audio_hour_batch=0.36)
    await pipeline.ctx.ledger.add_counts(
        CounterDeltas(
            {"Succeeded": 1},
            {"Succeeded": 1, "SecondsFast": 36.0},
            NOW.date(),
            top_prefix("x/y.wav"),
        )
    )
    report = await usage(pipeline.ctx, days=1, now=NOW)
    assert report.days[0].audio_seconds["fast"] == 36.0
    assert report.days[0].cost is None, "a partial sum would pass for the whole"
    assert report.total.cost is None


async def test_the_oldest_waiting_file_comes_from_the_queue_and_the_claims(
    make_pipeline: MakePipeline,
) -> None:
    # A long batch window keeps the files queued.
    pipeline = await make_pipeline(batch_window_seconds=3600)
    ctx = pipeline.ctx
    container = pipeline.settings.input_container
    assert await oldest_waiting(ctx) is None
    await ingest(pipeline, "sentence-01.wav", "recent.wav")
    waiting = await oldest_waiting(ctx)
    assert waiting is not None
    assert (waiting.path, waiting.state) == ("recent.wav", "Queued")
    assert 0 <= waiting.age_seconds < 600

    now = dt.datetime.now(dt.UTC)

    async def claim(path: str, at: dt.datetime) -> Claim:
        held = await ctx.ledger.claim_source(
            SourceRef(container, path, "0x9"),
            kind=SourceKind.AUDIO,
            now=at,
            stale_after=dt.timedelta(minutes=10),
            max_attempts=3,
        )
        assert held is not None
        return held

    # Uploaded an hour ago, its event came late: it waits (in a group of its own) since then.
    hour_ago = now - dt.timedelta(hours=1)
    await enqueue_claimed(
        ctx,
        await claim("late.wav", now),
        group="other-options",
        key={},
        options={},
        output_container=pipeline.settings.output_container,
        output_base="late.wav",
        now=now,
        due_at=hour_ago,
    )
    waiting = await oldest_waiting(ctx)
    assert waiting is not None
    assert (waiting.path, waiting.state, waiting.since) == ("late.wav", "Queued", hour_ago)

    # A claim older still (its intake is stuck) waits longest.
    long_ago = now - dt.timedelta(hours=2)
    await claim("stuck.wav", long_ago)
    waiting = await oldest_waiting(ctx, now=now)
    assert waiting is not None
    assert (waiting.path, waiting.state, waiting.since) == ("stuck.wav", "Received", long_ago)
    assert waiting.age_seconds == 7200
    assert waiting.model_dump(mode="json")["ageSeconds"] == 7200


async def test_a_counter_failure_never_fails_the_transition(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = pipeline.ctx.ledger

    async def storage_down(deltas: CounterDeltas) -> None:
        raise ConnectionError("stats partition unreachable")

    monkeypatch.setattr(ledger, "add_counts", storage_down)
    ref = SourceRef(pipeline.settings.input_container, "kept.wav", "0x1")
    claim = await ledger.claim_source(
        ref, kind=SourceKind.AUDIO, now=NOW, stale_after=dt.timedelta(minutes=10), max_attempts=3
    )
    assert claim is not None
    assert await ledger.resolve_claim(claim, source_fields(state=SourceState.FAILED, now=NOW))

    row = await ledger.get_source(ref)
    assert row is not None
    assert row.state is SourceState.FAILED, "the state write stands"
    assert "counters of" in caplog.text
    assert "Received -> Failed" in caplog.text, "the lost deltas are named in the log"
