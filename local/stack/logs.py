"""Service logs that survive restarts: appended per run, rotated once they grow large.

Each start appends a marker line and the service's output to ``logs/<service>.log``, so
the log that explains a crash is still there after the next ``make up``. Before a start,
a log past :data:`LOG_MAX_BYTES` moves to ``<service>.log.1`` (replacing an older one):
at most two files per service, each run whole in one of them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import BinaryIO

#: A log larger than this is rotated before the next start.
LOG_MAX_BYTES = 8 * 1024**2
#: Starts every run's section; :func:`current_run` finds the newest.
RUN_MARKER = "=== offline stack: "


def open_for_run(path: Path, service: str, argv: list[str]) -> BinaryIO:
    """Open ``path`` for the new run of ``service``: rotate if large, append a marker."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.stat().st_size > LOG_MAX_BYTES:
        path.replace(path.with_name(path.name + ".1"))
    log = path.open("ab")
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    # argv[0] only: later arguments may be long, and none of them helps to find the run.
    log.write(f"{RUN_MARKER}{service} started {started} ({Path(argv[0]).name}) ===\n".encode())
    log.flush()
    return log


def current_run(path: Path) -> list[str]:
    """The lines of the newest run in ``path`` (everything after its marker)."""
    lines = path.read_text(errors="replace").splitlines()
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].startswith(RUN_MARKER):
            return lines[index + 1 :]
    return lines
