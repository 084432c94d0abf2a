"""Speech settings from the environment, and the clients they describe."""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.speech._client import DEFAULT_API_VERSION, ApiVersion
from shared.speech.auth import EntraAuth, KeyAuth, SpeechAuth
from shared.speech.batch import BatchTranscriptionClient
from shared.speech.endpoints import (
    Cloud,
    SpeechEndpoints,
    custom_subdomain_url,
    regional_cloud,
)
from shared.speech.fast import FastTranscriptionClient
from shared.speech.issued_token import IssuedTokenAuth
from shared.speech.models_client import ModelsClient
from shared.speech.pipeline import Pipeline
from shared.speech.retry import RetryPolicy
from shared.speech.short_audio import ShortAudioClient
from shared.speech.webhooks import WebHooksClient

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.credentials_async import AsyncTokenCredential


#: How to give an existing account a custom subdomain (Azure CLI).
_CUSTOM_DOMAIN = (
    "az cognitiveservices account update --name <account> --resource-group <group> "
    "--custom-domain <name>"
)


class AuthMode(StrEnum):
    """How the app proves who it is to Speech."""

    #: Microsoft Entra ID via azure-identity (managed identity in Azure). Keyless.
    ENTRA = "entra"
    #: The resource key on every request.
    KEY = "key"
    #: The resource key exchanged for 10-minute tokens at ``/sts/v1.0/issueToken``.
    ISSUED_TOKEN = "issued-token"


class SpeechSettings(BaseSettings):
    """``SPEECH_*`` app settings."""

    model_config = SettingsConfigDict(env_prefix="SPEECH_", extra="ignore", env_ignore_empty=True)

    #: Custom-subdomain endpoint, ``https://<name>.cognitiveservices.azure.com``. A regional
    #: endpoint (``https://<region>.api.cognitive.microsoft.com``) works with key auth only.
    endpoint: str | None = None
    #: Region identifier, for key auth without a custom subdomain.
    region: str | None = None
    #: Cloud of ``region``; read from the endpoint's host when an endpoint is given.
    cloud: Cloud | None = None
    auth_mode: AuthMode = AuthMode.ENTRA
    key: SecretStr | None = None
    #: ARM id of the Speech account; Entra short-audio tokens carry it.
    resource_id: str | None = None
    api_version: ApiVersion = DEFAULT_API_VERSION
    timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    max_attempts: int = Field(default=4, ge=1, le=10)

    @model_validator(mode="after")
    def _consistent(self) -> SpeechSettings:
        if not self.endpoint and not self.region:
            raise ValueError("set SPEECH_ENDPOINT (custom subdomain) or SPEECH_REGION")
        if self.endpoint and self.region:
            raise ValueError("set only one of SPEECH_ENDPOINT and SPEECH_REGION")
        if self.auth_mode is AuthMode.ENTRA and not self.endpoint:
            raise ValueError(
                "SPEECH_ENDPOINT is required for Entra ID auth: Speech accepts Entra tokens "
                "only on its custom subdomain (https://<name>.cognitiveservices.azure.com)"
            )
        if self.auth_mode is AuthMode.ENTRA and self.endpoint:
            self._refuse_regional_endpoint(self.endpoint)
        if self.auth_mode is not AuthMode.ENTRA and not (
            self.key and self.key.get_secret_value().strip()
        ):
            raise ValueError(f"SPEECH_KEY is required when SPEECH_AUTH_MODE={self.auth_mode.value}")
        self.endpoints()  # surfaces a malformed endpoint or region now, not at first call
        return self

    @staticmethod
    def _refuse_regional_endpoint(endpoint: str) -> None:
        """Entra ID with a regional endpoint cannot work: refuse it, saying what to change.

        An account without a custom subdomain reports its regional host as its endpoint,
        and Speech accepts Entra tokens only on the custom subdomain ("Microsoft Entra
        authentication with the Speech SDK": create a custom domain name,
        https://learn.microsoft.com/azure/ai-services/speech-service/how-to-configure-azure-ad-auth),
        so every call would fail with 401. The CLI command is the one of "Use Speech service
        through a private endpoint", which also warns that a custom domain cannot be undone
        (https://learn.microsoft.com/azure/ai-services/speech-service/speech-services-private-link).
        Loopback emulators and custom subdomains are not regional and pass.
        """
        cloud = regional_cloud(endpoint)
        if cloud is None:
            return
        raise ValueError(
            f"SPEECH_ENDPOINT {endpoint.rstrip('/')} is the regional endpoint of a Speech "
            "account without a custom subdomain, where Speech refuses Entra ID tokens: every "
            f"call would fail with 401. Give the account a custom subdomain ({_CUSTOM_DOMAIN}; "
            "this cannot be undone) and make SPEECH_ENDPOINT "
            f"{custom_subdomain_url(cloud)}, or use SPEECH_AUTH_MODE=key with SPEECH_KEY"
        )

    def endpoints(self) -> SpeechEndpoints:
        """The URLs of every surface of the configured resource."""
        if self.endpoint:
            return SpeechEndpoints.from_endpoint(self.endpoint, cloud=self.cloud)
        assert self.region is not None  # guaranteed by _consistent
        return SpeechEndpoints.from_region(self.region, cloud=self.cloud or Cloud.PUBLIC)

    def retry_policy(self) -> RetryPolicy:
        """The retry policy these settings ask for."""
        return RetryPolicy(max_attempts=self.max_attempts)


def default_credential() -> TokenCredential:
    """``DefaultAzureCredential``: managed identity in Azure, developer sign-in locally.

    Imported here, not at module level: azure-identity costs start-up time that a
    function using key auth never needs to pay.
    """
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


def build_auth(
    settings: SpeechSettings,
    pipeline: Pipeline,
    *,
    credential: TokenCredential | AsyncTokenCredential | None = None,
) -> SpeechAuth:
    """The auth the settings select; ``pipeline`` carries the key-for-token exchange."""
    endpoints = settings.endpoints()
    key = settings.key.get_secret_value() if settings.key else ""
    if settings.auth_mode is AuthMode.KEY:
        return KeyAuth(key)
    if settings.auth_mode is AuthMode.ISSUED_TOKEN:
        return IssuedTokenAuth(key, issue_token_url=endpoints.issue_token_url, pipeline=pipeline)
    return EntraAuth(
        credential or default_credential(),
        scope=endpoints.token_scope,
        resource_id=settings.resource_id,
    )


class SpeechClients:
    """Every Speech client of one resource, sharing one connection pool and one auth."""

    def __init__(
        self,
        settings: SpeechSettings,
        *,
        credential: TokenCredential | AsyncTokenCredential | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        """Build the clients; ``credential`` overrides ``DefaultAzureCredential``."""
        self.http = http_client or httpx.AsyncClient(follow_redirects=False)
        retry = settings.retry_policy()
        self.auth = build_auth(
            settings, Pipeline(self.http, retry=retry, timeout=30.0), credential=credential
        )
        self.endpoints = settings.endpoints()
        self._common: dict[str, Any] = {
            "api_version": settings.api_version,
            "retry": retry,
            "timeout": settings.timeout_seconds,
            "http_client": self.http,
        }
        self.batch = BatchTranscriptionClient(self.endpoints, self.auth, **self._common)
        self.models = ModelsClient(self.endpoints, self.auth, **self._common)
        self.fast = FastTranscriptionClient(self.endpoints, self.auth, **self._common)

    @cached_property
    def webhooks(self) -> WebHooksClient:
        """The web hooks client, built on first use (most functions never register hooks)."""
        return WebHooksClient(self.endpoints, self.auth, **self._common)

    def short_audio(self) -> ShortAudioClient:
        """The short-audio client; raises ValueError naming the setting it still needs."""
        return ShortAudioClient(self.endpoints, self.auth, **self._common)

    async def aclose(self) -> None:
        """Close the shared connection pool."""
        await self.http.aclose()

    async def __aenter__(self) -> SpeechClients:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
