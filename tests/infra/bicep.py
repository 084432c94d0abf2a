"""The Bicep under infra/, parsed with pycep-parser, and small readers for its structure.

pycep renders a template as JSON: ``parameters``, ``variables``, ``resources``, ``modules``,
``outputs``. A resource's ``config`` is its body, wrapped in ``{"condition": ..., "config": ...}``
when it has an ``if`` and in ``{"loop_type": ..., "config": ...}`` when it has a ``for``.
Identifiers and string literals both come out as plain strings; the readers below resolve
names against the template's own symbols when it matters.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any, cast

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

Template = dict[str, Any]


@cache
def template(relative: str) -> Template:
    """The parsed template at ``infra/<relative>`` (parsed once per test session)."""
    # pycep's TypedDicts describe the JSON precisely but too deep to index without casts;
    # the readers here treat it as plain JSON.
    return cast(Template, BicepParser().parse(file_path=INFRA / relative))


def body(resource_or_module: dict[str, Any]) -> dict[str, Any]:
    """The body of a resource or module, without its ``if`` / ``for`` wrappers."""
    config: dict[str, Any] = resource_or_module["config"]
    while "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


def resources(tpl: Template, resource_type: str, *, existing: bool = False) -> dict[str, Any]:
    """The resources of one type, by symbolic name (declared or ``existing`` ones)."""
    return {
        name: res
        for name, res in tpl.get("resources", {}).items()
        if res["type"] == resource_type and res["existing"] is existing
    }


def the_resource(tpl: Template, resource_type: str) -> dict[str, Any]:
    """The body of the only declared resource of a type."""
    found = resources(tpl, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return body(next(iter(found.values())))


def symbols(tpl: Template) -> set[str]:
    """Every name a template declares: parameters, variables, resources, modules."""
    return {
        name
        for section in ("parameters", "variables", "resources", "modules")
        for name in tpl.get(section, {})
    }


def literal(tpl: Template, value: Any) -> Any:
    """``value`` if it is a literal of ``tpl``, else ``None`` (an expression or a reference).

    A plain string that names a symbol is a reference; one with ``${`` an interpolation.
    """
    if isinstance(value, bool | int):
        return value
    if isinstance(value, str) and "${" not in value and value not in symbols(tpl):
        return value
    return None


def call_args(value: Any, function: str) -> dict[str, Any] | None:
    """The arguments if ``value`` is a call of pycep function type ``function``."""
    if isinstance(value, dict) and isinstance(value.get("function"), dict):
        call: dict[str, Any] = value["function"]
        if call.get("type") == function:
            args: dict[str, Any] = call["parameters"]
            return args
    return None


def accessor(value: Any) -> list[str] | None:
    """``a.b.c`` as ``["a", "b", "c"]`` if ``value`` is a plain property access."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict) and isinstance(value.get("operator"), dict):
        operator: dict[str, Any] = value["operator"]
        if operator.get("type") == "property_accessor":
            head = accessor(operator["operands"]["operand_1"])
            tail = accessor(operator["operands"]["operand_2"])
            if head is not None and tail is not None:
                return head + tail
    return None


def decorator_types(declaration: dict[str, Any]) -> set[str]:
    """The decorators on a parameter, variable, resource or output (``description``, ...)."""
    return {decorator["type"] for decorator in declaration.get("decorators", [])}


GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def code_lines(path: Path) -> list[tuple[int, str]]:
    """The lines of a Bicep file with their numbers, ``//`` comments kept."""
    return list(enumerate(path.read_text().splitlines(), start=1))


def decorator_argument(declaration: dict[str, Any], decorator_type: str) -> Any:
    """The argument of one decorator (``min_value``, ``allowed``, ...), or KeyError."""
    for decorator in declaration.get("decorators", []):
        if decorator["type"] == decorator_type:
            return decorator["argument"]
    raise KeyError(decorator_type)
