"""Fast transcription (``transcriptions:transcribe``): the ``definition`` form part and result.

The definition's ``audioUrl``, ``phraseList`` and ``enhancedMode`` exist only from API version
2025-10-15; :attr:`TranscribeDefinition.FIELDS_SINCE_2025_10_15` names them, so the client
can refuse them for 2024-11-15 instead of letting the service ignore or reject them.

Results written by the 2024-05-15 preview use ``offset``/``duration`` (milliseconds) where
the GA versions use ``offsetMilliseconds``/``durationMilliseconds``; both parse, and the
``*_ms`` properties read whichever is present.
"""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator

from shared.speech.models._base import RequestModel, ResponseModel
from shared.speech.models.common import MAX_SPEAKERS, MIN_SPEAKERS, HttpUrlStr, Number
from shared.speech.models.enums import ProfanityFilterMode

# ----------------------------------------------------------------------------- requests


class TranscribeDiarization(RequestModel):
    """Wire ``TranscribeDiarizationProperties``."""

    enabled: bool | None = None
    max_speakers: int | None = Field(default=None, ge=MIN_SPEAKERS, le=MAX_SPEAKERS)


class PhraseListProperties(RequestModel):
    """Wire ``PhraseListProperties`` (2025-10-15): phrases to bias recognition towards."""

    phrases: list[str] | None = None
    biasing_weight: float | None = None


class EnhancedModeProperties(RequestModel):
    """Wire ``EnhancedModeProperties`` (2025-10-15): LLM-based transcription or translation."""

    enabled: bool | None = None
    task: str | None = None
    target_language: str | None = None
    prompt: list[str] | None = None


class TranscribeDefinition(RequestModel):
    """Wire ``TranscribeDefinition``: the JSON ``definition`` part of a fast transcription."""

    #: Wire names of the properties that API version 2025-10-15 introduced.
    FIELDS_SINCE_2025_10_15: ClassVar[frozenset[str]] = frozenset(
        {"audioUrl", "phraseList", "enhancedMode"}
    )

    locales: list[str] | None = None
    models: dict[str, HttpUrlStr] | None = None
    profanity_filter_mode: ProfanityFilterMode | None = None
    diarization: TranscribeDiarization | None = None
    channels: list[int] | None = None
    audio_url: HttpUrlStr | None = None
    phrase_list: PhraseListProperties | None = None
    enhanced_mode: EnhancedModeProperties | None = None

    @model_validator(mode="after")
    def _check_channels(self) -> Self:
        # Documented rule (spec TranscribeDefinition.channels and the fast transcription
        # how-to): "The 0-based indices of the channels to be transcribed separately ...
        # Only up to two channels are supported"; stereo is split by passing [0, 1].
        if self.channels is None:
            return self
        if not self.channels:
            raise ValueError("channels must not be empty; omit it to merge all channels")
        if not set(self.channels) <= {0, 1} or len(set(self.channels)) != len(self.channels):
            raise ValueError(
                f"channels supports up to two distinct channels, 0 and 1; got {self.channels}"
            )
        return self


# ---------------------------------------------------------------------------- responses


class _FastTiming(ResponseModel):
    offset_milliseconds: int | None = None
    duration_milliseconds: int | None = None
    # 2024-05-15-preview names, in milliseconds.
    offset: int | None = None
    duration: int | None = None

    @property
    def offset_ms(self) -> int | None:
        """``offsetMilliseconds``, else the preview ``offset``."""
        return self.offset_milliseconds if self.offset_milliseconds is not None else self.offset

    @property
    def duration_ms(self) -> int | None:
        """``durationMilliseconds``, else the preview ``duration``."""
        if self.duration_milliseconds is not None:
            return self.duration_milliseconds
        return self.duration


class FastWord(_FastTiming):
    """Wire ``Word``: a time-stamped word in display form."""

    text: str | None = None


class FastPhrase(_FastTiming):
    """Wire ``Phrase``: a transcribed phrase with its words, channel, speaker and locale."""

    text: str | None = None
    channel: int | None = None
    speaker: int | None = None
    locale: str | None = None
    confidence: Number | None = None
    words: list[FastWord] | None = None


class CombinedPhrase(ResponseModel):
    """Wire ``CombinedPhrases`` / ``ChannelCombinedPhrases``: the full text of one channel."""

    channel: int | None = None
    text: str | None = None


class TranscribeResult(ResponseModel):
    """Wire ``TranscribeResult``: the body of a fast transcription response."""

    duration_milliseconds: int | None = None
    combined_phrases: list[CombinedPhrase] | None = None
    phrases: list[FastPhrase] | None = None
    # 2024-05-15-preview name, in milliseconds.
    duration: int | None = None

    @property
    def duration_ms(self) -> int | None:
        """``durationMilliseconds``, else the preview ``duration``."""
        if self.duration_milliseconds is not None:
            return self.duration_milliseconds
        return self.duration
