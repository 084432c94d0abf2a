"""HTTP: where is my file? Transcription status from the ledger, and a health check."""

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response

bp = func.Blueprint()


@bp.function_name("transcriptions")
@bp.route(route="transcriptions", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def transcriptions(req: Request) -> Response:
    """``GET /api/transcriptions?state=&prefix=``: a page of known input files."""
    from shared.app_context import get_context
    from shared.http.status import list_transcriptions

    return await list_transcriptions(req, await get_context())


@bp.function_name("transcription")
@bp.route(route="transcriptions/{*path}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def transcription(req: Request) -> Response:
    """``GET /api/transcriptions/{path}``: one input file's state, outputs and history."""
    from shared.app_context import get_context
    from shared.http.status import get_transcription

    return await get_transcription(req, await get_context(), req.path_params.get("path", ""))


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def health(req: Request) -> Response:
    """``GET /api/health``: settings valid and the ledger reachable."""
    from shared.app_context import get_context
    from shared.http.status import health as check

    return await check(await get_context())
