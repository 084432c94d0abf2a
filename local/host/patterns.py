"""The three small languages of trigger bindings: route templates, NCRONTAB, blob paths.

Each is parsed once at start-up, so a malformed one disables its function with a clear
reason (as the real host does at indexing) instead of failing at every request or tick.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from croniter import croniter  # type: ignore[import-untyped]

# ASP.NET route constraints the Functions host documents for HTTP routes. Others (regex,
# min, length, ...) are accepted and not enforced; the host logs that once per route.
_CONSTRAINTS: Mapping[str, str] = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "bool": r"(?:true|false)",
    "alpha": r"[A-Za-z]+",
    "guid": r"\{?[0-9A-Fa-f]{8}-?(?:[0-9A-Fa-f]{4}-?){3}[0-9A-Fa-f]{12}\}?",
    "decimal": r"-?\d+(?:\.\d+)?",
    "double": r"-?\d+(?:\.\d+)?",
    "float": r"-?\d+(?:\.\d+)?",
}
_TOKEN = re.compile(r"\{([^{}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


@dataclass(frozen=True)
class RouteTemplate:
    """An HTTP route template: ``items/{id:int}``, ``files/{*path}``, ``a/{b?}``.

    Matching ignores case and a trailing slash, as ASP.NET routing does. A catch-all
    (``{*name}``, last segment only) takes the rest of the path, slashes included, and
    may be empty; ``{name?}`` may be left out when it is a whole segment.
    """

    template: str
    regex: re.Pattern[str]
    #: Regex group -> route parameter name (group names must be identifiers).
    groups: Mapping[str, str]
    #: Constraints that are not enforced (reported once at start-up).
    unenforced: tuple[str, ...]
    literal_segments: int
    segments: int
    optional: int
    catch_all: bool

    @classmethod
    def parse(cls, template: str) -> RouteTemplate:
        """Parse ``template``; raises ``ValueError`` naming what is wrong."""
        text = template.strip("/")
        segments = text.split("/") if text else []
        pattern: list[str] = []
        groups: dict[str, str] = {}
        unenforced: list[str] = []
        literals = optional = 0
        catch_all = False

        def group(spec: str) -> tuple[str, str, bool]:
            """Group name, regex and optionality of a ``{...}`` token."""
            is_optional = spec.endswith("?")
            name, _, constraint = spec.rstrip("?").partition(":")
            if not _NAME.fullmatch(name):
                raise ValueError(f"route {template!r}: {{{spec}}} is not a parameter name")
            regex = r"[^/]+"
            if constraint:
                known = _CONSTRAINTS.get(constraint.lower())
                if known is None:
                    unenforced.append(f"{{{spec}}}")
                else:
                    regex = known
            key = f"p{len(groups)}"
            groups[key] = name
            return key, regex, is_optional

        for index, segment in enumerate(segments):
            if segment.startswith("{*") and segment.endswith("}"):
                if index != len(segments) - 1:
                    raise ValueError(f"route {template!r}: a catch-all must be the last segment")
                key, _, _ = group(segment[2:-1].rstrip("?").partition(":")[0])
                pattern.append(rf"(?:/(?P<{key}>.*))?")
                catch_all = True
                continue
            tokens = list(_TOKEN.finditer(segment))
            if not tokens:
                if "{" in segment or "}" in segment:
                    raise ValueError(f"route {template!r}: unbalanced braces in {segment!r}")
                pattern.append("/" + re.escape(segment))
                literals += 1
                continue
            whole = len(tokens) == 1 and tokens[0].group(0) == segment
            parts: list[str] = []
            position = 0
            for token in tokens:
                parts.append(re.escape(segment[position : token.start()]))
                key, regex, is_optional = group(token.group(1))
                if is_optional and not whole:
                    raise ValueError(
                        f"route {template!r}: an optional parameter must be a whole segment"
                    )
                parts.append(f"(?P<{key}>{regex})")
                position = token.end()
            parts.append(re.escape(segment[position:]))
            if whole and tokens[0].group(1).endswith("?"):
                pattern.append(f"(?:/{''.join(parts)})?")
                optional += 1
            else:
                pattern.append("/" + "".join(parts))
        return cls(
            template=template,
            regex=re.compile("".join(pattern), re.IGNORECASE),
            groups=groups,
            unenforced=tuple(unenforced),
            literal_segments=literals,
            segments=len(segments),
            optional=optional,
            catch_all=catch_all,
        )

    def match(self, path: str) -> dict[str, str] | None:
        """Route parameters if ``path`` (``/segment/...``, after the prefix) matches."""
        found = self.regex.fullmatch(path.rstrip("/"))
        if found is None:
            return None
        return {
            self.groups[key]: value for key, value in found.groupdict().items() if value is not None
        }

    def precedence(self) -> tuple[int, int, int, int]:
        """Sort key: literal routes before parameters, catch-alls last (as ASP.NET orders)."""
        return (int(self.catch_all), self.optional, -self.literal_segments, -self.segments)


@dataclass(frozen=True)
class NcrontabSchedule:
    """A six-field NCRONTAB expression (second minute hour day month day-of-week), UTC."""

    expression: str

    @classmethod
    def parse(cls, expression: str) -> NcrontabSchedule:
        """Validate ``expression``; raises ``ValueError`` naming what is wrong."""
        fields = expression.split()
        if len(fields) != 6:
            raise ValueError(
                f"schedule {expression!r}: NCRONTAB has 6 fields "
                f"(second minute hour day month day-of-week), not {len(fields)}"
            )
        normalized = " ".join(fields)
        if not croniter.is_valid(normalized, second_at_beginning=True):
            raise ValueError(f"schedule {expression!r} is not a valid NCRONTAB expression")
        return cls(normalized)

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first occurrence strictly after ``moment`` (timezone-aware)."""
        it = croniter(self.expression, moment, second_at_beginning=True)
        return cast("dt.datetime", it.get_next(dt.datetime))

    def latest_at_or_before(self, moment: dt.datetime) -> dt.datetime:
        """The last occurrence at or before ``moment``."""
        it = croniter(
            self.expression, moment + dt.timedelta(microseconds=1), second_at_beginning=True
        )
        return cast("dt.datetime", it.get_prev(dt.datetime))


@dataclass(frozen=True)
class BlobPath:
    """A blob trigger path, ``container/{name}``, ``container/in/{name}.{ext}``.

    Every ``{expression}`` matches one or more characters, slashes included, so
    ``{name}`` covers blobs in virtual sub-folders; the matched values become binding
    expressions for the function's other bindings.
    """

    container: str
    pattern: str
    regex: re.Pattern[str]
    #: The literal start of the blob part: the listing prefix.
    prefix: str

    @classmethod
    def parse(cls, path: str) -> BlobPath:
        """Parse ``path``; raises ``ValueError`` naming what is wrong."""
        container, _, pattern = path.strip("/").partition("/")
        if not container or not pattern or "{" in container or "}" in container:
            raise ValueError(
                f"blob path {path!r}: expected 'container/<blob pattern>', e.g. 'input/{{name}}'"
            )
        parts: list[str] = []
        position = 0
        for token in _TOKEN.finditer(pattern):
            name = token.group(1)
            if not _IDENTIFIER.fullmatch(name):
                raise ValueError(f"blob path {path!r}: {{{name}}} is not an expression name")
            parts.append(re.escape(pattern[position : token.start()]))
            parts.append(f"(?P<{name}>.+)")
            position = token.end()
        parts.append(re.escape(pattern[position:]))
        try:
            regex = re.compile("".join(parts), re.DOTALL)
        except re.error:
            raise ValueError(f"blob path {path!r}: an expression is used twice") from None
        brace = pattern.find("{")
        return cls(
            container=container,
            pattern=pattern,
            regex=regex,
            prefix=pattern if brace < 0 else pattern[:brace],
        )

    def match(self, blob_name: str) -> dict[str, str] | None:
        """The expression values if ``blob_name`` matches, else None."""
        found = self.regex.fullmatch(blob_name)
        return None if found is None else dict(found.groupdict())


class BindingExpressionError(ValueError):
    """A ``{expression}`` in a binding path has no value in this invocation."""


def fill_expressions(template: str, values: Mapping[str, str]) -> str:
    """``template`` with ``{name}`` from ``values`` (any case), ``{rand-guid}``, ``{DateTime}``."""
    lowered = {key.lower(): value for key, value in values.items()}

    def replace(token: re.Match[str]) -> str:
        name = token.group(1)
        key = name.lower()
        if key == "rand-guid":
            return str(uuid.uuid4())
        if key == "datetime":
            return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
        if key not in lowered:
            raise BindingExpressionError(f"binding expression {{{name}}} has no value here")
        return lowered[key]

    return _TOKEN.sub(replace, template)
