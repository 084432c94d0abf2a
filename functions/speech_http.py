"""HTTP: short-audio recognition and fast transcription, bodies streamed to Speech."""

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response

bp = func.Blueprint()


@bp.function_name("recognize")
@bp.route(route="recognize", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def recognize(req: Request) -> Response:
    """``POST /api/recognize?language=..``: WAV PCM / OGG OPUS, 16 kHz mono, up to 60 s."""
    from shared.http import recognize as handle
    from shared.http.context import with_context

    return await with_context(lambda ctx: handle(req, ctx.speech.short_audio(), ctx.settings))


@bp.function_name("transcribe")
@bp.route(route="transcribe", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def transcribe(req: Request) -> Response:
    """``POST /api/transcribe``: fast transcription of one file, returned directly."""
    from shared.http import transcribe as handle
    from shared.http.context import with_context

    return await with_context(lambda ctx: handle(req, ctx.speech.fast, ctx.settings))
