"""Audio intake: one uploaded blob version -> transcribed at once, queued for a job, or a report.

``handle_audio_blob`` is what the blob-triggered function calls. It reads the blob's
properties and its first bytes only (a ranged read: audio never enters memory), claims the
version in the ledger, checks it and routes it (:mod:`~.routing`). A file routed ``fast``
is transcribed within this invocation, still under its claim (:mod:`~.fast_lane`); every
other file, and a fast one the fast lane hands back, goes into the queue of its group (the
files whose job options agree), for the submitter (:mod:`~.submitter`) to make the jobs.

Exactly once, in two layers:

1. **The claim.** The ledger row of ``container/path/etag`` is created conditionally;
   every other delivery of the same event finds it and returns ``Duplicate``.
2. **Transient failures** (storage errors) *release* the claim and raise, so the
   Functions host retries the event and the retry takes the released claim over at once
   (an ETag-conditional update: only one retry wins). A claim whose holder died without
   releasing is taken over once it is ``intake_stale_minutes`` old, by a later delivery
   or by the sweep.

Permanent problems (not audio, too large, bad metadata, options no job can take) write
``<path>.error.json`` to the output container, mark the row ``Rejected`` and return
normally: an exception would only make the host retry a hopeless event.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from shared.audio_formats import AudioCheck, AudioRejected
from shared.pipeline.checks import check_audio_blob, size_text
from shared.pipeline.claims import (
    IntakeStatus,
    handle_current,
    recover,
    reject_claim,
    run_claimed,
)
from shared.pipeline.clock import utcnow
from shared.pipeline.fast_lane import transcribe_now
from shared.pipeline.fast_request import FastOutcome
from shared.pipeline.grouping import group_of
from shared.pipeline.ledger.records import (
    Claim,
    SourceKind,
    SourceRecord,
    source_fields,
)
from shared.pipeline.options import OptionsError, build_request, options_from_metadata
from shared.pipeline.queueing import enqueue_claimed
from shared.pipeline.reports import ACCEPTED_AUDIO, ACCEPTED_METADATA
from shared.pipeline.routing import decide, mode_from_metadata
from shared.pipeline.submission import (
    MAX_DISPLAY_NAME,
)
from shared.redact import get_logger
from shared.settings import Routing
from shared.telemetry import record_file_state, traced

if TYPE_CHECKING:
    from shared.app_context import AppContext
    from shared.storage import BlobInfo

_log = get_logger(__name__)

#: The state each intake outcome leaves the file in (a duplicate or a missing blob: none).
_STATE_OF = {
    IntakeStatus.QUEUED: "Queued",
    IntakeStatus.TRANSCRIBED: "Succeeded",
    IntakeStatus.REJECTED: "Rejected",
    IntakeStatus.FAILED: "Failed",
    IntakeStatus.SUPERSEDED: "Superseded",
}

#: What the intake reports for each way the fast lane ended a file (all but a fallback).
_FAST_STATUS = {
    FastOutcome.SUCCEEDED: IntakeStatus.TRANSCRIBED,
    FastOutcome.FAILED: IntakeStatus.FAILED,
    FastOutcome.SUPERSEDED: IntakeStatus.SUPERSEDED,
    FastOutcome.LOST: IntakeStatus.DUPLICATE,
}


@dataclass(frozen=True)
class IntakeOutcome:
    """The result of one intake call (for logs, tests and the function's return)."""

    status: IntakeStatus
    container: str
    path: str
    etag: str | None = None
    code: str | None = None
    message: str | None = None
    #: Blob name of the error report in the output container, when one was written.
    report: str | None = None


async def handle_audio_blob(ctx: AppContext, container: str, name: str) -> IntakeOutcome:
    """Intake of one uploaded audio blob (the blob trigger's whole job).

    Returns normally for every outcome the host must not retry (queued, duplicate,
    rejected, missing). Raises on transient failures, after releasing its claim, so the
    host's retry of the event proceeds.
    """
    return await handle_current(
        ctx, container, name, lambda blob: intake_blob(ctx, blob), IntakeOutcome
    )


async def intake_blob(
    ctx: AppContext, blob: BlobInfo, *, now: dt.datetime | None = None
) -> IntakeOutcome:
    """Claim, check and queue one blob version whose properties are known.

    The intake's span starts the version's trace (a child of the invocation's, when the
    worker passes one on); queueing stores its ``traceparent`` on the row, and every later
    stage records its part of this file in the same trace.
    """
    now = now or utcnow()
    settings = ctx.settings
    with traced(
        f"intake {blob.container}/{blob.name}",
        attributes={"storage.container": blob.container, "file.size": blob.size},
    ) as span:
        outcome = await run_claimed(
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
        span.set_attribute("transcription.outcome", outcome.status.value)
    if outcome.status in _STATE_OF:
        record_file_state(_STATE_OF[outcome.status], stage="intake")
    return outcome


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
    checked = await check_audio_blob(ctx.storage, blob, max_bytes=settings.max_audio_bytes)
    mode: Routing | None = None
    if isinstance(checked, AudioRejected):
        accepted = ACCEPTED_AUDIO.format(limit=size_text(settings.max_audio_bytes))
        problem = (checked.code, str(checked), accepted)
    else:
        try:
            options = options_from_metadata(blob.metadata, settings)
            mode = mode_from_metadata(blob.metadata)
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

    # The submitter builds the real request for the whole group; building this file's now
    # refuses an impossible combination of options before it waits in a queue.
    try:
        build_request(
            options,
            display_name=f"check {ref.display}"[:MAX_DISPLAY_NAME],
            content_urls=[ctx.storage.blob_url(ref.container, ref.path)],
        )
    except ValidationError as exc:
        return await reject("InvalidOptions", str(exc), ACCEPTED_METADATA)
    assert isinstance(checked, AudioCheck)
    decision = await decide(
        ctx,
        blob,
        container=checked.container,
        options=options,
        requested=mode or settings.routing,
        source="the blob's mode metadata" if mode else "ROUTING",
    )
    history = claim.record.with_history(
        f"Routed{decision.route.value.title()}", decision.reason, now=now
    )
    if decision.route is Routing.FAST:
        fast = await transcribe_now(ctx, claim, blob, options, decision, output_base=output_base)
        if fast.outcome is not FastOutcome.FALLBACK:
            return outcome(
                _FAST_STATUS[fast.outcome],
                code=fast.code,
                message=fast.reason or None,
                report=fast.report,
            )
        _log.info("%s falls back to batch: %s", ref.display, fast.reason)
        history = claim.record.with_history("FellBackToBatch", fast.reason, now=utcnow())
    options_record = options.to_dict()
    group, key = group_of(options_record, output_container=settings.output_container)
    queued = await enqueue_claimed(
        ctx,
        claim,
        group=group,
        key=key,
        options=options_record,
        output_container=settings.output_container,
        output_base=output_base,
        now=now,
        # The window counts from the upload (never later than now: clocks disagree).
        due_at=min(blob.last_modified or now, now),
        history=history,
    )
    if not queued:
        _log.warning("the claim of %s was taken over meanwhile", ref.display)
    _log.info("%s queued in group %s", ref.display, group)
    return outcome(IntakeStatus.QUEUED)


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
