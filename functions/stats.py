"""HTTP: how the pipeline is doing: versions per state, the oldest wait, usage and cost."""

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response

bp = func.Blueprint()


@bp.function_name("stats")
@bp.route(route="stats", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def stats(req: Request) -> Response:
    """``GET /api/stats?days=30``: states, oldest waiting file, usage per day and prefix."""
    from shared.http.context import with_context
    from shared.http.stats import stats as answer

    return await with_context(lambda ctx: answer(req, ctx))
