"""Which queued versions may share one Speech job: the grouping key.

A batch job takes one set of properties for all its ``contentUrls`` (locale, language
identification, diarization and its speaker count, model, channels, punctuation,
profanity, word timestamps, time to live), and the app writes every result of a job to one
output container. Versions whose options and output place agree form a group; a manifest's
destination prefix is part of its key, so a manifest's files form groups of their own.
Manifest files routed to fast transcription wait in groups of their own too (``route`` in
the key), which the submitter drains one file at a time instead of making jobs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

#: The key's ``route`` of a group the submitter sends to fast transcription file by file.
FAST_ROUTE = "fast"


def group_of(
    options: Mapping[str, Any],
    *,
    output_container: str,
    destination_prefix: str = "",
    fast: bool = False,
) -> tuple[str, dict[str, Any]]:
    """(group id, key): the id is a digest of the canonical key, stable across processes.

    Batch groups have no ``route`` in their key, so their ids are those of before routing.
    """
    key: dict[str, Any] = {
        "options": dict(options),
        "outputContainer": output_container,
        "destinationPrefix": destination_prefix,
    }
    if fast:
        key["route"] = FAST_ROUTE
    canonical = json.dumps(key, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24], key
