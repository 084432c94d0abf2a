"""``/api/speech/webhooks``: where the Speech service announces finished transcriptions.

The route is anonymous at the host (the service cannot send a function key) and
authenticated here instead: every delivery must carry ``X-MicrosoftSpeechServices-
Signature``, the base64 HMAC-SHA256 of the exact body keyed with ``SPEECH_WEBHOOK_SECRET``,
compared in constant time. Missing, malformed or wrong: 401, and nothing happens. A replayed
body is harmless (making a due job due again changes nothing).

The registration challenge is answered without a secret, as Microsoft's "Web Hooks -
Create" page prescribes: a request with event ``challenge`` and a ``validationToken`` query
parameter gets 200 with the token as its body
(https://learn.microsoft.com/rest/api/speechtotext/web-hooks/create). A signed challenge
must still carry a valid signature; the token must look like a token (nothing else is
reflected).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from shared.http.body import MeteredBody
from shared.http.problems import ApiProblem
from shared.redact import get_logger
from shared.speech.webhook_signature import EVENT_HEADER, SIGNATURE_HEADER, verify

if TYPE_CHECKING:
    from shared.app_context import AppContext

_log = get_logger(__name__)

#: A delivery is one transcription entity: a few KiB. Anything far bigger is not ours.
MAX_BODY_BYTES = 1024**2
_TOKEN = re.compile(r"^[A-Za-z0-9._~+/=-]{1,512}$")


def _problem(status: int, code: str, message: str) -> Response:
    return ApiProblem(status, code, message).response()


async def speech_webhook(request: Request, ctx: AppContext) -> Response:
    """Answer one call from the Speech service (challenge, ping or event)."""
    settings = ctx.settings
    secret = settings.speech_webhook_secret
    if not settings.speech_webhooks or secret is None:
        return _problem(
            404, "WebHooksOff", "Speech web hooks are off here (app setting SPEECH_WEBHOOKS)."
        )
    event = (request.headers.get(EVENT_HEADER) or "").strip()
    try:
        body = b"".join(
            [c async for c in MeteredBody(request.stream(), max_bytes=MAX_BODY_BYTES).chunks()]
        )
    except ApiProblem as problem:
        return problem.response()
    signature = request.headers.get(SIGNATURE_HEADER)
    token = request.query_params.get("validationToken")
    if token is not None or event.lower() == "challenge":
        if token is None or not _TOKEN.match(token):
            return _problem(400, "InvalidChallenge", "The challenge has no usable validationToken.")
        if signature is not None and not verify(secret.get_secret_value(), body, signature):
            return _problem(401, "InvalidSignature", "The challenge's signature does not match.")
        _log.info("web hook: challenge answered")
        return PlainTextResponse(token)
    if not signature:
        _log.warning("web hook: a delivery without %s was refused", SIGNATURE_HEADER)
        return _problem(401, "MissingSignature", f"The request has no {SIGNATURE_HEADER} header.")
    if not verify(secret.get_secret_value(), body, signature):
        _log.warning("web hook: a delivery with a wrong signature was refused")
        return _problem(401, "InvalidSignature", "The signature does not match the body.")
    if event == "transcriptionCompletion":
        from shared.pipeline.speech_hook import on_completion

        job_id, due = await on_completion(ctx, body)
        return JSONResponse({"event": event, "job": job_id, "due": due})
    # ping, test events and anything registered later: acknowledged, nothing to do.
    return JSONResponse({"event": event or None, "due": False})
