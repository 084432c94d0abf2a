"""Logging for the local host: one stdout stream, function names on each line, no secrets.

Every line passes :func:`shared.redact.redact` after formatting, tracebacks
included, with the host keys registered as secrets: user code may log a SAS URL or raise
an exception quoting one, and the stack keeps this output in ``.local/logs/functions.log``.
Lines logged while a function runs (by the host or by the function itself, in its task or
in its worker thread) carry ``Function.<name>`` and the invocation id, as the real host's
do.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar

from shared.redact import redact, register_secret

_invocation: ContextVar[tuple[str, str] | None] = ContextVar("local_host_invocation", default=None)
# Chatty at INFO (every request, every token) and never useful in a local host's log.
_QUIET_LOGGERS = (
    "azure.core.pipeline.policies.http_logging_policy",
    "azure.identity",
    "httpx",
)


@contextlib.contextmanager
def invocation_scope(function_name: str, invocation_id: str) -> Iterator[None]:
    """Tag log lines emitted inside (and in threads started with its context) with a function."""
    token = _invocation.set((function_name, invocation_id))
    try:
        yield
    finally:
        _invocation.reset(token)


class _OriginFilter(logging.Filter):
    """Sets ``origin``: ``Function.<name> <invocation id>`` in an invocation, else the logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _invocation.get()
        record.origin = f"Function.{current[0]} {current[1][:8]}" if current else record.name
        return True


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def protect_secrets(*secrets: str) -> None:
    """Scrub these exact values (the host keys) from every line from now on."""
    for secret in secrets:
        register_secret(secret)


def configure_logging(*, level: int = logging.INFO) -> None:
    """Send every log record to stdout, redacted (see the module docstring)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_OriginFilter())
    handler.setFormatter(
        _RedactingFormatter("%(asctime)s %(levelname)-7s [%(origin)s] %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
