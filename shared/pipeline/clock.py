"""The pipeline's one clock: aware UTC datetimes (tests pass ``now`` instead)."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """The current time, timezone-aware (UTC)."""
    return dt.datetime.now(dt.UTC)
