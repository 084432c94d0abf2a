"""One fast-transcription request for one blob version, and what its answer means.

The core both fast paths share — the intake's (:mod:`~.fast_lane`, under the file's claim)
and the submitter's for manifest files (:mod:`~.fast_queue`): a slot of the process's
``FAST_CONCURRENCY``, a request of the fast budget (``FAST_REQUESTS_PER_MINUTE``, shared
through the ledger), the blob streamed a chunk at a time (:meth:`BlobStorage.stream`,
pinned to the version's ETag) and re-openable, so the client's retries with backoff and
``Retry-After`` apply as to any request.

Whatever stops the request without condemning the audio is a fallback to batch: no slot or
budget in time, a 429 or 5xx after retries, a refused request (a 400, or a 422 for audio
too long for fast transcription). Only a 422 saying the audio is bad is a failure.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from shared.pipeline.budget import WINDOW_SECONDS, SpeechBudget
from shared.redact import redact
from shared.speech.audio import ReopenableAudio
from shared.speech.errors import (
    RateLimitError,
    ServerError,
    SpeechConnectionError,
    SpeechHTTPError,
)
from shared.speech.models import TranscribeDefinition, TranscribeDiarization, TranscribeResult

if TYPE_CHECKING:
    from shared.app_context import AppContext
    from shared.pipeline.options import TranscriptionOptions
    from shared.storage import BlobInfo

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
    #: Not transcribed here; the reason says why and the caller queues it for batch.
    FALLBACK = "Fallback"
    #: Another holder took the file over meanwhile; it finishes the file.
    LOST = "Lost"


@dataclass(frozen=True)
class FastAnswer:
    """The request's outcome: the result (``SUCCEEDED``), or why not (``reason``, ``code``)."""

    outcome: FastOutcome
    result: TranscribeResult | None = None
    reason: str = ""
    code: str | None = None
    elapsed: float = 0.0


def definition_for(
    options: TranscriptionOptions, candidate_locales: list[str] | None = None
) -> TranscribeDefinition:
    """The fast-transcription definition of a file's options (routing has vetted them).

    Candidate locales (a manifest's language identification) become the definition's
    ``locales``: fast transcription identifies the language among them itself.
    """
    diarization = (
        TranscribeDiarization(enabled=True, max_speakers=options.max_speakers)
        if options.diarization
        else None
    )
    return TranscribeDefinition(
        locales=list(candidate_locales or [options.locale]),
        profanity_filter_mode=options.profanity,
        diarization=diarization,
        channels=options.channels,
    )


async def _take_budget(ctx: AppContext) -> bool:
    budget = SpeechBudget.fast(ctx.ledger, per_minute=ctx.settings.fast_requests_per_minute)
    for attempt in range(BUDGET_WINDOWS + 1):
        if await budget.take(1):
            return True
        if attempt < BUDGET_WINDOWS:
            # Sleep to the next window's start: the budget refills there and not before.
            await asyncio.sleep(WINDOW_SECONDS - time.time() % WINDOW_SECONDS + 0.05)
    return False


def _refused(exc: SpeechHTTPError) -> FastAnswer:
    """A refused request: a failure when the audio is bad, else batch tries it."""
    what = redact(str(exc))[:300]
    if exc.status_code == 422 and exc.inner_code not in _NOT_THE_AUDIO:
        return FastAnswer(FastOutcome.FAILED, reason=what, code=exc.inner_code or "InvalidAudio")
    return FastAnswer(FastOutcome.FALLBACK, reason=f"fast transcription refused the file: {what}")


async def request_fast(
    ctx: AppContext,
    blob: BlobInfo,
    definition: TranscribeDefinition,
    *,
    budget_taken: bool = False,
) -> FastAnswer:
    """Transcribe ``blob`` by fast transcription, or say why not.

    ``budget_taken``: the caller reserved the request already. Storage errors (the blob
    changed or vanished mid-stream) and 401/403 (the app's access, not the file's fault)
    propagate.
    """
    settings = ctx.settings
    try:
        await asyncio.wait_for(ctx.fast_slots.acquire(), SLOT_WAIT_SECONDS)
    except TimeoutError:
        return FastAnswer(
            FastOutcome.FALLBACK,
            reason=f"no fast-transcription slot free on this instance within "
            f"{SLOT_WAIT_SECONDS:g} s (FAST_CONCURRENCY={settings.fast_concurrency})",
        )
    try:
        if not budget_taken and not await _take_budget(ctx):
            return FastAnswer(
                FastOutcome.FALLBACK,
                reason=f"the fast-transcription budget (FAST_REQUESTS_PER_MINUTE="
                f"{settings.fast_requests_per_minute}) stayed spent for {BUDGET_WINDOWS} windows",
            )
        name = PurePosixPath(blob.name).name or "audio"
        started = time.monotonic()
        try:
            result = await ctx.speech.fast.transcribe(
                ReopenableAudio(lambda: ctx.storage.stream(blob), name=name),
                definition,
                filename=name,
                content_type=blob.content_type or "application/octet-stream",
            )
        except (RateLimitError, ServerError, SpeechConnectionError) as exc:
            return FastAnswer(
                FastOutcome.FALLBACK,
                reason=f"fast transcription failed after retries: {redact(str(exc))[:300]}",
            )
        except SpeechHTTPError as exc:
            if exc.status_code in (401, 403):
                raise
            return _refused(exc)
        return FastAnswer(FastOutcome.SUCCEEDED, result, elapsed=time.monotonic() - started)
    finally:
        ctx.fast_slots.release()


def transcribed_detail(answer: FastAnswer) -> str:
    """The history entry of a fast transcription: how long it took, how much audio."""
    result = answer.result
    seconds = result.duration_ms / 1000 if result and result.duration_ms is not None else None
    audio = f" ({seconds:.1f} s of audio)" if seconds is not None else ""
    return f"by fast transcription in {answer.elapsed:.1f} s{audio}"
