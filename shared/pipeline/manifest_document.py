"""The manifest document: what a bulk request may say, validated field by field.

A manifest (uploaded to the requests container) looks like::

    {
      "files": ["calls/2026-11-20/a.wav", "calls/2026-11-20/b.mp3"],
      "prefix": "calls/2026-11-21/",
      "container": "audio-input",
      "destinationPrefix": "batches/2026-11-21/",
      "locale": "en-US", "diarization": true, "maxSpeakers": 3,
      "languageIdentification": {"candidateLocales": ["en-US", "de-DE"], "mode": "Continuous"},
      "mode": "auto"
    }

``mode`` (``batch``, ``fast``, ``auto``; default the app's ``ROUTING``) routes every file as
a blob's ``mode`` metadata does (:mod:`~.routing`).

:func:`parse_manifest` raises :class:`ManifestError` naming the bad field (``files[3]``,
``maxSpeakers``) so the report says what to fix.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from shared.pipeline.options import OptionOverrides, first_error
from shared.settings import Routing
from shared.speech.models import (
    MAX_CONTINUOUS_CANDIDATE_LOCALES,
    MIN_CANDIDATE_LOCALES,
    LanguageIdentificationMode,
)

_CONTAINER = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")


def _blob_path(value: str) -> str:
    value = value.strip().lstrip("/")
    if not value:
        raise ValueError("must be a blob path, not empty")
    if len(value) > 1024:
        raise ValueError("is longer than 1024 characters (the blob name limit)")
    return value


def _prefix(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lstrip("/")
    if len(value) > 1024:
        raise ValueError("is longer than 1024 characters (the blob name limit)")
    return value


def _destination(value: str | None) -> str | None:
    value = _prefix(value)
    if not value:
        return None
    return value if value.endswith("/") else value + "/"


def _container(value: str | None) -> str | None:
    if value is not None and not _CONTAINER.match(value):
        raise ValueError("must be a container name: 3-63 lower-case letters, digits, hyphens")
    return value


def _mode(value: Any) -> Any:
    if isinstance(value, str):
        for member in LanguageIdentificationMode:
            if member.value.lower() == value.strip().lower():
                return member
        raise ValueError("must be Continuous or Single")
    return value


def _locale(value: str) -> str:
    value = value.strip()
    if not _LOCALE.match(value):
        raise ValueError("must be a locale such as en-US or de-DE")
    return value


def _routing(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return Routing(value.strip().lower())
        except ValueError:
            raise ValueError("must be fast, batch or auto") from None
    return value


class LanguageIdentification(BaseModel):
    """``languageIdentification`` of a manifest."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    candidate_locales: list[Annotated[str, AfterValidator(_locale)]] = Field(
        min_length=MIN_CANDIDATE_LOCALES
    )
    mode: Annotated[LanguageIdentificationMode, BeforeValidator(_mode)] = (
        LanguageIdentificationMode.CONTINUOUS
    )

    @model_validator(mode="after")
    def _continuous_limit(self) -> Self:
        if (
            self.mode is LanguageIdentificationMode.CONTINUOUS
            and len(self.candidate_locales) > MAX_CONTINUOUS_CANDIDATE_LOCALES
        ):
            raise ValueError(
                f"candidateLocales allows at most {MAX_CONTINUOUS_CANDIDATE_LOCALES} locales "
                "in Continuous mode"
            )
        return self


class Manifest(OptionOverrides):
    """A bulk request: which files, where the outputs go, and the transcription options."""

    files: list[Annotated[str, AfterValidator(_blob_path)]] | None = None
    prefix: Annotated[str | None, AfterValidator(_prefix)] = None
    container: Annotated[str | None, AfterValidator(_container)] = None
    destination_prefix: Annotated[str | None, AfterValidator(_destination)] = None
    language_identification: LanguageIdentification | None = None
    #: ``batch``, ``fast`` or ``auto`` for every file of the manifest (default: ``ROUTING``).
    mode: Annotated[Routing | None, BeforeValidator(_routing)] = None

    @model_validator(mode="after")
    def _something_to_do(self) -> Self:
        if not self.files and self.prefix is None:
            raise ValueError('give "files" (a list of blob paths) and/or "prefix"')
        return self


class ManifestError(ValueError):
    """The manifest is unusable; ``field`` names what to fix."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.reason = message


def parse_manifest(data: bytes) -> Manifest:
    """Parse and validate a manifest; :class:`ManifestError` names the bad field."""
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ManifestError("(document)", "is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(
            "(document)", f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(document, dict):
        raise ManifestError("(document)", "must be a JSON object")
    try:
        return Manifest.model_validate(document)
    except ValidationError as exc:
        error = first_error(exc)
        raise ManifestError(error.key, error.reason) from None
