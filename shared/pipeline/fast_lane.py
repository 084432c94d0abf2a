"""The fast lane: one claimed file transcribed at once by fast transcription.

The intake calls :func:`transcribe_now` for a file routed ``fast`` (:mod:`~.routing`) while
it holds the file's claim, so the claim's own bounds apply: a holder that dies leaves a
``Received`` row the sweep takes over after ``INTAKE_STALE_MINUTES``. The blob is streamed
to Speech a chunk at a time (:meth:`BlobStorage.stream`, pinned to the version's ETag) and
can be streamed again for a retry, so the client's retries with backoff and ``Retry-After``
apply as to any request.

Each file waits for one of the process's ``FAST_CONCURRENCY`` slots and takes one request
of the fast budget (``FAST_REQUESTS_PER_MINUTE``, shared through the ledger). Whatever stops
the fast lane without condemning the audio falls back to batch, recorded in the file's
history: no slot or budget in time, a 429 or 5xx after retries, a refused request. Only a
422 saying the audio is bad (not merely too long) ends in a report. The outputs are the
batch lane's: ``.txt``, ``.srt``, ``.vtt`` rendered by :mod:`shared.render`, then the
``.json`` marker holding the service's ``TranscribeResult`` as returned.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from shared.pipeline.budget import WINDOW_SECONDS, SpeechBudget
from shared.pipeline.claims import close_vanished, reject_claim
from shared.pipeline.clock import utcnow
from shared.pipeline.fast_result import as_transcription_result
from shared.pipeline.ledger.records import Claim, SourceState, source_fields
from shared.pipeline.outputs import Currency, currency, remove_outputs, write_transcript
from shared.redact import get_logger, redact
from shared.speech.audio import ReopenableAudio
from shared.speech.errors import (
    RateLimitError,
    ServerError,
    SpeechConnectionError,
    SpeechHTTPError,
)
from shared.speech.models import TranscribeDefinition, TranscribeDiarization, TranscribeResult
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

#: How long a file waits for a slot on this instance before it goes to batch instead.
SLOT_WAIT_SECONDS = 30.0
#: Windows of the fast budget a file waits through before it goes to batch instead.
BUDGET_WINDOWS = 2
#: 422 inner codes that condemn the request, not the audio: batch takes longer files.
_NOT_THE_AUDIO = frozenset({"AudioLengthLimitExceeded"})


class FastOutcome(StrEnum):
    """How the fast lane left a file."""

    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUPERSEDED = "Superseded"
    #: Not transcribed here; ``FastResult.reason`` says why and the caller queues it.
    FALLBACK = "Fallback"
    #: Another holder took the claim over meanwhile; it finishes the file.
    LOST = "Lost"


@dataclass(frozen=True)
class FastResult:
    """The outcome, and its code/message/report where there is one."""

    outcome: FastOutcome
    reason: str = ""
    code: str | None = None
    report: str | None = None


def definition_for(options: TranscriptionOptions) -> TranscribeDefinition:
    """The fast-transcription definition of a file's options (routing has vetted them)."""
    diarization = (
        TranscribeDiarization(enabled=True, max_speakers=options.max_speakers)
        if options.diarization
        else None
    )
    return TranscribeDefinition(
        locales=[options.locale],
        profanity_filter_mode=options.profanity,
        diarization=diarization,
        channels=options.channels,
    )


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


async def _take_budget(ctx: AppContext) -> bool:
    budget = SpeechBudget.fast(ctx.ledger, per_minute=ctx.settings.fast_requests_per_minute)
    for attempt in range(BUDGET_WINDOWS + 1):
        if await budget.take(1):
            return True
        if attempt < BUDGET_WINDOWS:
            # Sleep to the next window's start: the budget refills there and not before.
            await asyncio.sleep(WINDOW_SECONDS - time.time() % WINDOW_SECONDS + 0.05)
    return False


def _failure(exc: SpeechHTTPError) -> tuple[FastOutcome, str]:
    """A refused request: a report when the audio is bad, else batch tries it."""
    what = redact(str(exc))[:300]
    if exc.status_code == 422 and exc.inner_code not in _NOT_THE_AUDIO:
        return FastOutcome.FAILED, what
    return FastOutcome.FALLBACK, f"fast transcription refused the file: {what}"


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
    settings = ctx.settings
    ref = claim.record.ref
    if not await _note_route(ctx, claim, decision):
        return FastResult(FastOutcome.LOST)
    try:
        await asyncio.wait_for(ctx.fast_slots.acquire(), SLOT_WAIT_SECONDS)
    except TimeoutError:
        return FastResult(
            FastOutcome.FALLBACK,
            f"no fast-transcription slot free on this instance within {SLOT_WAIT_SECONDS:g} s "
            f"(FAST_CONCURRENCY={settings.fast_concurrency})",
        )
    try:
        if not await _take_budget(ctx):
            return FastResult(
                FastOutcome.FALLBACK,
                f"the fast-transcription budget (FAST_REQUESTS_PER_MINUTE="
                f"{settings.fast_requests_per_minute}) stayed spent for {BUDGET_WINDOWS} windows",
            )
        name = PurePosixPath(blob.name).name or "audio"
        started = time.monotonic()
        try:
            result = await ctx.speech.fast.transcribe(
                ReopenableAudio(lambda: ctx.storage.stream(blob), name=name),
                definition_for(options),
                filename=name,
                content_type=blob.content_type or "application/octet-stream",
            )
        except (RateLimitError, ServerError, SpeechConnectionError) as exc:
            return FastResult(
                FastOutcome.FALLBACK,
                f"fast transcription failed after retries: {redact(str(exc))[:300]}",
            )
        except SpeechHTTPError as exc:
            if exc.status_code in (401, 403):
                raise  # the app's access, not the file: the host retries the event
            outcome, message = _failure(exc)
            if outcome is FastOutcome.FALLBACK:
                return FastResult(outcome, message)
            code = exc.inner_code or "InvalidAudio"
            report = await reject_claim(
                ctx,
                claim,
                now=utcnow(),
                code=code,
                message=f"fast transcription could not transcribe the audio: {message}",
                accepted=None,
                output_base=output_base,
                status="Failed",
            )
            return FastResult(FastOutcome.FAILED, message, code=code, report=report)
        elapsed = time.monotonic() - started
    finally:
        ctx.fast_slots.release()
    source = ctx.storage.blob_url(ref.container, ref.path)
    return await _deliver(
        ctx, claim, result, output_base=output_base, elapsed=elapsed, source=source
    )


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
    result: TranscribeResult,
    *,
    output_base: str,
    elapsed: float,
    source: str,
) -> FastResult:
    """Outputs for a current version, then Succeeded; Superseded if it changed meanwhile."""
    gone = await _superseded(ctx, claim, output_base)
    if gone is not None:
        return gone
    container = ctx.settings.output_container
    raw = json.dumps(result.to_dict(), ensure_ascii=False).encode()
    written = await write_transcript(
        ctx,
        container=container,
        base=output_base,
        raw=raw,
        result=as_transcription_result(result, source=source),
    )
    # Overwritten while the outputs were written: the newer version rewrites them.
    gone = await _superseded(ctx, claim, output_base)
    if gone is not None:
        return gone
    now = utcnow()
    seconds = result.duration_ms / 1000 if result.duration_ms is not None else None
    history = claim.record.with_history(
        "Transcribed",
        f"by fast transcription in {elapsed:.1f} s"
        + (f" ({seconds:.1f} s of audio)" if seconds is not None else ""),
        now=now,
    )
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
    _log.info("%s transcribed by fast transcription in %.1f s", claim.record.ref.display, elapsed)
    return FastResult(FastOutcome.SUCCEEDED)
