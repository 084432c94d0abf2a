"""The app settings of a Function App wired to an offline stack, and ``stack.env`` itself.

A leaf module: both the stack (which starts the functions host) and the host (which can
load a ``stack.env`` itself) use it, and neither imports the other.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The connection (binding ``connection=``) the app's storage bindings use.
APP_STORAGE_CONNECTION = "AudioStorage"


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


def function_app_settings(env: Mapping[str, str]) -> dict[str, str]:
    """The app settings of a Function App wired to the stack whose ``stack.env`` is ``env``.

    What Azure would configure: the app's documented settings (the non-empty values of
    ``local.settings.json.example``, which the Bicep sets too), identity-based storage
    connections (``AudioStorage`` for the app's bindings, ``AzureWebJobsStorage`` for the
    host's own) and keyless Speech. A developer's ``local.settings.json`` is applied on top
    by the host itself.
    """
    storage = {
        f"{connection}__{key}": value
        for connection in (APP_STORAGE_CONNECTION, "AzureWebJobsStorage")
        for key, value in (
            ("blobServiceUri", env["LOCAL_BLOB_ENDPOINT"]),
            ("queueServiceUri", env["LOCAL_QUEUE_ENDPOINT"]),
            ("tableServiceUri", env["LOCAL_TABLE_ENDPOINT"]),
            ("credential", "managedidentity"),
        )
    }
    example = REPO_ROOT / "local.settings.json.example"
    documented: dict[str, str] = {}
    if example.is_file():
        values = json.loads(example.read_text(encoding="utf-8")).get("Values", {})
        documented = {k: str(v) for k, v in values.items() if str(v) != ""}
    return {
        **documented,
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "PYTHON_ENABLE_INIT_INDEXING": "1",
        **storage,
        "SPEECH_ENDPOINT": env["SPEECH_ENDPOINT"],
        "SPEECH_AUTH_MODE": "entra",
        "SPEECH_RESOURCE_ID": env["SPEECH_RESOURCE_ID"],
        # The emulator finishes jobs in seconds, not the service's minutes: poll to match.
        "POLL_SCHEDULE": "*/2 * * * * *",
        "POLL_MIN_INTERVAL_SECONDS": "2",
        "POLL_MAX_INTERVAL_SECONDS": "10",
    }
