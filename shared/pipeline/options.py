"""Transcription options per blob or manifest, over the app's defaults, and the job request.

A blob carries its options as metadata (``locale=de-DE``, ``diarization=true``,
``maxspeakers=3``, ...). Azure hands metadata names over lower-cased, and people write
them in several ways, so names are matched case-insensitively with underscores ignored:
``max_speakers``, ``maxSpeakers`` and ``maxspeakers`` are the same option. Unknown
metadata is left alone (blobs carry other metadata too). A bad value raises
:class:`OptionsError` naming the metadata key exactly as it was set.

A manifest carries the same options as JSON fields (camelCase); there pydantic's own
error locations name the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel, to_snake

from shared.speech.endpoints import validate_service_url
from shared.speech.models import (
    MAX_SPEAKERS,
    MAX_TIME_TO_LIVE_HOURS,
    MIN_SPEAKERS,
    MIN_TIME_TO_LIVE_HOURS,
    DiarizationSettings,
    LanguageIdentificationMode,
    LanguageIdentificationSettings,
    ModelReference,
    ProfanityFilterMode,
    PunctuationMode,
    TranscriptionRequest,
    TranscriptionRequestProperties,
)

if TYPE_CHECKING:
    from shared.settings import AppSettings

_LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")
ALLOWED_CHANNELS = (0, 1)


class OptionsError(ValueError):
    """An option has a bad value; ``key`` is the metadata key or manifest field to fix."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.reason = message


def _enum_value(enum: type[ProfanityFilterMode] | type[PunctuationMode]) -> Any:
    def parse(value: Any) -> Any:
        if isinstance(value, str):
            for member in enum:
                if member.value.lower() == value.strip().lower():
                    return member
            accepted = ", ".join(m.value for m in enum)
            raise ValueError(f"must be one of {accepted}")
        return value

    return parse


def _channels(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip().strip("[]")
        try:
            value = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise ValueError("must be 0, 1 or 0,1") from None
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    return value


def _check_channels(value: list[int] | None) -> list[int] | None:
    if value is None:
        return None
    if not value or any(channel not in ALLOWED_CHANNELS for channel in value):
        raise ValueError("must be 0, 1 or 0,1")
    return sorted(set(value))


def _check_locale(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not _LOCALE.match(value):
        raise ValueError("must be a locale such as en-US or de-DE")
    return value


def _check_model(value: str | None) -> str | None:
    if value is None:
        return None
    validate_service_url(value.strip(), what="model")
    return value.strip()


class OptionOverrides(BaseModel):
    """Options a blob or manifest may set; None means "the app's default"."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        hide_input_in_errors=True,
    )

    locale: Annotated[str | None, AfterValidator(_check_locale)] = None
    diarization: bool | None = None
    max_speakers: int | None = Field(default=None, ge=MIN_SPEAKERS, le=MAX_SPEAKERS)
    word_timestamps: bool | None = None
    profanity: Annotated[
        ProfanityFilterMode | None, BeforeValidator(_enum_value(ProfanityFilterMode))
    ] = None
    punctuation: Annotated[
        PunctuationMode | None, BeforeValidator(_enum_value(PunctuationMode))
    ] = None
    channels: Annotated[
        list[int] | None, BeforeValidator(_channels), AfterValidator(_check_channels)
    ] = None
    model: Annotated[str | None, AfterValidator(_check_model)] = None
    time_to_live_hours: int | None = Field(
        default=None, ge=MIN_TIME_TO_LIVE_HOURS, le=MAX_TIME_TO_LIVE_HOURS
    )


class TranscriptionOptions(BaseModel):
    """The options a job is submitted with: overrides applied to the app's defaults."""

    model_config = ConfigDict(frozen=True)

    locale: str
    diarization: bool
    max_speakers: int | None
    word_timestamps: bool
    profanity: ProfanityFilterMode
    punctuation: PunctuationMode
    channels: list[int] | None
    model: str | None
    time_to_live_hours: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (camelCase), as the ledger and the status API show it."""
        values = self.model_dump(mode="json", exclude_none=True)
        return {to_camel(key): value for key, value in values.items()}


#: Metadata names (lower-case, underscores removed) -> option.
METADATA_NAMES: dict[str, str] = {
    "locale": "locale",
    "language": "locale",
    "diarization": "diarization",
    "diarize": "diarization",
    "maxspeakers": "max_speakers",
    "speakers": "max_speakers",
    "wordtimestamps": "word_timestamps",
    "wordleveltimestamps": "word_timestamps",
    "profanity": "profanity",
    "profanityfilter": "profanity",
    "profanityfiltermode": "profanity",
    "punctuation": "punctuation",
    "punctuationmode": "punctuation",
    "channels": "channels",
    "model": "model",
    "timetolivehours": "time_to_live_hours",
}


def first_error(exc: ValidationError, names: Mapping[str, str] | None = None) -> OptionsError:
    """The first problem of ``exc`` as an :class:`OptionsError` naming the key to fix.

    ``names`` maps field names to how the user spelled them; otherwise the location is
    written the way a JSON document is addressed (``files[3]``, ``languageIdentification.
    candidateLocales``).
    """
    error = exc.errors(include_url=False, include_input=False)[0]
    loc = error["loc"]
    message = error["msg"].removeprefix("Value error, ")
    if names and loc and str(loc[0]) in names:
        return OptionsError(names[str(loc[0])], message)
    return OptionsError(format_location(loc) or "(document)", message)


def format_location(loc: tuple[int | str, ...]) -> str:
    """``("files", 3)`` -> ``files[3]``; ``("a", "b")`` -> ``a.b``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def resolve_options(
    overrides: OptionOverrides,
    settings: AppSettings,
    *,
    names: Mapping[str, str] | None = None,
) -> TranscriptionOptions:
    """``overrides`` over the app's defaults; raises :class:`OptionsError` on a conflict."""

    def name(field: str) -> str:
        return (names or {}).get(field, to_camel(field))

    diarization = overrides.diarization
    if overrides.max_speakers is not None:
        if diarization is False:
            raise OptionsError(name("max_speakers"), "needs diarization enabled")
        diarization = True
    if diarization is None:
        diarization = settings.default_diarization
    return TranscriptionOptions(
        locale=overrides.locale or settings.default_locale,
        diarization=diarization,
        max_speakers=(overrides.max_speakers or settings.default_max_speakers)
        if diarization
        else None,
        word_timestamps=(
            overrides.word_timestamps
            if overrides.word_timestamps is not None
            else settings.default_word_timestamps
        ),
        profanity=overrides.profanity or settings.default_profanity,
        punctuation=overrides.punctuation or settings.default_punctuation,
        channels=overrides.channels,
        model=overrides.model or settings.default_model,
        time_to_live_hours=overrides.time_to_live_hours or settings.time_to_live_hours,
    )


def options_from_metadata(
    metadata: Mapping[str, str], settings: AppSettings
) -> TranscriptionOptions:
    """The options a blob's metadata asks for; :class:`OptionsError` names a bad key."""
    values: dict[str, str] = {}
    names: dict[str, str] = {}
    for key, value in metadata.items():
        option = METADATA_NAMES.get(key.lower().replace("_", ""))
        if option is None:
            continue
        if option in names:
            raise OptionsError(key, f"sets the same option as {names[option]}")
        values[option] = value
        names[option] = key
    try:
        overrides = OptionOverrides.model_validate(values)
    except ValidationError as exc:
        raise first_error(exc, names) from None
    return resolve_options(overrides, settings, names=names)


def build_request(
    options: TranscriptionOptions,
    *,
    display_name: str,
    content_urls: list[str],
    custom_properties: Mapping[str, str] | None = None,
    candidate_locales: list[str] | None = None,
    identification_mode: LanguageIdentificationMode = LanguageIdentificationMode.CONTINUOUS,
) -> TranscriptionRequest:
    """The ``transcriptions:submit`` body for ``options`` and the given audio URLs."""
    identification = None
    if candidate_locales:
        identification = LanguageIdentificationSettings(
            mode=identification_mode, candidate_locales=candidate_locales
        )
    return TranscriptionRequest(
        display_name=display_name,
        locale=options.locale,
        content_urls=content_urls,
        model=ModelReference(self_url=options.model) if options.model else None,
        custom_properties=dict(custom_properties) if custom_properties else None,
        properties=TranscriptionRequestProperties(
            word_level_timestamps_enabled=options.word_timestamps,
            display_form_word_level_timestamps_enabled=options.word_timestamps,
            channels=options.channels,
            punctuation_mode=options.punctuation,
            profanity_filter_mode=options.profanity,
            time_to_live_hours=options.time_to_live_hours,
            diarization=(
                DiarizationSettings(enabled=True, max_speakers=options.max_speakers)
                if options.diarization
                else None
            ),
            language_identification=identification,
        ),
    )


def options_from_record(
    record: Mapping[str, Any],
) -> tuple[TranscriptionOptions, list[str] | None, LanguageIdentificationMode]:
    """Options as the ledger stores them (``to_dict`` plus ``languageIdentification``).

    Returns the options, the candidate locales (None without language identification) and
    the identification mode. Raises ``ValidationError`` if they cannot be used any more.
    """
    raw: dict[str, Any] = dict(record)
    identification = raw.pop("languageIdentification", None) or {}
    values: dict[str, Any] = {"max_speakers": None, "channels": None, "model": None}
    values.update({to_snake(key): value for key, value in raw.items()})
    options = TranscriptionOptions.model_validate(values)
    candidates = identification.get("candidateLocales") or None
    mode = LanguageIdentificationMode(
        identification.get("mode") or LanguageIdentificationMode.CONTINUOUS
    )
    return options, candidates, mode
