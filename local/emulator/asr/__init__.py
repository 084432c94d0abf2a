"""The emulator's speech recognition: what an engine returns and what the service needs.

The HTTP layer (jobs, short audio, fast transcription) depends only on the types and
protocol defined here; engines (``whisper``, ``fixed``), audio decoding and the builders of
the service's result documents live in the modules of this package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

#: Every engine works on 16 kHz mono float32 samples in [-1, 1].
SAMPLE_RATE = 16_000


class AudioDecodeError(ValueError):
    """The bytes are not audio the emulator can decode (or hold no samples).

    ``kind`` is the service's per-file error kind for the report, e.g.
    ``InvalidAudioFormat`` or ``EmptyAudioFile``.
    """

    def __init__(self, message: str, *, kind: str = "InvalidAudioFormat") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class DecodedAudio:
    """Decoded audio: one 16 kHz mono float32 array per channel (stereo is split)."""

    channels: list[npt.NDArray[np.float32]]

    @property
    def duration_seconds(self) -> float:
        """Length of the longest channel, in seconds."""
        return max((len(c) for c in self.channels), default=0) / SAMPLE_RATE


@dataclass(frozen=True)
class Word:
    """One recognised word with its timing (seconds from the start of the audio)."""

    text: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True)
class Segment:
    """One recognised phrase: the engine's raw text, its timing and (if asked) its words."""

    text: str
    start: float
    end: float
    confidence: float
    words: list[Word] = field(default_factory=list)


class Engine(Protocol):
    """A speech recogniser. ``transcribe`` is CPU-bound and blocking: call it in a thread."""

    name: str

    def transcribe(
        self, samples: npt.NDArray[np.float32], *, language: str | None, word_timestamps: bool
    ) -> list[Segment]:
        """Recognise one channel of 16 kHz mono audio; an empty list means no speech."""
        ...
