"""Query parameters and media types, read strictly: every error names the parameter.

Unknown query parameters are ignored on purpose: the Functions host authenticates with
``?code=<function key>``, and proxies add their own. A known parameter given twice is an
error rather than a guess at which one was meant.
"""

from __future__ import annotations

import re
import uuid
from enum import StrEnum
from typing import TypeVar

from pydantic import ValidationError
from starlette.datastructures import QueryParams

from shared.http.problems import ApiProblem, invalid_parameter

E = TypeVar("E", bound=StrEnum)

# BCP 47 as Speech uses it: a language subtag plus optional script/region/variant subtags
# ("en-US", "zh-Hans-CN", "es-419"). Whether the locale is supported is the service's call.
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def one(query: QueryParams, name: str) -> str | None:
    """The single value of ``name``, stripped; None when absent or blank."""
    values = query.getlist(name)
    if len(values) > 1:
        raise invalid_parameter(name, f"'{name}' is given {len(values)} times; give it once.")
    if not values or not values[0].strip():
        return None
    return values[0].strip()


def choice(name: str, raw: str | None, options: type[E]) -> E | None:
    """``raw`` as a member of ``options``, matched without regard to case."""
    if raw is None:
        return None
    for member in options:
        if member.value.lower() == raw.lower():
            return member
    accepted = [member.value for member in options]
    raise invalid_parameter(
        name,
        f"'{name}' must be one of {', '.join(accepted)}; got '{raw[:40]}'.",
        accepted=accepted,
    )


def boolean(name: str, raw: str | None) -> bool | None:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``), any case."""
    if raw is None:
        return None
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise invalid_parameter(
        name, f"'{name}' must be true or false; got '{raw[:40]}'.", accepted=["true", "false"]
    )


def integer(name: str, raw: str | None, *, minimum: int, maximum: int) -> int | None:
    """A whole number from ``minimum`` to ``maximum``."""
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not minimum <= value <= maximum:
        raise invalid_parameter(
            name, f"'{name}' must be a whole number from {minimum} to {maximum}; got '{raw[:40]}'."
        )
    return value


def locale(name: str, raw: str) -> str:
    """A BCP 47 locale such as ``en-US``."""
    if not _LOCALE.match(raw):
        raise invalid_parameter(
            name, f"'{name}' must be a locale such as en-US or de-DE; got '{raw[:40]}'."
        )
    return raw


def guid(name: str, raw: str | None) -> str | None:
    """A GUID, as given."""
    if raw is None:
        return None
    try:
        uuid.UUID(raw)
    except ValueError:
        raise invalid_parameter(name, f"'{name}' must be a GUID; got '{raw[:40]}'.") from None
    return raw


def from_validation_error(exc: ValidationError, names: dict[str, str]) -> ApiProblem:
    """400 for the first error of a request model, named by its query parameter.

    ``names`` maps model field paths (``diarization.max_speakers``) to parameter names.
    Request models hide inputs in their errors, so no rejected value (a SAS URL) is echoed.
    """
    error = exc.errors(include_url=False, include_input=False)[0]
    path = ".".join(str(part) for part in error["loc"])
    # Model-level rules have no location; they concern the request as a whole.
    name = names.get(path, path) or "request"
    message = error["msg"].removeprefix("Value error, ")
    return invalid_parameter(name, f"'{name}' is invalid: {message}.")


def media_type(header: str | None) -> tuple[str, dict[str, str]]:
    """(media type, parameters) of a ``Content-Type`` value, lower case; ``("", {})`` if absent.

    Media types and parameter names are case-insensitive (RFC 9110); quoted values are
    unquoted. Parameter values are lower-cased too: the ones read here (``codecs``,
    ``samplerate``) are case-insensitive tokens.
    """
    if not header:
        return "", {}
    media, *items = header.split(";")
    params: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        if key.strip():
            params[key.strip().lower()] = value.strip().strip('"').lower()
    return media.strip().lower(), params


def unsupported_media_type(message: str, accepted: list[str]) -> ApiProblem:
    """415 saying what is accepted."""
    return ApiProblem(415, "UnsupportedMediaType", message, accepted=accepted)
