"""The three ways to authenticate to Speech, behind one small protocol.

* :class:`EntraAuth` — an azure-identity credential (managed identity, or
  ``DefaultAzureCredential`` for people). The default and the only keyless one.
  ``Bearer <token>`` for batch, models and fast transcription;
  ``Bearer aad#<resourceId>#<token>`` for short audio, as the service requires.
* :class:`KeyAuth` — the resource key in ``Ocp-Apim-Subscription-Key``.
* :class:`~shared.speech.issued_token.IssuedTokenAuth` (its own module: it sends requests)
  — the resource key exchanged at ``/sts/v1.0/issueToken`` for a 10-minute token, reused
  for 9 minutes. Concurrent callers share one exchange.

Token caching for Entra is azure-identity's own (its credentials cache per scope);
this module does not add a second cache on top.
"""

from __future__ import annotations

import asyncio
import inspect
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from shared.redact import register_secret

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.credentials_async import AsyncTokenCredential


class Surface(StrEnum):
    """Which Speech API a request goes to; short audio formats Entra tokens differently."""

    BATCH = "batch"
    SHORT_AUDIO = "short_audio"


class SpeechAuth(Protocol):
    """Produces the auth headers for one request."""

    async def headers(self, surface: Surface) -> dict[str, str]:
        """Headers to add to a request for ``surface``."""
        ...

    async def invalidate(self) -> bool:
        """Forget cached credentials after a 401; True if a retry can then succeed."""
        ...

    def supports(self, surface: Surface) -> str | None:
        """None if this auth can call ``surface``, else why not (names the missing setting)."""
        ...


class KeyAuth:
    """Resource key in the ``Ocp-Apim-Subscription-Key`` header."""

    def __init__(self, key: str) -> None:
        if not key or not key.strip():
            raise ValueError("Speech key must not be empty (setting SPEECH_KEY)")
        self._key = key.strip()
        register_secret(self._key)

    async def headers(self, surface: Surface) -> dict[str, str]:
        """The key header, the same for every surface."""
        return {"Ocp-Apim-Subscription-Key": self._key}

    async def invalidate(self) -> bool:
        """A key cannot be refreshed: a 401 is final."""
        return False

    def supports(self, surface: Surface) -> str | None:
        """Keys work on every surface."""
        return None

    def __repr__(self) -> str:
        return "KeyAuth(key=REDACTED)"


class EntraAuth:
    """Microsoft Entra ID tokens from an azure-identity credential.

    Accepts a sync ``TokenCredential`` (called in a worker thread, since a cache miss
    does network I/O) or an ``AsyncTokenCredential``.
    """

    def __init__(
        self,
        credential: TokenCredential | AsyncTokenCredential,
        *,
        scope: str,
        resource_id: str | None = None,
    ) -> None:
        self._credential = credential
        self._scope = scope
        self._resource_id = resource_id.strip() if resource_id else None
        self._is_async = inspect.iscoroutinefunction(credential.get_token)

    async def _token(self) -> str:
        if self._is_async:
            token: Any = await self._credential.get_token(self._scope)  # type: ignore[misc]
        else:
            token = await asyncio.to_thread(self._credential.get_token, self._scope)
        value: str = token.token
        return value

    async def headers(self, surface: Surface) -> dict[str, str]:
        """``Bearer`` header; short audio wants the ``aad#<resourceId>#<token>`` form."""
        reason = self.supports(surface)
        if reason:
            raise ValueError(reason)
        token = await self._token()
        if surface is Surface.SHORT_AUDIO:
            return {"Authorization": f"Bearer aad#{self._resource_id}#{token}"}
        return {"Authorization": f"Bearer {token}"}

    async def invalidate(self) -> bool:
        """azure-identity refreshes tokens before expiry itself; a 401 is a role problem."""
        return False

    def supports(self, surface: Surface) -> str | None:
        """Short audio needs the Speech resource's ARM id in the token."""
        if surface is Surface.SHORT_AUDIO and not self._resource_id:
            return (
                "short-audio recognition with Entra ID needs the Speech resource id "
                "(setting SPEECH_RESOURCE_ID, /subscriptions/.../accounts/<name>)"
            )
        return None
