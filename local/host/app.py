"""Load a v2-model ``FunctionApp`` and decide, per function, how the local host runs it.

``app.get_functions()`` gives each function's bindings in ``function.json`` shape and the
user's callable. Discovery resolves ``%SETTING%`` references, parses the trigger (route,
schedule, blob path) and works out what every parameter receives. A function the local
host cannot run (another trigger type, an unsupported binding, a missing setting, a bad
pattern) is skipped with its reason; the others run. That mirrors the real host, where
one broken function is disabled at indexing and the rest of the app still starts.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.host.bindings import (
    Param,
    ParamKind,
    UnsupportedBinding,
    blob_kind,
    check_blob_output,
    http_kind,
    is_context,
    timer_kind,
)
from local.host.patterns import BlobPath, NcrontabSchedule, RouteTemplate
from local.host.settings import SettingError, resolve_binding

HTTP_TRIGGER = "httpTrigger"
TIMER_TRIGGER = "timerTrigger"
BLOB_TRIGGER = "blobTrigger"
SUPPORTED_TRIGGERS = (HTTP_TRIGGER, TIMER_TRIGGER, BLOB_TRIGGER)
DEFAULT_APP = "function_app:app"

AUTH_LEVELS = ("anonymous", "function", "admin")


class AppLoadError(RuntimeError):
    """The app spec does not name a FunctionApp."""


@dataclass(frozen=True)
class HttpConfig:
    """An HTTP trigger: its route, methods (empty: any) and auth level."""

    route: RouteTemplate
    methods: frozenset[str]
    auth_level: str


@dataclass(frozen=True)
class TimerConfig:
    """A timer trigger."""

    schedule: NcrontabSchedule
    run_on_startup: bool


@dataclass(frozen=True)
class BlobConfig:
    """A blob trigger: what it watches, through which connection setting."""

    path: BlobPath
    connection: str
    #: ``EventGrid`` or ``LogsAndContainerScan``; both are served by listing locally.
    source: str


TriggerConfig = HttpConfig | TimerConfig | BlobConfig


@dataclass(frozen=True)
class FunctionSpec:
    """One function the local host runs."""

    name: str
    trigger_type: str
    config: TriggerConfig
    params: tuple[Param, ...]
    func: Callable[..., Any]
    is_async: bool

    @property
    def trigger_param(self) -> Param:
        """The parameter that receives the trigger's value."""
        return next(p for p in self.params if p.binding.get("type") == self.trigger_type)


@dataclass(frozen=True)
class SkippedFunction:
    """A function the local host does not run, and why."""

    name: str
    trigger_type: str
    reason: str


@dataclass(frozen=True)
class Discovery:
    """What discovery found in the app."""

    functions: tuple[FunctionSpec, ...]
    skipped: tuple[SkippedFunction, ...]


def load_app(spec: str, app_dir: Path) -> Any:
    """Import ``module:attribute`` (attribute default ``app``) with ``app_dir`` on ``sys.path``.

    Import errors from the app propagate unchanged: the caller logs their traceback.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name:
        raise AppLoadError(f"--app {spec!r}: expected module:attribute, e.g. {DEFAULT_APP}")
    directory = str(app_dir)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    module = importlib.import_module(module_name)
    app = getattr(module, attribute or "app", None)
    if app is None or not callable(getattr(app, "get_functions", None)):
        raise AppLoadError(f"{spec}: {module_name} has no FunctionApp named {attribute or 'app'!r}")
    return app


def _annotations(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func)
    except Exception as exc:  # a forward reference that does not resolve, etc.
        raise UnsupportedBinding(f"its annotations cannot be resolved: {exc}") from None


def _trigger_config(trigger_type: str, binding: Mapping[str, Any]) -> TriggerConfig:
    try:
        if trigger_type == HTTP_TRIGGER:
            level = str(binding.get("authLevel") or "function").lower()
            if level not in AUTH_LEVELS:
                raise ValueError(f"authLevel {level!r} is not one of {', '.join(AUTH_LEVELS)}")
            methods = binding.get("methods") or []
            return HttpConfig(
                route=RouteTemplate.parse(str(binding["route"])),
                methods=frozenset(str(method).upper() for method in methods),
                auth_level=level,
            )
        if trigger_type == TIMER_TRIGGER:
            return TimerConfig(
                schedule=NcrontabSchedule.parse(str(binding["schedule"])),
                run_on_startup=bool(binding.get("runOnStartup", False)),
            )
        return BlobConfig(
            path=BlobPath.parse(str(binding["path"])),
            connection=str(binding.get("connection") or "AzureWebJobsStorage"),
            source=str(binding.get("source") or "LogsAndContainerScan"),
        )
    except (KeyError, ValueError) as exc:
        raise UnsupportedBinding(str(exc)) from None


def _param_kind(trigger_type: str, binding: Mapping[str, Any], annotation: Any) -> ParamKind:
    binding_type = str(binding["type"])
    direction = str(binding.get("direction", "")).upper()
    if binding_type == trigger_type:
        if trigger_type == HTTP_TRIGGER:
            return http_kind(annotation)
        if trigger_type == TIMER_TRIGGER:
            return timer_kind(annotation)
        return blob_kind(BLOB_TRIGGER, annotation)
    if binding_type == "blob" and direction == "IN":
        return blob_kind("blob", annotation)
    if binding_type == "blob" and direction == "OUT":
        check_blob_output(annotation)
        return ParamKind.BLOB_OUT
    raise UnsupportedBinding(
        f"{binding_type} ({direction.lower() or 'no direction'}) bindings are not supported "
        "by the local host"
    )


def _build(
    name: str, func: Callable[..., Any], bindings: list[dict[str, Any]], env: Mapping[str, str]
) -> FunctionSpec:
    trigger_binding = next(b for b in bindings if str(b["type"]).endswith("Trigger"))
    trigger_type = str(trigger_binding["type"])
    if trigger_type not in SUPPORTED_TRIGGERS:
        raise UnsupportedBinding(f"{trigger_type} triggers are not supported by the local host")
    resolved = [resolve_binding(binding, env) for binding in bindings]
    config = _trigger_config(trigger_type, next(b for b in resolved if b["type"] == trigger_type))
    hints = _annotations(func)
    signature = inspect.signature(func).parameters
    params: list[Param] = []
    for binding in resolved:
        binding_name = str(binding["name"])
        if binding_name == "$return":
            if binding["type"] == "http" and trigger_type == HTTP_TRIGGER:
                continue
            raise UnsupportedBinding(
                f"a {binding['type']} binding on $return is not supported by the local host"
            )
        if binding_name not in signature:
            raise UnsupportedBinding(f"binding {binding_name!r} has no parameter of that name")
        annotation = hints.get(binding_name)
        kind = _param_kind(trigger_type, binding, annotation)
        params.append(Param(binding_name, kind, annotation, binding))
    bound = {param.name for param in params}
    for param_name, parameter in signature.items():
        if param_name in bound:
            continue
        annotation = hints.get(param_name)
        if is_context(param_name, annotation):
            params.append(Param(param_name, ParamKind.CONTEXT, annotation))
        elif parameter.default is inspect.Parameter.empty and parameter.kind not in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        ):
            raise UnsupportedBinding(f"parameter {param_name!r} has no binding")
    return FunctionSpec(
        name=name,
        trigger_type=trigger_type,
        config=config,
        params=tuple(params),
        func=func,
        is_async=inspect.iscoroutinefunction(func),
    )


def discover(app: Any, env: Mapping[str, str]) -> Discovery:
    """Every function of ``app``: runnable ones as specs, the others with the reason."""
    functions: list[FunctionSpec] = []
    skipped: list[SkippedFunction] = []
    for function in app.get_functions():
        name = str(function.get_function_name())
        trigger = function.get_trigger()
        trigger_type = str(trigger.get_binding_name()) if trigger is not None else "none"
        bindings = json.loads(function.get_function_json())["bindings"]
        try:
            functions.append(_build(name, function.get_user_function(), bindings, env))
        except (SettingError, UnsupportedBinding) as exc:
            skipped.append(SkippedFunction(name, trigger_type, str(exc)))
    return Discovery(tuple(functions), tuple(skipped))
