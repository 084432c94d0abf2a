"""Wall-clock time behind one small interface, so tests can move time forward.

Everything time-dependent in the emulator (token expiry, SAS expiry, timeToLiveHours,
quota windows, timestamps in responses) reads :meth:`Clock.now`; tests pass an
:class:`AdjustableClock` to :func:`local.emulator.app.create_app`.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Protocol


class Clock(Protocol):
    """A source of the current UTC time."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> dt.datetime:
        """``datetime.now(UTC)``."""
        return dt.datetime.now(dt.UTC)


class AdjustableClock:
    """The real clock plus an offset that :meth:`advance` grows (time travel for tests).

    It keeps ticking like the real clock, so tokens minted by other processes stay valid,
    while a test can jump hours ahead to expire tokens, SAS URLs or transcriptions.
    """

    def __init__(self) -> None:
        self._offset = dt.timedelta()
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        """The real time plus the offset."""
        with self._lock:
            return dt.datetime.now(dt.UTC) + self._offset

    def advance(self, delta: dt.timedelta) -> None:
        """Move the clock forward by ``delta``."""
        with self._lock:
            self._offset += delta


def iso(moment: dt.datetime) -> str:
    """``YYYY-MM-DDThh:mm:ssZ``: the service's timestamp format (UTC, whole seconds)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
