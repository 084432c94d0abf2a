"""What the short-audio API accepts (seed 001), and the errors that say so.

"WAV, PCM, 16 kHz, mono" and "OGG, OPUS, 16 kHz, mono", at most 60 seconds. The WAV and OGG
meters (:mod:`shared.http.wav`, :mod:`shared.http.ogg`) enforce it on the stream.
"""

from __future__ import annotations

from shared.http.problems import ApiProblem

SAMPLE_RATE = 16_000
CHANNELS = 1
BITS_PER_SAMPLE = 16
#: 16 kHz x 16-bit x mono.
PCM_BYTES_PER_SECOND = SAMPLE_RATE * CHANNELS * BITS_PER_SAMPLE // 8

#: Said in every 400/415 about the audio, so a caller learns what to send instead.
ACCEPTED_AUDIO = [
    "audio/wav: RIFF/WAVE, PCM (format 1), 16000 Hz, 1 channel, 16 bits per sample",
    "audio/ogg: Ogg Opus, 1 channel, 16000 Hz input",
]


def invalid_audio(message: str) -> ApiProblem:
    """400: the audio is not in an accepted format."""
    return ApiProblem(400, "InvalidAudio", message, accepted=ACCEPTED_AUDIO)


def audio_too_long(limit: float, *, declared: float | None = None) -> ApiProblem:
    """413: more than ``limit`` seconds of audio (``declared``: the length its header states)."""
    length = f"is {declared:.1f} seconds long" if declared is not None else f"runs past {limit:g} s"
    return ApiProblem(
        413,
        "AudioTooLong",
        f"The audio {length}; short-audio recognition takes at most {limit:g} seconds. "
        "Use POST /api/transcribe (fast transcription) or batch transcription for longer audio.",
        maxSeconds=limit,
    )
