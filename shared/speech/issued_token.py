"""Key auth through short-lived tokens: the key is exchanged at ``/sts/v1.0/issueToken``.

Its own module because it sends requests (through :class:`~shared.speech.pipeline.Pipeline`)
while the other auth modes only produce headers: ``pipeline`` uses ``auth``, and only this
module uses both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from shared.redact import register_secret
from shared.speech.auth import KeyAuth, Surface

if TYPE_CHECKING:
    from shared.speech.pipeline import Pipeline


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
