"""Submitting a file version again after a transient failure (``Retrying`` -> ``Submitted``).

The sweep calls :func:`resubmit` for each ``Retrying`` version whose ``RetryAt`` has come.
The row is leased first (a conditional write), so two sweeps never submit it twice; the
job gets a display name derived from the version and the submission number, so a crash
between submitting and recording is recovered by looking the job up, as at intake. The
version's own stored options are used: the same request as before, with a fresh SAS.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic.alias_generators import to_snake

from shared.pipeline.claims import IntakeStatus
from shared.pipeline.ledger.keys import SourceRef
from shared.pipeline.ledger.records import JobSource, SourceRecord, SourceState
from shared.pipeline.options import TranscriptionOptions, build_request
from shared.pipeline.outputs import (
    SUPERSEDED_MESSAGES,
    Currency,
    currency,
    remove_outputs,
    report_failure,
)
from shared.pipeline.submission import (
    custom_properties,
    display_name_for,
    find_or_submit,
    new_job_record,
    service_rejection,
)
from shared.redact import get_logger
from shared.speech.errors import BadRequestError
from shared.speech.models import LanguageIdentificationMode, TranscriptionRequest

if TYPE_CHECKING:
    from shared.app_context import AppContext

_log = get_logger(__name__)


def resubmission_display_name(ref: SourceRef, submission: int) -> str:
    """The display name of submission number ``submission`` (2, 3, ...) of one version."""
    return display_name_for(
        "retry",
        f"{ref.container}\n{ref.path}\n{ref.etag}\n{ref.origin}\n{submission}",
        f"{ref.container}/{ref.path} (submission {submission})",
    )


def stored_options(
    record: SourceRecord,
) -> tuple[TranscriptionOptions, list[str] | None, LanguageIdentificationMode]:
    """The options the version was first submitted with (raises ValueError if unusable)."""
    raw: dict[str, Any] = dict(record.options or {})
    identification = raw.pop("languageIdentification", None) or {}
    values: dict[str, Any] = {"max_speakers": None, "channels": None, "model": None}
    values.update({to_snake(key): value for key, value in raw.items()})
    options = TranscriptionOptions.model_validate(values)
    candidates = identification.get("candidateLocales") or None
    mode = LanguageIdentificationMode(
        identification.get("mode") or LanguageIdentificationMode.CONTINUOUS
    )
    return options, candidates, mode


async def resubmit(ctx: AppContext, record: SourceRecord, *, now: dt.datetime) -> IntakeStatus:
    """Submit a due ``Retrying`` version again; raises on transient failures (lease kept).

    ``Duplicate`` when it is not due, or another sweep holds its lease.
    """
    stale = dt.timedelta(minutes=ctx.settings.intake_stale_minutes)
    leased = await ctx.ledger.lease_retry(record, now=now, stale_after=stale)
    if leased is None:
        return IntakeStatus.DUPLICATE
    row, recovering = leased
    ref = row.ref
    container = row.output_container or ctx.settings.output_container
    base = row.output_base or ref.path
    state = await currency(ctx, ref)
    if state is not Currency.CURRENT:
        await ctx.ledger.close_source(
            ref,
            state=SourceState.SUPERSEDED,
            now=now,
            code=state.value,
            message=SUPERSEDED_MESSAGES[state],
        )
        if state is Currency.DELETED:
            await remove_outputs(ctx, container=container, base=base, report_too=True)
        return IntakeStatus.SUPERSEDED

    async def fail(code: str, message: str) -> IntakeStatus:
        report = await report_failure(
            ctx,
            ref,
            output_base=base,
            output_container=container,
            status="Failed",
            code=code,
            message=message,
            manifest=row.manifest,
            now=now,
        )
        await ctx.ledger.close_source(
            ref,
            state=SourceState.FAILED,
            now=now,
            code=code,
            message=message,
            report_path=report,
            output_container=container,
            output_base=base,
        )
        return IntakeStatus.FAILED

    try:
        options, candidates, mode = stored_options(row)
    except (ValidationError, ValueError) as exc:
        return await fail("InvalidOptions", f"the stored options cannot be used again: {exc}")
    submission = row.submissions + 1
    display_name = resubmission_display_name(ref, submission)

    async def make_request() -> TranscriptionRequest:
        sas_url = await ctx.storage.sas_url(ref.container, ref.path, now=now)
        return build_request(
            options,
            display_name=display_name,
            content_urls=[sas_url],
            custom_properties=custom_properties(
                source=f"{ref.container}/{ref.path}", etag=ref.etag, submission=str(submission)
            ),
            candidate_locales=candidates,
            identification_mode=mode,
        )

    try:
        job_id, reused = await find_or_submit(
            ctx, display_name, make_request, recovering=recovering
        )
    except BadRequestError as exc:
        code, message = service_rejection(exc)
        return await fail(code, f"the service refused the request: {message}")
    source = JobSource(
        url=ctx.storage.blob_url(ref.container, ref.path),
        container=ref.container,
        path=ref.path,
        etag=ref.etag,
        origin=ref.origin,
        output_base=base,
    )
    job = new_job_record(
        ctx.settings,
        job_id=job_id,
        display_name=display_name,
        kind=row.kind,
        sources=[source],
        now=now,
        manifest=row.manifest,
    )
    job.output_container = container
    await ctx.ledger.record_job(job)
    if not await ctx.ledger.resolve_retry(row, job_id=job_id, display_name=display_name, now=now):
        _log.warning("%s changed while it was submitted again as %s", ref.display, job_id)
    _log.info(
        "%s submitted again (submission %d) -> job %s%s",
        ref.display,
        submission,
        job_id,
        " (adopted)" if reused else "",
    )
    return IntakeStatus.SUBMITTED
