"""Ledger keys: partitions, row keys, and the encoding that keeps path prefixes prefixes.

See :mod:`shared.pipeline.ledger` for the table's layout.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

ACTIVE_PARTITION = "active"
SOURCE_PARTITION_PREFIX = "src|"
JOB_PREFIX = "job|"
PENDING_PREFIX = "pending|"
CURSOR_PREFIX = "sweep|"
BUDGET_PREFIX = "budget|"
BATCH_PREFIX = "batch|"
#: The one row describing the app's Speech web hook.
HOOK_ROW = "hook|speech"
#: Events of terminal states waiting to be published (``active``), one row per event.
OUTBOX_PREFIX = "outbox|"
#: Counters live in a partition of their own, away from the busy ``active`` one.
STATS_PARTITION = "stats"
#: Sharded counter rows: versions per state now; terminal files and audio per day, per prefix.
STATE_COUNT_PREFIX = "state|"
DAY_STATS_PREFIX = "day|"
PREFIX_STATS_PREFIX = "prefix|"
#: Queue groups live in one partition; each group's entries in a partition of their own.
GROUPS_PARTITION = "groups"
QUEUE_PARTITION_PREFIX = "queue|"
#: Separator inside source row keys; encoded wherever it occurs in a path or ETag.
KEY_SEPARATOR = "|"
#: Table Storage keys are at most 1 KiB of UTF-16 (512 units); the path gets this much.
MAX_KEY_PATH_UNITS = 400
#: Characters a key may not hold (and ``%``, the escape, and the separator).
_KEY_ESCAPES = frozenset("/\\#?%|")


# ----------------------------------------------------------------------------------- keys


def encode_key_part(text: str) -> str:
    """``text`` safe inside a Table Storage key; char-wise, so prefixes stay prefixes."""
    out = []
    for char in text:
        code = ord(char)
        if char in _KEY_ESCAPES or code < 0x20 or 0x7F <= code <= 0x9F:
            out.append("".join(f"%{byte:02X}" for byte in char.encode("utf-8")))
        else:
            out.append(char)
    return "".join(out)


def utf16_units(text: str) -> int:
    return sum(2 if ord(char) > 0xFFFF else 1 for char in text)


def clip_units(text: str, units: int) -> str:
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > units:
            return text[:index]
    return text


def digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def path_key(path: str) -> str:
    """The key form of a blob path: encoded, and clipped with a hash when too long."""
    encoded = encode_key_part(path)
    if utf16_units(encoded) <= MAX_KEY_PATH_UNITS:
        return encoded
    return f"{clip_units(encoded, MAX_KEY_PATH_UNITS)}~{digest(path, 24)}"


def source_partition(container: str) -> str:
    """Partition of the source rows of one container."""
    return f"{SOURCE_PARTITION_PREFIX}{container}"


def key_upper_bound(prefix: str) -> str:
    """The smallest string greater than every string that starts with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


@dataclass(frozen=True)
class SourceRef:
    """One source blob version, as one request: container, path, ETag and origin.

    ``origin`` is empty for a blob uploaded on its own, and identifies the manifest
    version for a file a manifest names.
    """

    container: str
    path: str
    etag: str
    origin: str = ""

    @property
    def partition_key(self) -> str:
        """``src|<container>``."""
        return source_partition(self.container)

    @property
    def row_key(self) -> str:
        """``<enc(path)>|<enc(etag)>`` plus ``|m<hash>`` for manifest-origin requests."""
        key = f"{path_key(self.path)}{KEY_SEPARATOR}{encode_key_part(self.etag)}"
        if self.origin:
            key += f"{KEY_SEPARATOR}m{digest(self.origin, 16)}"
        return key

    @property
    def display(self) -> str:
        """``container/path@etag`` for logs and reports."""
        return f"{self.container}/{self.path}@{self.etag}"
