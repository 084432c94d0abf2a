"""Send one request: auth, timeout, retries, error mapping and safe logging, in one place.

Every request is also traced here (one span per request, retries included, with the redacted
URL) and counted per attempt (:mod:`shared.telemetry.http`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from shared.redact import get_logger, install_log_redaction, redact, redact_url
from shared.speech.auth import Surface
from shared.speech.errors import (
    SpeechConnectionError,
    SpeechTimeoutError,
    error_from_response,
    request_id_of,
)
from shared.speech.retry import RetryPolicy, parse_retry_after, request_not_sent
from shared.telemetry.http import http_request_span

if TYPE_CHECKING:
    from shared.speech.auth import SpeechAuth

_log = get_logger("shared.speech.http")

#: Default timeouts: connecting is quick or broken; a recognition may take a while to answer.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0, pool=10.0)

TimeoutArg = float | httpx.Timeout | None
#: A request body: bytes, or a factory that yields the body afresh for each attempt.
#: ``replayable=False`` marks a body that can be produced only once (an async iterator).
BodyFactory = Callable[[], AsyncIterator[bytes]]


def as_timeout(value: TimeoutArg, default: httpx.Timeout) -> httpx.Timeout:
    """A per-call timeout in seconds or as an ``httpx.Timeout``; None means the default."""
    if value is None:
        return default
    if isinstance(value, httpx.Timeout):
        return value
    if value <= 0:
        raise ValueError("timeout must be positive")
    return httpx.Timeout(value, connect=min(value, 10.0))


class Pipeline:
    """Sends requests with retries; one per client, sharing an ``httpx.AsyncClient``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        retry: RetryPolicy | None = None,
        timeout: TimeoutArg = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        install_log_redaction()
        self.http = http
        self.retry = retry or RetryPolicy()
        self.timeout = as_timeout(timeout, DEFAULT_TIMEOUT)
        self._sleep = sleep

    async def send(
        self,
        method: str,
        url: str,
        *,
        auth: SpeechAuth | None,
        surface: Surface = Surface.BATCH,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | BodyFactory | None = None,
        replayable: bool = True,
        idempotent: bool,
        timeout: TimeoutArg = None,
        retry: RetryPolicy | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send and return a successful response; raise a :class:`SpeechError` otherwise.

        With ``stream=True`` the response body is not read; the caller must close it.
        """
        policy = retry or self.retry
        call_timeout = as_timeout(timeout, self.timeout)
        refreshed_auth = False
        attempt = 0
        with http_request_span(method, url) as attempts:
            while True:
                attempt += 1
                request_headers = dict(headers or {})
                if auth is not None:
                    request_headers.update(await auth.headers(surface))
                body = content() if callable(content) else content
                request = self.http.build_request(
                    method,
                    url,
                    params=params,
                    headers=request_headers,
                    json=json,
                    content=body,
                    timeout=call_timeout,
                )
                attempts.sending(str(request.url))
                started = time.perf_counter()
                try:
                    response = await self.http.send(request, stream=True)
                except httpx.TransportError as exc:
                    attempts.failed(exc)
                    not_sent = request_not_sent(exc)
                    may_retry = attempt < policy.max_attempts and (
                        not_sent or (idempotent and replayable)
                    )
                    _log.warning(
                        "%s %s failed: %s (attempt %d/%d%s)",
                        method,
                        redact_url(str(request.url)),
                        type(exc).__name__,
                        attempt,
                        policy.max_attempts,
                        ", retrying" if may_retry else "",
                    )
                    if may_retry:
                        backoff = policy.backoff(attempt)
                        attempts.retrying(type(exc).__name__, backoff)
                        await self._sleep(backoff)
                        continue
                    kind = SpeechTimeoutError if isinstance(exc, httpx.TimeoutException) else None
                    message = (
                        f"{method} {redact_url(str(request.url))}: {type(exc).__name__}: "
                        f"{redact(str(exc)) or 'no detail'}"
                    )
                    raise (kind or SpeechConnectionError)(
                        message, request_sent=not not_sent
                    ) from None

                elapsed_ms = (time.perf_counter() - started) * 1000
                status = response.status_code
                attempts.answered(status)
                if status < 400:
                    _log.debug(
                        "%s %s -> %d in %.0f ms (attempt %d, request id %s)",
                        method,
                        redact_url(str(request.url)),
                        status,
                        elapsed_ms,
                        attempt,
                        request_id_of(response),
                    )
                    if not stream:
                        await response.aread()
                    return response

                await response.aread()
                retry_after = parse_retry_after(response.headers)
                if status == 401 and auth is not None and not refreshed_auth and replayable:
                    refreshed_auth = True
                    if await auth.invalidate():
                        _log.info("%s %s -> 401; refreshing credentials", method, redact_url(url))
                        attempt -= 1  # a refresh is not a retry of a failed attempt
                        attempts.retrying("401: credentials refreshed")
                        continue
                wait = (
                    policy.wait(attempt, retry_after)
                    if attempt < policy.max_attempts
                    and replayable
                    and policy.retries_status(status, idempotent=idempotent)
                    else None
                )
                _log.warning(
                    "%s %s -> %d in %.0f ms (attempt %d/%d, request id %s)%s",
                    method,
                    redact_url(str(request.url)),
                    status,
                    elapsed_ms,
                    attempt,
                    policy.max_attempts,
                    request_id_of(response),
                    f", retrying in {wait:.2f} s" if wait is not None else "",
                )
                if wait is None:
                    raise error_from_response(response, retry_after=retry_after)
                attempts.retrying(str(status), wait)
                await self._sleep(wait)
