"""The OData ``filter`` subset the Speech-to-Text list operations document.

From the spec's ``filter`` parameter descriptions: properties per collection; ``eq`` and
``ne`` for all of them, ``gt``/``ge``/``lt``/``le`` for the date-time ones; ``and``, ``or``
and ``not``; string literals in single quotes with ``''`` for a quote. Parentheses group,
and ``startswith``/``endswith``/``contains`` work on string properties (the spec's
"files whose name starts with" example). Anything else raises :class:`FilterError`, which
the routes answer with 400 ``UnsupportedFilter``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

PropertyType = Literal["string", "datetime"]
Item = Mapping[str, Any]
Predicate = Callable[[Item], bool]

#: What the spec lets transcription and model lists filter on (their ``filter`` descriptions
#: name the same six properties).
ENTITY_PROPERTIES: dict[str, PropertyType] = {
    "displayName": "string",
    "description": "string",
    "createdDateTime": "datetime",
    "lastActionDateTime": "datetime",
    "status": "string",
    "locale": "string",
}

_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCTIONS = {"startswith", "endswith", "contains"}
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<datetime>\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)


class FilterError(ValueError):
    """The filter cannot be parsed or uses something the collection does not support."""


@dataclass(frozen=True)
class _Token:
    kind: str  # "string" | "datetime" | "word" | "punct"
    text: str


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    stripped = text.rstrip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if match is None or match.end() == position:
            raise FilterError(f"unexpected text at position {position}: {stripped[position:]!r}")
        kind = match.lastgroup
        assert kind is not None  # one alternative always matched
        tokens.append(_Token(kind, match.group(kind)))
        position = match.end()
    return tokens


def parse_datetime(text: str) -> dt.datetime:
    """An ISO 8601 date-time; a value without a zone is taken as UTC."""
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise FilterError(f"{text!r} is not a valid date-time") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class _Parser:
    def __init__(self, tokens: list[_Token], schema: Mapping[str, PropertyType]) -> None:
        self._tokens = tokens
        self._schema = schema
        self._index = 0

    def _peek(self) -> _Token | None:
        return self._tokens[self._index] if self._index < len(self._tokens) else None

    def _next(self) -> _Token:
        token = self._peek()
        if token is None:
            raise FilterError("the filter ends unexpectedly")
        self._index += 1
        return token

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token.kind == "word" and token.text.lower() == word:
            self._index += 1
            return True
        return False

    def _expect(self, text: str) -> None:
        token = self._next()
        if token.text != text:
            raise FilterError(f"expected {text!r}, found {token.text!r}")

    def parse(self) -> Predicate:
        predicate = self._or()
        if self._peek() is not None:
            raise FilterError(f"unexpected {self._next().text!r}")
        return predicate

    def _or(self) -> Predicate:
        terms = [self._and()]
        while self._keyword("or"):
            terms.append(self._and())
        if len(terms) == 1:
            return terms[0]
        return lambda item: any(term(item) for term in terms)

    def _and(self) -> Predicate:
        terms = [self._not()]
        while self._keyword("and"):
            terms.append(self._not())
        if len(terms) == 1:
            return terms[0]
        return lambda item: all(term(item) for term in terms)

    def _not(self) -> Predicate:
        if self._keyword("not"):
            inner = self._not()
            return lambda item: not inner(item)
        return self._primary()

    def _property(self) -> tuple[str, PropertyType]:
        token = self._next()
        if token.kind != "word":
            raise FilterError(f"expected a property name, found {token.text!r}")
        for name, kind in self._schema.items():
            if name.lower() == token.text.lower():
                return name, kind
        supported = ", ".join(self._schema)
        raise FilterError(f"unsupported property {token.text!r} (supported: {supported})")

    def _literal(self, kind: PropertyType) -> Any:
        token = self._next()
        if token.kind == "string":
            text = token.text[1:-1].replace("''", "'")
            return parse_datetime(text) if kind == "datetime" else text
        if token.kind == "datetime" and kind == "datetime":
            return parse_datetime(token.text)
        raise FilterError(f"{token.text!r} is not a valid {kind} literal")

    def _primary(self) -> Predicate:
        token = self._peek()
        if token is not None and token.text == "(":
            self._index += 1
            inner = self._or()
            self._expect(")")
            return inner
        if token is not None and token.kind == "word" and token.text.lower() in _FUNCTIONS:
            return self._function(self._next().text.lower())
        name, kind = self._property()
        operator = self._next()
        op = operator.text.lower()
        if operator.kind != "word" or op not in _COMPARISONS:
            raise FilterError(f"unsupported operator {operator.text!r}")
        if op not in {"eq", "ne"} and kind != "datetime":
            raise FilterError(f"operator {op!r} is supported for date-time properties only")
        value = self._literal(kind)
        return _comparison(name, op, value)

    def _function(self, function: str) -> Predicate:
        self._expect("(")
        name, kind = self._property()
        if kind != "string":
            raise FilterError(f"{function} works on string properties only")
        self._expect(",")
        value = self._literal(kind)
        self._expect(")")
        method = {"startswith": str.startswith, "endswith": str.endswith}.get(function)

        def check(item: Item) -> bool:
            actual = item.get(name)
            if not isinstance(actual, str):
                return False
            return method(actual, value) if method else value in actual

        return check


def _comparison(name: str, op: str, value: Any) -> Predicate:
    def check(item: Item) -> bool:
        actual = item.get(name)
        if actual is None:
            return op == "ne"
        if isinstance(actual, dt.datetime):
            # The service's timestamps have whole seconds; compare at that precision.
            actual = actual.replace(microsecond=0)
        result: bool = {
            "eq": lambda: actual == value,
            "ne": lambda: actual != value,
            "gt": lambda: actual > value,
            "ge": lambda: actual >= value,
            "lt": lambda: actual < value,
            "le": lambda: actual <= value,
        }[op]()
        return result

    return check


def compile_filter(text: str | None, schema: Mapping[str, PropertyType]) -> Predicate:
    """A predicate over items (property name -> value) for ``text``; everything if empty."""
    if text is None or not text.strip():
        return lambda item: True
    return _Parser(_tokenize(text), schema).parse()
