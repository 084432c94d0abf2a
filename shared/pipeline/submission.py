"""Submitting a Speech batch job exactly once: deterministic names, lookup before submit."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from shared.pipeline.ledger.job_records import JobRecord, JobSource
from shared.pipeline.ledger.records import SourceKind, SourceRecord
from shared.redact import get_logger
from shared.speech.errors import BadRequestError
from shared.speech.models import MAX_CUSTOM_PROPERTY_VALUE_LENGTH, TranscriptionRequest

if TYPE_CHECKING:
    from shared.app_context import AppContext
    from shared.settings import AppSettings

_log = get_logger(__name__)

#: Display names stay short enough to read in the portal and to filter on.
MAX_DISPLAY_NAME = 200
DISPLAY_PREFIX = "stt:"


def display_name_for(kind: str, identity: str, label: str) -> str:
    """``stt:<hash> <label>``: deterministic per request, unique by the hash, readable.

    ``identity`` is everything that makes the request what it is (container, path, ETag,
    chunk); ``label`` is what a person reads, shortened from the left when too long (the
    end of a path says most).
    """
    digest = hashlib.sha256(f"{kind}\n{identity}".encode()).hexdigest()[:16]
    head = f"{DISPLAY_PREFIX}{digest} "
    room = MAX_DISPLAY_NAME - len(head)
    if len(label) > room:
        label = "…" + label[-(room - 1) :]
    return head + label


def custom_properties(**values: str) -> dict[str, str]:
    """Job custom properties within the service's limits (values cut to 256 characters)."""
    limit = MAX_CUSTOM_PROPERTY_VALUE_LENGTH
    return {
        key: (value if len(value) <= limit else "…" + value[-(limit - 1) :])
        for key, value in values.items()
        if value
    }


async def find_or_submit(
    ctx: AppContext,
    display_name: str,
    make_request: Callable[[], Awaitable[TranscriptionRequest]],
    *,
    recovering: bool,
) -> tuple[str, bool]:
    """The id of the job named ``display_name``: an existing one, else a new submission.

    Returns ``(job id, reused)``. With ``recovering`` (a batch an earlier tick left
    unfinished) the job is looked up first: an attempt that died after submitting and
    before recording is adopted, never submitted twice. A batch written by this tick proves
    no attempt submitted before it, so it skips the lookup and its quota cost.
    """
    if recovering:
        async for job in ctx.speech.batch.find_transcriptions(display_name):
            if job.id and job.display_name == display_name:
                _log.info("found job %s for %s: adopting it", job.id, display_name)
                return job.id, True
    request = await make_request()
    job = await ctx.speech.batch.submit_transcription(request)
    assert job.id is not None  # submit_transcription raises when the service gave no id
    return job.id, False


def service_rejection(exc: BadRequestError) -> tuple[str, str]:
    """(code, message) for a request the service refused as invalid."""
    return exc.inner_code or exc.code or "BadRequest", exc.message


def new_job_record(
    settings: AppSettings,
    *,
    job_id: str,
    display_name: str,
    kind: SourceKind,
    sources: list[JobSource],
    now: dt.datetime,
    output_container: str | None = None,
    manifest: str | None = None,
    batch: str | None = None,
) -> JobRecord:
    """The ledger row of a job just submitted: first poll after the minimum interval."""
    return JobRecord(
        job_id=job_id,
        display_name=display_name,
        kind=kind,
        submitted_at=now,
        next_poll_at=now + dt.timedelta(seconds=settings.poll_min_interval_seconds),
        poll_interval_seconds=settings.poll_min_interval_seconds,
        sources=sources,
        output_container=output_container or settings.output_container,
        manifest=manifest,
        batch=batch,
    )


def batch_id_of(members: list[SourceRecord], *, lane: str = "") -> str:
    """A digest of the members and how often each was submitted before.

    The same members make the same batch (and display name) until they are submitted, so
    a resumed batch finds its job; a retry of the same versions is another submission and
    gets a name of its own, never the earlier, finished job's. ``lane`` (``fast``) keeps a
    fast-lane attempt's batch apart from a job of the same member.
    """
    keys = sorted(f"{m.ref.partition_key}|{m.ref.row_key}|{m.submissions}" for m in members)
    parts = [lane, *keys] if lane else keys
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:32]


def job_source(ctx: AppContext, record: SourceRecord) -> JobSource:
    """How a member appears in its job row."""
    ref = record.ref
    return JobSource(
        url=ctx.storage.blob_url(ref.container, ref.path),
        container=ref.container,
        path=ref.path,
        etag=ref.etag,
        origin=ref.origin,
        output_base=record.output_base or ref.path,
    )
