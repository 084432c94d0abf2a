"""How long an audio blob is, proved from its header without reading the file.

The caller reads :data:`HEAD_BYTES` from the start of the blob with one ranged read and, for
the containers :func:`needs_tail` names, :data:`TAIL_BYTES` from its end with another;
:func:`header_duration` turns those bytes into seconds, or None when they do not prove the
length. The pipeline then falls back to the blob's size. Nothing here estimates: a WAV whose
writer did not know the data size, a FLAC stream without a sample count, an MP3 (whose
bit rate may vary) all give None.

- WAV (RIFF/WAVE, also RF64/BW64): the ``fmt `` and ``data`` chunks, found by walking the
  chunk list (Microsoft/IBM "Multimedia Programming Interface and Data Specifications 1.0",
  RIFF and WAVE chapters; EBU Tech 3306 for RF64's ``ds64`` chunk).
- FLAC: the STREAMINFO block's sample rate and total sample count
  (https://xiph.org/flac/format.html#metadata_block_streaminfo).
- Ogg: the codec's identification header on the first page gives the granule rate; the
  granule position of the stream's last page, read from the tail, gives the length
  (RFC 3533 for pages; RFC 7845 for Opus, the Vorbis I specification, the Speex manual,
  https://xiph.org/flac/ogg_mapping.html for FLAC in Ogg).

The WAV chunk walker and the Ogg page and ``OpusHead`` parsers are also what the HTTP
short-audio meters (:mod:`shared.http.wav`, :mod:`shared.http.ogg`) read streams with.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

#: Leading bytes the caller reads. Recorders put metadata chunks (``LIST``, ``bext``, ``JUNK``)
#: before a WAV file's samples; 64 KiB holds them in all but unusual files, and every
#: identification header the Ogg and FLAC formats here start with.
HEAD_BYTES = 64 * 1024
#: Trailing bytes the caller reads for :func:`needs_tail` formats. An Ogg page is at most
#: 27 + 255 + 255 x 255 = 65,307 bytes (RFC 3533 section 6), so the last page of a stream
#: always lies whole within the last 64 KiB.
TAIL_BYTES = 64 * 1024

# ------------------------------------------------------------------------------------ WAV

# Format tags (RFC 2361 appendix A lists the registered ones).
WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_ALAW = 0x0006
WAVE_FORMAT_MULAW = 0x0007
WAVE_FORMAT_MPEG = 0x0050
WAVE_FORMAT_MPEGLAYER3 = 0x0055
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
#: Formats whose every sample frame takes ``block_align`` bytes, so frames = bytes / align.
_FRAMED_FORMATS = frozenset(
    {WAVE_FORMAT_PCM, WAVE_FORMAT_IEEE_FLOAT, WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW}
)
#: MPEG audio in WAV may vary its bit rate, so the average byte rate proves nothing.
_VARIABLE_RATE_FORMATS = frozenset({WAVE_FORMAT_MPEG, WAVE_FORMAT_MPEGLAYER3})
# A WAVE_FORMAT_EXTENSIBLE SubFormat GUID for a registered format tag T is
# {T-0000-0010-8000-00AA00389B71} (Microsoft, "KSDATAFORMAT_SUBTYPE_*" in ksmedia.h); in the
# file the first field is little-endian, so the tag is bytes 0-1 and these are bytes 4-15.
_SUBFORMAT_BASE = bytes.fromhex("00001000800000aa00389b71")
#: Data sizes that streaming writers use for "not known yet".
UNKNOWN_DATA_SIZES = frozenset({0, 0xFFFFFFFF})
#: How far into the file the ``data`` chunk may start (metadata chunks before it included).
MAX_HEADER_BYTES = 256 * 1024
# RF64 and its ITU successor BW64 (EBU Tech 3306, ITU-R BS.2088) keep RIFF's layout but put
# 64-bit sizes in a ``ds64`` chunk that must come first; a 32-bit size of -1 defers to it.
_RF64_MAGICS = frozenset({b"RF64", b"BW64"})
_DS64_MIN_BODY = 28  # riffSize, dataSize, sampleCount (8 bytes each), tableLength (4)


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
    #: The format tag the samples are coded in: an extensible header's SubFormat tag when
    #: its GUID is a registered one, otherwise ``audio_format``.
    codec: int

    @property
    def duration_seconds(self) -> float | None:
        """Declared duration, when the data size and byte rate are known."""
        if self.data_size is None or self.byte_rate <= 0:
            return None
        return self.data_size / self.byte_rate


def _fmt(body: bytes) -> tuple[tuple[int, int, int, int, int, int], int]:
    """The ``fmt `` fields (PCM subformat folded into the tag) and the codec's own tag."""
    if len(body) < 16:
        raise WavFormatError(f"The WAV 'fmt ' chunk is {len(body)} bytes; it needs at least 16.")
    tag, channels, rate, byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    codec = tag
    if tag == WAVE_FORMAT_EXTENSIBLE and len(body) >= 40 and body[28:40] == _SUBFORMAT_BASE:
        (codec,) = struct.unpack_from("<H", body, 24)
        if body[26:28] != b"\x00\x00":
            codec = WAVE_FORMAT_EXTENSIBLE
        if codec == WAVE_FORMAT_PCM:
            tag = WAVE_FORMAT_PCM
    return (tag, channels, rate, byte_rate, block_align, bits), codec


def parse_wav_header(head: bytes, *, rf64: bool = False) -> WavHeader | None:
    """The header of a WAV file starting with ``head``; None while more bytes are needed.

    ``rf64`` also accepts RF64/BW64 files, whose 64-bit data size comes from ``ds64``.
    Raises :class:`WavFormatError` when ``head`` cannot be the start of a WAV file.
    """
    magic = head[:4]
    if len(head) >= 4 and magic != b"RIFF" and not (rf64 and magic in _RF64_MAGICS):
        raise WavFormatError("The body is not a WAV file: it does not start with 'RIFF'.")
    if len(head) >= 12 and head[8:12] != b"WAVE":
        raise WavFormatError("The body is a RIFF file but not WAVE audio.")
    position = 12
    fmt: tuple[tuple[int, int, int, int, int, int], int] | None = None
    long_data_size: int | None = None
    while position + 8 <= len(head):
        chunk_id = head[position : position + 4]
        (size,) = struct.unpack_from("<I", head, position + 4)
        body = position + 8
        if magic in _RF64_MAGICS and position == 12:
            if chunk_id != b"ds64" or size < _DS64_MIN_BODY:
                raise WavFormatError("The RF64 file does not start with a 'ds64' chunk.")
            if body + _DS64_MIN_BODY > len(head):
                return None
            (long_data_size,) = struct.unpack_from("<Q", head, body + 8)
        if chunk_id == b"data":
            if fmt is None:
                raise WavFormatError("The WAV file has its 'data' chunk before its 'fmt ' chunk.")
            fields, codec = fmt
            if size == 0xFFFFFFFF and long_data_size is not None:
                size = long_data_size
            return WavHeader(
                *fields,
                data_offset=body,
                data_size=None if size in UNKNOWN_DATA_SIZES else size,
                codec=codec,
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


def _wav_duration(head: bytes, size: int | None) -> float | None:
    try:
        header = parse_wav_header(head, rf64=True)
    except WavFormatError:
        return None
    if header is None or header.data_size is None or header.sample_rate <= 0:
        return None
    data_size = header.data_size
    if size is not None:
        # A truncated upload keeps the size its writer declared; the file holds only so much.
        if size < header.data_offset:
            return None
        data_size = min(data_size, size - header.data_offset)
    if header.codec in _FRAMED_FORMATS:
        # nAvgBytesPerSec is advisory; a PCM header whose fields disagree proves nothing.
        if header.block_align <= 0 or header.block_align * header.sample_rate != header.byte_rate:
            return None
        return (data_size // header.block_align) / header.sample_rate
    if header.codec in _VARIABLE_RATE_FORMATS or header.byte_rate <= 0:
        return None
    return data_size / header.byte_rate


# ----------------------------------------------------------------------------------- FLAC

_FLAC_MAGIC = b"fLaC"
_STREAMINFO_SIZE = 34  # bytes of the STREAMINFO block's body


def _streaminfo_duration(block: bytes) -> float | None:
    """Seconds from a STREAMINFO body: 20-bit sample rate and 36-bit total sample count.

    Both sit in the 64 bits at offset 10, after the block and frame size bounds, together
    with channels (3 bits) and bits per sample (5); a total of 0 means "unknown".
    """
    if len(block) < _STREAMINFO_SIZE:
        return None
    packed = int.from_bytes(block[10:18], "big")
    rate = packed >> 44
    total_samples = packed & ((1 << 36) - 1)
    if rate == 0 or total_samples == 0:
        return None
    return total_samples / rate


def _flac_duration(head: bytes) -> float | None:
    # STREAMINFO must be the first metadata block: type 0 in the low 7 bits of its header
    # byte, then a 24-bit length that is 34 for STREAMINFO.
    if head[:4] != _FLAC_MAGIC or len(head) < 8 or head[4] & 0x7F != 0:
        return None
    if int.from_bytes(head[5:8], "big") != _STREAMINFO_SIZE:
        return None
    return _streaminfo_duration(head[8 : 8 + _STREAMINFO_SIZE])


# ------------------------------------------------------------------------------------ Ogg

#: Bytes of an Ogg page header before its segment table (RFC 3533 section 6).
OGG_PAGE_HEADER = 27
#: Header-type flag: first page of a logical stream.
OGG_BOS = 0x02
#: Opus granule positions count 48 kHz samples whatever the input rate (RFC 7845 section 4).
OPUS_GRANULE_RATE = 48_000
_OPUS_HEAD_MIN = 19  # RFC 7845 section 5.1: fixed part of the identification header


@dataclass(frozen=True)
class OggPage:
    """An Ogg page header: what follows it and where it stands in its stream."""

    #: Stream structure version; 0 is the only one defined.
    version: int
    flags: int
    #: Signed; -1 on a page on which no packet ends.
    granule: int
    serial: int
    sequence: int
    crc: int
    #: Lacing values; a packet ends at the first value below 255.
    segments: bytes

    @property
    def header_size(self) -> int:
        """Bytes of header and segment table."""
        return OGG_PAGE_HEADER + len(self.segments)

    @property
    def body_size(self) -> int:
        """Bytes of the page body."""
        return sum(self.segments)


def parse_ogg_page(data: bytes, offset: int = 0) -> OggPage | None:
    """The page header at ``offset`` of ``data``; None if incomplete or not ``OggS``."""
    if offset < 0 or offset + OGG_PAGE_HEADER > len(data):
        return None
    if data[offset : offset + 4] != b"OggS":
        return None
    count = data[offset + 26]
    if offset + OGG_PAGE_HEADER + count > len(data):
        return None
    version, flags, granule, serial, sequence, crc = struct.unpack_from("<BBqIII", data, offset + 4)
    segments = bytes(data[offset + OGG_PAGE_HEADER : offset + OGG_PAGE_HEADER + count])
    return OggPage(version, flags, granule, serial, sequence, crc, segments)


@dataclass(frozen=True)
class OpusHead:
    """The fields of an ``OpusHead`` packet that timing needs (RFC 7845 section 5.1)."""

    version: int
    channels: int
    #: 48 kHz samples to discard from the start of the decoded output.
    pre_skip: int
    #: The encoder's input rate; 0 when it did not say. Informational only.
    input_rate: int


def parse_opus_head(packet: bytes) -> OpusHead | None:
    """``packet`` as an ``OpusHead``, or None when it is not one (or too short to be)."""
    if not packet.startswith(b"OpusHead") or len(packet) < _OPUS_HEAD_MIN:
        return None
    version, channels, pre_skip, input_rate = struct.unpack_from("<BBHI", packet, 8)
    return OpusHead(version, channels, pre_skip, input_rate)


def _make_crc_table() -> tuple[int, ...]:
    # RFC 3533 section 6: CRC-32, generator 0x04C11DB7, MSB first, initial 0, no final XOR
    # (so not zlib's reflected CRC-32).
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return tuple(table)


_CRC_TABLE = _make_crc_table()


def _page_crc(page: bytes) -> int:
    """The checksum of a whole page, its own CRC field (bytes 22-25) counted as zero."""
    crc = 0
    table = _CRC_TABLE
    for byte in page[:22] + b"\x00\x00\x00\x00" + page[26:]:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ byte]
    return crc


def _first_packet(head: bytes) -> tuple[OggPage, bytes] | None:
    """The stream's BOS page and the identification packet it opens with."""
    page = parse_ogg_page(head)
    if page is None or page.version != 0 or not page.flags & OGG_BOS:
        return None
    length = 0
    for lacing in page.segments:
        length += lacing
        if lacing < 255:
            break
    start = page.header_size
    if start + length > len(head):
        return None
    return page, head[start : start + length]


def _granule_timing(packet: bytes) -> tuple[int, int] | None:
    """(granule positions per second, granule at time zero) for the stream's codec."""
    opus = parse_opus_head(packet)
    if opus is not None:
        # A major version other than 0 is a format this reader does not know (RFC 7845 5.1).
        return None if opus.version >> 4 else (OPUS_GRANULE_RATE, opus.pre_skip)
    if packet.startswith(b"\x01vorbis") and len(packet) >= 30:
        # Vorbis I specification 4.2.2: version (32 bits, must be 0), channels (8), rate
        # (32), three bit rates, block sizes, then a framing bit that must be set.
        version, _channels, rate = struct.unpack_from("<IBI", packet, 7)
        if version != 0 or not packet[29] & 1:
            return None
        return rate, 0
    if packet.startswith(b"Speex   ") and len(packet) >= 80:
        # Speex manual, "Ogg file format": speex_string[8], speex_version[20],
        # speex_version_id, header_size, then rate, each a 32-bit little-endian int.
        (rate,) = struct.unpack_from("<I", packet, 36)
        return rate, 0
    if packet.startswith(b"\x7fFLAC") and packet[9:13] == _FLAC_MAGIC and len(packet) >= 51:
        # FLAC-in-Ogg mapping: 0x7F "FLAC", version (2 bytes), header count (2), then
        # "fLaC", the STREAMINFO block header (4) and STREAMINFO; granules are sample numbers.
        return int.from_bytes(packet[27:30], "big") >> 4, 0
    return None


def _last_granule(tail: bytes, serial: int) -> int | None:
    """The granule position of the last whole page of stream ``serial`` in ``tail``."""
    position = len(tail)
    while True:
        position = tail.rfind(b"OggS", 0, position)
        if position < 0:
            return None
        page = parse_ogg_page(tail, position)
        if page is None or page.version != 0 or page.serial != serial or page.granule < 0:
            continue
        end = position + page.header_size + page.body_size
        if end > len(tail):
            continue  # cut off by the file's end (or "OggS" inside a packet)
        # The last whole page must be intact: a damaged one proves nothing.
        return page.granule if _page_crc(tail[position:end]) == page.crc else None


def _ogg_duration(head: bytes, tail: bytes) -> float | None:
    first = _first_packet(head)
    if first is None:
        return None
    page, packet = first
    timing = _granule_timing(packet)
    if timing is None or timing[0] <= 0:
        return None
    rate, origin = timing
    granule = _last_granule(tail, page.serial)
    if granule is None or granule < origin:
        return None
    return (granule - origin) / rate


# ------------------------------------------------------------------------------ interface


def needs_tail(container: str) -> bool:
    """True when :func:`header_duration` needs the last :data:`TAIL_BYTES` of the blob too.

    Only Ogg: its length is the granule position of the stream's last page.
    """
    return container == "ogg"


def header_duration(
    container: str, head: bytes, tail: bytes | None = None, *, size: int | None = None
) -> float | None:
    """Seconds of audio the blob's header proves, or None when it does not prove them.

    ``container`` is what :func:`shared.audio_formats.sniff` named; ``head`` the first
    :data:`HEAD_BYTES` (or fewer, for a smaller file) and ``tail`` the last
    :data:`TAIL_BYTES` of the blob (needed when :func:`needs_tail`; for a small file it may
    overlap ``head``). ``size``, the blob's size, bounds a WAV data chunk that claims more
    bytes than the file holds. None for formats without a length in their header (MP3,
    AAC, AMR, ASF, WebM, MP4), for a WAV streamed with an unknown data size, a FLAC stream
    with no sample count, an Ogg stream without ``tail`` (unless ``size`` shows that
    ``head`` is the whole file), and for damaged or truncated headers. Never raises on
    malformed bytes.
    """
    try:
        if container == "wav":
            return _wav_duration(head, size)
        if container == "flac":
            return _flac_duration(head)
        if container == "ogg":
            if tail is None and size is not None and len(head) >= size:
                tail = head  # the head is the whole file
            return None if tail is None else _ogg_duration(head, tail)
    except (ValueError, IndexError, struct.error):
        # The parsers check their bounds; this keeps the promise should one have slipped.
        return None
    return None
