"""App settings as the Functions host applies them.

* ``%NAME%`` in a binding field is replaced by the app setting ``NAME`` (the host resolves
  these when it indexes the app; a reference to a missing setting disables that function).
* ``local.settings.json`` (its ``Values``) fills in settings the environment lacks, as
  Core Tools does: a variable already in the environment wins. On top of Core Tools, a
  connection the environment defines (``X`` or ``X__blobServiceUri`` ...) wins as a whole,
  so a ``"X": "UseDevelopmentStorage=true"`` in the file cannot shadow the stack's
  identity-based ``X__*`` settings (the blob SDK binding prefers ``X`` when both exist).
* ``host.json``: the HTTP route prefix and the blob trigger's poison threshold.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.app_settings import SettingError as SettingError  # re-exported: the host raises it too
from local.app_settings import read_json_object

SETTING_REFERENCE = re.compile(r"%([^%\s]+)%")
DEFAULT_ROUTE_PREFIX = "api"
#: The blob trigger's poison threshold: its queue's ``maxDequeueCount`` (Azure's default 5).
DEFAULT_MAX_ATTEMPTS = 5
# Binding fields the host never resolves: they name things, they are not values.
_NOT_RESOLVED = frozenset({"name", "type", "direction"})
# Suffixes that make ``<prefix>__<suffix>`` part of an identity-based connection.
_CONNECTION_SUFFIXES = (
    "serviceUri",
    "blobServiceUri",
    "queueServiceUri",
    "tableServiceUri",
    "accountName",
    "credential",
    "clientId",
)


def resolve_references(value: str, env: Mapping[str, str]) -> str:
    """``value`` with every ``%NAME%`` replaced by the app setting ``NAME``."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise SettingError(f"%{name}% does not resolve to an app setting: set {name}")
        return env[name]

    return SETTING_REFERENCE.sub(replace, value)


def resolve_binding(binding: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """A binding (``function.json`` shape) with ``%NAME%`` resolved in its string fields."""
    return {
        key: resolve_references(value, env)
        if isinstance(value, str) and key not in _NOT_RESOLVED
        else value
        for key, value in binding.items()
    }


def _connection_defined(env: Mapping[str, str], prefix: str) -> bool:
    return prefix in env or any(f"{prefix}__{suffix}" in env for suffix in _CONNECTION_SUFFIXES)


def merge_local_settings(
    env: Mapping[str, str], values: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """Split ``values`` into the settings to add to ``env`` and the names skipped.

    A name is skipped when ``env`` has it, or when ``env`` defines the connection it
    belongs to (the part before the first ``__``).
    """
    added: dict[str, str] = {}
    skipped: list[str] = []
    for key, value in values.items():
        prefix = key.split("__", 1)[0]
        if key in env or _connection_defined(env, prefix):
            skipped.append(key)
        else:
            added[key] = value
    return added, skipped


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise SettingError(f"{name}={raw!r} must be greater than 0")
    return value


def _host_json(app_dir: Path) -> dict[str, Any]:
    return read_json_object(app_dir / "host.json") or {}


def _section(data: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    for key in keys:
        value = data.get(key)
        data = value if isinstance(value, dict) else {}
    return data


@dataclass(frozen=True)
class HostSettings:
    """How the local host behaves; from the environment and the app's ``host.json``."""

    #: ``LOCAL_BLOB_POLL_SECONDS``: how often each blob trigger lists its container.
    blob_poll_seconds: float = 1.0
    #: ``LOCAL_BLOB_RETRY_SECONDS``: the first wait before a failed blob invocation is
    #: retried; it doubles per attempt, up to :attr:`blob_retry_max_seconds`.
    blob_retry_seconds: float = 0.5
    blob_retry_max_seconds: float = 30.0
    #: host.json ``extensions.queues.maxDequeueCount``: attempts before a blob is poison.
    blob_max_attempts: int = DEFAULT_MAX_ATTEMPTS
    #: ``LOCAL_BLOB_CONCURRENCY``: blob invocations running at once, all functions together.
    blob_concurrency: int = 8
    #: ``PYTHON_THREADPOOL_THREAD_COUNT``: threads for synchronous functions (the worker's
    #: setting, with its default).
    sync_threads: int = min(32, (os.cpu_count() or 1) + 4)
    #: host.json ``extensions.http.routePrefix``.
    route_prefix: str = DEFAULT_ROUTE_PREFIX

    @classmethod
    def load(cls, env: Mapping[str, str], app_dir: Path) -> HostSettings:
        """Read the ``LOCAL_*`` variables from ``env`` and ``host.json`` from ``app_dir``."""
        host_json = _host_json(app_dir)
        prefix = _section(host_json, "extensions", "http").get("routePrefix")
        attempts = _section(host_json, "extensions", "queues").get("maxDequeueCount")
        defaults = cls()
        return cls(
            blob_poll_seconds=_positive(env, "LOCAL_BLOB_POLL_SECONDS", defaults.blob_poll_seconds),
            blob_retry_seconds=_positive(
                env, "LOCAL_BLOB_RETRY_SECONDS", defaults.blob_retry_seconds
            ),
            blob_max_attempts=attempts
            if isinstance(attempts, int) and not isinstance(attempts, bool) and attempts > 0
            else DEFAULT_MAX_ATTEMPTS,
            blob_concurrency=int(
                _positive(env, "LOCAL_BLOB_CONCURRENCY", defaults.blob_concurrency)
            ),
            sync_threads=int(
                _positive(env, "PYTHON_THREADPOOL_THREAD_COUNT", defaults.sync_threads)
            ),
            route_prefix=(prefix if isinstance(prefix, str) else DEFAULT_ROUTE_PREFIX).strip("/"),
        )
