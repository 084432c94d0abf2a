"""The status API over a large ledger: 100,000 source rows, latency through the functions host.

Seeds ``--rows`` (100,000) source rows into a private offline stack's ledger — a realistic
mix of states (mostly ``Succeeded``, some ``Failed``/``Rejected``/``Superseded``, a few
still queued, submitted, retrying or received), paths under a few top-level prefixes,
completions spread over 45 days, routes and audio lengths — in entity-group transactions
of 100 rows (one partition), eight at a time. The counters are seeded consistently with
those rows through the ledger's own counter code (``add_counts``: the per-state totals,
one delta per day and per prefix), the queued and retrying rows get their queue entries
and the received ones their pending index rows, as the pipeline writes them. The
benchmark then checks that ``GET /api/stats`` reports exactly the seeded counts, and
prints p50/p95 of ``--requests`` (30) calls each, through the real functions host, of:

* ``GET /api/stats`` (30 days, the oldest waiting file, prefixes);
* ``GET /api/transcriptions?state=Failed&limit=50`` (a server-side filter over the rows);
* ``GET /api/transcriptions?prefix=calls/&limit=50`` (a key-range query);
* ``GET /api/ui`` when the app serves it.

    .venv/bin/python bench/ledger_scale.py [--rows 100000] [--requests 30] [--state-root DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local.stack import ALL_SERVICES, Ports, Stack, StackError  # noqa: E402
from shared.pipeline.ledger import Ledger  # noqa: E402
from shared.pipeline.ledger.counters import CounterDeltas, seconds_property, top_prefix  # noqa: E402
from shared.pipeline.ledger.keys import (  # noqa: E402
    ACTIVE_PARTITION,
    GROUPS_PARTITION,
    SourceRef,
)
from shared.pipeline.ledger.pending import pending_row_key  # noqa: E402
from shared.pipeline.ledger.queue import entry_row_key, queue_partition  # noqa: E402
from shared.pipeline.ledger.records import TERMINAL_STATES, SourceState  # noqa: E402

if TYPE_CHECKING:
    from azure.data.tables import TableClient

INPUT = "audio-input"
OUTPUT = "transcripts"
LEDGER_TABLE = "transcriptionledger"
GROUP = "bench-group"
#: Share of rows per state: a ledger a few months into production.
MIX = {
    SourceState.SUCCEEDED: 0.80,
    SourceState.FAILED: 0.05,
    SourceState.REJECTED: 0.05,
    SourceState.SUPERSEDED: 0.05,
    SourceState.QUEUED: 0.02,
    SourceState.SUBMITTED: 0.02,
    SourceState.RETRYING: 0.005,
    SourceState.RECEIVED: 0.003,
    SourceState.CANCELLED: 0.002,
}
PREFIXES = ("calls/", "meetings/", "voicemail/", "podcasts/", "")
DAYS = 45
THREADS = 8
#: The timers stay quiet (once a year): no submitter, poller or sweep moves a seeded row while
#: the numbers are taken, so the counts can be checked against what was seeded.
QUIET = "0 0 0 1 1 *"
TIMERS = {name: QUIET for name in ("SUBMIT_SCHEDULE", "POLL_SCHEDULE", "SWEEP_SCHEDULE")}


@dataclass
class Seeded:
    """What was written, to seed the counters with and to check the answers against."""

    states: collections.Counter[str] = field(default_factory=collections.Counter)
    #: Per day and per prefix: terminal files per state, succeeded seconds per route.
    days: dict[dt.date, dict[str, float]] = field(default_factory=dict)
    prefixes: dict[str, dict[str, float]] = field(default_factory=dict)
    queued: list[tuple[SourceRef, dt.datetime]] = field(default_factory=list)
    received: list[SourceRef] = field(default_factory=list)


def rows(count: int, now: dt.datetime, seeded: Seeded) -> Iterator[dict[str, Any]]:
    """``count`` source entities, and their counts in ``seeded``."""
    rng = random.Random(12)  # noqa: S311 - reproducible test data
    states = list(MIX)
    weights = [MIX[s] for s in states]
    for index in range(count):
        state = rng.choices(states, weights)[0]
        prefix = rng.choice(PREFIXES)
        path = f"{prefix}2026/{index % 97:02d}/file-{index:06d}.wav"
        ref = SourceRef(INPUT, path, f"0x8DC{index:011X}")
        received = now - dt.timedelta(days=rng.uniform(0, DAYS), seconds=600)
        route = "fast" if rng.random() < 0.2 else "batch"
        seconds = round(rng.uniform(5, 1800), 1)
        entity: dict[str, Any] = {
            "PartitionKey": ref.partition_key,
            "RowKey": ref.row_key,
            "Kind": "audio",
            "Container": INPUT,
            "Path": path,
            "ETag": ref.etag,
            "Origin": "",
            "State": state.value,
            "ReceivedAt": received,
            "UpdatedAt": received,
            "Attempts": 1,
            "Size": int(seconds * 32_000),
            "OutputContainer": OUTPUT,
            "OutputBase": path,
            "Route": route,
            "AudioSeconds": seconds,
        }
        seeded.states[state.value] += 1
        if state in TERMINAL_STATES:
            completed = received + dt.timedelta(minutes=rng.uniform(1, 9))
            entity["CompletedAt"] = completed
            usage = seeded.days.setdefault(completed.date(), {})
            per_prefix = seeded.prefixes.setdefault(top_prefix(path), {})
            for counter in (usage, per_prefix):
                counter[state.value] = counter.get(state.value, 0) + 1
                if state is SourceState.SUCCEEDED:
                    name = seconds_property(route)
                    counter[name] = counter.get(name, 0.0) + seconds
        if state is SourceState.SUCCEEDED:
            entity["JobId"] = str(uuid.UUID(int=index))
            entity["Outputs"] = json.dumps([f"{path}.{ext}" for ext in ("txt", "srt", "vtt")])
        elif state in (SourceState.FAILED, SourceState.REJECTED):
            entity["ErrorCode"] = "InvalidData" if state is SourceState.FAILED else "NotAudio"
            entity["ErrorMessage"] = "the audio could not be decoded"
            entity["ReportPath"] = f"{path}.error.json"
        elif state in (SourceState.QUEUED, SourceState.RETRYING):
            entity["Group"] = GROUP
            entity["QueuedAt"] = received
            seeded.queued.append((ref, received))
        elif state is SourceState.RECEIVED:
            entity["ClaimedAt"] = received
            seeded.received.append(ref)
        yield entity


def transact(table: TableClient, partition_rows: list[dict[str, Any]]) -> None:
    """Create ``partition_rows`` (one partition) in transactions of 100, eight at a time."""
    chunks = [partition_rows[i : i + 100] for i in range(0, len(partition_rows), 100)]
    with ThreadPoolExecutor(THREADS) as pool:
        for _ in pool.map(
            lambda chunk: table.submit_transaction([("upsert", row) for row in chunk]), chunks
        ):
            pass


def seed(table: TableClient, count: int, now: dt.datetime) -> tuple[Seeded, float]:
    """The rows, their queue entries and index rows, and the counters; the seconds it took."""
    began = time.monotonic()
    seeded = Seeded()
    transact(table, list(rows(count, now, seeded)))
    table.upsert_entity(
        {"PartitionKey": GROUPS_PARTITION, "RowKey": GROUP, "Key": "{}", "LastEnqueuedAt": now}
    )
    entries = [
        {
            "PartitionKey": queue_partition(GROUP),
            "RowKey": entry_row_key(ref, due),
            "SourcePartition": ref.partition_key,
            "SourceRow": ref.row_key,
            "DueAt": due,
            "EnqueuedAt": due,
        }
        for ref, due in seeded.queued
    ]
    transact(table, entries)
    index = [
        {
            "PartitionKey": ACTIVE_PARTITION,
            "RowKey": pending_row_key(ref.partition_key, ref.row_key),
            "SourcePartition": ref.partition_key,
            "SourceRow": ref.row_key,
            "Kind": "audio",
            "Container": INPUT,
            "Path": ref.path,
            "DueAt": now + dt.timedelta(minutes=10),
        }
        for ref in seeded.received
    ]
    transact(table, index)
    asyncio.run(seed_counters(table, seeded))
    return seeded, time.monotonic() - began


async def seed_counters(table: TableClient, seeded: Seeded) -> None:
    """The counters as the transitions would have left them, through the ledger's code."""
    ledger = Ledger(table)
    await ledger.add_counts(CounterDeltas(dict(seeded.states), {}))
    for day, usage in seeded.days.items():
        await ledger.add_counts(CounterDeltas({}, dict(usage), day=day))
    for prefix, usage in seeded.prefixes.items():
        await ledger.add_counts(CounterDeltas({}, dict(usage), prefix=prefix))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(http: httpx.Client, url: str, params: dict[str, str], requests: int) -> str:
    """p50/p95 of ``requests`` calls after two warm-ups; the status of a failing one."""
    for _ in range(2):
        warm = http.get(url, params=params)
        if warm.status_code != 200:
            return f"HTTP {warm.status_code}: {warm.text[:200]}"
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = http.get(url, params=params)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return (
        f"p50 {statistics.median(times):7.1f} ms   p95 {percentile(times, 0.95):7.1f} ms   "
        f"({requests} calls, {len(response.content):,} bytes)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--state-root", help="keep the stack's state dir (logs) here")
    args = parser.parse_args()

    from azure.data.tables import TableClient

    state = Path(args.state_root or tempfile.mkdtemp(prefix="ledger-scale-"))
    state.mkdir(parents=True, exist_ok=True)
    stack = Stack(
        state,
        ports=Ports.free(),
        services=ALL_SERVICES,
        speech_engine="fixed",
        echo=lambda _m: None,
    )
    failed = False
    saved = {name: os.environ.get(name) for name in TIMERS}
    try:
        os.environ.update(TIMERS)  # up() hands its environment to the functions host
        try:
            info = stack.up()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        with info.identity_environment():
            table = TableClient(
                info.table_endpoint,
                LEDGER_TABLE,
                credential=info.credential(),
                connection_verify=info.ca_bundle,
            )
            now = dt.datetime.now(dt.UTC)
            seeded, took = seed(table, args.rows, now)
            table.close()
            print(
                f"seeded {args.rows:,} source rows and their counters in {took:.0f} s "
                f"({args.rows / took:,.0f} rows/s)"
            )
            http = httpx.Client(
                base_url=info.functions_url,
                headers={"x-functions-key": info.functions_key},
                timeout=120,
            )
            with http:
                body = http.get("/api/stats").json()
                expected = {s.value: seeded.states.get(s.value, 0) for s in SourceState}
                if body.get("states") != expected:
                    failed = True
                    print(f"MISMATCH: /api/stats states {body.get('states')} != seeded {expected}")
                else:
                    print(f"/api/stats states match the seeded rows: {expected}")
                waiting = body.get("oldestWaiting") or {}
                print(
                    f"oldest waiting: {waiting.get('state')} {waiting.get('path')} "
                    f"({waiting.get('ageSeconds', 0) / 86400:.1f} days)"
                )
                cases = [
                    ("GET /api/stats", "/api/stats", {}),
                    (
                        "GET /api/transcriptions?state=Failed&limit=50",
                        "/api/transcriptions",
                        {"state": "Failed", "limit": "50"},
                    ),
                    (
                        "GET /api/transcriptions?prefix=calls/&limit=50",
                        "/api/transcriptions",
                        {"prefix": "calls/", "limit": "50"},
                    ),
                ]
                if http.get("/api/ui").status_code != 404:
                    cases.append(("GET /api/ui", "/api/ui", {}))
                for label, url, params in cases:
                    print(f"{label:<50} {measure(http, url, params, args.requests)}")
    except StackError as exc:
        failed = True
        print(f"stack: {exc}")
    finally:
        stack.down()
        if not args.state_root:
            shutil.rmtree(state, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
