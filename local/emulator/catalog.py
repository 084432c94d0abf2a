"""What the emulated resource offers: locales, base models and configured custom models.

Locales: ``Submit`` is a realistic subset of the batch transcription languages; ``Transcribe``
is exactly the fast transcription list the docs give ("The supported locales that you can
specify are: de-DE, en-IN, en-US, es-ES, es-MX, fr-FR, hi-IN, it-IT, ja-JP, ko-KR, pt-BR,
and zh-CN", fast-transcription-create.md). Short audio accepts the ``Submit`` locales.

Base models follow ``get_base_model.json``/``get_english_base_models.json``; ids are fixed
so tests and clients can refer to them. One en-US model is the docs' Whisper model with its
documented deprecation dates (transcription until 2026-04-15), which lets clients see
``ModelDeprecated``.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.emulator.settings import SettingsError

SUBMIT_LOCALES: tuple[str, ...] = (
    "ar-EG", "ar-SA", "ca-ES", "cs-CZ", "da-DK", "de-AT", "de-CH", "de-DE", "el-GR",
    "en-AU", "en-CA", "en-GB", "en-IE", "en-IN", "en-NZ", "en-US", "es-ES", "es-MX",
    "fi-FI", "fr-CA", "fr-CH", "fr-FR", "he-IL", "hi-IN", "hu-HU", "it-IT", "ja-JP",
    "ko-KR", "nb-NO", "nl-NL", "pl-PL", "pt-BR", "pt-PT", "ro-RO", "ru-RU", "sv-SE",
    "th-TH", "tr-TR", "uk-UA", "vi-VN", "zh-CN", "zh-HK", "zh-TW",
)  # fmt: skip
TRANSCRIBE_LOCALES: tuple[str, ...] = (
    "de-DE", "en-IN", "en-US", "es-ES", "es-MX", "fr-FR", "hi-IN", "it-IT", "ja-JP",
    "ko-KR", "pt-BR", "zh-CN",
)  # fmt: skip
_LOCALE_LOOKUP = {locale.lower(): locale for locale in SUBMIT_LOCALES}


def canonical_locale(value: str) -> str | None:
    """The supported locale ``value`` names (case-insensitive), or None."""
    return _LOCALE_LOOKUP.get(value.strip().lower())


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Model:
    """A base or custom model; ``document`` holds the service fields except links/self."""

    id: str
    locale: str
    display_name: str
    created: dt.datetime
    last_action: dt.datetime
    status: str
    transcription_deprecated: dt.datetime | None
    document: dict[str, Any] = field(compare=False)

    def filter_item(self) -> dict[str, Any]:
        """The properties the models' ``filter`` supports."""
        return {
            "displayName": self.display_name,
            "description": self.document.get("description"),
            "createdDateTime": self.created,
            "lastActionDateTime": self.last_action,
            "status": self.status,
            "locale": self.locale,
        }


_BASE_FEATURES = {
    "supportsAdaptationsWith": ["Language", "Acoustic"],
    "supportsTranscriptionsSubmit": True,
    "supportsEndpoints": True,
    "supportsTranscriptionsOnSpeechContainers": True,
    "supportedOutputFormats": ["Display", "Lexical"],
}


def _base_model(
    model_id: str,
    locale: str,
    name: str,
    created: str,
    adaptation_until: str,
    transcription_until: str,
    *,
    description: str | None = None,
    features: dict[str, Any] | None = None,
) -> Model:
    document: dict[str, Any] = {
        "displayName": name,
        "locale": locale,
        "createdDateTime": created,
        "lastActionDateTime": created,
        "status": "Succeeded",
        "properties": {
            "deprecationDates": {
                "adaptationDateTime": adaptation_until,
                "transcriptionDateTime": transcription_until,
            },
            "features": features
            or {
                **_BASE_FEATURES,
                "supportsTranscriptionsTranscribe": locale in TRANSCRIBE_LOCALES,
            },
            "chargeForAdaptation": True,
        },
    }
    if description is not None:
        document["description"] = description
    return Model(
        id=model_id,
        locale=locale,
        display_name=name,
        created=_utc(created),
        last_action=_utc(created),
        status="Succeeded",
        transcription_deprecated=_utc(transcription_until),
        document=document,
    )


def _fixed_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"speech-emulator:base-model:{name}"))


def _base_models() -> list[Model]:
    models = [
        # The docs' Whisper model (batch-transcription-create.md), display-only output.
        _base_model(
            "69adf293-9664-4040-932b-02ed16332e00",
            "en-US",
            "20240228 Whisper Large V2",
            "2024-02-29T15:46:31Z",
            "2025-04-15T00:00:00Z",
            "2026-04-15T00:00:00Z",
            description="OpenAI Whisper Model in Azure AI Speech (Whisper v2-large)",
            features={
                "supportsAdaptationsWith": ["Acoustic"],
                "supportsTranscriptionsSubmit": True,
                "supportsTranscriptionsTranscribe": False,
                "supportsEndpoints": False,
                "supportsTranscriptionsOnSpeechContainers": False,
                "supportedOutputFormats": ["Display"],
            },
        ),
    ]
    for locale in ("en-US", "de-DE", "fr-FR", "es-ES", "zh-CN"):
        models.append(
            _base_model(
                _fixed_id(f"{locale}-20241218"),
                locale,
                f"{locale} 20241218",
                "2024-12-18T10:00:00Z",
                "2027-01-15T00:00:00Z",
                "2028-01-15T00:00:00Z",
            )
        )
        models.append(
            _base_model(
                _fixed_id(f"{locale}-20250815"),
                locale,
                f"{locale} 20250815",
                "2025-08-15T10:00:00Z",
                "2027-08-15T00:00:00Z",
                "2028-08-15T00:00:00Z",
            )
        )
    return sorted(models, key=lambda m: (m.created, m.id))


BASE_MODELS: tuple[Model, ...] = tuple(_base_models())


def _entity_id(entity: dict[str, Any]) -> str | None:
    """The UUID at the end of an entity's ``self`` URL (or its v2-style ``id``)."""
    self_url = entity.get("self")
    candidate: Any = entity.get("id")
    if isinstance(self_url, str):
        candidate = self_url.partition("?")[0].rstrip("/").rpartition("/")[2]
    if not isinstance(candidate, str):
        return None
    try:
        return str(uuid.UUID(candidate))
    except ValueError:
        return None


def _custom_model(raw: Any, index: int, source: Path) -> Model:
    where = f"EMULATOR_CUSTOM_MODELS: {source}: model #{index}"
    if not isinstance(raw, dict):
        raise SettingsError(f"{where} is not a JSON object")
    model_id = _entity_id(raw)
    if model_id is None:
        raise SettingsError(f"{where} has no UUID in 'self' (or 'id')")
    for name in ("displayName", "locale"):
        if not isinstance(raw.get(name), str) or not raw[name]:
            raise SettingsError(f"{where} needs a non-empty string '{name}'")
    locale = canonical_locale(raw["locale"])
    if locale is None:
        raise SettingsError(f"{where}: locale {raw['locale']!r} is not supported")
    try:
        created = _utc(str(raw.get("createdDateTime", "2024-01-01T00:00:00Z")))
        last_action = _utc(str(raw.get("lastActionDateTime", created.isoformat())))
        properties = raw.get("properties") or {}
        dates = properties.get("deprecationDates") or {}
        until = dates.get("transcriptionDateTime")
        transcription_until = _utc(until) if isinstance(until, str) else None
    except (ValueError, AttributeError) as exc:
        raise SettingsError(f"{where}: bad date: {exc}") from None
    status = raw.get("status", "Succeeded")
    if status not in {"NotStarted", "Running", "Succeeded", "Failed"}:
        raise SettingsError(f"{where}: unknown status {status!r}")
    # Keep only the 2024-11-15 CustomModel fields; v3.0 names are mapped or dropped.
    document: dict[str, Any] = {
        "displayName": raw["displayName"],
        "locale": locale,
        "createdDateTime": raw.get("createdDateTime", "2024-01-01T00:00:00Z"),
        "lastActionDateTime": raw.get("lastActionDateTime", raw.get("createdDateTime")),
        "status": status,
    }
    for name in ("description", "customProperties"):
        if name in raw:
            document[name] = raw[name]
    custom_properties: dict[str, Any] = {}
    if transcription_until is not None:
        custom_properties["deprecationDates"] = {"transcriptionDateTime": until}
    for name in ("customModelWeightPercent", "features", "error"):
        if name in properties:
            custom_properties[name] = properties[name]
    if custom_properties:
        document["properties"] = custom_properties
    base = raw.get("baseModel")
    if isinstance(base, dict) and _entity_id(base):
        document["baseModelId"] = _entity_id(base)
    datasets = raw.get("datasets")
    if isinstance(datasets, list):
        document["datasetIds"] = [
            i for i in (_entity_id(d) for d in datasets if isinstance(d, dict)) if i
        ]
    return Model(
        id=model_id,
        locale=locale,
        display_name=raw["displayName"],
        created=created,
        last_action=last_action,
        status=status,
        transcription_deprecated=transcription_until,
        document=document,
    )


def load_custom_models(path: Path | None) -> tuple[Model, ...]:
    """The models in ``EMULATOR_CUSTOM_MODELS``: a JSON list, or ``{"values": [...]}``."""
    if path is None:
        return ()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SettingsError(f"EMULATOR_CUSTOM_MODELS: cannot read {path}: {exc}") from None
    if isinstance(data, dict):
        data = data.get("values", [data])
    if not isinstance(data, list):
        raise SettingsError(f"EMULATOR_CUSTOM_MODELS: {path} must hold a list of models")
    models = [_custom_model(raw, i, path) for i, raw in enumerate(data)]
    ids = [m.id for m in models]
    if len(set(ids)) != len(ids):
        raise SettingsError(f"EMULATOR_CUSTOM_MODELS: {path} lists a model id twice")
    return tuple(sorted(models, key=lambda m: (m.created, m.id)))


class Catalog:
    """Base models, custom models and locales of the emulated resource."""

    def __init__(self, custom_models: tuple[Model, ...]) -> None:
        self.base_models = BASE_MODELS
        self.custom_models = custom_models
        self._base = {m.id: m for m in BASE_MODELS}
        self._custom = {m.id: m for m in custom_models}

    def base_model(self, model_id: str) -> Model | None:
        """The base model with this id (any case), or None."""
        return self._base.get(model_id.lower())

    def custom_model(self, model_id: str) -> Model | None:
        """The configured custom model with this id (any case), or None."""
        return self._custom.get(model_id.lower())


def model_document(
    model: Model, *, base_url: str, api_version: str, custom: bool
) -> dict[str, Any]:
    """A ``BaseModel`` or ``CustomModel`` response body with this emulator's URLs."""
    query = f"?api-version={api_version}"
    root = f"{base_url}/speechtotext/models"
    document = {k: v for k, v in model.document.items() if k not in {"baseModelId", "datasetIds"}}
    if custom:
        self_url = f"{root}/{model.id}"
        document["links"] = {
            "manifest": f"{self_url}/manifest{query}",
            "copy": f"{self_url}:copy{query}",
            "files": f"{self_url}/files{query}",
        }
        if "baseModelId" in model.document:
            document["baseModel"] = {"self": f"{root}/base/{model.document['baseModelId']}{query}"}
        if "datasetIds" in model.document:
            document["datasets"] = [
                {"self": f"{base_url}/speechtotext/datasets/{d}{query}"}
                for d in model.document["datasetIds"]
            ]
    else:
        self_url = f"{root}/base/{model.id}"
        document["links"] = {"manifest": f"{self_url}/manifest{query}"}
    return {"self": f"{self_url}{query}", **document}
