"""Job rows: a submitted Speech job from submission until the poller has finished it.

Each write is typed (a lease, a status note, an error, a failed finish) and conditional
on the row's ETag, so two pollers never act on one job at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from shared.pipeline.ledger.job_records import JobRecord
from shared.pipeline.ledger.keys import ACTIVE_PARTITION, JOB_PREFIX
from shared.pipeline.ledger.records import clip_message
from shared.pipeline.ledger.table import TableAccess


class JobRows(TableAccess):
    """Reads and conditional writes of job rows."""

    async def record_job(self, job: JobRecord) -> bool:
        """Create the job row; False if it exists already (a retry recorded it)."""
        etag = await self._create(job.to_entity())
        if etag is None:
            return False
        job.row_etag = etag
        return True

    async def get_job(self, job_id: str) -> JobRecord | None:
        """The job row, if the job is still active."""
        entity = await self._get(ACTIVE_PARTITION, f"{JOB_PREFIX}{job_id}")
        return JobRecord.from_entity(entity) if entity is not None else None

    async def due_jobs(self, now: dt.datetime, *, limit: int) -> list[JobRecord]:
        """Active jobs whose next poll is due at ``now``, at most ``limit``."""
        entities = await self._active_until(JOB_PREFIX, "NextPollAt", now, limit=limit)
        return [JobRecord.from_entity(e) for e in entities]

    async def _update_job(self, job: JobRecord, changes: Mapping[str, Any]) -> bool:
        etag = await self._merge(ACTIVE_PARTITION, job.row_key, changes, job.row_etag)
        if etag is None:
            return False
        job.row_etag = etag
        return True

    async def lease_job(self, job: JobRecord, *, now: dt.datetime, interval: float) -> bool:
        """Take the job for one poll and move its next poll ``interval`` seconds out.

        False when another poller changed the row first (it has the job this time).
        """
        leased = await self._update_job(
            job,
            {
                "NextPollAt": now + dt.timedelta(seconds=interval),
                "PollIntervalSeconds": interval,
                "LastPolledAt": now,
                "Polls": job.polls + 1,
            },
        )
        if leased:
            job.polls += 1
            job.poll_interval_seconds = interval
            job.last_polled_at = now
        return leased

    async def note_job_status(
        self, job: JobRecord, *, status: str, next_poll_at: dt.datetime | None = None
    ) -> bool:
        """Record the service's status (and a later next poll, from its hint)."""
        changes: dict[str, Any] = {}
        if status != job.last_status:
            changes["LastStatus"] = status
        if next_poll_at is not None:
            changes["NextPollAt"] = next_poll_at
        if not changes:
            return True
        return await self._update_job(job, changes)

    async def hasten_job(self, job_id: str, *, now: dt.datetime, guard_seconds: float) -> bool:
        """Make an active job due at once (the service announced its end); False if unknown.

        A job polled within ``guard_seconds`` is being finished by that poll, or was just
        found running: it is due when the guard ends, so two pollers never finish it at once.
        """
        for _ in range(3):
            job = await self.get_job(job_id)
            if job is None:
                return False
            due = now
            if job.last_polled_at is not None:
                due = max(now, job.last_polled_at + dt.timedelta(seconds=guard_seconds))
            if job.next_poll_at <= due:
                return True
            if await self._update_job(job, {"NextPollAt": due}):
                return True
        return True  # others kept writing the row: it is being polled

    async def defer_job(self, job: JobRecord, *, until: dt.datetime) -> bool:
        """Poll no sooner than ``until`` (the service asked us to wait)."""
        return await self._update_job(job, {"NextPollAt": until})

    async def note_job_error(self, job: JobRecord, *, message: str) -> bool:
        """Count a failed poll (it is retried at the next poll the lease already set)."""
        return await self._update_job(
            job, {"Errors": job.errors + 1, "LastError": clip_message(message)}
        )

    async def note_finish_failure(
        self, job: JobRecord, *, message: str, next_poll_at: dt.datetime
    ) -> bool:
        """Count a failed attempt at collecting results and writing outputs; retry then."""
        changed = await self._update_job(
            job,
            {
                "FinishFailures": job.finish_failures + 1,
                "LastError": clip_message(message),
                "NextPollAt": next_poll_at,
            },
        )
        if changed:
            job.finish_failures += 1
        return changed

    async def delete_job(self, job: JobRecord) -> bool:
        """Remove a finished job's row (only the holder of its current ETag may)."""
        return await self._delete(ACTIVE_PARTITION, job.row_key, job.row_etag)
