"""The app settings of a Function App wired to an offline stack, and ``stack.env`` itself.

A leaf module: both the stack (which starts the functions host) and the host (which can
load a ``stack.env`` itself) use it, and neither imports the other.

Offline, app settings come from five places. From the strongest:

1. the stack's wiring (:func:`stack_wiring`): storage service URIs with the managed
   identity, the identity endpoint, the Speech endpoint and its auth. Always: a setting
   that pointed the app elsewhere would not be offline any more;
2. the environment ``make up`` (or ``python -m local.host``) runs in;
3. ``local.settings.json`` ``Values``, as Core Tools applies them;
4. the offline defaults (:data:`OFFLINE_DEFAULTS`: the emulator finishes jobs in seconds,
   so the app polls every few seconds, not every minute);
5. the defaults of ``local.settings.json.example``, the same values the Bicep sets.

An empty value in 3 or 5 means "not set" (the example lists optional settings that way).
A connection the wiring defines is replaced whole: ``AudioStorage`` (a connection string)
or ``AudioStorage__clientId`` from a weaker layer would otherwise change what it means.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The connection (binding ``connection=``) the app's storage bindings use.
APP_STORAGE_CONNECTION = "AudioStorage"
#: The connections the stack wires: the app's and the host's own.
WIRED_CONNECTIONS = (APP_STORAGE_CONNECTION, "AzureWebJobsStorage")
LOCAL_SETTINGS_FILE = "local.settings.json"
EXAMPLE_SETTINGS_FILE = "local.settings.json.example"
#: Layer 4. The emulator finishes jobs in seconds, not the service's minutes: poll, sweep and
#: retry to match.
OFFLINE_DEFAULTS: Mapping[str, str] = {
    "POLL_SCHEDULE": "*/2 * * * * *",
    "POLL_MIN_INTERVAL_SECONDS": "2",
    "POLL_MAX_INTERVAL_SECONDS": "10",
    # The local host delivers blobs within a second or two: the sweep may look soon after.
    "SWEEP_SCHEDULE": "*/2 * * * * *",
    # Longer than a burst's backlog at the local host's pace: the sweep leaves uploads to
    # their own events instead of taking in the same files beside them.
    "SWEEP_GRACE_SECONDS": "60",
    "RETRY_BACKOFF_SECONDS": "2",
    # A lone file waits one window: a few seconds keep `make demo` quick.
    "SUBMIT_SCHEDULE": "*/1 * * * * *",
    "BATCH_WINDOW_SECONDS": "2",
}
#: What the stack's own clients need and the app must not see (``stack.env`` has them).
CLIENT_ONLY = ("FUNCTIONS_BASE_URL", "FUNCTIONS_KEY", "FUNCTIONS_MASTER_KEY")


class SettingError(ValueError):
    """A setting or settings file is missing or malformed; the message names it."""


def read_env_file(path: Path) -> dict[str, str]:
    """Parse ``stack.env`` (``KEY=value`` lines, values shell-quoted where needed)."""
    env: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}: not a KEY=value line: {key!r}")
        words = shlex.split(value)
        env[key] = words[0] if words else ""
    return env


def read_json_object(path: Path) -> dict[str, Any] | None:
    """A settings file's JSON object; None if the file does not exist, SettingError if bad."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SettingError(f"{path}: not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SettingError(f"{path}: expected a JSON object")
    return data


def read_local_settings(path: Path) -> dict[str, str]:
    """The ``Values`` of a ``local.settings.json`` (empty if the file does not exist)."""
    data = read_json_object(path)
    if data is None:
        return {}
    if data.get("IsEncrypted"):
        raise SettingError(f"{path}: IsEncrypted is true; this host reads plain values only")
    values = data.get("Values", {})
    if not isinstance(values, dict):
        raise SettingError(f"{path}: Values must be an object")
    # Core Tools wants strings; numbers and booleans are taken as their JSON text.
    return {
        str(key): value if isinstance(value, str) else json.dumps(value)
        for key, value in values.items()
        if value is not None
    }


def stack_wiring(stack_env: Mapping[str, str]) -> dict[str, str]:
    """Layer 1: what ties the app to the stack whose ``stack.env`` is ``stack_env``.

    Identity-based storage connections (``AudioStorage`` for the app's bindings,
    ``AzureWebJobsStorage`` for the host's own), the identity endpoint and keyless Speech,
    the way a Function App in Azure is wired to its resources.
    """
    storage = {
        f"{connection}__{key}": value
        for connection in WIRED_CONNECTIONS
        for key, value in (
            ("blobServiceUri", stack_env["LOCAL_BLOB_ENDPOINT"]),
            ("queueServiceUri", stack_env["LOCAL_QUEUE_ENDPOINT"]),
            ("tableServiceUri", stack_env["LOCAL_TABLE_ENDPOINT"]),
            ("credential", "managedidentity"),
        )
    }
    wiring = {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "PYTHON_ENABLE_INIT_INDEXING": "1",
        **storage,
        "SPEECH_ENDPOINT": stack_env["SPEECH_ENDPOINT"],
        "SPEECH_AUTH_MODE": "entra",
        "SPEECH_RESOURCE_ID": stack_env["SPEECH_RESOURCE_ID"],
    }
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER"):
        if name in stack_env:
            wiring[name] = stack_env[name]
    # Where the emulator delivers web hook events (used with SPEECH_WEBHOOKS=on): the local
    # host, over plain HTTP on loopback, with the stack's own secret.
    if "FUNCTIONS_BASE_URL" in stack_env:
        wiring["SPEECH_WEBHOOK_URL"] = f"{stack_env['FUNCTIONS_BASE_URL']}/api/speech/webhooks"
    if "LOCAL_WEBHOOK_SECRET" in stack_env:
        wiring["SPEECH_WEBHOOK_SECRET"] = stack_env["LOCAL_WEBHOOK_SECRET"]
    return wiring


def _set(values: Mapping[str, str]) -> dict[str, str]:
    return {key: value for key, value in values.items() if value != ""}


def _wired(key: str) -> bool:
    prefix = key.split("__", 1)[0]
    return prefix in WIRED_CONNECTIONS or key in ("SPEECH_KEY", "SPEECH_REGION")


def function_app_settings(
    stack_env: Mapping[str, str],
    *,
    environ: Mapping[str, str] | None = None,
    local_settings: Mapping[str, str] | None = None,
    app_dir: Path = REPO_ROOT,
) -> dict[str, str]:
    """The environment of a Function App on this stack: ``environ`` plus its app settings.

    Layers as the module docstring orders them; ``local_settings`` defaults to
    ``<app_dir>/local.settings.json``. The stack's client-only values (its URL and keys)
    are left out: the app never sees them.
    """
    example_path = app_dir / EXAMPLE_SETTINGS_FILE
    example = read_local_settings(example_path) if example_path.is_file() else {}
    if local_settings is None:
        local_settings = read_local_settings(app_dir / LOCAL_SETTINGS_FILE)
    merged: dict[str, str] = {
        **_set(example),
        **OFFLINE_DEFAULTS,
        **_set(local_settings),
        **(environ or {}),
    }
    result = {key: value for key, value in merged.items() if not _wired(key)}
    result.update(stack_wiring(stack_env))
    for name in CLIENT_ONLY:
        result.pop(name, None)
    return result
