"""Short-audio REST API (``/speech/recognition/conversation/cognitiveservices/v1``) models.

This API speaks PascalCase (``RecognitionStatus``, ``NBest``, ``ITN``), so these models
generate PascalCase aliases and spell out the acronyms. Numbers are not always numbers on
this wire: the docs show ``"Confidence": "0.87"`` and ``"Offset": "1236645672289"``, which
parse as float and int. ``Offset``/``Duration`` are ticks of 100 ns.

Pronunciation scores come flat on an ``NBest`` entry in older responses and nested under
``PronunciationAssessment`` in newer ones; both shapes are modelled.
"""

from __future__ import annotations

import base64
import json
import uuid

from pydantic import ConfigDict, Field, field_validator
from pydantic.alias_generators import to_pascal

from shared.speech.models._base import RequestModel, ResponseModel
from shared.speech.models.common import Number, ticks_to_ms
from shared.speech.models.enums import (
    Dimension,
    GradingSystem,
    Granularity,
    OpenEnum,
    PronunciationErrorType,
    RecognitionStatus,
)


class _PascalResponse(ResponseModel):
    # populate_by_name is inherited; it is repeated because the pydantic mypy plugin only
    # reads the config a class states itself when it checks an alias generator.
    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True)


class NBestPhoneme(_PascalResponse):
    """One candidate of the spoken phoneme (``NBestPhonemes[]``)."""

    phoneme: str | None = None
    score: Number | None = None


class PronunciationScores(_PascalResponse):
    """A nested ``PronunciationAssessment`` object, at utterance, word, syllable or phoneme level.

    ``Feedback`` (prosody break and intonation details) is kept as an extra.
    """

    accuracy_score: Number | None = None
    fluency_score: Number | None = None
    completeness_score: Number | None = None
    pron_score: Number | None = None
    prosody_score: Number | None = None
    error_type: OpenEnum[PronunciationErrorType] | None = None
    n_best_phonemes: list[NBestPhoneme] | None = None


class SyllableResult(_PascalResponse):
    """One ``Syllables[]`` entry of a word (en-US, phoneme granularity)."""

    syllable: str | None = None
    offset: int | None = None
    duration: int | None = None
    pronunciation_assessment: PronunciationScores | None = None


class PhonemeResult(_PascalResponse):
    """One ``Phonemes[]`` entry of a word."""

    phoneme: str | None = None
    offset: int | None = None
    duration: int | None = None
    pronunciation_assessment: PronunciationScores | None = None


class WordResult(_PascalResponse):
    """One ``Words[]`` entry of an ``NBest`` hypothesis."""

    word: str | None = None
    offset: int | None = None
    duration: int | None = None
    confidence: Number | None = None
    accuracy_score: Number | None = None
    error_type: OpenEnum[PronunciationErrorType] | None = None
    pronunciation_assessment: PronunciationScores | None = None
    syllables: list[SyllableResult] | None = None
    phonemes: list[PhonemeResult] | None = None


class NBestEntry(_PascalResponse):
    """One ``NBest[]`` hypothesis of a detailed short-audio result."""

    confidence: Number | None = None
    lexical: str | None = None
    itn: str | None = Field(default=None, alias="ITN")
    masked_itn: str | None = Field(default=None, alias="MaskedITN")
    display: str | None = None
    accuracy_score: Number | None = None
    fluency_score: Number | None = None
    completeness_score: Number | None = None
    pron_score: Number | None = None
    prosody_score: Number | None = None
    pronunciation_assessment: PronunciationScores | None = None
    words: list[WordResult] | None = None


class ShortAudioResult(_PascalResponse):
    """The JSON body of a short-audio recognition (simple or detailed format).

    ``SNR``, ``Id`` and anything else the service adds are kept as extras.
    """

    # The Speech SDK's JSON result writes the status as a number (e.g. ``0``); the REST API
    # writes the name. Both parse.
    recognition_status: OpenEnum[RecognitionStatus] | int | None = None
    display_text: str | None = None
    offset: int | None = None
    duration: int | None = None
    n_best: list[NBestEntry] | None = Field(default=None, alias="NBest")

    @property
    def text(self) -> str:
        """``DisplayText``, else the first hypothesis' ``Display``, else ``""``."""
        if self.display_text is not None:
            return self.display_text
        if self.n_best and self.n_best[0].display is not None:
            return self.n_best[0].display
        return ""

    @property
    def offset_ms(self) -> int | None:
        """Start of the recognized speech in the audio, in milliseconds."""
        return ticks_to_ms(self.offset)

    @property
    def duration_ms(self) -> int | None:
        """Length of the recognized speech, in milliseconds."""
        return ticks_to_ms(self.duration)


class PronunciationAssessmentParams(RequestModel):
    """The JSON carried, base64-encoded, in the ``Pronunciation-Assessment`` header."""

    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True)

    reference_text: str = Field(min_length=1)
    grading_system: GradingSystem | None = None
    granularity: Granularity | None = None
    dimension: Dimension | None = None
    enable_miscue: bool | None = None
    scenario_id: str | None = None

    @field_validator("scenario_id")
    @classmethod
    def _scenario_id_is_uuid(cls, value: str | None) -> str | None:
        # The docs call ScenarioId "a GUID"; it is sent exactly as given.
        if value is not None:
            uuid.UUID(value)
        return value

    def to_header(self) -> str:
        """Base64 of the compact UTF-8 JSON, wire names, unset options left out."""
        text = json.dumps(self.to_body(), ensure_ascii=False, separators=(",", ":"))
        return base64.b64encode(text.encode("utf-8")).decode("ascii")
