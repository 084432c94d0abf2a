"""Request and transcription counters for ``GET /admin/stats``.

Operations are named by the spec's operationIds (``Transcriptions_Submit``, ...), plus
``ShortAudio_Recognize``, ``Sts_IssueToken`` and ``Results_Download`` (result files the
emulator serves itself), so a test can assert exactly which calls a client made.
``submittedDisplayNames`` counts the jobs created per ``displayName``: a client that names
its jobs deterministically can prove it never submitted one request twice.

Web hook callbacks are counted per event (``webhookDeliveries``: ``{"transcriptionCompletion":
{"delivered": n, "failed": m}}``, a failure being a delivery that failed all its attempts,
``ping`` included) and challenges by result (``webhookChallenges``: ``{"succeeded": n,
"failed": m}``).
"""

from __future__ import annotations

import collections
import threading
from typing import Any


class Stats:
    """Thread-safe counters; :meth:`snapshot` is the JSON ``/admin/stats`` returns."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self._by_operation: collections.Counter[str] = collections.Counter()
        self._by_status: collections.Counter[str] = collections.Counter()
        self._by_operation_status: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        self._faults: collections.Counter[str] = collections.Counter()
        self._audio_seconds = 0.0
        self._files: collections.Counter[str] = collections.Counter()
        self._submitted: collections.Counter[str] = collections.Counter()
        self._deliveries: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        self._challenges: collections.Counter[str] = collections.Counter()

    def reset(self) -> None:
        """Back to zero."""
        with self._lock:
            self._clear()

    def count_request(self, operation: str, status: int) -> None:
        """One answered request of ``operation`` with HTTP ``status``."""
        with self._lock:
            self._by_operation[operation] += 1
            self._by_status[str(status)] += 1
            self._by_operation_status[operation][str(status)] += 1

    def count_fault(self, kind: str) -> None:
        """One injected fault (``quota``, ``error``, ``job``, ``file``, ``fast_quota``,
        ``fast_forced``)."""
        with self._lock:
            self._faults[kind] += 1

    def add_audio(self, seconds: float) -> None:
        """Seconds of audio that went through an engine."""
        with self._lock:
            self._audio_seconds += seconds

    def count_file(self, outcome: str) -> None:
        """One batch input file processed: ``Succeeded`` or ``Failed``."""
        with self._lock:
            self._files[outcome] += 1

    def count_submission(self, display_name: str) -> None:
        """One job created (a ``Transcriptions_Submit`` that succeeded) with this name.

        Kept when jobs are forgotten (``POST /admin/jobs:forget``); cleared by :meth:`reset`.
        """
        with self._lock:
            self._submitted[display_name] += 1

    def count_webhook_delivery(self, event: str, delivered: bool) -> None:
        """One web hook callback of ``event``: delivered, or failed after all its attempts."""
        with self._lock:
            self._deliveries[event]["delivered" if delivered else "failed"] += 1

    def count_webhook_challenge(self, succeeded: bool) -> None:
        """One web hook challenge that validated the hook or failed it."""
        with self._lock:
            self._challenges["succeeded" if succeeded else "failed"] += 1

    def snapshot(
        self, jobs_by_status: dict[str, int], file_failures: dict[str, int] | None = None
    ) -> dict[str, Any]:
        """Everything counted so far, with the current number of jobs in each status and
        the failures ``fail_files`` injected per blob path (``fileFailuresInjected``) and
        the jobs created per display name (``submittedDisplayNames``)."""
        with self._lock:
            return {
                "requests": {
                    "total": sum(self._by_operation.values()),
                    "byOperation": dict(sorted(self._by_operation.items())),
                    "byStatus": dict(sorted(self._by_status.items())),
                    "byOperationAndStatus": {
                        op: dict(sorted(c.items()))
                        for op, c in sorted(self._by_operation_status.items())
                    },
                },
                "faultsInjected": dict(sorted(self._faults.items())),
                "fileFailuresInjected": dict(sorted((file_failures or {}).items())),
                "jobs": jobs_by_status,
                "files": dict(sorted(self._files.items())),
                "audioSecondsTranscribed": round(self._audio_seconds, 3),
                "submittedDisplayNames": dict(sorted(self._submitted.items())),
                "webhookDeliveries": {
                    event: {"delivered": c["delivered"], "failed": c["failed"]}
                    for event, c in sorted(self._deliveries.items())
                },
                "webhookChallenges": {
                    "succeeded": self._challenges["succeeded"],
                    "failed": self._challenges["failed"],
                },
            }
