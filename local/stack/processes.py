"""Processes of the stack: is a pid still ours, is a process group still alive."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def command_line(pid: int) -> str | None:
    """The process's command line, or None if it is gone (zombies included)."""
    if Path("/proc/self").is_dir():
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return raw.replace(b"\0", b" ").decode(errors="replace").strip() or None
    # No /proc (macOS, BSD): ps prints nothing for a missing pid.
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["ps", "-o", "command=", "-p", str(pid)],  # noqa: S607 - ps from PATH, as a shell would
        capture_output=True,
        text=True,
        check=False,
    )
    text = result.stdout.strip()
    return None if not text or "<defunct>" in text else text


def group_alive(pgid: int) -> bool:
    """True while a process of group ``pgid`` still runs (zombies do not count).

    Zombies are left out because reaping an orphan is init's job, and some inits (in
    containers and VMs) reap only every few seconds: waiting for them would make ``down``
    slow for nothing.
    """
    if not Path("/proc/self").is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # exited while we looked
        # The command name may hold spaces and parentheses: fields start after the last ")".
        state, _ppid, pgrp = text[text.rindex(")") + 2 :].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            return True
    return False
