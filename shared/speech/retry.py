"""The retry policy: which failures are retried, how long to wait, and when to give up.

Every Speech client uses this one module. Rules:

* Retried statuses: 408, 429, 500, 502, 503, 504. Transport errors are retried too.
* Waits grow exponentially with jitter (openai-python's shape: ``base * 2**n`` capped,
  minus up to 25 %), so many instances that failed together do not retry together.
* A ``Retry-After`` (seconds or HTTP date; also Azure's ``retry-after-ms``) replaces the
  computed wait, up to ``retry_after_cap``. A longer hint is not slept through inside a
  function invocation: the error is raised with ``retry_after`` so the caller can come
  back later (the poller's backoff does).
* Non-idempotent requests (``transcriptions:submit``) are retried only where the service
  provably never saw them (the connection was never made) or where it said so itself:
  429 and 503 reject a request before it is processed. A read timeout after the body
  was sent is *not* retried, because the job may exist; see
  :meth:`shared.speech.batch.BatchTranscriptionClient.submit_transcription` for how
  callers find such a job by its display name instead of creating a second one.
"""

from __future__ import annotations

import email.utils
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Statuses that mean "not processed", so even a non-idempotent request may be re-sent.
NOT_PROCESSED_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, and how long to wait between them."""

    #: Total attempts including the first; 1 disables retries.
    max_attempts: int = 4
    #: First wait in seconds before jitter; doubles each attempt.
    backoff_base: float = 0.5
    #: Longest computed wait in seconds.
    backoff_max: float = 16.0
    #: Longest ``Retry-After`` that is slept through; longer hints are raised to the caller.
    retry_after_cap: float = 60.0
    retry_statuses: frozenset[int] = field(default=RETRY_STATUSES)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.retry_after_cap < 0:
            raise ValueError("backoff_base, backoff_max and retry_after_cap must be >= 0")

    def backoff(self, attempt: int) -> float:
        """Computed wait after failed attempt number ``attempt`` (1-based), jittered."""
        ceiling = min(self.backoff_base * 2.0 ** (attempt - 1), self.backoff_max)
        return ceiling * (1 - 0.25 * random.random())  # noqa: S311 - jitter, not crypto

    def wait(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` when the hint is too long."""
        if retry_after is None:
            return self.backoff(attempt)
        if retry_after > self.retry_after_cap:
            return None
        return max(retry_after, 0.0)

    def retries_status(self, status: int, *, idempotent: bool) -> bool:
        """Whether a response with ``status`` may be retried at all."""
        if status not in self.retry_statuses:
            return False
        return idempotent or status in NOT_PROCESSED_STATUSES


def request_not_sent(exc: httpx.TransportError) -> bool:
    """True when ``exc`` proves the request never reached the server."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def parse_retry_after(headers: httpx.Headers, *, now: datetime | None = None) -> float | None:
    """The server's wait hint in seconds, from ``retry-after-ms`` or ``Retry-After``."""
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = headers.get(name)
        if value:
            try:
                return max(float(value) / 1000.0, 0.0)
            except ValueError:
                pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)
