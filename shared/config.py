"""Load settings once, and fail with the names people set, not Python field names."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import AliasChoices, ValidationError
from pydantic_settings import BaseSettings

S = TypeVar("S", bound=BaseSettings)


class SettingsError(ValueError):
    """A required app setting is missing or invalid; the message names each one."""


def setting_name(settings_cls: type[BaseSettings], field: str) -> str:
    """The environment variable / app setting that feeds ``field``."""
    prefix = str(settings_cls.model_config.get("env_prefix") or "")
    info = settings_cls.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices):
        alias = next((a for a in alias.choices if isinstance(a, str)), None)
    if isinstance(alias, str):
        # Identity-based connection settings keep the Functions host's spelling.
        return alias
    return f"{prefix}{field}".upper()


def load_settings(settings_cls: type[S], **overrides: Any) -> S:
    """Build ``settings_cls`` from the environment, or raise :class:`SettingsError`."""
    try:
        return settings_cls(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False):
            loc = [str(part) for part in error["loc"]]
            name = setting_name(settings_cls, loc[0]) if loc else settings_cls.__name__
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {message}" if loc else message)
        raise SettingsError("invalid app settings: " + "; ".join(problems)) from None
