"""WAV headers read from the first bytes of a stream, and a meter for short-audio uploads.

A RIFF/WAVE file is a sequence of chunks (id, little-endian size, body padded to an even
length). Recorders put ``LIST``, ``JUNK`` or ``bext`` chunks before the samples, so the
``fmt `` and ``data`` chunks are found by walking the chunk list, up to
:data:`MAX_HEADER_BYTES` (the walk is :mod:`shared.audio_duration`'s, which also proves the
length of stored WAV blobs). A stream written before its length was known carries a data size
of 0 or 0xFFFFFFFF; its duration is then measured by counting bytes as they arrive.
"""

from __future__ import annotations

from shared.audio_duration import MAX_HEADER_BYTES as MAX_HEADER_BYTES
from shared.audio_duration import UNKNOWN_DATA_SIZES as UNKNOWN_DATA_SIZES
from shared.audio_duration import WAVE_FORMAT_EXTENSIBLE as WAVE_FORMAT_EXTENSIBLE
from shared.audio_duration import WAVE_FORMAT_PCM as WAVE_FORMAT_PCM
from shared.audio_duration import WavFormatError as WavFormatError
from shared.audio_duration import WavHeader as WavHeader
from shared.audio_duration import parse_wav_header
from shared.http.audio_rules import (
    BITS_PER_SAMPLE,
    CHANNELS,
    PCM_BYTES_PER_SECOND,
    SAMPLE_RATE,
    audio_too_long,
    invalid_audio,
)

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
#: Metadata chunks may follow the samples of a file whose data size is known; they are not
#: audio, so this much is allowed past the duration limit.
TRAILER_ALLOWANCE_BYTES = 64 * 1024


def parse_header(head: bytes) -> WavHeader | None:
    """The header of a RIFF/WAVE file starting with ``head``; None while more bytes are needed.

    The chunk walk is :func:`shared.audio_duration.parse_wav_header`'s (RF64 not accepted
    here). Raises :class:`WavFormatError` when ``head`` cannot be the start of a WAV file.
    """
    return parse_wav_header(head)


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
