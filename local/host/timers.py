"""Timer triggers: NCRONTAB schedules in UTC, ``runOnStartup``, one invocation at a time.

The real host holds a singleton lock per timer function, so invocations of one timer never
overlap: here each timer is one task that awaits its invocation before planning the next.
When an invocation overruns one or more occurrences, the latest missed occurrence runs at
once with ``past_due`` set and the earlier ones are dropped (the real host does not queue
them either). ``useMonitor`` (schedule state in storage, for past-due detection across
restarts) is ignored: a local host is not expected to catch up after being stopped.
A failing invocation is logged and the schedule goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from azure.functions.timer import TimerRequest

from local.host.app import FunctionSpec, TimerConfig
from local.host.invoke import InvocationFailed, Invoker

log = logging.getLogger("local.host.timer")

#: An invocation that starts this much later than its occurrence is past due. Looser than
#: the event loop's timer resolution, tighter than any schedule (NCRONTAB's step is 1 s).
PAST_DUE_AFTER = dt.timedelta(milliseconds=500)
# The .NET DateTime.MinValue the real host reports as "Last" before the first run.
_NEVER = "0001-01-01T00:00:00"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TimerRunner:
    """Runs one timer function for as long as its task lives."""

    def __init__(
        self,
        spec: FunctionSpec,
        invoker: Invoker,
        *,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        if not isinstance(spec.config, TimerConfig):
            raise TypeError(f"{spec.name} is not a timer function")
        self.spec = spec
        self.config = spec.config
        self._invoker = invoker
        self._clock = clock
        self._last: dt.datetime | None = None
        self.next_due: dt.datetime | None = None

    def status(self) -> dict[str, Any]:
        """Schedule details for ``/admin/host/status``."""
        return {
            "schedule": self.config.schedule.expression,
            "runOnStartup": self.config.run_on_startup,
            "next": self.next_due.isoformat() if self.next_due else None,
        }

    async def run(self) -> None:
        """Invoke on schedule until cancelled."""
        schedule = self.config.schedule
        if self.config.run_on_startup:
            now = self._clock()
            await self._fire(now, past_due=False, reason="RunOnStartup")
        self.next_due = schedule.next_after(self._clock())
        missed = False
        while True:
            delay = (self.next_due - self._clock()).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
            occurrence = self.next_due
            past_due = missed or self._clock() - occurrence > PAST_DUE_AFTER
            await self._fire(occurrence, past_due=past_due, reason="Timer fired")
            following = schedule.next_after(occurrence)
            now = self._clock()
            missed = following <= now
            if missed:
                # Overran: the latest missed occurrence runs now, past due; no backlog.
                following = schedule.latest_at_or_before(now)
                log.warning(
                    "%s: the invocation overran its schedule; running the occurrence of %s now",
                    self.spec.name,
                    following.isoformat(),
                )
            self.next_due = following

    async def _fire(self, occurrence: dt.datetime, *, past_due: bool, reason: str) -> None:
        schedule = self.config.schedule
        request = TimerRequest(
            past_due=past_due,
            schedule_status={
                "Last": self._last.isoformat() if self._last else _NEVER,
                "Next": schedule.next_after(occurrence).isoformat(),
                "LastUpdated": self._clock().isoformat(),
            },
            schedule={"AdjustForDST": True},
        )
        self._last = occurrence

        async def trigger() -> Any:
            return request

        # A failure is logged by the invoker; the schedule goes on.
        with contextlib.suppress(InvocationFailed):
            await self._invoker.invoke(self.spec, trigger, metadata={}, reason=reason)
