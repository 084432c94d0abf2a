"""Audio bodies that are streamed, never read whole into memory.

An :data:`AudioInput` is bytes, a file path, a :class:`ReopenableAudio` (a stream that can
be opened again, such as a blob) or an async iterable of chunks. All but the last can be
produced again for a retry; an async iterable can be consumed only once, so a request that
streams one is not retried after the body started to flow.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

CHUNK_SIZE = 64 * 1024


@dataclass(frozen=True)
class ReopenableAudio:
    """A streamed body that ``open()`` starts again from its first byte: retries may resend."""

    open: Callable[[], AsyncIterator[bytes]]
    name: str = "audio"


AudioInput = (
    bytes | bytearray | memoryview | str | os.PathLike[str] | ReopenableAudio | AsyncIterable[bytes]
)


@dataclass(frozen=True)
class AudioBody:
    """A body factory plus whether it can be produced more than once."""

    source: AudioInput
    replayable: bool
    name: str

    def chunks(self) -> AsyncIterator[bytes]:
        """A fresh iterator over the audio's bytes."""
        return _iterate(self.source)


async def _iterate(source: AudioInput) -> AsyncIterator[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        data = memoryview(source)
        for start in range(0, len(data), CHUNK_SIZE):
            yield bytes(data[start : start + CHUNK_SIZE])
    elif isinstance(source, str | os.PathLike):
        # File reads block; a worker thread keeps the event loop serving other requests.
        handle = await asyncio.to_thread(open, source, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_SIZE):
                yield chunk
        finally:
            handle.close()
    elif isinstance(source, ReopenableAudio):
        async for chunk in source.open():
            if chunk:
                yield bytes(chunk)
    else:
        async for chunk in source:
            if chunk:
                yield bytes(chunk)


def audio_body(source: AudioInput) -> AudioBody:
    """Wrap ``source``; a path must name an existing, non-empty file."""
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) == 0:
            raise ValueError("audio must not be empty")
        return AudioBody(source, replayable=True, name="audio")
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"audio file not found: {path}")
        if path.stat().st_size == 0:
            raise ValueError(f"audio file is empty: {path}")
        return AudioBody(source, replayable=True, name=path.name)
    if isinstance(source, ReopenableAudio):
        return AudioBody(source, replayable=True, name=source.name)
    if isinstance(source, AsyncIterable):
        return AudioBody(source, replayable=False, name="audio")
    raise TypeError(
        "audio must be bytes, a file path or an async iterable of bytes, "
        f"not {type(source).__name__}"
    )
