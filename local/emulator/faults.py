"""Fault injection: the real quotas, random and forced 5xx answers, added latency, slow or
failing jobs, failing files.

The defaults come from the ``EMULATOR_*`` settings; ``PUT /admin/faults`` changes them at
run time and ``POST /admin/reset`` puts them back.

* Batch surface (``/speechtotext/...`` except fast transcription, web hooks included): the
  quota Microsoft documents, 100 requests per 10 seconds per resource ("Speech service
  quotas and limits"), and random 500/503 answers at ``error_rate``.
* Fast transcription (``transcriptions:transcribe``): its own quota, 600 requests per minute
  (same page, fast transcription table; ``fast_quota_*``, off by default), counted in a
  separate window, and forced failures: ``fast_fail_status`` (429, 500, 502 or 503) answers
  the next ``fast_fail_times`` fast requests (0 = all of them while it is set). Setting
  either of the two again through ``PUT /admin/faults`` starts the count afresh.
* Latency is added to every API request (not /admin, /health or result downloads).

Per-file failures (``fail_files``) look like the service's own: the job runs, and each input
whose blob path matches gets a ``Failed`` entry in ``report.json`` with ``errorKind`` =
``fail_files_kind``, through the same path as a file the emulator cannot fetch. Each path
fails ``fail_files_times`` times (0 = always), counted across jobs, so a resubmission of the
same file succeeds after that many failures; ``POST /admin/reset`` clears the counts.

Faults are counted in ``GET /admin/stats`` ``faultsInjected`` as ``quota``, ``error``,
``job``, ``file``, ``fast_quota`` and ``fast_forced``.
"""

from __future__ import annotations

import collections
import fnmatch
import math
import random
import threading
from dataclasses import asdict, dataclass, fields, replace
from typing import Any
from urllib.parse import unquote, urlsplit

from local.emulator.clock import Clock
from local.emulator.errors import ApiError, spec_error
from local.emulator.settings import FAST_FAIL_STATUSES, FILE_FAILURE_KINDS, EmulatorSettings
from local.emulator.storage import strip_query

#: What an injected per-file failure says, by ``errorKind``; ``{url}`` is the URL without SAS.
_FILE_FAILURE_MESSAGES = {
    "InvalidUri": "The recordings URI {url} is not accessible",
    "InvalidAudioFormat": "The audio format of {url} is not supported",
    "EmptyAudioFile": "The audio file {url} is empty",
    "AudioLengthLimitExceeded": "The audio file {url} is longer than the maximum length",
    "BadChannelConfiguration": "The channels of {url} do not match the requested channels",
    "InvalidData": "The recordings URI contains invalid data",
    "Internal": "An internal error occurred during transcription",
    "Timeout": "The transcription of {url} timed out",
    "Transient": "A transient error occurred while transcribing {url}; retry the file",
}
_INJECTED = " (injected by the emulator's fault settings)"


@dataclass(frozen=True)
class FaultConfig:
    """The fault settings in force; ``fail_jobs`` and ``fail_files`` are fnmatch patterns."""

    quota_enabled: bool
    quota_requests: int
    quota_window_seconds: float
    error_rate: float
    latency_ms: int
    job_start_delay_seconds: float
    fail_jobs: str | None
    fail_files: str | None
    fail_files_kind: str
    fail_files_times: int
    fast_quota_enabled: bool
    fast_quota_requests: int
    fast_quota_window_seconds: float
    fast_fail_status: int | None
    fast_fail_times: int

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
            fail_files=settings.fail_files,
            fail_files_kind=settings.fail_files_kind,
            fail_files_times=settings.fail_files_times,
            fast_quota_enabled=settings.fast_quota_enabled,
            fast_quota_requests=settings.fast_quota_requests,
            fast_quota_window_seconds=settings.fast_quota_window_seconds,
            fast_fail_status=settings.fast_fail_status,
            fast_fail_times=settings.fast_fail_times,
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
        changes = dict(changes)
        for name in ("fail_jobs", "fail_files"):
            if name in changes:
                pattern = changes[name]
                changes[name] = pattern if pattern and pattern.strip() else None
        for name in (
            "quota_window_seconds",
            "error_rate",
            "job_start_delay_seconds",
            "fast_quota_window_seconds",
        ):
            if name in changes:
                changes[name] = float(changes[name])
        return replace(self, **changes)

    def job_must_fail(self, display_name: str) -> bool:
        """True if forced failure applies to a job with this display name."""
        if self.fail_jobs is None:
            return False
        return self.fail_jobs == "*" or fnmatch.fnmatchcase(display_name, self.fail_jobs)

    def file_matches(self, path: str) -> bool:
        """True if ``fail_files`` applies to an input with this blob path."""
        return self.fail_files is not None and fnmatch.fnmatchcase(path, self.fail_files)


class FaultState:
    """The :class:`FaultConfig` in force; shared by the request pipeline and the jobs."""

    def __init__(self, defaults: FaultConfig) -> None:
        self.defaults = defaults
        self.config = defaults
        self._file_failures: collections.Counter[str] = collections.Counter()
        self._fast_failures = 0
        self._lock = threading.Lock()

    def update(self, changes: dict[str, Any]) -> FaultConfig:
        """Apply ``changes`` (see :meth:`FaultConfig.updated`) and return the new config.

        Naming ``fast_fail_status`` or ``fast_fail_times`` re-arms the forced fast failures:
        the next ``fast_fail_times`` fast requests fail, however many failed before.
        """
        config = self.config.updated(changes)
        with self._lock:
            self.config = config
            if {"fast_fail_status", "fast_fail_times"} & changes.keys():
                self._fast_failures = 0
        return config

    def reset(self) -> None:
        """Back to the start-up defaults; forget how often each file and fast request failed."""
        with self._lock:
            self.config = self.defaults
            self._file_failures.clear()
            self._fast_failures = 0

    def fast_failure(self) -> ApiError | None:
        """The forced failure for this fast transcription request, or None to let it through.

        Counts one failure when it fails; once ``fast_fail_times`` (unless 0) requests failed,
        the rest pass until the setting is changed again.
        """
        with self._lock:
            config = self.config
            status = config.fast_fail_status
            if status is None:
                return None
            times = config.fast_fail_times
            if times and self._fast_failures >= times:
                return None
            self._fast_failures += 1
        return forced_failure(status)

    def file_failure(self, url: str) -> FileFailure | None:
        """The injected failure for the input at ``url`` (blob path matched), or None.

        Counts one failure for the path when it fails; a path that already failed
        ``fail_files_times`` times (unless that is 0) is let through.
        """
        config = self.config
        path = blob_path(url)
        if not config.file_matches(path):
            return None
        with self._lock:
            times = config.fail_files_times
            if times and self._file_failures[path] >= times:
                return None
            self._file_failures[path] += 1
        template = _FILE_FAILURE_MESSAGES[config.fail_files_kind]
        message = template.format(url=strip_query(url)) + _INJECTED + "."
        return FileFailure(config.fail_files_kind, message)

    def file_failure_counts(self) -> dict[str, int]:
        """How many failures were injected per blob path since start-up or the last reset."""
        with self._lock:
            return dict(sorted(self._file_failures.items()))


@dataclass(frozen=True)
class FileFailure:
    """An injected per-file failure: the report's ``errorKind`` and ``errorMessage``."""

    kind: str
    message: str


def blob_path(url: str) -> str:
    """The path ``fail_files`` is matched against: the URL's path, percent-decoded, no query."""
    return unquote(urlsplit(url).path)


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
        "fail_files": value is None or isinstance(value, str),
        "fail_files_kind": isinstance(value, str) and value in FILE_FAILURE_KINDS,
        "fail_files_times": isinstance(value, int) and not isinstance(value, bool) and value >= 0,
        "fast_quota_enabled": isinstance(value, bool),
        "fast_quota_requests": isinstance(value, int)
        and not isinstance(value, bool)
        and value >= 1,
        "fast_quota_window_seconds": number(value) and value > 0,
        "fast_fail_status": value is None
        or (isinstance(value, int) and not isinstance(value, bool) and value in FAST_FAIL_STATUSES),
        "fast_fail_times": isinstance(value, int) and not isinstance(value, bool) and value >= 0,
    }[name]
    if not ok:
        hint = ""
        if name == "fail_files_kind":
            hint = f" (one of {', '.join(FILE_FAILURE_KINDS)})"
        elif name == "fast_fail_status":
            hint = f" (null or one of {', '.join(map(str, FAST_FAIL_STATUSES))})"
        raise ValueError(f"invalid value for {name}: {value!r}{hint}")


def forced_failure(status: int) -> ApiError:
    """The answer of a forced fast transcription failure with HTTP ``status``.

    Bodies are the spec's ``Error`` with the ``ErrorCode`` each status stands for; 429 and 503
    say when to come back (``Retry-After: 1``), as the service's throttling and outages do.
    """
    if status == 429:
        return spec_error(
            429,
            "TooManyRequests",
            "The request was throttled (forced by the emulator's fault settings). Retry after "
            "1 second.",
            headers={"Retry-After": "1"},
        )
    if status == 502:
        return spec_error(
            502,
            "InternalCommunicationFailed",
            "The service could not reach a backend (forced by the emulator's fault settings).",
        )
    if status == 503:
        return spec_error(
            503,
            "ServiceUnavailable",
            "The service is temporarily unavailable (forced by the emulator's fault settings).",
            headers={"Retry-After": "1"},
        )
    return spec_error(
        500,
        "InternalServerError",
        "An internal error occurred (forced by the emulator's fault settings). Retry the request.",
    )


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
