"""Short audio (``/speech/recognition/<mode>/cognitiveservices/v1``) and ``issueToken``.

From seed 001 (the short-audio REST page for Azure China, identical in substance to the
global one):

* ``language`` is required ("must be appended to the URL to avoid a 4xx error"); ``format``
  is ``simple`` (default) or ``detailed``; ``profanity`` is ``masked`` (default),
  ``removed`` or ``raw``; ``cid`` names a custom endpoint.
* ``Content-Type`` is ``audio/wav; codecs=audio/pcm; samplerate=16000`` or
  ``audio/ogg; codecs=opus``; WAV must be PCM, 16 kHz, mono. Parameter order, spacing and
  case do not matter (RFC 9110 media types); anything else is 415 Unsupported Media Type.
* Audio may be sent with chunked transfer; it is read as a stream. At most 60 seconds are
  accepted: a WAV or OGG stream is measured while it arrives (from the WAV header or the
  OGG granule positions) and refused with 400 as soon as it passes 60 seconds or
  ``EMULATOR_SHORT_AUDIO_MAX_BYTES``, without buffering the rest.
* ``Pronunciation-Assessment`` is base64-encoded JSON; undecodable -> 400.
* ``/sts/v1.0/issueToken`` exchanges ``Ocp-Apim-Subscription-Key`` for a 10-minute token.

The custom-subdomain form serves the same under ``/stt/speech/...``.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from typing import Any
from uuid import UUID

from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from local.emulator.asr import AudioDecodeError
from local.emulator.asr.results import short_audio_result
from local.emulator.catalog import canonical_locale
from local.emulator.errors import (
    INVALID_KEY_MESSAGE,
    MISSING_KEY_MESSAGE,
    ApiError,
    front_end_error,
)
from local.emulator.pipeline import Context, Kind, endpoint

#: "Short audio: at most 60 seconds" (seed 001 and the brief's service facts).
MAX_SECONDS = 60.0
WAV_PCM_BYTES_PER_SECOND = 16_000 * 2
OPUS_GRANULE_RATE = 48_000
FORMATS = ("simple", "detailed")
PROFANITY = ("masked", "removed", "raw")
MODES = ("conversation", "interactive", "dictation")


def _bad_request(message: str) -> ApiError:
    return front_end_error(400, "BadRequest", message)


def _media(header: str) -> tuple[str, dict[str, str]]:
    """Media type and parameters (lower case, spaces ignored) of a Content-Type value."""
    media, *raw = header.split(";")
    params = {}
    for item in raw:
        name, _, value = item.partition("=")
        if name.strip():
            params[name.strip().lower()] = value.strip().strip('"').lower()
    return media.strip().lower(), params


def audio_kind(content_type: str | None) -> str | None:
    """``"wav"`` or ``"ogg"`` for the two accepted content types, else None."""
    if not content_type:
        return None
    media, params = _media(content_type)
    if (
        media == "audio/wav"
        and params.get("codecs") == "audio/pcm"
        and params.get("samplerate") == "16000"
    ):
        return "wav"
    if media == "audio/ogg" and params.get("codecs") == "opus":
        return "ogg"
    return None


class _StreamCheck:
    """Measures a WAV or OGG/Opus stream while it arrives; raises once it is too long."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._data_offset: int | None = None  # WAV: where the samples start
        self._page = 0  # OGG: offset of the next page header
        self._pre_skip = 0

    def finish(self) -> None:
        """After the last byte: a WAV must have had its format and data chunks."""
        if self.kind == "wav" and self._data_offset is None:
            raise _bad_request("The WAV file is incomplete: no 'fmt ' and 'data' chunks.")

    def feed(self, data: bytes | bytearray) -> None:
        """Check everything received so far."""
        seconds = self._wav(data) if self.kind == "wav" else self._ogg(data)
        if seconds > MAX_SECONDS:
            raise _bad_request(
                f"The audio is longer than {MAX_SECONDS:.0f} seconds; the short audio API "
                "accepts at most 60 seconds. Use batch or fast transcription for longer audio."
            )

    def _wav(self, data: bytes | bytearray) -> float:
        if len(data) >= 12 and (data[:4] != b"RIFF" or data[8:12] != b"WAVE"):
            raise _bad_request("The audio is not a WAV file (no RIFF/WAVE header).")
        if self._data_offset is None:
            self._data_offset = self._wav_header(data)
            if self._data_offset is None:
                return 0.0
        return (len(data) - self._data_offset) / WAV_PCM_BYTES_PER_SECOND

    @staticmethod
    def _wav_header(data: bytes | bytearray) -> int | None:
        """Offset of the samples once the ``fmt `` and ``data`` chunks have arrived."""
        position = 12
        seen_format = False
        while position + 8 <= len(data):
            chunk_id = bytes(data[position : position + 4])
            (size,) = struct.unpack_from("<I", data, position + 4)
            body = position + 8
            if chunk_id == b"data":
                if not seen_format:
                    raise _bad_request("The WAV file has no 'fmt ' chunk before its samples.")
                return body
            if chunk_id == b"fmt ":
                if body + 16 > len(data):
                    return None
                audio_format, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
                # 1 = PCM; 0xFFFE = WAVE_FORMAT_EXTENSIBLE (PCM subformat assumed, checked
                # again by the decoder once the body is complete).
                if audio_format not in (1, 0xFFFE) or bits != 16 or rate != 16_000 or channels != 1:
                    raise _bad_request(
                        "The WAV audio must be 16-bit PCM, 16 kHz, mono; got format "
                        f"{audio_format}, {bits}-bit, {rate} Hz, {channels} channel(s)."
                    )
                seen_format = True
            position = body + size + (size & 1)
        return None

    def _ogg(self, data: bytes | bytearray) -> float:
        if len(data) >= 4 and data[:4] != b"OggS":
            raise _bad_request("The audio is not an OGG stream.")
        seconds = 0.0
        while self._page + 27 <= len(data):
            start = self._page
            if data[start : start + 4] != b"OggS":
                raise _bad_request("The OGG stream is damaged.")
            segments = data[start + 26]
            if start + 27 + segments > len(data):
                break
            table = data[start + 27 : start + 27 + segments]
            body = start + 27 + segments
            if start == 0 and body + 12 <= len(data) and data[body : body + 8] == b"OpusHead":
                (self._pre_skip,) = struct.unpack_from("<H", data, body + 10)
            (granule,) = struct.unpack_from("<q", data, start + 6)
            if granule > 0:
                seconds = max(seconds, (granule - self._pre_skip) / OPUS_GRANULE_RATE)
            self._page = body + sum(table)
        return seconds


def _pronunciation(header: str | None) -> dict[str, Any] | None:
    if header is None:
        return None
    try:
        decoded = base64.b64decode(header.strip(), validate=True)
        params = json.loads(decoded.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _bad_request(
            "The Pronunciation-Assessment header must be base64-encoded JSON."
        ) from None
    if not isinstance(params, dict):
        raise _bad_request("The Pronunciation-Assessment header must hold a JSON object.")
    return params


async def _read_audio(ctx: Context, kind: str) -> bytes:
    limit = ctx.emulator.settings.short_audio_max_bytes
    check = _StreamCheck(kind)
    received = bytearray()
    async for chunk in ctx.request.stream():
        received += chunk
        if len(received) > limit:
            raise _bad_request(
                f"The audio is larger than {limit} bytes; the short audio API accepts at most "
                "60 seconds of audio."
            )
        check.feed(received)
    if not received:
        raise _bad_request("The request contains no audio.")
    check.finish()
    return bytes(received)


@endpoint("ShortAudio_Recognize", Kind.SHORT_AUDIO)
async def recognize(ctx: Context) -> Response:
    """Recognise up to 60 seconds of 16 kHz mono WAV PCM or OGG Opus."""
    mode = ctx.request.path_params["mode"]
    if mode not in MODES:
        raise front_end_error(404, "NotFound", f"Unknown recognition mode {mode!r}.")
    language = ctx.query("language")
    if not language or not language.strip():
        raise _bad_request("The 'language' query parameter is required, e.g. language=en-US.")
    locale = canonical_locale(language)
    if locale is None:
        raise _bad_request(f"The language '{language}' is not supported.")
    fmt = (ctx.query("format") or "simple").lower()
    if fmt not in FORMATS:
        raise _bad_request("format must be 'simple' or 'detailed'.")
    profanity = (ctx.query("profanity") or "masked").lower()
    if profanity not in PROFANITY:
        raise _bad_request("profanity must be 'masked', 'removed' or 'raw'.")
    cid = ctx.query("cid")
    if cid is not None:
        try:
            UUID(cid)
        except ValueError:
            raise _bad_request("cid must be the endpoint ID (a GUID) of a deployment.") from None
    pronunciation = _pronunciation(ctx.request.headers.get("pronunciation-assessment"))
    kind = audio_kind(ctx.request.headers.get("content-type"))
    if kind is None:
        raise front_end_error(
            415,
            "UnsupportedMediaType",
            "Content-Type must be 'audio/wav; codecs=audio/pcm; samplerate=16000' or "
            "'audio/ogg; codecs=opus'.",
        )
    data = await _read_audio(ctx, kind)
    recognizer = ctx.emulator.recognizer
    # The WAV header was checked while streaming (PCM, 16 kHz, mono), so one decoding pass
    # is enough; OGG's channel count is known once decoded.
    try:
        audio = await recognizer.decode(data)
    except AudioDecodeError as exc:
        raise _bad_request(f"The audio could not be decoded: {exc}") from None
    if len(audio.channels) != 1:
        raise _bad_request("The audio must be mono.")
    if audio.duration_seconds > MAX_SECONDS:
        raise _bad_request(
            f"The audio is {audio.duration_seconds:.1f} seconds long; the short audio API "
            f"accepts at most {MAX_SECONDS:.0f} seconds."
        )
    segments = await recognizer.transcribe(
        audio.channels[0], language=locale, word_timestamps=pronunciation is not None
    )
    ctx.emulator.stats.add_audio(audio.duration_seconds)
    try:
        body = short_audio_result(
            segments,
            audio.duration_seconds,
            fmt=fmt,
            profanity=profanity,
            pronunciation=pronunciation,
        )
    except ValueError as exc:
        raise _bad_request(f"Invalid Pronunciation-Assessment parameters: {exc}") from None
    return JSONResponse(body)


@endpoint("Sts_IssueToken", Kind.STS)
async def issue_token(ctx: Context) -> Response:
    """A 10-minute access token for a valid ``Ocp-Apim-Subscription-Key``."""
    key = ctx.request.headers.get("ocp-apim-subscription-key")
    if key is None or not key.strip():
        raise front_end_error(401, "401", MISSING_KEY_MESSAGE)
    if not ctx.emulator.auth.key_is_valid(key):
        raise front_end_error(401, "401", INVALID_KEY_MESSAGE)
    return PlainTextResponse(ctx.emulator.auth.issue_token(key))


def routes() -> list[Route]:
    """Short audio (regional and custom-subdomain paths) and the STS."""
    path = "/speech/recognition/{mode}/cognitiveservices/v1"
    return [
        Route(path, recognize, methods=["POST"]),
        Route("/stt" + path, recognize, methods=["POST"]),
        Route("/sts/v1.0/issueToken", issue_token, methods=["POST"]),
        Route("/sts/v1.0/issuetoken", issue_token, methods=["POST"]),
    ]
