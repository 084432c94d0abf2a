"""One exception tree for every Speech surface.

``SpeechError`` is the root. HTTP failures are :class:`SpeechHTTPError` with the status
code, the service's ``code`` and innermost ``innerError.code``, its message and the
request id, narrowed to a subclass per status family so callers can ``except`` what
they handle. Transport failures are :class:`SpeechConnectionError` and its
:class:`SpeechTimeoutError`. Every message passes through :func:`redact` first: a
service error that echoes a SAS URL must not carry the signature into a log line.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from shared.redact import redact

# Header names under which the Speech front ends return a request id, most specific first.
_REQUEST_ID_HEADERS = ("apim-request-id", "x-ms-request-id", "x-requestid", "x-request-id")


class SpeechError(Exception):
    """Base of every error raised by the Speech clients."""

    def __init__(self, message: str) -> None:
        self.message = redact(message)
        super().__init__(self.message)


class SpeechConnectionError(SpeechError):
    """The request could not be completed at the transport level."""

    def __init__(self, message: str, *, request_sent: bool) -> None:
        super().__init__(message)
        #: False when the service provably never saw the request (connect failed).
        self.request_sent = request_sent


class SpeechTimeoutError(SpeechConnectionError):
    """A connect, read, write or pool timeout elapsed."""


class SpeechHTTPError(SpeechError):
    """The service answered with a status that is not a success."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        inner_code: str | None = None,
        request_id: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        #: The service's top-level ``code`` (``ErrorCode``), e.g. ``InvalidRequest``.
        self.code = code
        #: The innermost ``innerError.code`` (``DetailedErrorCode``), e.g. ``InvalidLocale``.
        self.inner_code = inner_code
        self.request_id = request_id
        self.body = body

    def __str__(self) -> str:
        parts = [f"HTTP {self.status_code}"]
        if self.code:
            parts.append(self.code if not self.inner_code else f"{self.code}/{self.inner_code}")
        text = " ".join(parts) + f": {self.message}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


class BadRequestError(SpeechHTTPError):
    """400: the service rejected the request as invalid."""


class AuthenticationError(SpeechHTTPError):
    """401: the key or token is missing, wrong or expired."""


class PermissionDeniedError(SpeechHTTPError):
    """403: the identity lacks a role, or the operation is not allowed."""


class NotFoundError(SpeechHTTPError):
    """404: the entity does not exist (or has expired)."""


class ConflictError(SpeechHTTPError):
    """409: the entity's state does not allow the operation."""


class RateLimitError(SpeechHTTPError):
    """429: quota exceeded; ``retry_after`` is the service's wait hint in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(SpeechHTTPError):
    """5xx: the service failed; usually worth retrying later."""


_BY_STATUS: dict[int, type[SpeechHTTPError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


def request_id_of(response: httpx.Response) -> str | None:
    """The request id the service assigned, for support cases and log correlation."""
    for name in _REQUEST_ID_HEADERS:
        value: str | None = response.headers.get(name)
        if value:
            return value
    return None


def _parse_error_body(response: httpx.Response) -> tuple[Any, str | None, str | None, str]:
    """(body, code, innermost inner code, message) from the spec's ``Error`` shape.

    The batch API returns ``Error`` at the top level; some front ends (APIM, the STS)
    wrap it as ``{"error": {...}}``. Anything else is reported as text.
    """
    text = response.text
    try:
        body: Any = json.loads(text) if text else None
    except ValueError:
        return text, None, None, text.strip()[:500] or response.reason_phrase
    err = body.get("error") if isinstance(body, dict) and "error" in body else body
    if not isinstance(err, dict):
        return body, None, None, text.strip()[:500] or response.reason_phrase
    code = err.get("code") if isinstance(err.get("code"), str) else None
    inner_code = None
    inner = err.get("innerError") or err.get("innererror")
    while isinstance(inner, dict):
        if isinstance(inner.get("code"), str):
            inner_code = inner["code"]
        inner = inner.get("innerError") or inner.get("innererror")
    message = err.get("message")
    if not isinstance(message, str) or not message:
        message = response.reason_phrase or "request failed"
    return body, code, inner_code, message


def error_from_response(
    response: httpx.Response, *, retry_after: float | None = None
) -> SpeechHTTPError:
    """Build the exception that matches ``response``'s status; the body must be read."""
    body, code, inner_code, message = _parse_error_body(response)
    status = response.status_code
    kwargs: dict[str, Any] = {
        "status_code": status,
        "code": code,
        "inner_code": inner_code,
        "request_id": request_id_of(response),
        "body": body,
    }
    if status == 429:
        return RateLimitError(message, retry_after=retry_after, **kwargs)
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else SpeechHTTPError)
    return cls(message, **kwargs)
