"""Cold import cost, as `python -X importtime` reports it, and the cold-start budget of the app.

Runs each import in a fresh interpreter several times and prints the median cumulative
microseconds per module, so that a change that drags a heavy import into start-up shows.

Without arguments it also checks what a cold start pays for ``import function_app`` (the
worker indexes the app before any invocation):

* the app's own import time over that of its dependencies (the third-party modules that
  ``function_app.py`` and ``functions/`` import at module level, loaded first in the same
  interpreter), at most :data:`MAX_OVERHEAD`;
* that neither the OpenTelemetry SDK nor an exporter is imported by it: they load when the
  app context is built (``shared.telemetry.configure``), and their cost is printed apart.

It exits non-zero when a check fails.

    .venv/bin/python bench/import_time.py [module ...]
"""

from __future__ import annotations

import ast
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = [
    "shared.speech",  # the package itself: names load lazily
    "shared.speech.config",  # every client, settings and auth
    "shared.speech.models",
    "httpx",
    "pydantic",
    "pydantic_settings",
]
RUNS = 7
#: The issue's target: the app's own modules add at most this much to its dependencies.
MAX_OVERHEAD = 0.15
#: Modules ``import function_app`` must not load (the app context loads them).
DEFERRED = ("opentelemetry.sdk", "opentelemetry.exporter", "azure.monitor")
#: What ``shared.telemetry.configure`` imports, by exporter.
TELEMETRY = [
    "opentelemetry.sdk.trace",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "azure.monitor.opentelemetry",
]
OWN = ("shared", "functions", "function_app")


def importtime(code: str, *, top_level: bool = False) -> dict[str, int]:
    """Cumulative microseconds per module imported by ``code`` in a fresh interpreter.

    With ``top_level``, only the modules ``code`` imports itself: their times are disjoint
    (a module imported inside another is part of that one's cumulative time).
    """
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    cumulative: dict[str, int] = {}
    for line in out.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if len(fields) != 3 or not fields[1].strip().isdigit():
            continue
        # The name is indented two spaces per level of nesting, after one separating space.
        if top_level and fields[2].startswith("  "):
            continue
        cumulative[fields[2].strip()] = int(fields[1])
    return cumulative


def cumulative_us(module: str) -> int:
    found = importtime(f"import {module}").get(module)
    if found is None:
        raise RuntimeError(f"{module} not in importtime output")
    return found


def app_dependencies() -> list[str]:
    """Third-party modules ``function_app.py`` and ``functions/*.py`` import at module level."""
    found: set[str] = set()
    for source in [ROOT / "function_app.py", *sorted((ROOT / "functions").glob("*.py"))]:
        for node in ast.parse(source.read_text()).body:
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                else []
            )
            found.update(n for n in names if n and n.partition(".")[0] not in OWN)
    return sorted(found)


def app_overhead() -> tuple[float, float]:
    """Median milliseconds of (the dependencies, the app's own modules after them)."""
    deps = app_dependencies()
    code = f"import {', '.join(deps)}; import function_app"
    dep_ms, app_ms = [], []
    for _ in range(RUNS):
        times = importtime(code, top_level=True)
        dep_ms.append(sum(times[d] for d in deps if d in times) / 1000)
        app_ms.append(times["function_app"] / 1000)
    return statistics.median(dep_ms), statistics.median(app_ms)


def deferred_imports() -> list[str]:
    """Modules of :data:`DEFERRED` that ``import function_app`` loaded (should be none)."""
    code = (
        "import sys, function_app; "
        f"print('\\n'.join(m for m in sys.modules if m.startswith({DEFERRED!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return [line for line in out.splitlines() if line]


def print_medians(modules: list[str]) -> None:
    print(f"{'module':<54} {'median ms':>10}   (cumulative, {RUNS} fresh interpreters)")
    for module in modules:
        samples = [cumulative_us(module) for _ in range(RUNS)]
        print(f"{module:<54} {statistics.median(samples) / 1000:>10.1f}")


def check_cold_start() -> bool:
    """Print the app's import budget; True when both checks pass."""
    deps_ms, app_ms = app_overhead()
    overhead = app_ms / deps_ms
    print(f"\nimport function_app, {RUNS} fresh interpreters (medians)")
    print(f"  dependencies ({', '.join(app_dependencies())}): {deps_ms:.1f} ms")
    print(f"  the app's own modules after them: {app_ms:.1f} ms")
    ok = overhead <= MAX_OVERHEAD
    print(f"  overhead {overhead:.1%} (at most {MAX_OVERHEAD:.0%}): {'ok' if ok else 'FAILED'}")
    loaded = deferred_imports()
    print(f"  telemetry SDK and exporters loaded by it: {', '.join(loaded) or 'none'}")
    print("\nwhat shared.telemetry.configure imports when the app context is built:")
    print_medians(TELEMETRY)
    return ok and not loaded


def main(modules: list[str]) -> int:
    print_medians(modules or DEFAULT)
    return 0 if modules or check_cold_start() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
