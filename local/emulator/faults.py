"""Fault injection: the real quota, random 5xx answers, added latency, slow or failing jobs.

The defaults come from the ``EMULATOR_*`` settings; ``PUT /admin/faults`` changes them at
run time and ``POST /admin/reset`` puts them back. All of it applies to the Speech-to-Text
REST API ("batch surface": ``/speechtotext/...`` except fast transcription), because that is
where Microsoft documents the quota: 100 requests per 10 seconds per resource ("Speech
service quotas and limits"). Latency is added to every API request (not /admin, /health or
result downloads).
"""

from __future__ import annotations

import collections
import fnmatch
import math
import random
import threading
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from local.emulator.clock import Clock
from local.emulator.errors import ApiError, spec_error
from local.emulator.settings import EmulatorSettings


@dataclass(frozen=True)
class FaultConfig:
    """The fault settings in force; ``fail_jobs`` is ``*`` or an fnmatch pattern."""

    quota_enabled: bool
    quota_requests: int
    quota_window_seconds: float
    error_rate: float
    latency_ms: int
    job_start_delay_seconds: float
    fail_jobs: str | None

    @classmethod
    def from_settings(cls, settings: EmulatorSettings) -> FaultConfig:
        """The start-up defaults."""
        return cls(
            quota_enabled=settings.quota_enabled,
            quota_requests=settings.quota_requests,
            quota_window_seconds=settings.quota_window_seconds,
            error_rate=settings.error_rate,
            latency_ms=settings.latency_ms,
            job_start_delay_seconds=settings.job_start_delay_seconds,
            fail_jobs=settings.fail_jobs,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form for ``GET /admin/faults``."""
        return asdict(self)

    def updated(self, changes: dict[str, Any]) -> FaultConfig:
        """A copy with ``changes`` applied; ValueError naming the field on a bad value."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        for name, value in changes.items():
            _check_fault_value(name, value)
        fail_jobs = changes.get("fail_jobs", self.fail_jobs)
        changes = {**changes, "fail_jobs": fail_jobs or None}
        for name in ("quota_window_seconds", "error_rate", "job_start_delay_seconds"):
            if name in changes:
                changes[name] = float(changes[name])
        return replace(self, **changes)

    def job_must_fail(self, display_name: str) -> bool:
        """True if forced failure applies to a job with this display name."""
        if self.fail_jobs is None:
            return False
        return self.fail_jobs == "*" or fnmatch.fnmatchcase(display_name, self.fail_jobs)


class FaultState:
    """The :class:`FaultConfig` in force; shared by the request pipeline and the jobs."""

    def __init__(self, defaults: FaultConfig) -> None:
        self.defaults = defaults
        self.config = defaults

    def update(self, changes: dict[str, Any]) -> FaultConfig:
        """Apply ``changes`` (see :meth:`FaultConfig.updated`) and return the new config."""
        self.config = self.config.updated(changes)
        return self.config

    def reset(self) -> None:
        """Back to the start-up defaults."""
        self.config = self.defaults


def _check_fault_value(name: str, value: Any) -> None:
    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

    ok = {
        "quota_enabled": isinstance(value, bool),
        "quota_requests": isinstance(value, int) and not isinstance(value, bool) and value >= 1,
        "quota_window_seconds": number(value) and value > 0,
        "error_rate": number(value) and 0 <= value <= 1,
        "latency_ms": isinstance(value, int) and not isinstance(value, bool) and value >= 0,
        "job_start_delay_seconds": number(value) and value >= 0,
        "fail_jobs": value is None or isinstance(value, str),
    }[name]
    if not ok:
        raise ValueError(f"invalid value for {name}: {value!r}")


class QuotaLimiter:
    """A sliding window of request times per caller (key fingerprint or identity)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._hits: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def check(self, bucket: str, limit: int, window: float) -> None:
        """Count one request for ``bucket``; raise the service's 429 when over the limit.

        ``Retry-After`` is the number of whole seconds until the oldest request in the window
        leaves it, i.e. until a new request would be accepted.
        """
        now = self._clock.now().timestamp()
        with self._lock:
            hits = self._hits[bucket]
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= limit:
                wait = max(1, math.ceil(hits[0] + window - now))
                raise spec_error(
                    429,
                    "TooManyRequests",
                    f"The request was throttled: the limit is {limit} requests per "
                    f"{window:g} seconds. Retry after {wait} seconds.",
                    headers={"Retry-After": str(wait)},
                )
            hits.append(now)

    def reset(self) -> None:
        """Forget every window."""
        with self._lock:
            self._hits.clear()


class ErrorInjector:
    """Random 500/503 answers for a fraction of requests, before they are processed."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()  # noqa: S311 - fault injection, not security

    def maybe_fail(self, rate: float) -> None:
        """Raise a 500 or 503 (half each) with probability ``rate``."""
        if rate <= 0 or self._rng.random() >= rate:
            return
        raise self.failure()

    def failure(self) -> ApiError:
        """One injected server error: 500 InternalServerError or 503 ServiceUnavailable."""
        if self._rng.random() < 0.5:
            return spec_error(
                500,
                "InternalServerError",
                "An internal error occurred (injected by the emulator). Retry the request.",
            )
        return spec_error(
            503,
            "ServiceUnavailable",
            "The service is temporarily unavailable (injected by the emulator).",
            headers={"Retry-After": "1"},
        )
