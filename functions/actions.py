"""HTTP: operator actions, re-run and cancel (``shared.http.actions`` does the work)."""

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response

bp = func.Blueprint()


@bp.function_name("transcription_action")
@bp.route(route="transcriptions/{*path}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def transcription_action(req: Request) -> Response:
    """``POST /api/transcriptions/{path}:retry`` or ``:cancel`` (one route: see the handler)."""
    from shared.http.actions import transcription_action as act
    from shared.http.context import with_context

    path = req.path_params.get("path", "")
    return await with_context(lambda ctx: act(req, ctx, path))


@bp.function_name("retry_many")
@bp.route(route="retry", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def retry_many(req: Request) -> Response:
    """``POST /api/retry?state=Failed&prefix=``: re-run a bounded page of versions."""
    from shared.http.actions import retry_many as act
    from shared.http.context import with_context

    return await with_context(lambda ctx: act(req, ctx))
