"""Typed, async clients for the Azure AI Speech REST APIs the app uses.

One client per surface — :class:`BatchTranscriptionClient`, :class:`ModelsClient`,
:class:`WebHooksClient`, :class:`FastTranscriptionClient`, :class:`ShortAudioClient` —
built from :class:`SpeechSettings` by :class:`SpeechClients`, sharing auth, retries and
one exception tree (:class:`SpeechError`). Names are loaded on first use so that importing
the package stays cheap for functions that need only part of it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "AsyncPager": "shared.speech._client",
    "DEFAULT_API_VERSION": "shared.speech._client",
    "AuthMode": "shared.speech.config",
    "SpeechClients": "shared.speech.config",
    "SpeechSettings": "shared.speech.config",
    "build_auth": "shared.speech.config",
    "EntraAuth": "shared.speech.auth",
    "IssuedTokenAuth": "shared.speech.issued_token",
    "KeyAuth": "shared.speech.auth",
    "SpeechAuth": "shared.speech.auth",
    "Surface": "shared.speech.auth",
    "BatchTranscriptionClient": "shared.speech.batch",
    "odata_quote": "shared.speech._client",
    "ModelsClient": "shared.speech.models_client",
    "ModelDeprecationWarning": "shared.speech.models_client",
    "deprecation_notice": "shared.speech.models_client",
    "WebHooksClient": "shared.speech.webhooks",
    "FastTranscriptionClient": "shared.speech.fast",
    "ShortAudioClient": "shared.speech.short_audio",
    "WAV_PCM_16K": "shared.speech.short_audio",
    "OGG_OPUS": "shared.speech.short_audio",
    "Cloud": "shared.speech.endpoints",
    "SpeechEndpoints": "shared.speech.endpoints",
    "RetryPolicy": "shared.speech.retry",
    "SpeechError": "shared.speech.errors",
    "SpeechHTTPError": "shared.speech.errors",
    "SpeechConnectionError": "shared.speech.errors",
    "SpeechTimeoutError": "shared.speech.errors",
    "BadRequestError": "shared.speech.errors",
    "AuthenticationError": "shared.speech.errors",
    "PermissionDeniedError": "shared.speech.errors",
    "NotFoundError": "shared.speech.errors",
    "ConflictError": "shared.speech.errors",
    "RateLimitError": "shared.speech.errors",
    "ServerError": "shared.speech.errors",
}

__all__ = [
    "DEFAULT_API_VERSION",
    "OGG_OPUS",
    "WAV_PCM_16K",
    "AsyncPager",
    "AuthMode",
    "AuthenticationError",
    "BadRequestError",
    "BatchTranscriptionClient",
    "Cloud",
    "ConflictError",
    "EntraAuth",
    "FastTranscriptionClient",
    "IssuedTokenAuth",
    "KeyAuth",
    "ModelDeprecationWarning",
    "ModelsClient",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RetryPolicy",
    "ServerError",
    "ShortAudioClient",
    "SpeechAuth",
    "SpeechClients",
    "SpeechConnectionError",
    "SpeechEndpoints",
    "SpeechError",
    "SpeechHTTPError",
    "SpeechSettings",
    "SpeechTimeoutError",
    "Surface",
    "WebHooksClient",
    "build_auth",
    "deprecation_notice",
    "odata_quote",
]

if TYPE_CHECKING:
    from shared.speech._client import DEFAULT_API_VERSION, AsyncPager, odata_quote
    from shared.speech.auth import EntraAuth, KeyAuth, SpeechAuth, Surface
    from shared.speech.batch import BatchTranscriptionClient
    from shared.speech.config import AuthMode, SpeechClients, SpeechSettings, build_auth
    from shared.speech.endpoints import Cloud, SpeechEndpoints
    from shared.speech.errors import (
        AuthenticationError,
        BadRequestError,
        ConflictError,
        NotFoundError,
        PermissionDeniedError,
        RateLimitError,
        ServerError,
        SpeechConnectionError,
        SpeechError,
        SpeechHTTPError,
        SpeechTimeoutError,
    )
    from shared.speech.fast import FastTranscriptionClient
    from shared.speech.issued_token import IssuedTokenAuth
    from shared.speech.models_client import (
        ModelDeprecationWarning,
        ModelsClient,
        deprecation_notice,
    )
    from shared.speech.retry import RetryPolicy
    from shared.speech.short_audio import OGG_OPUS, WAV_PCM_16K, ShortAudioClient
    from shared.speech.webhooks import WebHooksClient


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shared.speech' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
