"""Error answers of the HTTP API: one JSON shape, and the mapping from Speech failures to it.

Every error body is ``{"error": {"code": ..., "message": ..., <details>}}``. Codes are stable
strings callers can branch on; messages say what was wrong and what is accepted. Failures of
the Speech service are answered so the caller can tell its own mistakes (4xx) from ours or the
service's (502/504), with ``retryable`` where trying again later can succeed. No message carries
a key, token or SAS signature: Speech errors are redacted when raised
(:class:`shared.speech.errors.SpeechError`) and every text here passes :func:`redact` again.
"""

from __future__ import annotations

import math
from typing import Any

from starlette.responses import JSONResponse

from shared.redact import redact
from shared.speech.config import AuthMode
from shared.speech.errors import (
    AuthenticationError,
    BadRequestError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    SpeechConnectionError,
    SpeechError,
    SpeechHTTPError,
    SpeechTimeoutError,
)

#: Sent with a 429 when Speech gave no hint. The short-audio front end throttles concurrent
#: requests, which free up within seconds; one second is the retry policy's first backoff.
DEFAULT_RETRY_AFTER_SECONDS = 1


class ApiProblem(Exception):
    """An error answer: HTTP status, stable ``code``, a message, and optional details.

    Raised anywhere below a handler (also from inside a streamed request body, where it
    aborts the upstream request) and turned into the response by the handler.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = redact(message)
        self.headers = headers or {}
        self.details = details

    def body(self) -> dict[str, Any]:
        """The value of the response's ``error`` member: code, message and details."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body.update({k: v for k, v in self.details.items() if v is not None})
        return body

    def response(self) -> JSONResponse:
        """The JSON error response."""
        return JSONResponse({"error": self.body()}, status_code=self.status, headers=self.headers)


def invalid_parameter(name: str, message: str, **details: Any) -> ApiProblem:
    """400 for a query parameter (or body field) ``name`` that has a bad value."""
    return ApiProblem(400, "InvalidParameter", message, parameter=name, **details)


def _auth_hint(auth_mode: AuthMode, *, short_audio: bool) -> str:
    if auth_mode is AuthMode.ENTRA:
        hint = (
            "the app's identity lacks the Cognitive Services Speech User role on the Speech "
            "resource at SPEECH_ENDPOINT"
        )
        if short_audio:
            # Short audio carries the resource id inside the token (aad#<id>#<token>).
            hint += ", or SPEECH_RESOURCE_ID is not that resource's ARM id"
        return hint
    return (
        "SPEECH_KEY is not a key of the Speech resource at SPEECH_ENDPOINT / SPEECH_REGION "
        "(keys belong to one resource and one region)"
    )


def from_speech_error(exc: SpeechError, *, auth_mode: AuthMode, short_audio: bool) -> ApiProblem:
    """The answer for a failed Speech call.

    ``auth_mode`` picks the hint for a refused credential; ``short_audio`` adds the resource
    id to it (only the short-audio token carries one).
    """
    if isinstance(exc, SpeechTimeoutError):
        return ApiProblem(
            504,
            "UpstreamTimeout",
            f"Speech did not answer in time: {exc.message}",
            retryable=True,
        )
    if isinstance(exc, SpeechConnectionError):
        return ApiProblem(
            502,
            "UpstreamUnreachable",
            f"Speech could not be reached: {exc.message}",
            retryable=True,
        )
    if not isinstance(exc, SpeechHTTPError):
        return ApiProblem(502, "UpstreamError", f"Speech call failed: {exc.message}")
    upstream: dict[str, Any] = {
        "upstreamStatus": exc.status_code,
        "upstreamCode": exc.inner_code or exc.code,
        "requestId": exc.request_id,
    }
    if isinstance(exc, RateLimitError):
        wait = (
            DEFAULT_RETRY_AFTER_SECONDS
            if exc.retry_after is None
            else max(1, math.ceil(exc.retry_after))
        )
        return ApiProblem(
            429,
            "TooManyRequests",
            f"Speech is throttling this app: {exc.message} Retry after {wait} s.",
            headers={"Retry-After": str(wait)},
            retryable=True,
            retryAfterSeconds=wait,
            **upstream,
        )
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        hint = _auth_hint(auth_mode, short_audio=short_audio)
        return ApiProblem(
            502,
            "UpstreamAuthenticationFailed",
            f"Speech refused the app's credentials (HTTP {exc.status_code}). Likely cause: "
            f"{hint}. Service said: {exc.message}",
            hint=hint,
            retryable=False,
            **upstream,
        )
    if isinstance(exc, BadRequestError):
        return ApiProblem(
            400, "SpeechRejectedRequest", f"Speech rejected the request: {exc.message}", **upstream
        )
    if exc.status_code == 422:
        # Fast transcription: the audio cannot be decoded, is empty or too long.
        return ApiProblem(
            422, "UnprocessableAudio", f"Speech cannot process the audio: {exc.message}", **upstream
        )
    if isinstance(exc, ServerError):
        return ApiProblem(
            502,
            "UpstreamError",
            f"Speech failed (HTTP {exc.status_code}): {exc.message}",
            retryable=True,
            **upstream,
        )
    # Any other status (404, 409, 415, ...) means this app sent something the service does
    # not serve: a deployment or configuration problem, not the caller's.
    return ApiProblem(
        502,
        "UpstreamError",
        f"Speech answered HTTP {exc.status_code}: {exc.message}",
        retryable=False,
        **upstream,
    )
