"""Batch transcription entities (``/speechtotext/transcriptions``): responses and requests.

Responses parse leniently, including the v3 names several of Microsoft's 2024-11-15 examples
still use (``timeToLive: "P2D"``, ``duration: "PT42S"``, ``diarizationEnabled``); the
``effective_*`` properties read the current name first and fall back to the v3 one.

Requests carry only the spec's writable properties and check every documented limit, so a
bad job is refused here rather than by the service minutes later.
"""

from __future__ import annotations

from datetime import datetime
from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from shared.speech.models._base import RequestModel, ResponseModel
from shared.speech.models.common import (
    MAX_SPEAKERS,
    MIN_SPEAKERS,
    CustomProperties,
    EntityError,
    EntityReference,
    EntityReferenceRequest,
    HttpUrlStr,
    Page,
    iso_duration_ms,
    parse_iso_duration,
)
from shared.speech.models.enums import (
    FileKind,
    LanguageIdentificationMode,
    OpenEnum,
    ProfanityFilterMode,
    PunctuationMode,
    Status,
)
from shared.speech.models.speech_models import ModelReference

#: ``contentUrls`` limit from the spec ("Up to 1000 urls are allowed").
MAX_CONTENT_URLS = 1000
#: ``timeToLiveHours`` bounds: "The shortest supported duration is 6 hours, the longest
#: supported duration is 31 days"; 48 h is the spec's recommended default.
MIN_TIME_TO_LIVE_HOURS = 6
MAX_TIME_TO_LIVE_HOURS = 31 * 24
DEFAULT_TIME_TO_LIVE_HOURS = 48
#: ``candidateLocales``: "A minimum of 2 and a maximum of 10 ... for continuous mode".
MIN_CANDIDATE_LOCALES = 2
MAX_CONTINUOUS_CANDIDATE_LOCALES = 10

_TERMINAL_STATUSES = frozenset({Status.SUCCEEDED, Status.FAILED})


# ---------------------------------------------------------------------------- responses


class DiarizationProperties(ResponseModel):
    """Wire ``DiarizationProperties`` (v3 ``speakers.minCount/maxCount`` is kept as an extra)."""

    enabled: bool | None = None
    max_speakers: int | None = None


class LanguageIdentificationProperties(ResponseModel):
    """Wire ``LanguageIdentificationProperties`` as returned."""

    mode: OpenEnum[LanguageIdentificationMode] | None = None
    candidate_locales: list[str] | None = None
    speech_model_mapping: dict[str, EntityReference] | None = None


class TranscriptionProperties(ResponseModel):
    """Wire ``TranscriptionProperties`` as returned, plus the v3 names still seen in examples."""

    word_level_timestamps_enabled: bool | None = None
    display_form_word_level_timestamps_enabled: bool | None = None
    duration_milliseconds: int | None = None
    channels: list[int] | None = None
    destination_container_url: str | None = None
    punctuation_mode: OpenEnum[PunctuationMode] | None = None
    profanity_filter_mode: OpenEnum[ProfanityFilterMode] | None = None
    time_to_live_hours: int | None = None
    error: EntityError | None = None
    diarization: DiarizationProperties | None = None
    language_identification: LanguageIdentificationProperties | None = None
    # v3 names: ISO 8601 durations and the flag that preceded ``diarization.enabled``.
    time_to_live: str | None = None
    duration: str | None = None
    legacy_diarization_enabled: bool | None = Field(default=None, alias="diarizationEnabled")

    @property
    def effective_time_to_live_hours(self) -> float | None:
        """``timeToLiveHours``, else the v3 ``timeToLive`` duration in hours."""
        if self.time_to_live_hours is not None:
            return self.time_to_live_hours
        delta = parse_iso_duration(self.time_to_live) if self.time_to_live else None
        return None if delta is None else delta.total_seconds() / 3600

    @property
    def effective_duration_ms(self) -> int | None:
        """``durationMilliseconds``, else the v3 ``duration`` in milliseconds."""
        if self.duration_milliseconds is not None:
            return self.duration_milliseconds
        return iso_duration_ms(self.duration)

    @property
    def diarization_enabled(self) -> bool | None:
        """``diarization.enabled``, else the v3 ``diarizationEnabled``."""
        if self.diarization is not None and self.diarization.enabled is not None:
            return self.diarization.enabled
        return self.legacy_diarization_enabled


class TranscriptionLinks(ResponseModel):
    """Wire ``TranscriptionLinks``: where the job's files are listed."""

    files: str | None = None


class Transcription(ResponseModel):
    """Wire ``Transcription``: a batch transcription job."""

    self_url: str | None = Field(default=None, alias="self")
    display_name: str | None = None
    description: str | None = None
    locale: str | None = None
    status: OpenEnum[Status] | None = None
    created_date_time: datetime | None = None
    last_action_date_time: datetime | None = None
    model: EntityReference | None = None
    dataset: EntityReference | None = None
    project: EntityReference | None = None
    links: TranscriptionLinks | None = None
    properties: TranscriptionProperties | None = None
    content_urls: list[str] | None = None
    content_container_url: str | None = None
    custom_properties: dict[str, str] | None = None

    @property
    def id(self) -> str | None:
        """The job id: the last path segment of ``self``, without the query string."""
        if not self.self_url:
            return None
        segment = urlsplit(self.self_url).path.rstrip("/").rpartition("/")[2]
        return segment or None

    @property
    def is_terminal(self) -> bool:
        """True once the job has ``Succeeded`` or ``Failed``: polling it again changes nothing."""
        return self.status in _TERMINAL_STATUSES


class FileLinks(ResponseModel):
    """Wire ``FileLinks``: the (SAS) URL the file's content is downloaded from."""

    content_url: str | None = None


class FileProperties(ResponseModel):
    """Wire ``FileProperties``."""

    size: int | None = None
    duration_milliseconds: int | None = None


class TranscriptionFile(ResponseModel):
    """Wire ``File``: one result or report file of a transcription."""

    self_url: str | None = Field(default=None, alias="self")
    name: str | None = None
    kind: OpenEnum[FileKind] | None = None
    links: FileLinks | None = None
    properties: FileProperties | None = None
    created_date_time: datetime | None = None


class PaginatedTranscriptions(Page[Transcription]):
    """Wire ``PaginatedTranscriptions``: a page of transcription jobs."""


class PaginatedFiles(Page[TranscriptionFile]):
    """Wire ``PaginatedFiles``: a page of a job's files."""


class TranscriptionLocales(ResponseModel):
    """Wire ``TranscriptionLocales``: locales per operation (keys are PascalCase on the wire)."""

    transcribe: list[str] | None = Field(default=None, alias="Transcribe")
    submit: list[str] | None = Field(default=None, alias="Submit")


# ----------------------------------------------------------------------------- requests


class DiarizationSettings(RequestModel):
    """Wire ``DiarizationProperties`` as sent."""

    enabled: bool | None = None
    max_speakers: int | None = Field(default=None, ge=MIN_SPEAKERS, le=MAX_SPEAKERS)


class LanguageIdentificationSettings(RequestModel):
    """Wire ``LanguageIdentificationProperties`` as sent."""

    mode: LanguageIdentificationMode = LanguageIdentificationMode.CONTINUOUS
    candidate_locales: list[str]
    speech_model_mapping: dict[str, ModelReference] | None = None

    @model_validator(mode="after")
    def _check_candidates(self) -> Self:
        # The spec (LanguageIdentificationProperties.candidateLocales, REST reference
        # "Transcriptions - Submit" 2024-11-15): "A minimum of 2 and a maximum of 10 candidate
        # locales ... is supported for continuous mode. For single language identification,
        # the maximum number of candidate locales is unbounded." The how-to article
        # (batch-transcription-create.md, "Request configuration options") states the
        # minimum of two without a mode, so the minimum holds for Single too.
        count = len(self.candidate_locales)
        if count < MIN_CANDIDATE_LOCALES:
            raise ValueError(
                f"candidateLocales needs at least {MIN_CANDIDATE_LOCALES} locales, got {count}"
            )
        if (
            self.mode == LanguageIdentificationMode.CONTINUOUS
            and count > MAX_CONTINUOUS_CANDIDATE_LOCALES
        ):
            raise ValueError(
                f"candidateLocales allows at most {MAX_CONTINUOUS_CANDIDATE_LOCALES} locales "
                f"in Continuous mode, got {count} (Single mode has no maximum)"
            )
        # Spec: "Keys must be locales contained in the candidate locales".
        unknown = sorted(set(self.speech_model_mapping or {}) - set(self.candidate_locales))
        if unknown:
            raise ValueError(f"speechModelMapping keys not in candidateLocales: {unknown}")
        return self


class TranscriptionRequestProperties(RequestModel):
    """Wire ``TranscriptionProperties`` as sent: only the properties that are not readOnly."""

    word_level_timestamps_enabled: bool | None = None
    display_form_word_level_timestamps_enabled: bool | None = None
    channels: list[int] | None = None
    destination_container_url: HttpUrlStr | None = None
    punctuation_mode: PunctuationMode | None = None
    profanity_filter_mode: ProfanityFilterMode | None = None
    # Required by the spec, so it has a default and is always sent.
    time_to_live_hours: int = Field(
        default=DEFAULT_TIME_TO_LIVE_HOURS, ge=MIN_TIME_TO_LIVE_HOURS, le=MAX_TIME_TO_LIVE_HOURS
    )
    diarization: DiarizationSettings | None = None
    language_identification: LanguageIdentificationSettings | None = None

    @model_validator(mode="after")
    def _check_channels(self) -> Self:
        # Documented rule: channels are 0-based channel numbers, "In the default case, the
        # channels 0 and 1 are considered" (spec TranscriptionProperties.channels), and the
        # service rejects a selection where "neither 0 nor 1 have been selected"
        # (DetailedErrorCode InvalidChannelSpecification, 2025-10-15 spec and the 2024-11-15
        # REST reference). Nothing documents other indices as invalid, so they pass.
        if self.channels is None:
            return self
        if not self.channels:
            raise ValueError("channels must not be empty; omit it for the default [0, 1]")
        if any(channel < 0 for channel in self.channels):
            raise ValueError(f"channels are 0-based channel numbers, got {self.channels}")
        if not {0, 1} & set(self.channels):
            raise ValueError(f"channels must include channel 0 or 1, got {self.channels}")
        return self


class TranscriptionRequest(RequestModel):
    """Wire ``Transcription`` as sent to ``transcriptions:submit``."""

    display_name: str = Field(min_length=1)
    locale: str = Field(min_length=1)
    description: str | None = None
    content_urls: list[HttpUrlStr] | None = Field(
        default=None, min_length=1, max_length=MAX_CONTENT_URLS
    )
    content_container_url: HttpUrlStr | None = None
    dataset: EntityReferenceRequest | None = None
    model: ModelReference | None = None
    custom_properties: CustomProperties | None = None
    properties: TranscriptionRequestProperties = Field(
        default_factory=TranscriptionRequestProperties
    )

    @model_validator(mode="after")
    def _check_one_source(self) -> Self:
        # The service answers OnlyOneOfUrlsOrContainerOrDataset otherwise.
        given = [
            wire
            for wire, value in (
                ("contentUrls", self.content_urls),
                ("contentContainerUrl", self.content_container_url),
                ("dataset", self.dataset),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "exactly one of contentUrls, contentContainerUrl, dataset is required; "
                f"given: {', '.join(given) or 'none'}"
            )
        return self


class TranscriptionUpdate(RequestModel):
    """Wire ``TranscriptionUpdate``: the body of a transcription PATCH."""

    # The spec sets no minLength here, but a transcription's displayName has minLength 1,
    # so an update cannot validly blank it.
    display_name: str | None = Field(default=None, min_length=1)
    description: str | None = None
    custom_properties: CustomProperties | None = None
