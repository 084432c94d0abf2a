"""Batch transcription output files: the result (``kind: Transcription``) and the report.

Three generations of the result format are in circulation (v3, v3.1/3.2, 2024-11-15), and
Microsoft's own examples disagree with the schemas (see ``results/FORMAT.md`` in the specs).
So everything is optional, ticks keep the int or float they arrived as (integers at file
level, floats such as ``7600000.0`` on phrases and words), and the ``*_ms``
properties use ``*Milliseconds`` when present, else ticks / 10 000, else the ISO 8601
duration string.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from shared.speech.models._base import ResponseModel
from shared.speech.models.common import Number, iso_duration_ms, ticks_to_ms
from shared.speech.models.enums import OpenEnum, Status


def _first_ms(milliseconds: int | None, ticks: Number | None, iso: str | None) -> int | None:
    if milliseconds is not None:
        return milliseconds
    from_ticks = ticks_to_ms(ticks)
    return from_ticks if from_ticks is not None else iso_duration_ms(iso)


class _Timed(ResponseModel):
    offset: str | None = None
    duration: str | None = None
    offset_in_ticks: Number | None = None
    duration_in_ticks: Number | None = None
    offset_milliseconds: int | None = None
    duration_milliseconds: int | None = None

    @property
    def offset_ms(self) -> int | None:
        """Start within the audio in milliseconds, from whichever encoding is present."""
        return _first_ms(self.offset_milliseconds, self.offset_in_ticks, self.offset)

    @property
    def duration_ms(self) -> int | None:
        """Length in milliseconds, from whichever encoding is present."""
        return _first_ms(self.duration_milliseconds, self.duration_in_ticks, self.duration)


class ResultWord(_Timed):
    """A ``words[]`` entry: one lexical word with its timing and confidence."""

    word: str | None = None
    confidence: Number | None = None


class DisplayWord(_Timed):
    """A ``displayWords[]`` entry: one display-form word with its punctuation; no confidence."""

    display_text: str | None = None


class NBestHypothesis(ResponseModel):
    """An ``nBest[]`` entry: one hypothesis for a phrase, in four text forms."""

    confidence: Number | None = None
    lexical: str | None = None
    itn: str | None = None
    masked_itn: str | None = Field(default=None, alias="maskedITN")
    display: str | None = None
    words: list[ResultWord] | None = None
    display_words: list[DisplayWord] | None = None


class RecognizedPhrase(_Timed):
    """A ``recognizedPhrases[]`` entry: one segment of one channel."""

    recognition_status: str | None = None
    channel: int | None = None
    speaker: int | None = None
    locale: str | None = None
    n_best: list[NBestHypothesis] | None = None


class CombinedRecognizedPhrase(ResponseModel):
    """A ``combinedRecognizedPhrases[]`` entry: the whole text of one channel."""

    channel: int | None = None
    lexical: str | None = None
    itn: str | None = None
    masked_itn: str | None = Field(default=None, alias="maskedITN")
    display: str | None = None


class TranscriptionResult(ResponseModel):
    """A result file (``kind: Transcription``): the transcript of one input audio file.

    The old ``durationTicks`` (sample files predating ``durationInTicks``) stays an extra.
    """

    source: str | None = None
    timestamp: datetime | None = None
    duration_in_ticks: Number | None = None
    duration_milliseconds: int | None = None
    duration: str | None = None
    combined_recognized_phrases: list[CombinedRecognizedPhrase] | None = None
    recognized_phrases: list[RecognizedPhrase] | None = None

    @property
    def duration_ms(self) -> int | None:
        """Audio length in milliseconds, from whichever encoding is present."""
        return _first_ms(self.duration_milliseconds, self.duration_in_ticks, self.duration)


class ReportDetail(ResponseModel):
    """A ``details[]`` entry of the report: the outcome for one input audio file."""

    source: str | None = None
    source_url: str | None = None
    status: OpenEnum[Status] | None = None
    error_kind: str | None = None
    error_message: str | None = None

    @property
    def effective_source(self) -> str | None:
        """``source``, else the ``sourceUrl`` older reports use."""
        return self.source if self.source is not None else self.source_url


class TranscriptionReport(ResponseModel):
    """The report file (``kind: TranscriptionReport``, ``report.json``), one per job."""

    successful_transcriptions_count: int | None = None
    failed_transcriptions_count: int | None = None
    details: list[ReportDetail] | None = None
