"""Fast transcription (``transcriptions:transcribe``): one file in, the transcript back."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator

from shared.speech._client import BaseSpeechClient
from shared.speech.audio import AudioInput, audio_body
from shared.speech.models import TranscribeDefinition, TranscribeResult
from shared.speech.pipeline import TimeoutArg
from shared.speech.retry import RetryPolicy


def _quote(value: str) -> str:
    # RFC 7578 names are quoted strings; a quote or newline would break the header.
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "").replace("\n", "")


async def _multipart(
    boundary: str,
    definition: bytes,
    audio: AsyncIterator[bytes] | None,
    filename: str,
    content_type: str,
) -> AsyncIterator[bytes]:
    """``multipart/form-data`` with a ``definition`` part and, streamed, an ``audio`` part."""
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="definition"\r\n'
        "Content-Type: application/json\r\n\r\n"
    ).encode()
    yield definition
    yield b"\r\n"
    if audio is not None:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; '
            f'filename="{_quote(filename)}"\r\nContent-Type: {content_type}\r\n\r\n'
        ).encode()
        async for chunk in audio:
            yield chunk
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


class FastTranscriptionClient(BaseSpeechClient):
    """Synchronous transcription of one file, faster than real time; no job to poll."""

    async def transcribe(
        self,
        audio: AudioInput | None,
        definition: TranscribeDefinition,
        *,
        filename: str | None = None,
        content_type: str = "application/octet-stream",
        timeout: TimeoutArg = None,
        retry: RetryPolicy | None = None,
    ) -> TranscribeResult:
        """Transcribe ``audio`` (streamed, never buffered) or ``definition.audio_url``.

        Exactly one of the two must be given; ``audio_url`` and the other fields the
        2024-11-15 API lacks need ``api_version="2025-10-15"``.
        """
        if not isinstance(definition, TranscribeDefinition):
            raise TypeError("definition must be a TranscribeDefinition")
        body = definition.to_body()
        if self.api_version == "2024-11-15":
            newer = sorted(set(body) & TranscribeDefinition.FIELDS_SINCE_2025_10_15)
            if newer:
                raise ValueError(
                    f"definition field(s) {', '.join(newer)} need api_version 2025-10-15"
                )
        has_url = bool(body.get("audioUrl"))
        if (audio is None) == (not has_url):
            raise ValueError("give exactly one of audio and definition.audio_url")
        source = audio_body(audio) if audio is not None else None
        boundary = secrets.token_hex(16)
        definition_bytes = json.dumps(body, separators=(",", ":")).encode()
        name = filename or (source.name if source else "audio")

        def content() -> AsyncIterator[bytes]:
            return _multipart(
                boundary,
                definition_bytes,
                source.chunks() if source else None,
                name,
                content_type,
            )

        response = await self._pipeline.send(
            "POST",
            self._url("/transcriptions:transcribe"),
            auth=self._auth,
            params=self._params(),
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Accept": "application/json",
            },
            content=content,
            replayable=source.replayable if source else True,
            # Transcribing is a pure function of the input: safe to repeat.
            idempotent=True,
            timeout=timeout,
            retry=retry,
        )
        return TranscribeResult.model_validate(response.json())
