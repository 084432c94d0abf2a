"""Running the ASR core from async code: decoding and recognition in worker threads.

Engines are blocking and CPU-bound (``local.emulator.asr.Engine``); every call here goes
through :func:`asyncio.to_thread` so the event loop keeps answering polls and short-audio
requests while a batch job transcribes.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from local.emulator.asr import DecodedAudio, Engine, Segment
from local.emulator.asr.audio import AudioInfo, decode_audio, probe_audio
from local.emulator.asr.engines import get_engine

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class Recognizer:
    """The configured engine, loaded on first use, plus async decode/transcribe helpers."""

    def __init__(self, engine_name: str) -> None:
        self.engine_name = engine_name
        self._engine: Engine | None = None
        self._lock = asyncio.Lock()

    async def engine(self) -> Engine:
        """The engine; the first call builds it in a thread (Whisper loads lazily itself)."""
        if self._engine is None:
            async with self._lock:
                if self._engine is None:
                    self._engine = await asyncio.to_thread(get_engine, self.engine_name)
        return self._engine

    async def probe(self, data: bytes) -> AudioInfo:
        """Container facts (codec, rate, channels, duration) without decoding."""
        return await asyncio.to_thread(probe_audio, data)

    async def decode(self, data: bytes) -> DecodedAudio:
        """Decode to 16 kHz float32 channels (raises ``AudioDecodeError``)."""
        return await asyncio.to_thread(decode_audio, data)

    async def transcribe(
        self,
        samples: npt.NDArray[np.float32],
        *,
        language: str | None,
        word_timestamps: bool,
    ) -> list[Segment]:
        """Recognise one channel."""
        engine = await self.engine()
        return await asyncio.to_thread(
            engine.transcribe, samples, language=language, word_timestamps=word_timestamps
        )


def mix_down(audio: DecodedAudio) -> npt.NDArray[np.float32]:
    """All channels averaged into one (what fast transcription does without ``channels``)."""
    import numpy as np

    if len(audio.channels) == 1:
        return audio.channels[0]
    length = max(len(c) for c in audio.channels)
    total = np.zeros(length, dtype=np.float32)
    for channel in audio.channels:
        total[: len(channel)] += channel
    return (total / len(audio.channels)).astype(np.float32)
