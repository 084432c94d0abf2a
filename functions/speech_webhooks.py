"""HTTP: the Speech service's web hook deliveries (see shared/http/speech_webhooks.py)."""

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response

bp = func.Blueprint()


# Anonymous at the host: the service cannot send a function key; every delivery is
# authenticated by its HMAC signature instead.
@bp.function_name("speech_webhooks")
@bp.route(route="speech/webhooks", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
async def speech_webhooks(req: Request) -> Response:
    """``POST /api/speech/webhooks``: a challenge, ping or transcription event from Speech."""
    from shared.http.context import with_context
    from shared.http.speech_webhooks import speech_webhook

    return await with_context(lambda ctx: speech_webhook(req, ctx))
