"""Base and custom speech models (``/speechtotext/models``), as the batch API returns them.

Named ``*SpeechModel`` so they never shadow pydantic's ``BaseModel``. A model's
``transcriptionDateTime`` deprecation date matters to the client: batch requests naming an
expired model fail, so :attr:`SharedModel.transcription_deprecation` is surfaced directly.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from shared.speech.models._base import ResponseModel
from shared.speech.models.common import (
    EntityError,
    EntityReference,
    EntityReferenceRequest,
    Page,
)
from shared.speech.models.enums import DatasetKind, OpenEnum, OutputFormatType, Status


class ModelDeprecationDates(ResponseModel):
    """Wire ``*ModelDeprecationDates``: when adaptation and transcription stop working."""

    adaptation_date_time: datetime | None = None
    transcription_date_time: datetime | None = None


class SharedModelFeatures(ResponseModel):
    """Wire ``SharedModelFeatures`` (also ``CustomModelFeatures``): what a model can do."""

    supports_transcriptions_submit: bool | None = None
    supports_transcriptions_transcribe: bool | None = None
    supports_endpoints: bool | None = None
    supports_transcriptions_on_speech_containers: bool | None = None
    supported_output_formats: list[OpenEnum[OutputFormatType]] | None = None


class BaseModelFeatures(SharedModelFeatures):
    """Wire ``BaseModelFeatures``: shared features plus the dataset kinds it adapts with."""

    supports_adaptations_with: list[OpenEnum[DatasetKind]] | None = None


class SharedModelProperties(ResponseModel):
    """The ``properties`` every model kind has: its deprecation dates."""

    deprecation_dates: ModelDeprecationDates | None = None


class BaseModelProperties(SharedModelProperties):
    """Wire ``BaseModelProperties``."""

    features: BaseModelFeatures | None = None
    charge_for_adaptation: bool | None = None


class CustomModelProperties(SharedModelProperties):
    """Wire ``CustomModelProperties`` (v3.0 payloads add ``email``)."""

    custom_model_weight_percent: int | None = None
    features: SharedModelFeatures | None = None
    error: EntityError | None = None
    email: str | None = None


class BaseModelLinks(ResponseModel):
    """Wire ``BaseModelLinks``."""

    manifest: str | None = None


class CustomModelLinks(ResponseModel):
    """Wire ``CustomModelLinks`` (v3.0 names the copy action ``copyTo``)."""

    copy_url: str | None = Field(default=None, alias="copy")
    copy_to: str | None = None
    files: str | None = None
    manifest: str | None = None


class SharedModel(ResponseModel):
    """Wire ``SharedModel``: the fields base and custom models have in common."""

    self_url: str | None = Field(default=None, alias="self")
    locale: str | None = None
    display_name: str | None = None
    description: str | None = None
    status: OpenEnum[Status] | None = None
    created_date_time: datetime | None = None
    last_action_date_time: datetime | None = None
    properties: SharedModelProperties | None = None

    @property
    def transcription_deprecation(self) -> datetime | None:
        """When transcriptions with this model stop working, if the service said."""
        dates = self.properties.deprecation_dates if self.properties else None
        return dates.transcription_date_time if dates else None


class BaseSpeechModel(SharedModel):
    """Wire ``BaseModel``: a Microsoft base model."""

    links: BaseModelLinks | None = None
    properties: BaseModelProperties | None = None


class CustomSpeechModel(SharedModel):
    """Wire ``CustomModel``: a model adapted from a base model (v3.0 shapes parse too)."""

    links: CustomModelLinks | None = None
    properties: CustomModelProperties | None = None
    base_model: EntityReference | None = None
    datasets: list[EntityReference] | None = None
    project: EntityReference | None = None
    custom_properties: dict[str, str] | None = None


class PaginatedBaseSpeechModels(Page[BaseSpeechModel]):
    """Wire ``PaginatedBaseModels``: a page of base models."""


class PaginatedCustomSpeechModels(Page[CustomSpeechModel]):
    """Wire ``PaginatedCustomModels``: a page of custom models."""


class ModelReference(EntityReferenceRequest):
    """Wire ``EntityReference`` as sent for a model: ``{"self": model_url}``."""
