"""Fast transcription: ``POST /speechtotext/transcriptions:transcribe`` (multipart).

Parts: ``definition`` (JSON ``TranscribeDefinition``) and ``audio`` (the file). With
api-version 2025-10-15, ``definition.audioUrl`` may replace the audio part ("If both Audio
and AudioUrl are provided, Audio is used"). Limits from "Speech service quotas and limits"
(fast transcription): 200 MB and 120 minutes per file. Answers:

* 415 when the body is not ``multipart/form-data``;
* 400 ``InvalidRequest`` for a bad definition, a missing audio part or a file over 200 MB;
* 422 ``UnprocessableEntity`` when the audio cannot be decoded, is empty or longer than
  120 minutes (inner codes ``InvalidAudioFormat``, ``EmptyAudioFile``,
  ``AudioLengthLimitExceeded``, which only the 2025-10-15 ``DetailedErrorCode`` has, so
  2024-11-15 answers carry no inner error).

Multipart bodies are parsed with the standard library's MIME parser after reading at most
the size limit: the audio has to be in memory to be decoded anyway.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.emulator.asr import AudioDecodeError
from local.emulator.asr.results import fast_result
from local.emulator.catalog import TRANSCRIBE_LOCALES, canonical_locale
from local.emulator.errors import ApiError, bad_request, spec_error
from local.emulator.pipeline import Context, Kind, endpoint
from local.emulator.recognition import mix_down
from local.emulator.storage import TransferError
from local.emulator.validation import MAX_SPEAKERS, MIN_SPEAKERS, PROFANITY_MODES

MAX_AUDIO_BYTES = 200 * 1024 * 1024
MAX_AUDIO_SECONDS = 120 * 60.0
#: Room for the definition part and multipart framing on top of the audio.
_MULTIPART_OVERHEAD = 1024 * 1024


def _unprocessable(ctx: Context, inner_code: str, message: str) -> ApiError:
    inner = inner_code if ctx.api_version != "2024-11-15" else None
    return spec_error(422, "UnprocessableEntity", message, inner)


def _check_length(ctx: Context, seconds: float) -> None:
    if seconds > MAX_AUDIO_SECONDS:
        raise _unprocessable(
            ctx,
            "AudioLengthLimitExceeded",
            f"The audio is {seconds:.0f} seconds long; fast transcription accepts at most "
            f"{MAX_AUDIO_SECONDS:.0f} seconds.",
        )


async def _read_body(ctx: Context) -> bytes:
    limit = MAX_AUDIO_BYTES + _MULTIPART_OVERHEAD
    declared = ctx.request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise bad_request("InvalidParameterValue", "The audio file is larger than 200 MB.")
    received = bytearray()
    async for chunk in ctx.request.stream():
        received += chunk
        if len(received) > limit:
            raise bad_request("InvalidParameterValue", "The audio file is larger than 200 MB.")
    return bytes(received)


def _parts(content_type: str, body: bytes) -> dict[str, bytes]:
    """Form-data parts by name (the last of a repeated name wins)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise bad_request("InvalidRequestBodyFormat", "The multipart body cannot be parsed.")
    parts: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            parts[name] = payload if isinstance(payload, bytes) else b""
    return parts


def _definition(ctx: Context, raw: bytes | None) -> dict[str, Any]:
    try:
        definition = json.loads(raw) if raw is not None and raw.strip() else {}
    except ValueError:
        raise bad_request(
            "InvalidRequestBodyFormat", "The definition part is not valid JSON."
        ) from None
    if not isinstance(definition, dict):
        raise bad_request("InvalidRequestBodyFormat", "The definition must be a JSON object.")
    locales = definition.get("locales", [])
    if not isinstance(locales, list) or not all(isinstance(x, str) for x in locales):
        raise bad_request("InvalidParameterValue", "definition.locales must be a list of locales.")
    canonical = []
    for value in locales:
        locale = canonical_locale(value)
        if locale not in TRANSCRIBE_LOCALES:
            raise bad_request("InvalidLocale", f"The locale '{value}' is not supported.")
        canonical.append(locale)
    profanity = definition.get("profanityFilterMode", "Masked")
    if profanity not in PROFANITY_MODES:
        raise bad_request(
            "InvalidParameterValue",
            f"definition.profanityFilterMode must be one of {', '.join(PROFANITY_MODES)}.",
        )
    diarization = definition.get("diarization") or {}
    enabled = diarization.get("enabled", False) if isinstance(diarization, dict) else None
    speakers = diarization.get("maxSpeakers") if isinstance(diarization, dict) else None
    if not isinstance(enabled, bool) or (
        speakers is not None
        and (
            not isinstance(speakers, int)
            or isinstance(speakers, bool)
            or not MIN_SPEAKERS <= speakers <= MAX_SPEAKERS
        )
    ):
        raise bad_request(
            "InvalidParameterValue",
            f"definition.diarization needs a boolean 'enabled' and maxSpeakers from "
            f"{MIN_SPEAKERS} to {MAX_SPEAKERS}.",
        )
    channels = definition.get("channels")
    if channels is not None and (
        not isinstance(channels, list)
        or not 1 <= len(channels) <= 2
        or not all(isinstance(c, int) and not isinstance(c, bool) and c in (0, 1) for c in channels)
        or len(set(channels)) != len(channels)
    ):
        raise bad_request("InvalidChannels", "definition.channels must list channel 0 and/or 1.")
    if enabled and channels is not None and len(channels) > 1:
        # "If the audio is stereo and diarization is enabled, then you can't set the channels
        # property to [0,1]" (fast-transcription-create.md).
        raise bad_request("InvalidChannels", "Diarization cannot be combined with two channels.")
    audio_url = definition.get("audioUrl") if ctx.api_version != "2024-11-15" else None
    if audio_url is not None and (
        not isinstance(audio_url, str) or not audio_url.lower().startswith(("http://", "https://"))
    ):
        raise bad_request("InvalidParameterValue", "definition.audioUrl must be an http(s) URL.")
    return {
        "locales": canonical,
        "profanity": profanity,
        "diarization": enabled,
        "maxSpeakers": speakers,
        "channels": channels,
        "audioUrl": audio_url,
    }


@endpoint("Transcriptions_Transcribe", Kind.FAST)
async def transcribe(ctx: Context) -> Response:
    """Transcribe the uploaded (or, on 2025-10-15, linked) audio synchronously."""
    content_type = ctx.request.headers.get("content-type", "")
    if content_type.partition(";")[0].strip().lower() != "multipart/form-data":
        raise spec_error(415, "UnsupportedMediaType", "The request must be multipart/form-data.")
    parts = _parts(content_type, await _read_body(ctx))
    options = _definition(ctx, parts.get("definition"))
    audio_bytes = parts.get("audio")
    if not audio_bytes:
        if options["audioUrl"] is None:
            raise bad_request(
                "InvalidParameterValue",
                "The 'audio' part is required (or definition.audioUrl with api-version "
                "2025-10-15).",
            )
        try:
            audio_bytes = await ctx.emulator.transfer.download(
                options["audioUrl"], max_bytes=MAX_AUDIO_BYTES
            )
        except TransferError as exc:
            raise bad_request("InvalidParameterValue", str(exc)) from None
    if len(audio_bytes) > MAX_AUDIO_BYTES:
        raise bad_request("InvalidParameterValue", "The audio file is larger than 200 MB.")
    recognizer = ctx.emulator.recognizer
    try:
        # The header's duration refuses long files before decoding them; the decoded length
        # is checked too, for containers whose header understates it.
        info = await recognizer.probe(audio_bytes)
        _check_length(ctx, info.duration_seconds)
        audio = await recognizer.decode(audio_bytes)
    except AudioDecodeError as exc:
        raise _unprocessable(ctx, exc.kind, f"The audio cannot be processed: {exc}") from None
    _check_length(ctx, audio.duration_seconds)
    locales: list[str] = options["locales"]
    # One locale is used as given; several (or none) mean language identification, which
    # the emulator resolves to the first candidate (en-US without candidates).
    locale = locales[0] if locales else "en-US"
    channels: list[int] | None = options["channels"]
    if channels is not None and len(audio.channels) > 1:
        selected = [c for c in channels if c < len(audio.channels)]
        samples = [audio.channels[c] for c in selected]
    else:
        # Mono audio ignores "channels"; otherwise channels are merged (the docs' default).
        selected = None
        samples = [mix_down(audio)]
    per_channel = [
        await recognizer.transcribe(s, language=locale, word_timestamps=True) for s in samples
    ]
    ctx.emulator.stats.add_audio(audio.duration_seconds * len(samples))
    body = fast_result(
        audio.duration_seconds,
        per_channel,
        locale=locale,
        diarization=options["diarization"],
        max_speakers=options["maxSpeakers"],
        profanity=options["profanity"],
        channels=selected,
    )
    return JSONResponse(body)


def routes() -> list[Route]:
    """The fast transcription route."""
    return [Route("/speechtotext/transcriptions:transcribe", transcribe, methods=["POST"])]
