"""The three ways to authenticate to Speech, behind one small protocol.

* :class:`EntraAuth` — an azure-identity credential (managed identity, or
  ``DefaultAzureCredential`` for people). The default and the only keyless one.
  ``Bearer <token>`` for batch, models and fast transcription;
  ``Bearer aad#<resourceId>#<token>`` for short audio, as the service requires.
* :class:`KeyAuth` — the resource key in ``Ocp-Apim-Subscription-Key``.
* :class:`IssuedTokenAuth` — the resource key exchanged at ``/sts/v1.0/issueToken`` for a
  10-minute token, reused for 9 minutes. Concurrent callers share one exchange.

Token caching for Entra is azure-identity's own (its credentials cache per scope);
this module does not add a second cache on top.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from shared.speech.redact import register_secret

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.credentials_async import AsyncTokenCredential

    from shared.speech.pipeline import Pipeline


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


class IssuedTokenAuth:
    """Resource key exchanged at ``/sts/v1.0/issueToken`` for short-lived bearer tokens.

    The service's tokens live 10 minutes; each is reused for ``reuse_seconds`` (9 minutes,
    as Microsoft advises). A lock makes concurrent callers wait for one exchange instead
    of each starting their own.
    """

    TOKEN_LIFETIME_SECONDS = 600.0

    def __init__(
        self,
        key: str,
        *,
        issue_token_url: str,
        pipeline: Pipeline,
        reuse_seconds: float = 540.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key_auth = KeyAuth(key)
        self._url = issue_token_url
        self._pipeline = pipeline
        if not 0 < reuse_seconds < self.TOKEN_LIFETIME_SECONDS:
            raise ValueError("reuse_seconds must be between 0 and 600 (the token lifetime)")
        self._reuse = reuse_seconds
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        #: How many exchanges this instance made; benchmarks and tests read it.
        self.exchanges = 0

    async def _current(self) -> str:
        if self._token and self._clock() < self._expires_at:
            return self._token
        async with self._lock:
            # Another caller may have refreshed while this one waited for the lock.
            if self._token and self._clock() < self._expires_at:
                return self._token
            started = self._clock()
            response = await self._pipeline.send(
                "POST",
                self._url,
                auth=self._key_auth,
                surface=Surface.BATCH,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                content=b"",
                idempotent=True,
            )
            token = response.text.strip()
            if not token:
                raise ValueError("issueToken answered 200 with an empty token")
            self.exchanges += 1
            register_secret(token)
            self._token = token
            self._expires_at = started + self._reuse
            return token

    async def headers(self, surface: Surface) -> dict[str, str]:
        """``Bearer <token>`` for every surface."""
        return {"Authorization": f"Bearer {await self._current()}"}

    async def invalidate(self) -> bool:
        """Drop the cached token so the next request exchanges the key again."""
        self._token = None
        self._expires_at = 0.0
        return True

    def supports(self, surface: Surface) -> str | None:
        """Issued tokens work on every surface."""
        return None

    def __repr__(self) -> str:
        return f"IssuedTokenAuth(issue_token_url={self._url!r}, key=REDACTED)"
