"""WAV headers read from the first bytes of a stream, and a meter for short-audio uploads.

A RIFF/WAVE file is a sequence of chunks (id, little-endian size, body padded to an even
length). Recorders put ``LIST``, ``JUNK`` or ``bext`` chunks before the samples, so the
``fmt `` and ``data`` chunks are found by walking the chunk list, up to
:data:`MAX_HEADER_BYTES`. A stream written before its length was known carries a data size
of 0 or 0xFFFFFFFF; its duration is then measured by counting bytes as they arrive.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from shared.http.audio_rules import (
    BITS_PER_SAMPLE,
    CHANNELS,
    PCM_BYTES_PER_SECOND,
    SAMPLE_RATE,
    audio_too_long,
    invalid_audio,
)

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# KSDATAFORMAT_SUBTYPE_PCM, the SubFormat GUID of PCM in a WAVE_FORMAT_EXTENSIBLE header.
_PCM_SUBFORMAT = bytes.fromhex("0100000000001000800000aa00389b71")
_FORMAT_NAMES = {
    0x0001: "PCM",
    0x0002: "Microsoft ADPCM",
    0x0003: "IEEE float",
    0x0006: "A-law",
    0x0007: "mu-law",
    0x0011: "IMA ADPCM",
    0x0055: "MP3",
    WAVE_FORMAT_EXTENSIBLE: "extensible (non-PCM subformat)",
}
#: Data sizes that streaming writers use for "not known yet".
UNKNOWN_DATA_SIZES = frozenset({0, 0xFFFFFFFF})
#: How far into the file the ``data`` chunk may start (metadata chunks before it included).
MAX_HEADER_BYTES = 256 * 1024
#: Metadata chunks may follow the samples of a file whose data size is known; they are not
#: audio, so this much is allowed past the duration limit.
TRAILER_ALLOWANCE_BYTES = 64 * 1024


class WavFormatError(ValueError):
    """The bytes are not a WAV file this module can read; the message says why."""


@dataclass(frozen=True)
class WavHeader:
    """The ``fmt `` chunk and where the samples start."""

    #: ``WAVE_FORMAT_PCM`` also for an extensible header whose subformat is PCM.
    audio_format: int
    channels: int
    sample_rate: int
    byte_rate: int
    block_align: int
    bits_per_sample: int
    #: Offset of the first sample byte in the file.
    data_offset: int
    #: Declared length of the samples; None when the writer did not know it.
    data_size: int | None

    @property
    def duration_seconds(self) -> float | None:
        """Declared duration, when the data size and byte rate are known."""
        if self.data_size is None or self.byte_rate <= 0:
            return None
        return self.data_size / self.byte_rate


def _fmt(body: bytes) -> tuple[int, int, int, int, int, int]:
    if len(body) < 16:
        raise WavFormatError(f"The WAV 'fmt ' chunk is {len(body)} bytes; it needs at least 16.")
    tag, channels, rate, byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == WAVE_FORMAT_EXTENSIBLE and len(body) >= 40 and body[24:40] == _PCM_SUBFORMAT:
        tag = WAVE_FORMAT_PCM
    return tag, channels, rate, byte_rate, block_align, bits


def parse_header(head: bytes) -> WavHeader | None:
    """The header of a WAV file starting with ``head``; None while more bytes are needed.

    Raises :class:`WavFormatError` when ``head`` cannot be the start of a WAV file.
    """
    if len(head) >= 4 and head[:4] != b"RIFF":
        raise WavFormatError("The body is not a WAV file: it does not start with 'RIFF'.")
    if len(head) >= 12 and head[8:12] != b"WAVE":
        raise WavFormatError("The body is a RIFF file but not WAVE audio.")
    position = 12
    fmt: tuple[int, int, int, int, int, int] | None = None
    while position + 8 <= len(head):
        chunk_id = head[position : position + 4]
        (size,) = struct.unpack_from("<I", head, position + 4)
        body = position + 8
        if chunk_id == b"data":
            if fmt is None:
                raise WavFormatError("The WAV file has its 'data' chunk before its 'fmt ' chunk.")
            return WavHeader(
                *fmt, data_offset=body, data_size=None if size in UNKNOWN_DATA_SIZES else size
            )
        if chunk_id == b"fmt ":
            # Only the first 40 bytes matter (the extensible subformat ends there).
            needed = min(size, 40)
            if body + needed > len(head):
                return None
            fmt = _fmt(head[body : body + needed])
        position = body + size + (size & 1)
        if position > MAX_HEADER_BYTES:
            break
    if position > MAX_HEADER_BYTES or len(head) > MAX_HEADER_BYTES:
        raise WavFormatError(
            f"The WAV file has no 'data' chunk within its first {MAX_HEADER_BYTES} bytes."
        )
    return None


def short_audio_problems(header: WavHeader) -> list[str]:
    """Why ``header`` is not 16 kHz mono 16-bit PCM; empty when it is."""
    problems = []
    if header.audio_format != WAVE_FORMAT_PCM:
        name = _FORMAT_NAMES.get(header.audio_format, "unknown")
        problems.append(
            f"encoding {name} (format {header.audio_format}); it must be PCM (format 1)"
        )
    if header.sample_rate != SAMPLE_RATE:
        problems.append(f"{header.sample_rate} Hz; it must be {SAMPLE_RATE} Hz")
    if header.channels != CHANNELS:
        problems.append(f"{header.channels} channels; it must be mono (1 channel)")
    if header.bits_per_sample != BITS_PER_SAMPLE:
        problems.append(f"{header.bits_per_sample} bits per sample; it must be {BITS_PER_SAMPLE}")
    if not problems and (header.block_align, header.byte_rate) != (
        CHANNELS * BITS_PER_SAMPLE // 8,
        PCM_BYTES_PER_SECOND,
    ):
        problems.append(
            f"block align {header.block_align} and byte rate {header.byte_rate} contradict "
            f"16 kHz mono 16-bit (2 and {PCM_BYTES_PER_SECOND})"
        )
    return problems


class WavMeter:
    """Checks a short-audio WAV upload: header first, then at most ``max_seconds`` of PCM."""

    def __init__(self, max_seconds: float) -> None:
        self._max_seconds = max_seconds
        self._buffer = bytearray()
        self._sample_bytes = 0
        self._limit_bytes = 0
        #: The accepted header, once read.
        self.header: WavHeader | None = None

    @property
    def ready(self) -> bool:
        """True once the header has been read and accepted."""
        return self.header is not None

    def feed(self, chunk: bytes) -> None:
        """Account for ``chunk``; raise ApiProblem (400 format, 413 duration)."""
        if self.header is None:
            self._buffer += chunk
            self._read_header()
            return
        self._count(len(chunk))

    def _read_header(self) -> None:
        try:
            header = parse_header(bytes(self._buffer))
        except WavFormatError as exc:
            raise invalid_audio(str(exc)) from None
        if header is None:
            return
        problems = short_audio_problems(header)
        if problems:
            raise invalid_audio(
                "The WAV audio must be PCM, 16000 Hz, mono, 16-bit; this file has "
                + "; ".join(problems)
                + "."
            )
        declared = header.duration_seconds
        if declared is not None and declared > self._max_seconds:
            raise audio_too_long(self._max_seconds, declared=declared)
        self.header = header
        self._limit_bytes = round(self._max_seconds * PCM_BYTES_PER_SECOND)
        if header.data_size is not None:
            self._limit_bytes += TRAILER_ALLOWANCE_BYTES
        received = len(self._buffer)
        self._buffer = bytearray()
        self._count(received - header.data_offset)

    def _count(self, size: int) -> None:
        self._sample_bytes += size
        if self._sample_bytes > self._limit_bytes:
            raise audio_too_long(self._max_seconds)

    def finish(self) -> None:
        """Raise 400 if the body ended before the header did."""
        if self.header is None:
            raise invalid_audio(
                "The WAV file ends before its header does (no complete 'fmt ' and 'data' chunks)."
            )
