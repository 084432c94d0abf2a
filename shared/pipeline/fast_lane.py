"""The fast lane: one claimed file transcribed at once by fast transcription.

The intake calls :func:`transcribe_now` for a file routed ``fast`` (:mod:`~.routing`) while
it holds the file's claim, so the claim's own bounds apply: a holder that dies leaves a
``Received`` row the sweep takes over after ``INTAKE_STALE_MINUTES``. The blob is streamed
to Speech a chunk at a time (:meth:`BlobStorage.stream`, pinned to the version's ETag) and
can be streamed again for a retry, so the client's retries with backoff and ``Retry-After``
apply as to any request.

The request itself is :mod:`~.fast_request`'s (a slot, the fast budget, the blob streamed);
what stops it without condemning the audio sends the file to batch, recorded in its history;
a 422 saying the audio is bad ends in a report. The outputs are the batch lane's: ``.txt``,
``.srt``, ``.vtt`` rendered by :mod:`shared.render`, then the ``.json`` marker holding the
service's ``TranscribeResult`` as returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.pipeline.claims import close_vanished, reject_claim
from shared.pipeline.clock import utcnow
from shared.pipeline.fast_request import (
    FastAnswer,
    FastOutcome,
    definition_for,
    request_fast,
    transcribed_detail,
)
from shared.pipeline.fast_result import write_fast_transcript
from shared.pipeline.ledger.records import Claim, SourceState, source_fields
from shared.pipeline.outputs import Currency, currency, remove_outputs
from shared.redact import get_logger
from shared.telemetry import (
    current_traceparent,
    record_audio_seconds,
    record_file_state,
    traced,
)

if TYPE_CHECKING:
    from shared.app_context import AppContext
    from shared.pipeline.options import TranscriptionOptions
    from shared.pipeline.routing import RouteDecision
    from shared.storage import BlobInfo

_log = get_logger(__name__)


@dataclass(frozen=True)
class FastResult:
    """The outcome, and its code/message/report where there is one."""

    outcome: FastOutcome
    reason: str = ""
    code: str | None = None
    report: str | None = None


async def _note_route(ctx: AppContext, claim: Claim, decision: RouteDecision) -> bool:
    """Record the fast route and its reason on the claimed row; False if the claim is lost."""
    record = claim.record
    history = record.with_history("RoutedFast", decision.reason, now=utcnow())
    changes = source_fields(route="fast", audio_seconds=decision.audio_seconds, history=history)
    if not await ctx.ledger.update_claim(claim, changes):
        return False
    record.history = history
    record.route = "fast"
    return True


async def transcribe_now(
    ctx: AppContext,
    claim: Claim,
    blob: BlobInfo,
    options: TranscriptionOptions,
    decision: RouteDecision,
    *,
    output_base: str,
) -> FastResult:
    """Transcribe one claimed, checked file by fast transcription, or say why not.

    Storage errors (the blob overwritten or deleted mid-stream included) propagate to the
    intake's frame, which supersedes the version or releases the claim for a retry. The fast
    lane is one span in the file's trace (a child of the intake's), its Speech request inside
    it; how it left the file is counted (``stage=fast_lane``, fallbacks included).
    """
    with traced("fast transcription") as span:
        result = await _transcribe(ctx, claim, blob, options, decision, output_base=output_base)
        span.set_attribute("transcription.outcome", result.outcome.value)
    record_file_state(result.outcome.value, stage="fast_lane")
    return result


async def _transcribe(
    ctx: AppContext,
    claim: Claim,
    blob: BlobInfo,
    options: TranscriptionOptions,
    decision: RouteDecision,
    *,
    output_base: str,
) -> FastResult:
    ref = claim.record.ref
    if not await _note_route(ctx, claim, decision):
        return FastResult(FastOutcome.LOST)
    answer = await request_fast(ctx, blob, definition_for(options))
    if answer.outcome is FastOutcome.FALLBACK:
        return FastResult(FastOutcome.FALLBACK, answer.reason)
    if answer.outcome is FastOutcome.FAILED:
        code = answer.code or "InvalidAudio"
        report = await reject_claim(
            ctx,
            claim,
            now=utcnow(),
            code=code,
            message=f"fast transcription could not transcribe the audio: {answer.reason}",
            accepted=None,
            output_base=output_base,
            status="Failed",
        )
        return FastResult(FastOutcome.FAILED, answer.reason, code=code, report=report)
    source = ctx.storage.blob_url(ref.container, ref.path)
    return await _deliver(ctx, claim, answer, output_base=output_base, source=source)


async def _superseded(ctx: AppContext, claim: Claim, output_base: str) -> FastResult | None:
    """Close the claim if its version is no longer the blob's current one."""
    state = await currency(ctx, claim.record.ref)
    if state is Currency.CURRENT:
        return None
    deleted = state is Currency.DELETED
    message = (
        "the blob was deleted before its transcript was written"
        if deleted
        else "the blob was overwritten; the newer version is transcribed on its own"
    )
    code = await close_vanished(ctx, claim, deleted=deleted, message=message, now=utcnow())
    if deleted:
        await remove_outputs(
            ctx, container=ctx.settings.output_container, base=output_base, report_too=True
        )
    return FastResult(FastOutcome.SUPERSEDED, message, code=code)


async def _deliver(
    ctx: AppContext,
    claim: Claim,
    answer: FastAnswer,
    *,
    output_base: str,
    source: str,
) -> FastResult:
    """Outputs for a current version, then Succeeded; Superseded if it changed meanwhile."""
    result = answer.result
    assert result is not None
    gone = await _superseded(ctx, claim, output_base)
    if gone is not None:
        return gone
    container = ctx.settings.output_container
    written = await write_fast_transcript(
        ctx, result, container=container, base=output_base, source=source
    )
    # Overwritten while the outputs were written: the newer version rewrites them.
    gone = await _superseded(ctx, claim, output_base)
    if gone is not None:
        return gone
    now = utcnow()
    seconds = result.duration_ms / 1000 if result.duration_ms is not None else None
    history = claim.record.with_history("Transcribed", transcribed_detail(answer), now=now)
    resolved = await ctx.ledger.resolve_claim(
        claim,
        source_fields(
            state=SourceState.SUCCEEDED,
            now=now,
            error_code="",
            outputs=written,
            output_container=container,
            output_base=output_base,
            route="fast",
            audio_seconds=seconds,
            history=history,
            trace_parent=current_traceparent(),
        ),
    )
    if not resolved:
        return FastResult(FastOutcome.LOST)
    record_audio_seconds(seconds, route="fast")
    _log.info(
        "%s transcribed by fast transcription in %.1f s", claim.record.ref.display, answer.elapsed
    )
    return FastResult(FastOutcome.SUCCEEDED)
