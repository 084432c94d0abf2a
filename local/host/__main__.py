"""``python -m local.host``: run a function app locally.

Settings reach the app as environment variables, assembled like Core Tools does: the
process environment, then ``local.settings.json`` in the app dir for what is still missing
(see :mod:`local.host.settings`). ``--stack-env .local/stack.env`` first adds a running
offline stack's settings and the app settings that map the app onto it (what
``make up`` gives the host), for running the host by hand, e.g. under a debugger.

The process exits 1 when the app cannot be imported or indexed, with the error in its
output (the stack shows that log's tail).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn

from local.app_settings import read_local_settings
from local.host.app import DEFAULT_APP, discover, load_app
from local.host.logs import configure_logging, protect_secrets
from local.host.server import FunctionsHost
from local.host.settings import (
    HostSettings,
    SettingError,
    merge_local_settings,
)
from local.keys import ensure_keys

log = logging.getLogger("local.host")

HOST = "127.0.0.1"
DEFAULT_PORT = 7071
LOCAL_SETTINGS = "local.settings.json"
#: Seconds open HTTP requests get to finish when the host is told to stop.
GRACEFUL_SHUTDOWN_SECONDS = 5


def _default_state_dir() -> Path:
    root = os.environ.get("LOCAL_STATE_DIR") or Path(__file__).resolve().parents[2] / ".local"
    return Path(root) / "functions"


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.host", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--app", default=DEFAULT_APP, help=f"module:attribute (default {DEFAULT_APP})"
    )
    parser.add_argument(
        "--app-dir", type=Path, default=Path.cwd(), help="put on sys.path; holds host.json"
    )
    parser.add_argument("--host", default=HOST, help=f"interface to listen on (default {HOST})")
    parser.add_argument(
        "--port",
        type=int,
        help=f"default: the port of --stack-env's FUNCTIONS_BASE_URL, LOCAL_FUNCTIONS_PORT or "
        f"{DEFAULT_PORT}",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="keys, blob receipts, poison spool (default <LOCAL_STATE_DIR or .local>/functions)",
    )
    parser.add_argument(
        "--stack-env", type=Path, help="a stack.env whose settings (and app settings) to use"
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="a response header on every reply (the stack marks its services with one)",
    )
    return parser.parse_args(argv)


def _apply_stack_env(path: Path, app_dir: Path) -> int | None:
    """Load a stack.env and its app settings into ``os.environ``; the host's port there.

    The same layers as when the stack starts the host (:mod:`local.app_settings`): the
    stack's wiring over this environment over ``local.settings.json`` over the defaults.
    """
    from local.app_settings import function_app_settings, read_env_file

    stack_env = read_env_file(path)
    environ = {**os.environ, **stack_env}
    settings = function_app_settings(stack_env, environ=environ, app_dir=app_dir)
    os.environ.clear()
    os.environ.update(settings)
    return urlsplit(stack_env.get("FUNCTIONS_BASE_URL", "")).port


def main(argv: Sequence[str] | None = None) -> int:
    """Run the host until SIGINT/SIGTERM; returns the exit code."""
    args = _parse(argv)
    configure_logging()
    app_dir = args.app_dir.resolve()
    stack_port: int | None = None
    try:
        # First: it may set LOCAL_STATE_DIR, which decides where the keys are.
        if args.stack_env:
            stack_port = _apply_stack_env(args.stack_env, app_dir)
    except (OSError, ValueError) as exc:
        log.error("--stack-env %s: %s", args.stack_env, exc)
        return 1
    raw_port = args.port or stack_port or os.environ.get("LOCAL_FUNCTIONS_PORT") or DEFAULT_PORT
    try:
        port = int(raw_port)
    except ValueError:
        log.error("LOCAL_FUNCTIONS_PORT=%r is not a port number", raw_port)
        return 2
    state_dir = (args.state_dir or _default_state_dir()).resolve()
    keys = ensure_keys(state_dir)
    protect_secrets(keys.master, keys.function)
    headers: list[tuple[str, str]] = []
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep:
            log.error("--header %r: expected NAME:VALUE", header)
            return 2
        headers.append((name, value))
    try:
        added, skipped = merge_local_settings(
            os.environ, read_local_settings(app_dir / LOCAL_SETTINGS)
        )
        os.environ.update(added)
        if skipped:
            log.info(
                "%s: kept the environment's value of %s", LOCAL_SETTINGS, ", ".join(sorted(skipped))
            )
        settings = HostSettings.load(os.environ, app_dir)
    except (OSError, SettingError) as exc:
        log.error("%s", exc)
        return 1
    try:
        app = load_app(args.app, app_dir)
        discovery = discover(app, os.environ)
    except Exception:
        log.exception("cannot load the function app %s from %s", args.app, app_dir)
        return 1
    host = FunctionsHost(
        discovery,
        app_spec=args.app,
        keys=keys,
        settings=settings,
        state_dir=state_dir,
        env=os.environ,
        function_directory=app_dir,
    )
    base_url = f"http://{args.host}:{port}"
    log.info("Functions in %s:", args.app)
    for line in host.describe(base_url):
        log.info("    %s", line)
    for skipped_function in discovery.skipped:
        log.warning(
            "    %s: skipped (%s): %s",
            skipped_function.name,
            skipped_function.trigger_type,
            skipped_function.reason,
        )
    for warning in host.warnings():
        log.warning("%s", warning)
    log.info("keys: %s (FUNCTIONS_KEY in the stack's stack.env)", state_dir / "host-keys.json")
    config = uvicorn.Config(
        host.front,
        host=args.host,
        port=port,
        lifespan="on",
        access_log=False,  # its lines would carry ?code=<key>; the host logs paths only
        log_config=None,
        headers=headers,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
