"""Which Speech API transcribes a file: a batch job with others, or fast transcription now.

``ROUTING`` sets the app's rule and a blob's ``mode`` metadata (or a manifest's ``mode``)
overrides it per file: ``batch`` always waits for a job; ``fast`` sends every file that fast
transcription can take; ``auto`` sends a file only when it is provably short, at most
``FAST_MAX_SECONDS``. Provably: the length is read from the header where the format records
it (WAV, FLAC, Ogg: :mod:`shared.audio_duration`), otherwise bounded by the size at the
format's lowest bitrate (a file cannot hold more seconds than that).

Whatever the rule, a file goes to batch when fast transcription cannot take it: its options
(a custom or pinned model, an explicit punctuation mode, diarization of two channels) or
its size and length (fast transcription of REST 2024-11-15 takes "an audio file (less than
2 hours long and less than 200 MB in size)",
https://learn.microsoft.com/azure/ai-services/speech-service/fast-transcription-create).
Every decision carries its reason, which goes into the file's history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.audio_duration import HEAD_BYTES, TAIL_BYTES, header_duration, needs_tail
from shared.pipeline.options import OptionsError, TranscriptionOptions
from shared.settings import FAST_TRANSCRIPTION_MAX_BYTES, FAST_TRANSCRIPTION_MAX_SECONDS, Routing
from shared.speech.models import PunctuationMode

if TYPE_CHECKING:
    from shared.app_context import AppContext
    from shared.storage import BlobInfo

#: Metadata names of the per-file override (matched like option names: case and ``_``).
MODE_METADATA = frozenset({"mode", "route", "routing"})

#: Bytes per second at each container's lowest bitrate for speech, so ``size / rate`` is
#: an upper bound of the length: MPEG audio layer III goes down to 8 kbit/s (MPEG-2.5),
#: AMR-NB to 4.75 kbit/s, Opus (WebM) to 6 kbit/s, WMA and AAC to about 5 and 8 kbit/s.
#: Anything else uses the lowest of them all.
MIN_BYTES_PER_SECOND: dict[str, float] = {
    "mp3": 1000.0,
    "amr": 4750 / 8,
    "webm": 750.0,
    "asf": 625.0,
    "aac": 1000.0,
    "mp4": 1000.0,
}
_FLOOR = min(MIN_BYTES_PER_SECOND.values())


@dataclass(frozen=True)
class RouteDecision:
    """Where one file goes and why; ``audio_seconds`` when its header proved the length."""

    route: Routing
    reason: str
    audio_seconds: float | None = None


def mode_from_metadata(metadata: Mapping[str, str]) -> Routing | None:
    """The blob's ``mode`` override, or None; :class:`OptionsError` names a bad value."""
    for key, value in metadata.items():
        if key.lower().replace("_", "") in MODE_METADATA:
            return parse_mode(key, value)
    return None


def parse_mode(key: str, value: str) -> Routing:
    """``fast``, ``batch`` or ``auto`` (any case); :class:`OptionsError` otherwise."""
    try:
        return Routing(value.strip().lower())
    except ValueError:
        raise OptionsError(key, "must be fast, batch or auto") from None


def fast_refusal(options: TranscriptionOptions) -> str | None:
    """Why fast transcription cannot honour ``options``, or None if it can."""
    if options.model:
        return "a model is named, and fast transcription takes no batch or custom models"
    if options.punctuation not in (
        PunctuationMode.DICTATED_AND_AUTOMATIC,
        PunctuationMode.AUTOMATIC,
    ):
        return (
            f"punctuation {options.punctuation.value} is asked for, and fast transcription "
            "has no punctuation setting"
        )
    if options.diarization and options.channels and len(options.channels) > 1:
        # "If the audio is stereo and diarization is enabled, then you can't set the channels
        # property to [0,1]" (the fast transcription how-to).
        return "diarization of two separate channels, which fast transcription refuses"
    return None


async def probe_seconds(ctx: AppContext, blob: BlobInfo, container: str) -> float | None:
    """The length the header proves (one or two ranged reads), or None."""
    head = await ctx.storage.read_range(blob, 0, HEAD_BYTES)
    tail = None
    if needs_tail(container):
        tail = await ctx.storage.read_range(blob, max(0, blob.size - TAIL_BYTES), TAIL_BYTES)
    return header_duration(container, head, tail, size=blob.size)


async def decide(
    ctx: AppContext,
    blob: BlobInfo,
    *,
    container: str,
    options: TranscriptionOptions,
    requested: Routing,
    source: str,
) -> RouteDecision:
    """Route one checked blob. ``requested`` is the rule in force; ``source`` names it."""
    batch = Routing.BATCH
    if requested is batch:
        return RouteDecision(batch, f"{source} is batch")
    refusal = fast_refusal(options)
    if refusal is not None:
        return RouteDecision(batch, f"{source} is {requested.value}, but {refusal}")
    if blob.size > FAST_TRANSCRIPTION_MAX_BYTES:
        return RouteDecision(batch, f"{blob.size} bytes: fast transcription takes less than 200 MB")
    seconds = await probe_seconds(ctx, blob, container)
    limit = FAST_TRANSCRIPTION_MAX_SECONDS
    if seconds is not None and seconds >= limit:
        return RouteDecision(
            batch, f"the header says {seconds:.0f} s: fast transcription takes under 2 hours"
        )
    if requested is Routing.FAST:
        told = f" (the header says {seconds:.1f} s)" if seconds is not None else ""
        return RouteDecision(Routing.FAST, f"{source} is fast{told}", seconds)
    most = ctx.settings.fast_max_seconds
    if seconds is not None:
        if seconds <= most:
            return RouteDecision(
                Routing.FAST, f"the header says {seconds:.1f} s, at most {most:g} s", seconds
            )
        return RouteDecision(
            batch, f"the header says {seconds:.1f} s, more than {most:g} s", seconds
        )
    bound = blob.size / MIN_BYTES_PER_SECOND.get(container, _FLOOR)
    if bound <= most:
        return RouteDecision(
            Routing.FAST,
            f"{blob.size} bytes of {container} hold at most {bound:.0f} s, at most {most:g} s",
        )
    return RouteDecision(
        batch,
        f"the {container} header does not tell the length, and {blob.size} bytes may hold "
        f"up to {bound:.0f} s, more than {most:g} s",
    )
