"""``GET /api/transcriptions[/{path}]``: where is my file, from the ledger.

Thin HTTP wrappers around :mod:`shared.pipeline.queries`: query parameters in, JSON out, every bad
argument a 400 in the API's error shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.http.params import integer, one
from shared.http.problems import ApiProblem
from shared.redact import get_logger

if TYPE_CHECKING:
    from shared.app_context import AppContext

_log = get_logger(__name__)
_PROBE_JOB_ID = "00000000-0000-0000-0000-000000000000"


def _bad_argument(exc: ValueError) -> ApiProblem:
    return ApiProblem(400, "InvalidParameter", str(exc))


async def list_transcriptions(request: Request, ctx: AppContext) -> Response:
    """One page of the ledger: ``state``, ``prefix``, ``container``, ``limit``, ``continuation``."""
    from shared.pipeline import queries

    try:
        query = request.query_params
        limit = integer("limit", one(query, "limit"), minimum=1, maximum=queries.MAX_PAGE_SIZE)
        page = await queries.list_transcriptions(
            ctx,
            state=one(query, "state"),
            prefix=one(query, "prefix"),
            container=one(query, "container"),
            continuation=one(query, "continuation"),
            limit=limit or queries.DEFAULT_PAGE_SIZE,
        )
    except ApiProblem as problem:
        return problem.response()
    except ValueError as exc:
        return _bad_argument(exc).response()
    return JSONResponse(page.model_dump(mode="json", exclude_none=True))


async def get_transcription(request: Request, ctx: AppContext, path: str) -> Response:
    """Where one input file is: its latest version's state, outputs and history."""
    from shared.pipeline import queries

    try:
        found = await queries.get_transcription(
            ctx, path, container=one(request.query_params, "container")
        )
    except ApiProblem as problem:
        return problem.response()
    except ValueError as exc:
        return _bad_argument(exc).response()
    if found is None:
        return ApiProblem(
            404, "NotFound", f"no transcription is known for {path!r}", path=path
        ).response()
    return JSONResponse(found.model_dump(mode="json", exclude_none=True))
