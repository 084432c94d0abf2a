"""Timer triggers on the local host: schedule, runOnStartup, singleton, past due, failures."""

from __future__ import annotations

import itertools
import time
from typing import Any

import httpx

from tests.host.conftest import SampleHost
from tests.host.harness import read_jsonl, wait_for


def _status(host: SampleHost) -> dict[str, dict[str, Any]]:
    response = httpx.get(
        f"{host.url}/admin/host/status", headers={"x-functions-key": host.master_key}
    )
    return {entry["name"]: entry for entry in response.json()["functions"]}


def assert_past_due_only_when_late(runs: list[dict[str, Any]], key: str = "at") -> None:
    """On a 1-second schedule, lateness is the fraction of a second a run started at."""
    for run in runs:
        lateness = run[key] % 1
        if lateness < 0.4:
            assert run["past_due"] is False, run
        elif lateness > 0.6:
            assert run["past_due"] is True, run


def test_timer_runs_on_startup_then_every_second(sample_host: SampleHost) -> None:
    ticks = wait_for(
        lambda: (t := read_jsonl(sample_host.out / "tick.jsonl")) and len(t) >= 4 and t,
        timeout=10,
        what="four ticks",
    )
    first, *scheduled = ticks
    assert first["status"]["Last"] == "0001-01-01T00:00:00"  # runOnStartup: never ran before
    assert first["past_due"] is False
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(scheduled)]
    assert all(0.5 < gap < 2.5 for gap in gaps), gaps
    # Scheduled ticks fire at the top of each second (NCRONTAB's first field), and are
    # past due only if they started late.
    assert_past_due_only_when_late(scheduled)
    assert scheduled[1]["status"]["Last"] < scheduled[1]["status"]["Next"]


def test_a_failing_timer_keeps_its_schedule(sample_host: SampleHost) -> None:
    failing = wait_for(
        lambda: (s := _status(sample_host)["failing_tick"])["failures"] >= 3 and s,
        timeout=10,
        what="three failures",
    )
    assert failing["invocations"] == failing["failures"]
    assert failing["last"]["status"] == "Failed"
    assert "ValueError: this timer always fails" in failing["last"]["error"]
    before = len(read_jsonl(sample_host.out / "tick.jsonl"))
    time.sleep(1.2)
    assert len(read_jsonl(sample_host.out / "tick.jsonl")) > before  # the others go on


def test_invocations_never_overlap_and_an_overrun_runs_past_due(sample_host: SampleHost) -> None:
    """``slow_tick`` (sync) overruns its 1-second schedule once, by 2.2 s."""
    runs = wait_for(
        lambda: (r := read_jsonl(sample_host.out / "slow_tick.jsonl")) and len(r) >= 4 and r,
        timeout=12,
        what="four slow_tick runs",
    )
    assert not any(run.get("overlap") for run in runs)
    for earlier, later in itertools.pairwise(runs):
        assert later["start"] >= earlier["end"]
    assert runs[0]["end"] - runs[0]["start"] >= 2.2
    assert runs[1]["past_due"] is True  # the occurrence missed while the first one ran
    assert runs[1]["start"] - runs[0]["end"] < 0.5  # run at once, not at the next second
    assert_past_due_only_when_late([runs[0], *runs[2:]], key="start")
    assert all(run["thread"].startswith("function_") for run in runs)
