"""Error responses, in the shapes the real service uses on each surface.

* The Speech-to-Text REST API (``/speechtotext/...``) answers with the spec's ``Error``
  definition at the top level: ``{"code", "message", "innerError": {"code", "message"}}``,
  ``code`` from ``ErrorCode`` and the inner code from ``DetailedErrorCode`` (see seed 000's
  400 example: ``InvalidRequest`` / ``InvalidBaseModel``).
* The Cognitive Services front end (authentication, the STS, short audio) wraps its errors
  as ``{"error": {"code", "message"}}``, e.g. ``{"error": {"code": "401", "message":
  "Access denied due to invalid subscription key or wrong API endpoint. ..."}}``.

Handlers raise :class:`ApiError`; the request pipeline turns it into the response.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse, Response

#: The APIM messages Cognitive Services answers with for a missing or wrong key.
MISSING_KEY_MESSAGE = (
    "Access denied due to missing subscription key. Make sure to include subscription key "
    "when making requests to an API."
)
INVALID_KEY_MESSAGE = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
    "a valid key for an active subscription and use a correct regional API endpoint for your "
    "resource."
)
#: What Cognitive Services answers for a bearer token it cannot accept (missing, bad
#: signature, wrong audience, expired); the audience in brackets is the expected one.
INVALID_TOKEN_MESSAGE = (
    "Unauthorized. Access token is missing, invalid, audience is incorrect ({audience}), "
    "or have expired."
)


class ApiError(Exception):
    """An HTTP error answer: status, JSON body and extra headers."""

    def __init__(
        self,
        status: int,
        body: Mapping[str, Any],
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        inner = body.get("error", body)
        message = str(inner.get("message", "")) if isinstance(inner, Mapping) else ""
        super().__init__(f"{status} {message}")
        self.status = status
        self.body = body
        self.headers = dict(headers or {})

    def response(self) -> Response:
        """The error as a Starlette response."""
        return JSONResponse(dict(self.body), status_code=self.status, headers=self.headers)


def spec_error(
    status: int,
    code: str,
    message: str,
    inner_code: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> ApiError:
    """A ``/speechtotext`` error with the spec's ``Error`` body (and ``innerError`` if given)."""
    body: dict[str, Any] = {"code": code, "message": message}
    if inner_code is not None:
        body["innerError"] = {"code": inner_code, "message": message}
    return ApiError(status, body, headers=headers)


def bad_request(inner_code: str, message: str) -> ApiError:
    """400 ``InvalidRequest`` with a ``DetailedErrorCode``: every validation failure."""
    return spec_error(400, "InvalidRequest", message, inner_code)


def not_found(message: str) -> ApiError:
    """404 ``NotFound`` with the spec's ``Error`` body."""
    return spec_error(404, "NotFound", message)


def front_end_error(
    status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
) -> ApiError:
    """An error of the Cognitive Services front end: ``{"error": {"code", "message"}}``."""
    return ApiError(status, {"error": {"code": code, "message": message}}, headers=headers)
