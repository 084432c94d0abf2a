"""``POST /api/transcriptions/{path}:retry|:cancel`` and ``POST /api/retry``: operator actions.

Thin HTTP wrappers around :mod:`shared.pipeline.actions`. Azure Functions cannot route a
suffix after a catch-all segment, so one function takes every ``POST`` under
``transcriptions/`` and the action is the part of the path after its last ``:``. Answers
are 202 with the version's new status; refusals are the API's JSON errors (400 for a bad
parameter, 404 for an unknown version, 409 when its state does not allow the action).

``redirect=ui`` answers a success with 303 See Other to the file's status page instead
(the page posts its forms here), carrying the function key (``code``) along; errors stay
JSON either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from shared.http.params import integer, one
from shared.http.problems import ApiProblem, invalid_parameter

if TYPE_CHECKING:
    from shared.app_context import AppContext
    from shared.pipeline.actions import ActionError

#: The actions a path may end with, after its last ``:``.
ACTIONS = ("retry", "cancel")
#: Where ``redirect=ui`` sends the caller: the status page of one file (or the list).
UI_FILE_ROUTE = "/api/ui/files/"


def split_action(path: str) -> tuple[str, str]:
    """``dir/a.wav:retry`` -> (``dir/a.wav``, ``retry``); 400 naming ``path`` otherwise."""
    target, colon, action = path.rpartition(":")
    if not colon or action not in ACTIONS:
        raise invalid_parameter(
            "path",
            "the path must end with :retry or :cancel (POST /api/transcriptions/{path}:retry); "
            f"got '{path[-60:]}'",
            accepted=[f":{name}" for name in ACTIONS],
        )
    if not target.strip("/"):
        raise invalid_parameter("path", f"':{action}' must follow the path of a blob")
    return target, action


def _redirect(request: Request) -> bool:
    """True for ``redirect=ui``; 400 for any other value."""
    value = one(request.query_params, "redirect")
    if value is None:
        return False
    if value.lower() != "ui":
        raise invalid_parameter(
            "redirect", f"'redirect' can only be 'ui'; got '{value[:40]}'", accepted=["ui"]
        )
    return True


def ui_location(request: Request, path: str) -> str:
    """The status page of ``path``, with the caller's ``code`` (and ``container``) kept."""
    query = {
        name: value
        for name in ("code", "container")
        if (value := one(request.query_params, name)) is not None
    }
    suffix = f"?{urlencode(query)}" if query else ""
    return f"{UI_FILE_ROUTE}{quote(path.lstrip('/'), safe='/')}{suffix}"


def ui_list_location(request: Request) -> str:
    """The status page's list, filtered as the bulk re-run was, with the caller's ``code``."""
    query = {
        name: value
        for name in ("code", "state", "prefix", "container")
        if (value := one(request.query_params, name)) is not None
    }
    return f"/api/ui?{urlencode(query)}" if query else "/api/ui"


def _problem(exc: ActionError) -> ApiProblem:
    return ApiProblem(exc.status, exc.code, exc.message, **exc.details)


async def transcription_action(request: Request, ctx: AppContext, path: str) -> Response:
    """Re-run or cancel one version: ``container`` and ``etag`` pick it (default: newest)."""
    from shared.pipeline import actions

    try:
        target, action = split_action(path)
        redirect = _redirect(request)
        query = request.query_params
        container, etag = one(query, "container"), one(query, "etag")
        body: dict[str, Any]
        if action == "retry":
            status = await actions.retry_version(ctx, container, target, etag)
            body = status.model_dump(mode="json", exclude_none=True)
        else:
            result = await actions.cancel_version(ctx, container, target, etag)
            body = result.status.model_dump(mode="json", exclude_none=True)
            if result.pending is not None:
                body["pending"] = result.pending
    except ApiProblem as problem:
        return problem.response()
    except actions.ActionError as refused:
        return _problem(refused).response()
    if redirect:
        return RedirectResponse(ui_location(request, target), status_code=303)
    return JSONResponse(body, status_code=202)


async def retry_many(request: Request, ctx: AppContext) -> Response:
    """Re-run a page of versions: ``state``, ``prefix``, ``container``, ``limit``, ``continuation``.

    Answers ``{"requeued", "skipped", "continuation"}``; repeat with the token until it is null.
    """
    from shared.pipeline import actions

    try:
        redirect = _redirect(request)
        query = request.query_params
        result = await actions.retry_many(
            ctx,
            state=one(query, "state"),
            prefix=one(query, "prefix"),
            container=one(query, "container"),
            limit=integer(
                "limit", one(query, "limit"), minimum=1, maximum=ctx.settings.retry_max_per_call
            ),
            continuation=one(query, "continuation"),
        )
    except ApiProblem as problem:
        return problem.response()
    except actions.ActionError as refused:
        return _problem(refused).response()
    if redirect:
        return RedirectResponse(ui_list_location(request), status_code=303)
    return JSONResponse(result.model_dump(mode="json"), status_code=202)
