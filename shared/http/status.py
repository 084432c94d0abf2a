"""``GET /api/transcriptions[/{path}]`` and ``GET /api/health`` over the ledger.

Thin HTTP wrappers around :mod:`shared.status`: query parameters in, JSON out, every bad
argument a 400 in the API's error shape.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.http.params import integer, one
from shared.http.problems import ApiProblem
from shared.speech.redact import get_logger

if TYPE_CHECKING:
    from shared.app_context import AppContext

_log = get_logger("shared.http.status")
_PROBE_JOB_ID = "00000000-0000-0000-0000-000000000000"


def _bad_argument(exc: ValueError) -> ApiProblem:
    return ApiProblem(400, "InvalidParameter", str(exc))


async def list_transcriptions(request: Request, ctx: AppContext) -> Response:
    """One page of the ledger: ``state``, ``prefix``, ``container``, ``limit``, ``continuation``."""
    from shared import status

    try:
        query = request.query_params
        limit = integer("limit", one(query, "limit"), minimum=1, maximum=status.MAX_PAGE_SIZE)
        page = await status.list_transcriptions(
            ctx,
            state=one(query, "state"),
            prefix=one(query, "prefix"),
            container=one(query, "container"),
            continuation=one(query, "continuation"),
            limit=limit or status.DEFAULT_PAGE_SIZE,
        )
    except ApiProblem as problem:
        return problem.response()
    except ValueError as exc:
        return _bad_argument(exc).response()
    return JSONResponse(page.model_dump(mode="json", exclude_none=True))


async def get_transcription(request: Request, ctx: AppContext, path: str) -> Response:
    """Where one input file is: its latest version's state, outputs and history."""
    from shared import status

    try:
        found = await status.get_transcription(
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


async def health(ctx: AppContext) -> Response:
    """200 when settings loaded and the ledger answers; 503 naming what failed otherwise.

    When the context itself cannot be built, :func:`unavailable` answers instead.
    """
    started = time.perf_counter()
    checks: dict[str, str] = {"settings": "ok"}
    status_code = 200
    try:
        # A point read of a row that never exists: one cheap round trip to the table.
        await asyncio.wait_for(ctx.ledger.get_job(_PROBE_JOB_ID), timeout=10)
        checks["ledger"] = "ok"
    except Exception as exc:  # any failure is the answer, not a crash
        _log.warning("health: ledger unreachable: %s", type(exc).__name__)
        checks["ledger"] = f"unreachable ({type(exc).__name__})"
        status_code = 503
    return JSONResponse(
        {
            "status": "ok" if status_code == 200 else "degraded",
            "checks": checks,
            "speechEndpoint": ctx.speech.endpoints.batch_base,
            "elapsedMs": round((time.perf_counter() - started) * 1000, 1),
        },
        status_code=status_code,
    )


def unavailable(problem: ApiProblem) -> Response:
    """The health answer when the app cannot build its context: the usual shape, and why.

    ``checks`` says which part failed (settings, or the ledger behind the identity or
    storage), ``error`` is the API's problem body with its hint; always 503.
    """
    if problem.code == "InvalidSettings":
        checks = {"settings": "invalid"}
    else:
        # The build loads the settings first, then opens the ledger table.
        checks = {"settings": "ok", "ledger": f"unreachable ({problem.code})"}
    return JSONResponse(
        {
            "status": "degraded",
            "checks": checks,
            "speechEndpoint": None,
            "error": problem.body(),
        },
        status_code=503,
    )
