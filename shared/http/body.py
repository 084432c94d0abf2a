"""A request body that is checked as it streams: read ahead just enough, never buffered whole.

A handler reads the first chunks (:meth:`MeteredBody.read_head`) so the audio header can be
judged before any request goes to Speech, then hands :meth:`MeteredBody.chunks` to the Speech
client, which sends the chunks on as it receives them. Each chunk is checked *before* it is
passed on; a chunk that breaks a limit raises :class:`~shared.http.problems.ApiProblem` inside
the upstream request, which aborts it, and the rest of the upload is never read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from shared.http.problems import ApiProblem


class Meter(Protocol):
    """Judges an audio stream chunk by chunk (header, format, duration)."""

    @property
    def ready(self) -> bool:
        """True once the header has been read and accepted."""
        ...

    def feed(self, chunk: bytes) -> None:
        """Account for the next chunk; raise ApiProblem if the stream is unacceptable."""
        ...

    def finish(self) -> None:
        """The stream ended; raise ApiProblem if it ended too early (incomplete header)."""
        ...


class MeteredBody:
    """The request body as chunks, counted against ``max_bytes`` and fed to ``meter``."""

    def __init__(
        self, stream: AsyncIterator[bytes], *, max_bytes: int, meter: Meter | None = None
    ) -> None:
        self._stream = stream
        self._max_bytes = max_bytes
        self._meter = meter
        self._head: list[bytes] = []
        self._ended = False
        #: Bytes read from the request so far.
        self.bytes_read = 0

    def _accept(self, chunk: bytes) -> None:
        self.bytes_read += len(chunk)
        if self.bytes_read > self._max_bytes:
            raise ApiProblem(
                413,
                "PayloadTooLarge",
                f"The request body is larger than {self._max_bytes} bytes, the most this "
                "endpoint accepts.",
                maxBytes=self._max_bytes,
            )
        if self._meter is not None:
            self._meter.feed(chunk)

    async def _next(self) -> bytes | None:
        """The next non-empty chunk, or None at the end of the body."""
        while not self._ended:
            try:
                chunk = await anext(self._stream)
            except StopAsyncIteration:
                self._ended = True
                break
            if chunk:
                self._accept(chunk)
                return chunk
        return None

    async def read_head(self, *, min_bytes: int = 1) -> bytes:
        """Read until the meter is ready (or ``min_bytes`` arrived without one); return it.

        Raises ApiProblem for an empty body or a header the meter refuses.
        """
        while True:
            enough = self._meter.ready if self._meter is not None else self.bytes_read >= min_bytes
            if enough:
                break
            chunk = await self._next()
            if chunk is None:
                break
            self._head.append(chunk)
        if self.bytes_read == 0:
            raise ApiProblem(400, "EmptyBody", "The request body is empty; send the audio in it.")
        if self._ended and self._meter is not None:
            self._meter.finish()
        return b"".join(self._head)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The head read so far, then the rest of the body, each chunk checked first."""
        head, self._head = self._head, []
        for early in head:
            yield early
        while (chunk := await self._next()) is not None:
            yield chunk
        if self._meter is not None:
            self._meter.finish()
