"""Short-audio recognition: up to 60 s of WAV PCM or OGG OPUS, one final result."""

from __future__ import annotations

from shared.speech._client import BaseSpeechClient
from shared.speech.audio import AudioInput, audio_body
from shared.speech.auth import Surface
from shared.speech.models import (
    OutputFormat,
    PronunciationAssessmentParams,
    ShortAudioProfanity,
    ShortAudioResult,
)
from shared.speech.pipeline import TimeoutArg
from shared.speech.retry import RetryPolicy

WAV_PCM_16K = "audio/wav; codecs=audio/pcm; samplerate=16000"
OGG_OPUS = "audio/ogg; codecs=opus"
#: The only two content types the short-audio REST API accepts.
SHORT_AUDIO_CONTENT_TYPES = (WAV_PCM_16K, OGG_OPUS)
#: Longest audio the service recognises in one request.
SHORT_AUDIO_MAX_SECONDS = 60


class ShortAudioClient(BaseSpeechClient):
    """``/speech/recognition/conversation/cognitiveservices/v1`` of one resource."""

    _surface = Surface.SHORT_AUDIO

    async def recognize(
        self,
        audio: AudioInput,
        *,
        language: str,
        content_type: str = WAV_PCM_16K,
        format: OutputFormat | str = OutputFormat.SIMPLE,
        profanity: ShortAudioProfanity | str | None = None,
        cid: str | None = None,
        pronunciation_assessment: PronunciationAssessmentParams | None = None,
        timeout: TimeoutArg = None,
        retry: RetryPolicy | None = None,
    ) -> ShortAudioResult:
        """Recognise ``audio``, sent with chunked transfer as it is read.

        ``language`` is required by the service (e.g. ``en-US``). The result's
        ``recognition_status`` tells Success from NoMatch and the timeouts; the HTTP
        call itself succeeded in each of those cases.
        """
        if not language or not language.strip():
            raise ValueError("language is required for short-audio recognition (e.g. 'en-US')")
        if content_type not in SHORT_AUDIO_CONTENT_TYPES:
            raise ValueError(
                f"content_type must be one of {SHORT_AUDIO_CONTENT_TYPES}, got {content_type!r}"
            )
        output = OutputFormat(format)
        params: dict[str, str | int] = {"language": language.strip(), "format": output.value}
        if profanity is not None:
            params["profanity"] = ShortAudioProfanity(profanity).value
        if cid is not None:
            if not cid.strip():
                raise ValueError("cid must not be blank")
            params["cid"] = cid.strip()
        headers = {
            "Content-Type": content_type,
            "Accept": "application/json",
            # The service acknowledges the headers before the audio flows (seed 001).
            "Expect": "100-continue",
        }
        if pronunciation_assessment is not None:
            headers["Pronunciation-Assessment"] = pronunciation_assessment.to_header()
        source = audio_body(audio)
        response = await self._pipeline.send(
            "POST",
            self.endpoints.short_audio_url,
            auth=self._auth,
            surface=Surface.SHORT_AUDIO,
            params=params,
            headers=headers,
            content=source.chunks,
            replayable=source.replayable,
            idempotent=True,
            timeout=timeout,
            retry=retry,
        )
        return ShortAudioResult.model_validate(response.json())
