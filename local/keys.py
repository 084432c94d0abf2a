"""The host's keys: one master key and one function key per state dir, kept on disk.

The real host keeps a master key and per-function keys (plus a ``default`` host key that
opens every function) in its secrets store. Locally one function key plays the
``default`` key: it opens every ``FUNCTION``-level route, the master key opens those and
the ``ADMIN`` ones. ``host-keys.json`` is mode 0600; ``stack.env`` carries the keys to
clients as ``FUNCTIONS_KEY`` / ``FUNCTIONS_MASTER_KEY``.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from local.certs import write_atomic

KEYS_FILE = "host-keys.json"


@dataclass(frozen=True)
class HostKeys:
    """The master key and the function key. Never logged (kept out of repr)."""

    master: str = field(repr=False)
    function: str = field(repr=False)

    def opens(self, given: str | None, *, admin: bool) -> bool:
        """True if ``given`` is the master key, or (unless ``admin``) the function key."""
        if not given:
            return False
        candidates = (self.master,) if admin else (self.master, self.function)
        # Compare every candidate, in constant time, so timing says nothing about a key.
        matches = [hmac.compare_digest(given.encode(), key.encode()) for key in candidates]
        return any(matches)


def _new_key() -> str:
    # 40 random bytes, URL-safe: usable as a ``code=`` query value without escaping.
    return secrets.token_urlsafe(40)


def ensure_keys(directory: Path) -> HostKeys:
    """Read ``<directory>/host-keys.json``, creating it with fresh keys the first time."""
    path = directory / KEYS_FILE
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        return HostKeys(master=str(data["master"]), function=str(data["function"]))
    keys = HostKeys(master=_new_key(), function=_new_key())
    payload = {"master": keys.master, "function": keys.function}
    write_atomic(path, json.dumps(payload, indent=2).encode(), private=True)
    return keys
