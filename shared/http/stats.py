"""``GET /api/stats``: states now, the oldest wait, usage and cost, from the counters.

A thin wrapper around :mod:`shared.pipeline.stats`: ``days`` (1..366, default 30) in,
``{"states": {...}, "oldestWaiting": {...} | null, "usage": {...}}`` out, camelCase.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.http.params import integer, one
from shared.http.problems import ApiProblem

if TYPE_CHECKING:
    from shared.app_context import AppContext

DEFAULT_DAYS = 30


async def stats(request: Request, ctx: AppContext) -> Response:
    """The pipeline's figures; a bad ``days`` is a 400 naming it."""
    from shared.pipeline import stats as figures

    try:
        days = integer(
            "days", one(request.query_params, "days"), minimum=1, maximum=figures.MAX_DAYS
        )
    except ApiProblem as problem:
        return problem.response()
    states, waiting, usage = await asyncio.gather(
        figures.state_counts(ctx),
        figures.oldest_waiting(ctx),
        figures.usage(ctx, days=days or DEFAULT_DAYS),
    )
    return JSONResponse(
        {
            "states": states,
            "oldestWaiting": waiting.model_dump(mode="json") if waiting else None,
            "usage": usage.model_dump(mode="json"),
        }
    )
