"""``python -m local.stack up|down|status [--state-dir DIR] [--services a,b] [--app M:A]
[--timeout S]``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from local.stack.errors import StackError
from local.stack.services import (
    ALL_SERVICES,
    DEFAULT_FUNCTIONS_APP,
    DEFAULT_TIMEOUT,
    FUNCTION_APP_FILE,
    FUNCTIONS,
    default_services,
)
from local.stack.supervisor import Stack


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code (``status``: 0 when every service is healthy)."""
    parser = argparse.ArgumentParser(
        prog="python -m local.stack", description="Start, stop and inspect the offline stack."
    )
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--state-dir", type=Path, help="default: LOCAL_STATE_DIR or <repo>/.local")
    parser.add_argument(
        "--services",
        help="comma-separated subset to start (default: all; functions only once "
        "function_app.py exists or --app is given): " + ",".join(ALL_SERVICES),
    )
    parser.add_argument(
        "--app",
        help=f"module:attribute the functions host serves (default {DEFAULT_FUNCTIONS_APP})",
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds for up")
    args = parser.parse_args(argv)
    try:
        if args.services is None:
            services = list(default_services(args.app))
            if args.command == "up" and FUNCTIONS not in services:
                print(
                    f"{FUNCTIONS}: not started: there is no {FUNCTION_APP_FILE.name} at the "
                    "repo root yet (pass --app module:attribute to serve another app)"
                )
        else:
            services = [name.strip() for name in args.services.split(",") if name.strip()]
        stack = Stack(
            args.state_dir,
            services=services,
            timeout=args.timeout,
            functions_app=args.app or DEFAULT_FUNCTIONS_APP,
        )
        if args.command == "up":
            began = time.monotonic()
            stack.up()
            print(f"stack up in {time.monotonic() - began:.1f} s; settings in {stack.env_file}")
            print(f"load them with: set -a; . {stack.env_file}; set +a")
            return 0
        if args.command == "down":
            if not stack.down():
                print("nothing was running")
            return 0
        statuses = stack.status()
        for status in statuses:
            print(status.line())
        wanted = [s for s in statuses if s.name in stack.services]
        return 0 if all(s.state == "healthy" for s in wanted) else 3
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
