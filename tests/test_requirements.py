"""``requirements.txt`` pins everything the deployed app imports, and only with ``==``.

Azure installs ``requirements.txt`` alone (``.funcignore``: ``function_app.py``,
``functions/``, ``shared/`` are the app), so a package the app imports that is pinned only
in ``requirements-dev.txt``, or merely arrives as someone's dependency, is whatever version
pip picks on deploy day. The imports are read from the source (AST, so nothing is
imported): module level, inside functions, and under ``TYPE_CHECKING`` too — a type-only
import still names a package, and requiring it is simpler than proving it is only a type.
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements.txt"
#: The project's own top-level packages and modules.
OWN = frozenset({"shared", "functions", "function_app"})
#: ``name==version``: the only form allowed (no ranges, extras, markers or URLs).
PIN = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9.+!-]+)")
#: The Functions extensions are loaded by the worker at run time; what they declare (with wide
#: ranges) runs in production just like the app's own imports — the HTTP-stream server among
#: it — so it is pinned too.
EXTENSIONS = ("azurefunctions-extensions-bindings-blob", "azurefunctions-extensions-http-fastapi")


def normalise(name: str) -> str:
    """A distribution name per PEP 503."""
    return re.sub(r"[-_.]+", "-", name).lower()


def deployed_sources() -> list[Path]:
    """Every Python file Azure deploys."""
    return sorted(
        [
            ROOT / "function_app.py",
            *(ROOT / "functions").rglob("*.py"),
            *(ROOT / "shared").rglob("*.py"),
        ]
    )


def imported_modules(source: Path) -> set[str]:
    """The absolute module names ``source`` imports, wherever the import statement is."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def third_party_imports() -> dict[str, set[str]]:
    """Imported module name -> the deployed files importing it, minus stdlib and our own."""
    found: dict[str, set[str]] = {}
    for source in deployed_sources():
        for module in imported_modules(source):
            top = module.partition(".")[0]
            if top in sys.stdlib_module_names or top in OWN:
                continue
            found.setdefault(module, set()).add(str(source.relative_to(ROOT)))
    return found


@cache
def _top_level_owners() -> dict[str, list[str]]:
    """``packages_distributions()``, read once (it walks every installed distribution)."""
    return packages_distributions()


@cache
def _modules_of(dist_name: str) -> frozenset[str]:
    """The dotted module and package names a distribution installs."""
    names: set[str] = set()
    for file in distribution(dist_name).files or ():
        parts = file.parts
        if not parts or parts[0].endswith((".dist-info", ".egg-info", ".data")):
            continue
        stem = parts[-1].split(".")[0]
        dotted = (*parts[:-1], stem) if stem != "__init__" else parts[:-1]
        for length in range(1, len(dotted) + 1):
            names.add(".".join(dotted[:length]))
    return frozenset(names)


@cache
def _defines(dist_name: str, module: str) -> bool:
    """True if the distribution installs ``module``'s own file (``a/b/__init__.py``, ``a/b.py``)."""
    path = module.replace(".", "/")
    own = {f"{path}/__init__.py", f"{path}.py"}
    return any(file.as_posix() in own for file in distribution(dist_name).files or ())


def distribution_of(module: str) -> str:
    """The installed distribution that provides ``module`` (normalised name).

    ``packages_distributions()`` maps top-level names; a namespace package (``azure``,
    ``azurefunctions``) maps to many distributions, so the one whose files hold the
    deepest part of ``module`` wins (``azure.core.exceptions`` -> ``azure-core``).
    """
    top = module.partition(".")[0]
    candidates = sorted(set(_top_level_owners().get(top, ())))
    assert candidates, f"{module} is imported but no installed distribution provides it"
    if len(candidates) == 1:
        return normalise(candidates[0])
    parts = module.split(".")
    for length in range(len(parts), 0, -1):
        prefix = ".".join(parts[:length])
        owners = [d for d in candidates if prefix in _modules_of(d)]
        if len(owners) > 1:
            # A plug-in may install into another's package (azure-core-tracing-opentelemetry
            # into azure/core/tracing/): the package is the one whose own file defines it.
            owners = [d for d in owners if _defines(d, prefix)] or owners
        if len(owners) == 1:
            return normalise(owners[0])
    raise AssertionError(f"cannot tell which of {candidates} provides {module}")


def requirement_lines() -> list[str]:
    """The requirement lines of ``requirements.txt``, comments and blanks dropped."""
    lines = (line.split("#", 1)[0].strip() for line in REQUIREMENTS.read_text().splitlines())
    return [line for line in lines if line]


def pins() -> dict[str, str]:
    """Normalised distribution name -> pinned version, for ``==`` lines."""
    pinned: dict[str, str] = {}
    for line in requirement_lines():
        if match := PIN.fullmatch(line):
            pinned[normalise(match["name"])] = match["version"]
    return pinned


def extension_requirements() -> dict[str, str]:
    """What the Functions extensions require at run time -> the extension requiring it."""
    required: dict[str, str] = {}
    for extension in EXTENSIONS:
        for text in distribution(extension).requires or ():
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                required[normalise(requirement.name)] = extension
    return required


def test_every_requirement_is_pinned_exactly() -> None:
    loose = [line for line in requirement_lines() if not PIN.fullmatch(line)]
    assert not loose, f"requirements.txt lines not pinned with ==: {loose}"


def test_every_imported_package_is_pinned() -> None:
    imports = third_party_imports()
    assert "starlette.responses" in imports, "the scan sees the app's imports"
    pinned = pins()
    missing: dict[str, set[str]] = {}
    for module, files in imports.items():
        dist = distribution_of(module)
        if dist not in pinned:
            missing.setdefault(dist, set()).update(files)
    assert not missing, "imported by the deployed code but not pinned in requirements.txt: " + (
        "; ".join(f"{d} ({', '.join(sorted(f))})" for d, f in sorted(missing.items()))
    )


def test_what_the_functions_extensions_need_at_run_time_is_pinned() -> None:
    pinned = pins()
    missing = {d: e for d, e in extension_requirements().items() if d not in pinned}
    assert not missing, f"required by an extension, not pinned: {missing}"


def test_pins_are_the_versions_tested_here() -> None:
    # The suite runs against .venv, which `make install` builds from these files.
    wrong = {}
    for name, version in pins().items():
        try:
            installed = distribution(name).version
        except PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"pinned vs installed: {wrong}"


def test_no_pin_is_repeated_in_the_dev_requirements() -> None:
    # requirements-dev.txt includes requirements.txt; a second pin could only disagree.
    dev = ROOT / "requirements-dev.txt"
    lines = (line.split("#", 1)[0].strip() for line in dev.read_text().splitlines())
    names = {normalise(Requirement(line).name) for line in lines if line and line[0] != "-"}
    assert not names & set(pins()), f"pinned in both files: {sorted(names & set(pins()))}"
