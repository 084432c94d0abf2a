"""``POST /api/transcribe``: fast transcription of one file, returned synchronously.

Two ways in. The body is the audio itself (any format fast transcription reads), streamed to
the service chunk by chunk and counted against ``settings.transcribe_max_bytes``; or, with
Speech API version 2025-10-15, a JSON body ``{"audioUrl": "https://..."}`` that the service
fetches itself. Options are query parameters: ``locale`` (one or more, comma-separated; none
lets the service identify the language), ``diarization``, ``maxSpeakers``, ``channels``,
``profanity``. The answer is the service's ``TranscribeResult`` as it came.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.audio_formats import SNIFF_BYTES, sniff
from shared.http import params
from shared.http.body import MeteredBody
from shared.http.exchange import Exchange, answer
from shared.http.problems import ApiProblem, invalid_parameter
from shared.redact import get_logger
from shared.speech.models import ProfanityFilterMode, TranscribeDefinition, TranscribeDiarization
from shared.speech.models.common import MAX_SPEAKERS, MIN_SPEAKERS

if TYPE_CHECKING:
    from shared.settings import AppSettings
    from shared.speech.fast import FastTranscriptionClient

_log = get_logger("shared.http.transcribe")

#: A JSON request holds one URL; anything near this size is not one.
JSON_MAX_BYTES = 64 * 1024
#: The formats fast transcription documents (those of batch transcription).
ACCEPTED_FORMATS = [
    "WAV (PCM, A-law, mu-law)",
    "MP3",
    "Ogg (Opus, Speex)",
    "FLAC",
    "WMA",
    "AAC",
    "AMR",
    "WebM",
    "M4A / MP4 audio",
]
#: Model fields -> request names, for validation messages. The query options are checked
#: before the model is built; its own rules are left for ``audioUrl`` (an http(s) URL).
_NAMES = {"audio_url": "audioUrl"}


def _locales(request: Request) -> list[str] | None:
    values = request.query_params.getlist("locale")
    locales = [
        params.locale("locale", item.strip())
        for value in values
        for item in value.split(",")
        if item.strip()
    ]
    return locales or None


def _channels(raw: str | None) -> list[int] | None:
    """``0``, ``1`` or ``0,1``: the channels to transcribe separately (at most two)."""
    if raw is None:
        return None
    items = [item.strip() for item in raw.split(",")]
    if not 1 <= len(items) <= 2 or len(set(items)) != len(items) or not set(items) <= {"0", "1"}:
        raise invalid_parameter(
            "channels",
            f"'channels' must be 0, 1 or 0,1 (fast transcription separates at most two "
            f"channels); got '{raw[:40]}'.",
        )
    return [int(item) for item in items]


def _definition_fields(request: Request) -> dict[str, Any]:
    """The definition's options from the query string, validated."""
    query = request.query_params
    diarize = params.boolean("diarization", params.one(query, "diarization"))
    speakers = params.integer(
        "maxSpeakers", params.one(query, "maxSpeakers"), minimum=MIN_SPEAKERS, maximum=MAX_SPEAKERS
    )
    if speakers is not None and diarize is False:
        raise invalid_parameter("maxSpeakers", "'maxSpeakers' needs diarization; drop one of them.")
    channels = _channels(params.one(query, "channels"))
    diarization = None
    if diarize or speakers is not None:
        if channels is not None and len(set(channels)) > 1:
            # "If the audio is stereo and diarization is enabled, then you can't set the
            # channels property to [0,1]" (Microsoft's fast transcription how-to).
            raise invalid_parameter(
                "channels", "Diarization cannot be combined with two channels (channels=0,1)."
            )
        diarization = TranscribeDiarization(enabled=True, max_speakers=speakers)
    return {
        "locales": _locales(request),
        "profanity_filter_mode": params.choice(
            "profanity", params.one(query, "profanity"), ProfanityFilterMode
        ),
        "diarization": diarization,
        "channels": channels,
    }


def _definition(fields: dict[str, Any], audio_url: str | None = None) -> TranscribeDefinition:
    try:
        return TranscribeDefinition(**fields, audio_url=audio_url)
    except ValidationError as exc:
        raise params.from_validation_error(exc, _NAMES) from None


async def _audio_url(request: Request, fast: FastTranscriptionClient) -> str:
    """``audioUrl`` from a JSON body; only API version 2025-10-15 has it."""
    if fast.api_version == "2024-11-15":
        raise ApiProblem(
            400,
            "AudioUrlNotSupported",
            "A JSON body with 'audioUrl' needs Speech API version 2025-10-15, and this app "
            "uses 2024-11-15 (app setting SPEECH_API_VERSION). Send the audio itself as the "
            "request body instead.",
            apiVersion=fast.api_version,
        )
    body = MeteredBody(request.stream(), max_bytes=JSON_MAX_BYTES)
    raw = b"".join([chunk async for chunk in body.chunks()])
    try:
        document = json.loads(raw)
    except ValueError:
        raise ApiProblem(400, "InvalidJson", "The request body is not valid JSON.") from None
    if not isinstance(document, dict) or not isinstance(document.get("audioUrl"), str):
        raise invalid_parameter(
            "audioUrl", 'The JSON body must be an object {"audioUrl": "https://..."}.'
        )
    unknown = sorted(set(document) - {"audioUrl"})
    if unknown:
        raise invalid_parameter(
            unknown[0],
            f"Unknown field(s) {', '.join(unknown)[:200]} in the JSON body; it holds only "
            "'audioUrl', options go in the query string.",
        )
    url: str = document["audioUrl"]
    return url


def _check_declared_length(request: Request, limit: int) -> None:
    """413 before reading anything when Content-Length already says the body is too big."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiProblem(
            413,
            "PayloadTooLarge",
            f"The audio is {int(declared)} bytes; fast transcription takes files up to "
            f"{limit} bytes. Use batch transcription (upload to the input container) instead.",
            maxBytes=limit,
        )


async def _transcribe_upload(
    request: Request,
    fast: FastTranscriptionClient,
    body: MeteredBody,
    definition: TranscribeDefinition,
) -> JSONResponse:
    head = await body.read_head(min_bytes=SNIFF_BYTES)
    container = sniff(head)
    if container is None:
        raise params.unsupported_media_type(
            "The body is not audio in a format fast transcription reads.", ACCEPTED_FORMATS
        )
    media, _ = params.media_type(request.headers.get("content-type"))
    result = await fast.transcribe(
        body.chunks(),
        definition,
        filename=f"audio.{container}",
        # The caller's type when it names audio; the service reads the format from the bytes.
        content_type=media
        if media.startswith(("audio/", "video/"))
        else "application/octet-stream",
    )
    return JSONResponse(result.to_dict())


async def transcribe(
    request: Request, fast: FastTranscriptionClient, settings: AppSettings
) -> Response:
    """Handle ``POST /api/transcribe[?locale=..&diarization=..&maxSpeakers=..&channels=..
    &profanity=..]``.

    The body is the audio (streamed, at most ``settings.transcribe_max_bytes``) or, with API
    version 2025-10-15, JSON ``{"audioUrl": ...}``. Answers 200 with the service's
    ``TranscribeResult``; errors are JSON ``{"error": {"code", "message", ...}}``.
    """

    async def work(exchange: Exchange) -> Response:
        fields = _definition_fields(request)
        media, _ = params.media_type(request.headers.get("content-type"))
        if media == "application/json":
            definition = _definition(fields, await _audio_url(request, fast))
            result = await fast.transcribe(None, definition)
            response: Response = JSONResponse(result.to_dict())
        elif media.startswith("multipart/"):
            raise params.unsupported_media_type(
                "Send the audio itself as the request body (not a form), or JSON "
                '{"audioUrl": ...}.',
                ACCEPTED_FORMATS,
            )
        else:
            _check_declared_length(request, settings.transcribe_max_bytes)
            definition = _definition(fields)
            body = MeteredBody(request.stream(), max_bytes=settings.transcribe_max_bytes)
            exchange.body = body
            response = await _transcribe_upload(request, fast, body, definition)
        exchange.outcome = "ok"
        return response

    return await answer(
        "transcribe", work, auth_mode=settings.speech.auth_mode, short_audio=False, log=_log
    )
