"""Cold import cost of the client package, as `python -X importtime` reports it.

Runs each import in a fresh interpreter several times and prints the median cumulative
microseconds per module, so that a change that drags a heavy import into start-up shows.

    .venv/bin/python bench/import_time.py [module ...]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = [
    "shared.speech",  # the package itself: names load lazily
    "shared.speech.config",  # every client, settings and auth
    "shared.speech.models",
    "httpx",
    "pydantic",
    "pydantic_settings",
]
RUNS = 7


def cumulative_us(module: str) -> int:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    for line in reversed(out.splitlines()):
        fields = [f.strip() for f in line.removeprefix("import time:").split("|")]
        if len(fields) == 3 and fields[2] == module:
            return int(fields[1])
    raise RuntimeError(f"{module} not in importtime output")


def main(modules: list[str]) -> None:
    print(f"{'module':<28} {'median ms':>10}   (cumulative, {RUNS} fresh interpreters)")
    for module in modules:
        samples = [cumulative_us(module) for _ in range(RUNS)]
        print(f"{module:<28} {statistics.median(samples) / 1000:>10.1f}")


if __name__ == "__main__":
    main(sys.argv[1:] or DEFAULT)
