"""The stack's services, where they live, and which start by default."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO_ROOT / ".local"
HOST = "127.0.0.1"

AZURITE = "azurite"
IDENTITY = "identity"
EMULATOR = "emulator"
FUNCTIONS = "functions"
#: The services ``Stack`` starts by default: the ones every test and script needs.
SERVICES: tuple[str, ...] = (AZURITE, IDENTITY, EMULATOR)
#: Every service, in start order: the functions host last, once storage and identity answer.
ALL_SERVICES: tuple[str, ...] = (*SERVICES, FUNCTIONS)

IDENTITY_APP = "local.identity:create_app"
EMULATOR_APP = "local.emulator.app:create_app"
FUNCTIONS_MODULE = "local.host"
DEFAULT_FUNCTIONS_APP = "function_app:app"
FUNCTION_APP_FILE = REPO_ROOT / "function_app.py"
#: Response header (set with uvicorn ``--header``) naming the service and its state dir. It
#: lets ``up`` say whose server holds a taken port, and marks the command line of our
#: processes so ``down`` recognises them.
STACK_HEADER = "X-Offline-Stack"

DEFAULT_TIMEOUT = 60.0
STOP_GRACE_SECONDS = 5.0
LOG_TAIL_LINES = 40
POLL_SECONDS = 0.1


def default_services(functions_app: str | None = None) -> tuple[str, ...]:
    """What the CLI starts without ``--services``: the functions host too once there is an app."""
    if functions_app is not None or FUNCTION_APP_FILE.is_file():
        return ALL_SERVICES
    return SERVICES


def emulator_present() -> bool:
    package = REPO_ROOT / "local" / "emulator"
    return (package / "app.py").is_file() or (package / "app" / "__init__.py").is_file()
