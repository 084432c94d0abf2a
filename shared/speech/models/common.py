"""Shapes shared by every Speech surface: references, errors, pages, and unit helpers.

Durations arrive in three encodings across the APIs: ISO 8601 strings (``"PT42S"``,
``"P2D"``), ticks of 100 ns, and milliseconds. The helpers here convert the first two into
the third so the models' ``*_ms`` properties agree whichever encoding a payload used.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Generic, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

from shared.speech.models._base import RequestModel, ResponseModel
from shared.speech.models.enums import DetailedErrorCode, ErrorCode, OpenEnum

#: A JSON number kept as the int or float it arrived as, so ``to_dict()`` writes ``100`` back
#: as ``100`` and ticks such as ``7600000.0`` as floats. Type checkers read it as ``float``.
Number = int | float

#: One tick is 100 ns, the unit of ``*InTicks`` and of short-audio ``Offset``/``Duration``.
TICKS_PER_MILLISECOND = 10_000

#: Limits the spec states for ``customProperties`` on every entity.
MAX_CUSTOM_PROPERTIES = 10
MAX_CUSTOM_PROPERTY_KEY_LENGTH = 64
MAX_CUSTOM_PROPERTY_VALUE_LENGTH = 256

#: ``maxSpeakers`` of batch and fast diarization: "Must be greater than 1 and less than 36".
MIN_SPEAKERS = 2
MAX_SPEAKERS = 35

# Years and months are left out on purpose: they have no fixed length, and the service only
# writes weeks, days, hours, minutes and seconds (".NET TimeSpan" durations).
_ISO_DURATION = re.compile(
    r"P(?!$)(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)


def parse_iso_duration(value: str) -> timedelta | None:
    """``"PT1.5S"`` -> 1.5 s; None when ``value`` is not a W/D/H/M/S ISO 8601 duration."""
    match = _ISO_DURATION.fullmatch(value.strip())
    if match is None:
        return None
    parts = {name: float(text) for name, text in match.groupdict().items() if text is not None}
    return timedelta(**parts)


def iso_duration_ms(value: str | None) -> int | None:
    """Whole milliseconds of an ISO 8601 duration, or None if absent or unparsable."""
    delta = parse_iso_duration(value) if value is not None else None
    return None if delta is None else round(delta.total_seconds() * 1000)


def ticks_to_ms(ticks: Number | None) -> int | None:
    """Whole milliseconds of a tick count (ticks may arrive as floats such as ``7600000.0``)."""
    return None if ticks is None else round(ticks / TICKS_PER_MILLISECOND)


# ---------------------------------------------------------------------------- responses


class EntityReference(ResponseModel):
    """Wire ``EntityReference``: ``{"self": url}`` pointing at another entity."""

    self_url: str | None = Field(default=None, alias="self")


class EntityError(ResponseModel):
    """Wire ``EntityError``: why an entity (transcription, model) is in a failed state."""

    code: str | None = None
    message: str | None = None


class InnerError(ResponseModel):
    """Wire ``InnerError``: a detailed code, nested to any depth under ``Error``."""

    code: OpenEnum[DetailedErrorCode] | None = None
    details: dict[str, str] | None = None
    message: str | None = None
    target: str | None = None
    inner_error: InnerError | None = None


class Error(ResponseModel):
    """Wire ``Error``: the body of every non-2xx batch/fast transcription response."""

    code: OpenEnum[ErrorCode] | None = None
    details: list[Error] | None = None
    message: str | None = None
    target: str | None = None
    inner_error: InnerError | None = None

    def innermost_code(self) -> str | None:
        """The code of the deepest ``innerError`` that has one, e.g. ``"InvalidLocale"``."""
        code: str | None = None
        inner = self.inner_error
        while inner is not None:
            if inner.code is not None:
                code = str(inner.code)
            inner = inner.inner_error
        return code


_ItemT = TypeVar("_ItemT", bound=ResponseModel)


class Page(ResponseModel, Generic[_ItemT]):
    """Wire ``Paginated*``: one page of ``values`` and the ``@nextLink`` to the next, if any."""

    values: list[_ItemT] | None = None
    next_link: str | None = Field(default=None, alias="@nextLink")


# ----------------------------------------------------------------------------- requests


def _require_http_url(value: str) -> str:
    # The value is deliberately not echoed: content URLs usually carry a SAS signature.
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL")
    return value


#: A string that must be an absolute http(s) URL. Kept as ``str``, not pydantic's URL type,
#: which would normalise it (trailing slash, re-encoding) and change a SAS URL we send.
HttpUrlStr = Annotated[str, AfterValidator(_require_http_url)]


def _check_custom_properties(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_CUSTOM_PROPERTIES:
        raise ValueError(
            f"customProperties allows at most {MAX_CUSTOM_PROPERTIES} entries, got {len(value)}"
        )
    for key, item in value.items():
        if len(key) > MAX_CUSTOM_PROPERTY_KEY_LENGTH:
            raise ValueError(
                f"customProperties key {key[:16]!r}... is longer than "
                f"{MAX_CUSTOM_PROPERTY_KEY_LENGTH} characters"
            )
        if len(item) > MAX_CUSTOM_PROPERTY_VALUE_LENGTH:
            raise ValueError(
                f"customProperties value of key {key!r} is longer than "
                f"{MAX_CUSTOM_PROPERTY_VALUE_LENGTH} characters"
            )
    return value


#: ``customProperties`` with the limits every entity's spec description states.
CustomProperties = Annotated[dict[str, str], AfterValidator(_check_custom_properties)]


class EntityReferenceRequest(RequestModel):
    """Wire ``EntityReference`` as sent: ``{"self": url}`` naming a dataset or model."""

    self_url: HttpUrlStr = Field(alias="self")
