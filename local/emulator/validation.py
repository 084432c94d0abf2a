"""Checking ``Transcriptions_Submit`` and ``Transcriptions_Update`` bodies like the service.

Limits come from the spec (2024-11-15 / 2025-10-15 ``Transcription`` definitions) and the
docs (batch-transcription-create.md). Every failure is a 400 ``InvalidRequest`` with the
``DetailedErrorCode`` that names the problem:

=====================================  =============================================
problem                                inner code
=====================================  =============================================
body is not a JSON object              InvalidRequestBodyFormat
displayName / locale missing or empty  InvalidParameterValue
locale not supported                   InvalidLocale
not exactly one audio source           OnlyOneOfUrlsOrContainerOrDataset
more than 1000 contentUrls             ExceededNumberOfRecordingsUris
a content URL is not absolute http(s)  InvalidRecordingsUri
timeToLiveHours missing / not 6..744   InvalidTimeToLive
channels not a set of 0 and 1          InvalidChannels
model unknown / for another locale     InvalidModel, InvalidBaseModel, ModelMismatch
model past its transcription date      ModelDeprecated
dataset (the emulator has none)        InvalidDataset
project (2025-10-15; none exist)       InvalidProject
anything else out of range             InvalidParameterValue
=====================================  =============================================

Properties the spec does not define (such as v3's ``timeToLive`` or ``diarizationEnabled``)
are ignored, as ASP.NET's JSON binding ignores unknown members; that is why Microsoft's
v3-named examples fail on the missing ``timeToLiveHours``.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from local.emulator.catalog import Catalog, canonical_locale
from local.emulator.errors import ApiError, bad_request

MAX_CONTENT_URLS = 1000
MIN_TTL_HOURS = 6
MAX_TTL_HOURS = 744  # 31 days
MAX_CUSTOM_PROPERTIES = 10
MAX_CUSTOM_KEY = 64
MAX_CUSTOM_VALUE = 256
MIN_SPEAKERS = 2
MAX_SPEAKERS = 35
#: Continuous language identification takes 2 to 10 candidates (spec description).
MIN_CANDIDATES = 2
MAX_CONTINUOUS_CANDIDATES = 10
PUNCTUATION_MODES = ("None", "Dictated", "Automatic", "DictatedAndAutomatic")
PROFANITY_MODES = ("None", "Removed", "Tags", "Masked")
LID_MODES = ("Continuous", "Single")
_MODEL_PATH = re.compile(r"/speechtotext(?:/v[^/]+)?/models/(?P<base>base/)?(?P<id>[^/?#]+)$")


@dataclass(frozen=True)
class ModelRef:
    """A model named in a request: a base model or a custom model, by id."""

    kind: str  # "base" | "custom"
    id: str


@dataclass
class JobSpec:
    """A validated submission: what the job does and how its response looks."""

    display_name: str
    locale: str
    description: str | None
    custom_properties: dict[str, str] | None
    model: ModelRef | None
    content_urls: list[str] | None
    container_url: str | None
    destination_url: str | None
    #: The ``properties`` object of responses, with the service's defaults filled in.
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def channels(self) -> list[int]:
        """Channels to transcribe (default 0 and 1)."""
        channels: list[int] = self.properties["channels"]
        return channels

    @property
    def diarization(self) -> tuple[bool, int | None]:
        """Whether diarization is on, and the maxSpeakers hint."""
        settings = self.properties.get("diarization") or {}
        return bool(settings.get("enabled", False)), settings.get("maxSpeakers")


def _invalid(message: str, code: str = "InvalidParameterValue") -> ApiError:
    return bad_request(code, message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _http_url(value: Any) -> bool:
    if not isinstance(value, str) or any(c.isspace() for c in value):
        return False
    parts = urlsplit(value)
    return parts.scheme.lower() in {"http", "https"} and bool(parts.hostname)


def _required_string(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        raise _invalid(f"The property '{name}' is required.")
    if not isinstance(value, str):
        raise _invalid(f"The property '{name}' must be a string.")
    if not value.strip():
        raise _invalid(f"The property '{name}' must not be empty.")
    return value


def _optional_string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise _invalid(f"The property '{name}' must be a string.")
    return value


def check_custom_properties(value: Any) -> dict[str, str] | None:
    """``customProperties``: up to 10 string entries, keys <= 64 and values <= 256 chars."""
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _invalid("customProperties must be an object whose values are strings.")
    if len(value) > MAX_CUSTOM_PROPERTIES:
        raise _invalid(f"customProperties allows at most {MAX_CUSTOM_PROPERTIES} entries.")
    for key, item in value.items():
        if not key or len(key) > MAX_CUSTOM_KEY:
            raise _invalid(f"customProperties keys must have 1 to {MAX_CUSTOM_KEY} characters.")
        if len(item) > MAX_CUSTOM_VALUE:
            raise _invalid(f"customProperties values may have at most {MAX_CUSTOM_VALUE} chars.")
    return dict(value)


def parse_model_url(value: Any) -> ModelRef | None:
    """The model an ``EntityReference.self`` points at (any host), or None if it is not one."""
    if not isinstance(value, str):
        return None
    match = _MODEL_PATH.search(urlsplit(value).path)
    if match is None:
        return None
    try:
        model_id = str(uuid.UUID(match.group("id")))
    except ValueError:
        return None
    return ModelRef("base" if match.group("base") else "custom", model_id)


class SubmissionValidator:
    """Validates submissions against the spec, the docs and the emulator's catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def _model(self, reference: Any, locale: str | None, now: dt.datetime) -> ModelRef:
        if not isinstance(reference, dict) or not isinstance(reference.get("self"), str):
            raise _invalid("model must be an object with a 'self' URL.", "InvalidModel")
        ref = parse_model_url(reference["self"])
        if ref is None:
            raise _invalid("model.self does not point at a model.", "InvalidModel")
        if ref.kind == "base":
            model = self._catalog.base_model(ref.id)
            if model is None:
                raise _invalid("The base model isn't valid for this operation.", "InvalidBaseModel")
        else:
            model = self._catalog.custom_model(ref.id)
            if model is None:
                raise _invalid(f"The model {ref.id} does not exist.", "InvalidModel")
            if model.status != "Succeeded":
                raise _invalid(
                    f"The model {ref.id} is not ready (status {model.status}).", "InvalidModel"
                )
        if locale is not None and model.locale != locale:
            raise _invalid(
                f"The model's locale {model.locale} does not match the locale {locale}.",
                "ModelMismatch",
            )
        if model.transcription_deprecated is not None and model.transcription_deprecated <= now:
            raise _invalid(
                f"The model {ref.id} can no longer be used for transcription (deprecated since "
                f"{model.transcription_deprecated:%Y-%m-%d}).",
                "ModelDeprecated",
            )
        return ref

    def submission(self, body: Any, *, api_version: str, now: dt.datetime) -> JobSpec:
        """A :class:`JobSpec` for a parsed Submit body, or the service's 400."""
        if not isinstance(body, dict):
            raise _invalid("The request body must be a JSON object.", "InvalidRequestBodyFormat")
        display_name = _required_string(body, "displayName")
        raw_locale = _required_string(body, "locale")
        locale = canonical_locale(raw_locale)
        if locale is None:
            raise _invalid(f"The locale '{raw_locale}' is not supported.", "InvalidLocale")
        description = _optional_string(body, "description")
        custom_properties = check_custom_properties(body.get("customProperties"))

        urls = body.get("contentUrls")
        container = body.get("contentContainerUrl")
        dataset = body.get("dataset")
        given = sum(
            1
            for present in (urls not in (None, []), container is not None, dataset is not None)
            if present
        )
        if given != 1:
            raise _invalid(
                "Exactly one of contentUrls, contentContainerUrl or dataset must be set.",
                "OnlyOneOfUrlsOrContainerOrDataset",
            )
        if urls not in (None, []):
            if not isinstance(urls, list):
                raise _invalid("contentUrls must be a list of URLs.", "InvalidRecordingsUri")
            if len(urls) > MAX_CONTENT_URLS:
                raise _invalid(
                    f"At most {MAX_CONTENT_URLS} contentUrls are allowed, got {len(urls)}.",
                    "ExceededNumberOfRecordingsUris",
                )
            for index, url in enumerate(urls):
                if not _http_url(url):
                    raise _invalid(
                        f"contentUrls[{index}] is not an absolute http(s) URL.",
                        "InvalidRecordingsUri",
                    )
        if container is not None and not _http_url(container):
            raise _invalid(
                "contentContainerUrl is not an absolute http(s) URL.", "InvalidRecordingsUri"
            )
        if dataset is not None:
            raise _invalid("The dataset does not exist.", "InvalidDataset")
        if api_version != "2024-11-15" and body.get("project") is not None:
            raise _invalid("The project does not exist.", "InvalidProject")

        model = None
        if body.get("model") is not None:
            model = self._model(body["model"], locale, now)

        properties = body.get("properties")
        if properties is None:
            properties = {}
        if not isinstance(properties, dict):
            raise _invalid("properties must be an object.")
        normalized = self._properties(properties, locale, now)
        destination = properties.get("destinationContainerUrl")
        if destination is not None and not _http_url(destination):
            raise _invalid("destinationContainerUrl is not an absolute http(s) URL.")
        return JobSpec(
            display_name=display_name,
            locale=locale,
            description=description,
            custom_properties=custom_properties,
            model=model,
            content_urls=list(urls) if urls not in (None, []) else None,
            container_url=container,
            destination_url=destination,
            properties=normalized,
        )

    def _properties(self, raw: dict[str, Any], locale: str, now: dt.datetime) -> dict[str, Any]:
        ttl = raw.get("timeToLiveHours")
        if not (isinstance(ttl, int) and not isinstance(ttl, bool)) or not (
            MIN_TTL_HOURS <= ttl <= MAX_TTL_HOURS
        ):
            raise _invalid(
                f"properties.timeToLiveHours is required and must be an integer from "
                f"{MIN_TTL_HOURS} to {MAX_TTL_HOURS}.",
                "InvalidTimeToLive",
            )
        result: dict[str, Any] = {}
        for name in ("wordLevelTimestampsEnabled", "displayFormWordLevelTimestampsEnabled"):
            value = raw.get(name, False)
            if not isinstance(value, bool):
                raise _invalid(f"properties.{name} must be true or false.")
            result[name] = value
        channels = raw.get("channels", [0, 1])
        if (
            not isinstance(channels, list)
            or not channels
            or not all(_is_int(c) and c in (0, 1) for c in channels)
            or len(set(channels)) != len(channels)
        ):
            raise _invalid(
                "properties.channels must list channel 0, channel 1 or both, once each.",
                "InvalidChannels",
            )
        result["channels"] = channels
        for name, allowed, default in (
            ("punctuationMode", PUNCTUATION_MODES, "DictatedAndAutomatic"),
            ("profanityFilterMode", PROFANITY_MODES, "Masked"),
        ):
            value = raw.get(name, default)
            if value not in allowed:
                raise _invalid(f"properties.{name} must be one of {', '.join(allowed)}.")
            result[name] = value
        result["timeToLiveHours"] = ttl
        diarization = raw.get("diarization")
        if diarization is not None:
            result["diarization"] = self._diarization(diarization)
        lid = raw.get("languageIdentification")
        if lid is not None:
            result["languageIdentification"] = self._language_identification(lid, now)
        return result

    @staticmethod
    def _diarization(raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise _invalid("properties.diarization must be an object.")
        result: dict[str, Any] = {}
        enabled = raw.get("enabled", False)
        if not isinstance(enabled, bool):
            raise _invalid("properties.diarization.enabled must be true or false.")
        result["enabled"] = enabled
        if raw.get("maxSpeakers") is not None:
            speakers = raw["maxSpeakers"]
            if not _is_int(speakers) or not MIN_SPEAKERS <= speakers <= MAX_SPEAKERS:
                raise _invalid(
                    f"properties.diarization.maxSpeakers must be from {MIN_SPEAKERS} to "
                    f"{MAX_SPEAKERS}."
                )
            result["maxSpeakers"] = speakers
        return result

    def _language_identification(self, raw: Any, now: dt.datetime) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise _invalid("properties.languageIdentification must be an object.")
        mode = raw.get("mode", "Continuous")
        if mode not in LID_MODES:
            raise _invalid("languageIdentification.mode must be Continuous or Single.")
        candidates = raw.get("candidateLocales")
        if not isinstance(candidates, list) or not all(isinstance(c, str) for c in candidates):
            raise _invalid("languageIdentification.candidateLocales must be a list of locales.")
        if len(candidates) < MIN_CANDIDATES:
            raise _invalid(
                f"languageIdentification needs at least {MIN_CANDIDATES} candidate locales."
            )
        if mode == "Continuous" and len(candidates) > MAX_CONTINUOUS_CANDIDATES:
            raise _invalid(
                f"Continuous language identification allows at most "
                f"{MAX_CONTINUOUS_CANDIDATES} candidate locales."
            )
        canonical = []
        for candidate in candidates:
            locale = canonical_locale(candidate)
            if locale is None:
                raise _invalid(f"The locale '{candidate}' is not supported.", "InvalidLocale")
            canonical.append(locale)
        if len(set(canonical)) != len(canonical):
            raise _invalid("languageIdentification.candidateLocales lists a locale twice.")
        result: dict[str, Any] = {"candidateLocales": candidates, "mode": mode}
        mapping = raw.get("speechModelMapping")
        if mapping is not None:
            if not isinstance(mapping, dict):
                raise _invalid("languageIdentification.speechModelMapping must be an object.")
            for key, reference in mapping.items():
                locale = canonical_locale(key)
                if locale not in canonical:
                    raise _invalid(
                        f"speechModelMapping key '{key}' is not one of the candidate locales."
                    )
                self._model(reference, locale, now)
            result["speechModelMapping"] = mapping
        return result


def update_fields(body: Any, *, merge_patch: bool) -> dict[str, Any]:
    """The changes of a ``Transcriptions_Update`` body (displayName/description/customProperties).

    ``application/merge-patch+json`` follows RFC 7396: ``null`` removes a custom property and
    the object is merged. With ``application/json`` the given ``customProperties`` replace
    the old ones. Other properties are ignored.
    """
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.", "InvalidRequestBodyFormat")
    changes: dict[str, Any] = {}
    if "displayName" in body:
        name = body["displayName"]
        if not isinstance(name, str) or not name.strip():
            raise _invalid("displayName must be a non-empty string.")
        changes["displayName"] = name
    if "description" in body:
        description = body["description"]
        if description is not None and not isinstance(description, str):
            raise _invalid("description must be a string.")
        changes["description"] = description
    if "customProperties" in body:
        value = body["customProperties"]
        if merge_patch and isinstance(value, dict):
            changes["customPropertiesPatch"] = value
        else:
            changes["customProperties"] = check_custom_properties(value)
    return changes
