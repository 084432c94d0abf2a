"""Audio intake: one uploaded blob version -> exactly one Speech job, or an error report.

``handle_audio_blob`` is what the blob-triggered function calls. It reads the blob's
properties and its first bytes only (a ranged read: audio never enters memory), claims the
version in the ledger, checks it, and submits one job with a read-only SAS.

Exactly once, in three layers:

1. **The claim.** The ledger row of ``container/path/etag`` is created conditionally;
   every other delivery of the same event finds it and returns ``Duplicate``.
2. **Transient failures** (Speech 429/5xx/timeouts, storage errors) *release* the claim
   and raise, so the Functions host retries the event and the retry takes the released
   claim over at once (an ETag-conditional update: only one retry wins). A claim whose
   holder died without releasing is taken over once it is ``intake_stale_minutes`` old,
   by a later delivery or by the poller's sweep.
3. **Crash after submit, before the ledger knew.** Every job has a deterministic display
   name derived from the blob version; before submitting, the intake looks it up
   (``find_transcriptions``) and adopts a job it finds instead of creating a second one.

Permanent problems (not audio, too large, bad metadata, a request the service refuses with
400) write ``<path>.error.json`` to the output container, mark the row ``Rejected`` and
return normally: an exception would only make the host retry a hopeless event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from shared.pipeline.checks import check_audio_blob, size_text
from shared.pipeline.claims import (
    IntakeStatus,
    handle_current,
    recover,
    reject_claim,
    run_claimed,
)
from shared.pipeline.clock import utcnow
from shared.pipeline.ledger.keys import SourceRef
from shared.pipeline.ledger.records import (
    Claim,
    JobSource,
    SourceKind,
    SourceRecord,
    SourceState,
    source_fields,
)
from shared.pipeline.options import OptionsError, build_request, options_from_metadata
from shared.pipeline.reports import ACCEPTED_AUDIO, ACCEPTED_METADATA
from shared.pipeline.submission import (
    custom_properties,
    display_name_for,
    find_or_submit,
    new_job_record,
    service_rejection,
)
from shared.redact import get_logger
from shared.speech.errors import BadRequestError
from shared.speech.models import TranscriptionRequest

if TYPE_CHECKING:
    from shared.app_context import AppContext
    from shared.storage import BlobInfo

_log = get_logger(__name__)


@dataclass(frozen=True)
class IntakeOutcome:
    """The result of one intake call (for logs, tests and the function's return)."""

    status: IntakeStatus
    container: str
    path: str
    etag: str | None = None
    job_id: str | None = None
    display_name: str | None = None
    #: True when the job already existed (found by display name) rather than submitted now.
    reused_job: bool = False
    code: str | None = None
    message: str | None = None
    #: Blob name of the error report in the output container, when one was written.
    report: str | None = None


def audio_display_name(ref: SourceRef) -> str:
    """The display name of the job for one uploaded blob version."""
    return display_name_for(
        "audio", f"{ref.container}\n{ref.path}\n{ref.etag}", f"{ref.container}/{ref.path}"
    )


async def handle_audio_blob(ctx: AppContext, container: str, name: str) -> IntakeOutcome:
    """Intake of one uploaded audio blob (the blob trigger's whole job).

    Returns normally for every outcome the host must not retry (submitted, duplicate,
    rejected, missing). Raises on transient failures, after releasing its claim, so the
    host's retry of the event proceeds.
    """
    return await handle_current(
        ctx, container, name, lambda blob: intake_blob(ctx, blob), IntakeOutcome
    )


async def intake_blob(
    ctx: AppContext, blob: BlobInfo, *, now: dt.datetime | None = None
) -> IntakeOutcome:
    """Claim, check and submit one blob version whose properties are known."""
    now = now or utcnow()
    settings = ctx.settings
    return await run_claimed(
        ctx,
        blob,
        SourceKind.AUDIO,
        now=now,
        extra=source_fields(
            size=blob.size, output_container=settings.output_container, output_base=blob.name
        ),
        outcome=IntakeOutcome,
        process=lambda claim: _process(ctx, claim, blob, now),
    )


async def _process(
    ctx: AppContext, claim: Claim, blob: BlobInfo, now: dt.datetime
) -> IntakeOutcome:
    settings = ctx.settings
    ref = claim.record.ref
    output_base = blob.name

    def outcome(status: IntakeStatus, **kw: Any) -> IntakeOutcome:
        return IntakeOutcome(status, ref.container, ref.path, ref.etag, **kw)

    if claim.exhausted:
        message = (
            f"gave up after {claim.max_attempts} attempts; last error: "
            f"{claim.record.error_message or 'unknown'}"
        )
        report = await reject_claim(
            ctx,
            claim,
            now=now,
            code="IntakeFailed",
            message=message,
            accepted=None,
            output_base=output_base,
            status="Failed",
        )
        return outcome(IntakeStatus.FAILED, code="IntakeFailed", message=message, report=report)

    problem: tuple[str, str, str] | None = None
    rejected = await check_audio_blob(ctx.storage, blob, max_bytes=settings.max_audio_bytes)
    if rejected is not None:
        accepted = ACCEPTED_AUDIO.format(limit=size_text(settings.max_audio_bytes))
        problem = (rejected.code, str(rejected), accepted)
    else:
        try:
            options = options_from_metadata(blob.metadata, settings)
        except OptionsError as exc:
            problem = ("InvalidMetadata", f"metadata {exc}", ACCEPTED_METADATA)

    async def reject(code: str, message: str, accepted: str) -> IntakeOutcome:
        report = await reject_claim(
            ctx,
            claim,
            now=now,
            code=code,
            message=message,
            accepted=accepted,
            output_base=output_base,
        )
        return outcome(IntakeStatus.REJECTED, code=code, message=message, report=report)

    if problem is not None:
        return await reject(*problem)

    display_name = audio_display_name(ref)
    source_url = ctx.storage.blob_url(ref.container, ref.path)

    async def make_request() -> TranscriptionRequest:
        sas_url = await ctx.storage.sas_url(ref.container, ref.path, now=now)
        return build_request(
            options,
            display_name=display_name,
            content_urls=[sas_url],
            custom_properties=custom_properties(
                source=f"{ref.container}/{ref.path}", etag=ref.etag
            ),
        )

    try:
        job_id, reused = await find_or_submit(
            ctx, display_name, make_request, recovering=claim.takeover
        )
    except (BadRequestError, ValidationError) as exc:
        if isinstance(exc, BadRequestError):
            code, message = service_rejection(exc)
        else:
            code, message = "InvalidOptions", str(exc)
        return await reject(code, message, ACCEPTED_METADATA)

    await _record_submission(
        ctx,
        claim,
        now=now,
        job_id=job_id,
        display_name=display_name,
        source=JobSource(
            url=source_url,
            container=ref.container,
            path=ref.path,
            etag=ref.etag,
            origin="",
            output_base=output_base,
        ),
        options=options.to_dict(),
    )
    _log.info("%s -> job %s%s", ref.display, job_id, " (adopted)" if reused else "")
    return outcome(
        IntakeStatus.SUBMITTED, job_id=job_id, display_name=display_name, reused_job=reused
    )


async def _record_submission(
    ctx: AppContext,
    claim: Claim,
    *,
    now: dt.datetime,
    job_id: str,
    display_name: str,
    source: JobSource,
    options: Mapping[str, Any],
) -> None:
    """Record a job: its row for the poller first, then the claim resolved to Submitted.

    In that order, a crash in between leaves a job row (so the job is followed) and a
    claim that a retry resolves after adopting the same job by its display name.
    """
    settings = ctx.settings
    await ctx.ledger.record_job(
        new_job_record(
            settings,
            job_id=job_id,
            display_name=display_name,
            kind=SourceKind.AUDIO,
            sources=[source],
            now=now,
        )
    )
    fields = source_fields(
        state=SourceState.SUBMITTED,
        now=now,
        job_id=job_id,
        display_name=display_name,
        options=options,
        error_code="",
        output_container=settings.output_container,
        output_base=source.output_base,
        submissions=1,
    )
    if not await ctx.ledger.resolve_claim(claim, fields):
        _log.warning(
            "the claim of %s was taken over meanwhile; the new holder adopts job %s",
            claim.record.ref.display,
            job_id,
        )


async def recover_audio(
    ctx: AppContext, record: SourceRecord, *, now: dt.datetime
) -> IntakeOutcome:
    """Finish an abandoned audio claim (the sweep calls this): see :func:`claims.recover`."""
    return await recover(
        ctx,
        record,
        now=now,
        intake=lambda blob: intake_blob(ctx, blob, now=now),
        outcome=IntakeOutcome,
    )
