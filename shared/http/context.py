"""Every HTTP function's body runs through :func:`with_context`, so every answer is JSON.

The functions need the process's :class:`~shared.app_context.AppContext`, and building it
can fail: the managed identity cannot get a token (not assigned, wrong
``AudioStorage__clientId``, the identity endpoint down), a setting is invalid, storage is
unreachable. Left alone, any of these escapes the function and the worker answers a
plain-text 500. Here each becomes the API's JSON problem — 503, a stable code, a hint of
what to check — and the exception's own text only goes to the (redacted) log: Azure SDK
messages quote identity endpoints and responses, which is no business of an HTTP caller.
A failed build is not kept (:func:`~shared.app_context.get_context` builds again on the next
call), so the app recovers as soon as its identity or settings do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from traceback import format_exception
from typing import TYPE_CHECKING

from starlette.responses import Response

from shared.http.problems import ApiProblem
from shared.redact import get_logger

if TYPE_CHECKING:
    from shared.app_context import AppContext

_log = get_logger("shared.http.context")

#: What to check when the app cannot get or use a token for its managed identity.
IDENTITY_HINT = (
    "check that the Function App has a managed identity assigned; for a user-assigned one, "
    "that AudioStorage__clientId is its client id; that it holds its roles on the storage "
    "account and the Speech resource; offline, that IDENTITY_ENDPOINT and IDENTITY_HEADER "
    "point at a running identity endpoint"
)
STORAGE_HINT = (
    "check AudioStorage__blobServiceUri / AudioStorage__tableServiceUri (or the AudioStorage "
    "connection string) and that the storage account is reachable from the app"
)


def problem_for(exc: Exception, *, building: bool) -> ApiProblem:
    """The answer for ``exc``, raised while building the context or while using it."""
    # Imported here: the Azure SDK costs a few hundred ms, paid only when something failed.
    from azure.core.exceptions import AzureError, ClientAuthenticationError

    from shared.config import SettingsError

    if isinstance(exc, SettingsError):
        # Its message names each bad setting, without pydantic's echo of the input.
        return ApiProblem(503, "InvalidSettings", str(exc), retryable=False)
    if isinstance(exc, ClientAuthenticationError):
        # Raised when no token could be had (CredentialUnavailableError is one) and when
        # storage refused the token it got (401): both are the identity's setup.
        return ApiProblem(
            503,
            "IdentityUnavailable",
            "The app's managed identity could not authenticate, so it cannot reach storage "
            f"or Speech. Likely cause: {IDENTITY_HINT}. Details are in the app's log.",
            hint=IDENTITY_HINT,
            cause=type(exc).__name__,
            retryable=True,
        )
    if isinstance(exc, AzureError):
        return ApiProblem(
            503,
            "StorageUnavailable",
            f"The app cannot reach its storage ({type(exc).__name__}). Likely cause: "
            f"{STORAGE_HINT}. Details are in the app's log.",
            hint=STORAGE_HINT,
            cause=type(exc).__name__,
            retryable=True,
        )
    if building:
        return ApiProblem(
            503,
            "AppUnavailable",
            f"The app could not start ({type(exc).__name__}); details are in its log.",
            cause=type(exc).__name__,
            retryable=True,
        )
    return ApiProblem(500, "InternalError", "The app failed to answer; details are in its log.")


async def with_context(
    work: Callable[[AppContext], Awaitable[Response]],
    *,
    unavailable: Callable[[ApiProblem], Response] = ApiProblem.response,
) -> Response:
    """``work(ctx)``'s response, or the JSON problem for whatever kept it from answering.

    ``unavailable`` renders the problem when the context cannot be built (the health check
    keeps its own shape). A failure inside ``work`` that its handler did not answer — a
    token that can no longer be had, storage gone — is mapped the same way, else a 500.
    """
    from shared.app_context import get_context

    try:
        ctx = await get_context()
    except Exception as exc:
        problem = problem_for(exc, building=True)
        _log.warning("app context unavailable (%s): %s: %s", problem.code, type(exc).__name__, exc)
        return unavailable(problem)
    try:
        return await work(ctx)
    except Exception as exc:
        problem = problem_for(exc, building=False)
        # The traceback goes through the message, so the log's redaction scrubs it too
        # (exc_info would be formatted after the filter has run).
        _log.error("request failed (%s): %s", problem.code, "".join(format_exception(exc)))
        return problem.response()
