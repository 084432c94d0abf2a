"""``GET /api/ui`` and ``GET /api/ui/files/{path}``: the status page, for people.

Query parameters in, HTML out. Every error is a page too — 400 naming the bad parameter,
404 for a path the ledger never saw, 503 when the app cannot reach its storage — so a person
who follows a stale link reads a sentence, not a JSON document. The pages themselves are
built in :mod:`shared.http.ui.pages` and rendered by :mod:`shared.http.ui.render`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from traceback import format_exception
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from shared.http.context import problem_for
from shared.http.params import integer, one
from shared.http.problems import ApiProblem, invalid_parameter
from shared.http.ui import pages, render
from shared.http.ui.links import Links
from shared.pipeline import queries
from shared.redact import get_logger

if TYPE_CHECKING:
    from shared.app_context import AppContext

_log = get_logger(__name__)

#: Storage's rule for container names: 3-63 of a-z, 0-9 and single hyphens.
_CONTAINER = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
#: Longest blob name Storage allows, so the longest prefix worth asking for.
MAX_PREFIX_CHARS = 1024


def _links(request: Request, container: str | None) -> Links:
    # Only the function key is carried forward: it is what the host wants on every request.
    return Links(code=request.query_params.get("code") or None, container=container)


def problem_page(problem: ApiProblem, request: Request | None = None) -> Response:
    """An error as a page: the status, the message, and the parameter to fix if one is bad.

    Its one link, back to the list page, keeps the ``code`` of ``request``.
    """
    return render.page(
        "error.html.j2",
        status=problem.status,
        problem=problem,
        parameter=problem.details.get("parameter"),
        links=_links(request, None) if request is not None else Links(),
    )


def _container(request: Request) -> str | None:
    container = one(request.query_params, "container")
    if container is not None and not _CONTAINER.match(container):
        raise invalid_parameter(
            "container", "'container' must be a storage container name (3-63 of a-z, 0-9, -)."
        )
    return container


def _filters(request: Request) -> pages.Filters:
    query = request.query_params
    try:
        state = queries.parse_state(one(query, "state"))
    except ValueError as exc:
        raise invalid_parameter("state", str(exc)) from None
    prefix = one(query, "prefix")
    if prefix is not None and len(prefix) > MAX_PREFIX_CHARS:
        raise invalid_parameter("prefix", f"'prefix' is longer than {MAX_PREFIX_CHARS} characters.")
    continuation = one(query, "continuation")
    try:
        queries.decode_continuation(continuation)
    except ValueError as exc:
        raise invalid_parameter("continuation", str(exc)) from None
    limit = integer("limit", one(query, "limit"), minimum=1, maximum=queries.MAX_PAGE_SIZE)
    return pages.Filters(
        state=state,
        prefix=prefix,
        container=_container(request),
        limit=limit or queries.DEFAULT_PAGE_SIZE,
        continuation=continuation,
    )


async def _answer(
    request: Request, work: Callable[[Links], Awaitable[Response]], *, container: str | None
) -> Response:
    """``work``'s page, or the page for what kept it from answering."""
    try:
        return await work(_links(request, container))
    except Exception as exc:
        # The same mapping and log line as with_context's, but answered as a page.
        failure = problem_for(exc, building=False)
        _log.error("status page failed (%s): %s", failure.code, "".join(format_exception(exc)))
        return problem_page(failure, request)


async def list_page(request: Request, ctx: AppContext) -> Response:
    """The list page: counts, oldest waiting, failures, a filtered page of files, usage."""
    try:
        filters = _filters(request)
    except ApiProblem as problem:
        return problem_page(problem, request)

    async def work(links: Links) -> Response:
        view = await pages.list_view(ctx, filters)
        return render.page(
            "list.html.j2",
            view=view,
            links=links,
            refresh_seconds=view.refresh_seconds,
        )

    return await _answer(request, work, container=filters.container)


async def file_page(request: Request, ctx: AppContext, path: str) -> Response:
    """One file's page: its versions, events, transcript head and download links."""
    path = path.lstrip("/")
    try:
        container = _container(request)
        if not path:
            raise invalid_parameter("path", "the URL must name a file: /api/ui/files/<path>.")
    except ApiProblem as problem:
        return problem_page(problem, request)

    async def work(links: Links) -> Response:
        view = await pages.file_view(ctx, path, container=container)
        if view is None:
            return render.page(
                "missing.html.j2",
                status=404,
                path=path,
                container=container or ctx.settings.input_container,
                links=links,
            )
        return render.page(
            "file.html.j2",
            view=view,
            links=links,
            refresh_seconds=view.refresh_seconds,
            rerunnable=pages.RERUNNABLE,
            cancellable=pages.CANCELLABLE,
        )

    return await _answer(request, work, container=container)
