"""HTTP: where is my file? Transcription status from the ledger."""

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response

bp = func.Blueprint()


@bp.function_name("transcriptions")
@bp.route(route="transcriptions", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def transcriptions(req: Request) -> Response:
    """``GET /api/transcriptions?state=&prefix=``: a page of known input files."""
    from shared.http.context import with_context
    from shared.http.transcriptions import list_transcriptions

    return await with_context(lambda ctx: list_transcriptions(req, ctx))


@bp.function_name("transcription")
@bp.route(route="transcriptions/{*path}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def transcription(req: Request) -> Response:
    """``GET /api/transcriptions/{path}``: one input file's state, outputs and history."""
    from shared.http.context import with_context
    from shared.http.transcriptions import get_transcription

    path = req.path_params.get("path", "")
    return await with_context(lambda ctx: get_transcription(req, ctx, path))
