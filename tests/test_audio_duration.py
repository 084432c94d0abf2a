"""Durations proved from a blob's first (and for Ogg, last) bytes, checked against real files.

Files are made with sox (and espeak-ng for speech) and measured with ``soxi -D``; Opus and
FLAC-in-Ogg, which Debian's sox cannot write, are the committed fixtures or PyAV encodes
whose decoded sample count is the reference. Each file is read the way the pipeline reads a
blob: :data:`HEAD_BYTES` from the start, :data:`TAIL_BYTES` from the end. Damaged, streamed
and truncated variants are derived from those files byte by byte.
"""

from __future__ import annotations

import math
import random
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.audio_duration import (
    HEAD_BYTES,
    TAIL_BYTES,
    WavFormatError,
    header_duration,
    needs_tail,
    parse_wav_header,
)
from shared.audio_formats import SNIFF_BYTES, sniff
from shared.http.wav import parse_header

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "speech"
SOX = shutil.which("sox")
SOXI = shutil.which("soxi")
ESPEAK = shutil.which("espeak-ng")
needs_sox = pytest.mark.skipif(
    SOX is None or SOXI is None, reason="sox is not installed (apt-get install sox)"
)
#: sox and the parser must agree to the millisecond.
TOLERANCE = 0.001


# ------------------------------------------------------------------------------- helpers


def _run(*args: str) -> str:
    # Arguments are this module's own constants and temporary paths.
    done = subprocess.run(args, check=True, capture_output=True, text=True)  # noqa: S603
    return done.stdout


def sox(*args: str) -> None:
    """Run sox (``-D``: no dither, so the output does not vary)."""
    assert SOX is not None
    _run(SOX, "-D", *args)


def soxi_seconds(path: Path) -> float:
    """The duration sox itself reads from ``path``."""
    assert SOXI is not None
    return float(_run(SOXI, "-D", str(path)))


def probe(data: bytes) -> float | None:
    """:func:`header_duration` called as the pipeline does: ranged reads, sniffed container."""
    container = sniff(data[:SNIFF_BYTES])
    assert container is not None
    tail = data[-TAIL_BYTES:] if needs_tail(container) else None
    return header_duration(container, data[:HEAD_BYTES], tail, size=len(data))


def riff_chunk(chunk_id: bytes, body: bytes) -> bytes:
    """One RIFF chunk, padded to an even length."""
    return chunk_id + struct.pack("<I", len(body)) + body + b"\x00" * (len(body) & 1)


def wav_chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """(id, offset of the chunk header, body size) of every chunk up to ``data``."""
    chunks, position = [], 12
    while position + 8 <= len(data):
        chunk_id = data[position : position + 4]
        (size,) = struct.unpack_from("<I", data, position + 4)
        chunks.append((chunk_id, position, size))
        if chunk_id == b"data":
            break
        position += 8 + size + (size & 1)
    return chunks


def chunk_offset(data: bytes, chunk_id: bytes) -> int:
    """Where the header of ``chunk_id`` starts."""
    return next(offset for found, offset, _ in wav_chunks(data) if found == chunk_id)


def insert_before_data(data: bytes, chunk: bytes) -> bytes:
    """``data`` with ``chunk`` placed right before its ``data`` chunk, RIFF size updated."""
    at = chunk_offset(data, b"data")
    out = data[:at] + chunk + data[at:]
    return out[:4] + struct.pack("<I", len(out) - 8) + out[8:]


def set_data_size(data: bytes, size: int) -> bytes:
    """``data`` with its ``data`` chunk declaring ``size`` bytes."""
    at = chunk_offset(data, b"data")
    return data[: at + 4] + struct.pack("<I", size) + data[at + 8 :]


def with_fmt(data: bytes, fmt: bytes) -> bytes:
    """``data`` with its ``fmt `` chunk body replaced by ``fmt``."""
    at = next(offset for found, offset, _ in wav_chunks(data) if found == b"fmt ")
    (old,) = struct.unpack_from("<I", data, at + 4)
    out = data[:at] + riff_chunk(b"fmt ", fmt) + data[at + 8 + old + (old & 1) :]
    return out[:4] + struct.pack("<I", len(out) - 8) + out[8:]


def as_rf64(data: bytes) -> bytes:
    """``data`` rewritten as RF64 (EBU Tech 3306): sizes -1, the real ones in ``ds64``."""
    at = chunk_offset(data, b"data")
    (data_size,) = struct.unpack_from("<I", data, at + 4)
    ds64 = riff_chunk(b"ds64", struct.pack("<QQQI", len(data) + 28, data_size, 0, 0))
    body = data[12:at] + b"data" + struct.pack("<I", 0xFFFFFFFF) + data[at + 8 :]
    return b"RF64" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + ds64 + body


def ogg_crc(page: bytes) -> int:
    """RFC 3533's CRC-32 (generator 0x04C11DB7, MSB first, no reflection), bit by bit."""
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def ogg_page(body: bytes, *, granule: int, serial: int, sequence: int, flags: int = 0) -> bytes:
    """One Ogg page carrying ``body`` as one packet (lacing values of 255, then the rest)."""
    lacing = [255] * (len(body) // 255) + [len(body) % 255]
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, serial, sequence, 0, len(lacing))
    page = header + bytes(lacing) + body
    return page[:22] + struct.pack("<I", ogg_crc(page)) + page[26:]


def ogg_pages(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of every page of a well-formed Ogg file."""
    pages, position = [], 0
    while position < len(data):
        assert data[position : position + 4] == b"OggS"
        count = data[position + 26]
        length = 27 + count + sum(data[position + 27 : position + 27 + count])
        pages.append((position, length))
        position += length
    return pages


def speex_header(rate: int) -> bytes:
    """An 80-byte Speex header (Speex manual, "Ogg file format"), ``rate`` at offset 36."""
    version = b"1.2.1".ljust(20, b"\x00")
    # version_id, header_size, rate, mode, mode_bitstream_version, nb_channels, bitrate,
    # frame_size, vbr, frames_per_packet, extra_headers, reserved1, reserved2
    fields = struct.pack("<13i", 1, 80, rate, 1, 4, 1, -1, 320, 0, 1, 0, 0, 0)
    return b"Speex   " + version + fields


def av_encode(path: Path, *, fmt: str, codec: str, rate: int, channels: int, frames: int) -> int:
    """Encode ``frames`` of noise with PyAV; return the sample frames a decoder gets back."""
    av: Any = pytest.importorskip("av")
    np: Any = pytest.importorskip("numpy")
    layout = "stereo" if channels == 2 else "mono"
    noise = np.random.default_rng(7).standard_normal((1, frames * channels)) * 3000
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = layout
        frame = av.AudioFrame.from_ndarray(noise.astype("<i2"), format="s16", layout=layout)
        frame.sample_rate = rate
        frame.pts = 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    with av.open(str(path)) as container:
        return sum(int(decoded.samples) for decoded in container.decode(audio=0))


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``made(name, *options, effect)``: a file sox writes once for this module."""
    folder = tmp_path_factory.mktemp("audio")
    cache: dict[tuple[str, ...], Path] = {}

    def make(name: str, *options: str) -> Path:
        # The last argument is the effect chain, split like a shell would.
        if SOX is None:
            pytest.skip("sox is not installed (apt-get install sox)")
        key = (name, *options)
        if key not in cache:
            path = folder / name
            sox(*options[:-1], str(path), *options[-1].split())
            cache[key] = path
        return cache[key]

    return make


def synth(seconds: float) -> str:
    """sox effect: a tone of exactly ``seconds``."""
    return f"synth {seconds} sine 440"


# ----------------------------------------------------------------------------- interface


def test_read_sizes_and_tail_formats() -> None:
    assert HEAD_BYTES == TAIL_BYTES == 64 * 1024
    # The largest Ogg page (RFC 3533) fits in the tail, so the last page is always whole.
    assert TAIL_BYTES >= 27 + 255 + 255 * 255
    assert needs_tail("ogg")
    for container in ("wav", "flac", "mp3", "aac", "amr", "asf", "webm", "mp4", "xyz"):
        assert not needs_tail(container)


# ----------------------------------------------------------------------------------- WAV


@needs_sox
@pytest.mark.parametrize(
    ("name", "args", "seconds"),
    [
        ("mono16k.wav", ("-n", "-r", "16000", "-c", "1", "-b", "16", synth(3.25)), 3.25),
        ("stereo44k.wav", ("-n", "-r", "44100", "-c", "2", "-b", "16", synth(2.5)), 2.5),
        ("alaw8k.wav", ("-n", "-r", "8000", "-c", "1", "-e", "a-law", synth(1.75)), 1.75),
        ("ulaw8k3ch.wav", ("-n", "-r", "8000", "-c", "3", "-e", "u-law", synth(1.2)), 1.2),
        ("float48k.wav", ("-n", "-r", "48000", "-c", "2", "-e", "floating-point", synth(0.9)), 0.9),
        # 24-bit and more than two channels: sox writes WAVE_FORMAT_EXTENSIBLE.
        ("ext24b.wav", ("-n", "-r", "48000", "-c", "3", "-b", "24", synth(2.0)), 2.0),
        ("long8k.wav", ("-n", "-r", "8000", "-c", "1", synth(600)), 600.0),
    ],
)
def test_wav_matches_soxi(
    made: Callable[..., Path], name: str, args: tuple[str, ...], seconds: float
) -> None:
    path = made(name, *args)
    expected = soxi_seconds(path)
    assert expected == pytest.approx(seconds, abs=TOLERANCE)
    data = path.read_bytes()
    assert probe(data) == pytest.approx(expected, abs=TOLERANCE)
    # The size is only a bound: without it a whole file gives the same answer.
    assert header_duration("wav", data[:HEAD_BYTES]) == pytest.approx(expected, abs=TOLERANCE)


@needs_sox
def test_sox_wrote_the_formats_the_cases_claim(made: Callable[..., Path]) -> None:
    alaw = made("alaw8k.wav", "-n", "-r", "8000", "-c", "1", "-e", "a-law", synth(1.75))
    ext = made("ext24b.wav", "-n", "-r", "48000", "-c", "3", "-b", "24", synth(2.0))
    alaw_header = parse_wav_header(alaw.read_bytes())
    ext_header = parse_wav_header(ext.read_bytes())
    assert alaw_header is not None
    assert ext_header is not None
    assert (alaw_header.audio_format, alaw_header.codec) == (6, 6)
    # A "fact" chunk sits between "fmt " and "data" in sox's non-PCM files.
    assert [chunk for chunk, _, _ in wav_chunks(alaw.read_bytes())] == [b"fmt ", b"fact", b"data"]
    assert struct.unpack_from("<H", ext.read_bytes(), 20) == (0xFFFE,)
    assert (ext_header.audio_format, ext_header.codec) == (1, 1)


@needs_sox
@pytest.mark.parametrize("encoding", ["ima-adpcm", "ms-adpcm"])
def test_adpcm_wav_is_timed_by_its_byte_rate(made: Callable[..., Path], encoding: str) -> None:
    path = made(f"{encoding}.wav", "-n", "-r", "8000", "-c", "1", "-e", encoding, synth(2.3))
    seconds = probe(path.read_bytes())
    assert seconds is not None
    # The average byte rate counts whole blocks; the last block is partly padding.
    assert abs(seconds - soxi_seconds(path)) < 512 / 8000


@needs_sox
def test_extensible_alaw_counts_as_alaw(made: Callable[..., Path]) -> None:
    data = made("alaw8k.wav", "-n", "-r", "8000", "-c", "1", "-e", "a-law", synth(1.75))
    plain = data.read_bytes()
    # WAVEFORMATEXTENSIBLE: WAVEFORMATEX with cbSize 22, valid bits, channel mask, and the
    # SubFormat GUID {00000006-0000-0010-8000-00AA00389B71} (KSDATAFORMAT_SUBTYPE_ALAW).
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 1, 8000, 8000, 1, 8, 22, 8, 4)
    fmt += bytes.fromhex("0600000000001000800000aa00389b71")
    extensible = with_fmt(plain, fmt)
    header = parse_wav_header(extensible)
    assert header is not None
    assert (header.audio_format, header.codec) == (0xFFFE, 6)
    assert probe(extensible) == pytest.approx(1.75, abs=TOLERANCE)
    # An extensible header with a GUID of no registered tag still has a byte rate.
    vendor = with_fmt(plain, fmt[:24] + bytes(range(16)))
    assert probe(vendor) == pytest.approx(1.75, abs=TOLERANCE)


@needs_sox
def test_metadata_chunks_before_data_are_walked(made: Callable[..., Path]) -> None:
    plain = made("mono16k.wav", "-n", "-r", "16000", "-c", "1", "-b", "16", synth(3.25))
    data = plain.read_bytes()
    listed = insert_before_data(data, riff_chunk(b"LIST", b"INFOISFT" + b"x" * 1001))
    listed = insert_before_data(listed, riff_chunk(b"JUNK", bytes(28)))
    assert [chunk for chunk, _, _ in wav_chunks(listed)] == [b"fmt ", b"LIST", b"JUNK", b"data"]
    assert probe(listed) == pytest.approx(3.25, abs=TOLERANCE)
    # A bext chunk before "fmt " (as broadcast recorders write it) is walked past too.
    bext = riff_chunk(b"bext", bytes(602))
    first = data[:12] + bext + data[12:]
    first = first[:4] + struct.pack("<I", len(first) - 8) + first[8:]
    assert probe(first) == pytest.approx(3.25, abs=TOLERANCE)
    # Metadata larger than the head leaves "data" out of reach: not proved.
    huge = insert_before_data(data, riff_chunk(b"LIST", b"INFO" + bytes(HEAD_BYTES)))
    assert probe(huge) is None


@needs_sox
@pytest.mark.parametrize("declared", [0, 0xFFFFFFFF])
def test_streamed_wav_is_not_proved(made: Callable[..., Path], declared: int) -> None:
    data = made("mono16k.wav", "-n", "-r", "16000", "-c", "1", "-b", "16", synth(3.25))
    streamed = set_data_size(data.read_bytes(), declared)
    assert probe(streamed) is None
    assert header_duration("wav", streamed[:HEAD_BYTES]) is None


@needs_sox
def test_data_size_past_the_end_is_clipped_to_the_file(made: Callable[..., Path]) -> None:
    path = made("stereo44k.wav", "-n", "-r", "44100", "-c", "2", "-b", "16", synth(2.5))
    data = path.read_bytes()
    offset = chunk_offset(data, b"data") + 8
    # Cut after one second of samples and half a frame: the header still claims 2.5 s.
    cut = data[: offset + 44100 * 4 + 2]
    assert header_duration("wav", cut[:HEAD_BYTES]) == pytest.approx(2.5, abs=TOLERANCE)
    assert header_duration("wav", cut[:HEAD_BYTES], size=len(cut)) == 1.0
    # A header claiming ~6.8 hours on a 2.5 s file.
    inflated = set_data_size(data, 0xFFFFFFF0)
    assert probe(inflated) == pytest.approx(2.5, abs=TOLERANCE)
    # Only the header arrived: nothing of the samples is there.
    assert header_duration("wav", data[:offset], size=offset) == 0.0
    # A size smaller than the header contradicts it.
    assert header_duration("wav", data[:HEAD_BYTES], size=offset - 1) is None


@needs_sox
def test_rf64_reads_its_ds64_size(made: Callable[..., Path]) -> None:
    path = made("stereo44k.wav", "-n", "-r", "44100", "-c", "2", "-b", "16", synth(2.5))
    rf64 = as_rf64(path.read_bytes())
    assert header_duration("wav", rf64[:HEAD_BYTES], size=len(rf64)) == pytest.approx(
        2.5, abs=TOLERANCE
    )
    # The short-audio endpoint keeps accepting RIFF only.
    with pytest.raises(WavFormatError, match="does not start with 'RIFF'"):
        parse_header(rf64)
    no_ds64 = rf64[:12] + rf64[12 + 8 + 28 :]
    assert header_duration("wav", no_ds64[:HEAD_BYTES]) is None


@needs_sox
def test_contradicting_or_variable_rate_headers_are_not_proved(
    made: Callable[..., Path],
) -> None:
    data = made("mono16k.wav", "-n", "-r", "16000", "-c", "1", "-b", "16", synth(3.25))
    plain = data.read_bytes()
    # PCM whose byte rate says 8000 bytes/s but whose frames say 32000.
    wrong_rate = with_fmt(plain, struct.pack("<HHIIHH", 1, 1, 16000, 8000, 2, 16))
    assert probe(wrong_rate) is None
    assert probe(with_fmt(plain, struct.pack("<HHIIHH", 1, 1, 0, 0, 2, 16))) is None
    assert probe(with_fmt(plain, struct.pack("<HHIIHH", 1, 1, 16000, 0, 0, 16))) is None
    # MPEG layer III in WAV: its byte rate is a nominal bit rate, not a length.
    mp3 = struct.pack("<HHIIHHH", 0x55, 1, 16000, 4000, 1, 0, 0)
    assert probe(with_fmt(plain, mp3)) is None
    # "data" before "fmt " is malformed.
    at = chunk_offset(plain, b"data")
    assert header_duration("wav", plain[:12] + plain[at:]) is None


def test_committed_wav_fixtures() -> None:
    # sox 14.4.2 made these; soxi -D reads 2.991750 and 3.770000.
    assert probe((FIXTURES / "sentence-02.wav").read_bytes()) == pytest.approx(2.99175, abs=1e-6)
    assert probe((FIXTURES / "stereo.wav").read_bytes()) == pytest.approx(3.77, abs=1e-6)


# ---------------------------------------------------------------------------------- FLAC


@needs_sox
@pytest.mark.parametrize(
    ("name", "args", "seconds"),
    [
        ("mono16k.flac", ("-n", "-r", "16000", "-c", "1", "-b", "16", synth(3.25)), 3.25),
        ("stereo96k.flac", ("-n", "-r", "96000", "-c", "2", "-b", "24", synth(1.5)), 1.5),
    ],
)
def test_flac_matches_soxi(
    made: Callable[..., Path], name: str, args: tuple[str, ...], seconds: float
) -> None:
    path = made(name, *args)
    expected = soxi_seconds(path)
    assert expected == pytest.approx(seconds, abs=TOLERANCE)
    assert probe(path.read_bytes()) == pytest.approx(expected, abs=TOLERANCE)


def test_flac_without_a_sample_count_is_not_proved() -> None:
    data = (FIXTURES / "sentence-04.flac").read_bytes()
    # soxi -D: 3.500938 (56015 samples at 16 kHz).
    assert probe(data) == pytest.approx(3.5009375, abs=1e-6)
    # STREAMINFO starts at 8; its total-samples field is the low 36 bits of bytes 10-17.
    packed = int.from_bytes(data[18:26], "big") & ~((1 << 36) - 1)
    zeroed = data[:18] + packed.to_bytes(8, "big") + data[26:]
    assert probe(zeroed) is None
    # STREAMINFO must come first; any other first block is a damaged stream.
    assert probe(data[:4] + b"\x04" + data[5:]) is None
    assert header_duration("flac", data[:20]) is None


# ----------------------------------------------------------------------------------- Ogg


@needs_sox
@pytest.mark.parametrize(
    ("name", "args", "seconds"),
    [
        ("mono16k.ogg", ("-n", "-r", "16000", "-c", "1", synth(3.25)), 3.25),
        ("stereo44k.ogg", ("-n", "-r", "44100", "-c", "2", synth(2.5)), 2.5),
        # Over HEAD_BYTES + TAIL_BYTES, so head and tail are different bytes.
        ("noise44k.ogg", ("-n", "-r", "44100", "-c", "2", "synth 20 whitenoise"), 20.0),
    ],
)
def test_ogg_vorbis_matches_soxi(
    made: Callable[..., Path], name: str, args: tuple[str, ...], seconds: float
) -> None:
    path = made(name, *args)
    data = path.read_bytes()
    assert data[28:35] == b"\x01vorbis"
    expected = soxi_seconds(path)
    assert expected == pytest.approx(seconds, abs=TOLERANCE)
    assert probe(data) == pytest.approx(expected, abs=TOLERANCE)
    assert header_duration("ogg", data[:HEAD_BYTES]) is None
    # Vorbis I 4.2.2: a vorbis_version other than 0 is not Vorbis I.
    assert probe(data[:35] + b"\x01" + data[36:]) is None
    if seconds == 20.0:
        assert len(data) > HEAD_BYTES + TAIL_BYTES


def test_ogg_opus_fixtures() -> None:
    # sentence-02.ogg encodes sentence-02.wav (2.99175 s), long-70s.ogg exactly 70.0 s of
    # samples (tests/fixtures/make_speech.py). The first is smaller than the head, so head
    # and tail overlap; the second is larger than both together.
    short = (FIXTURES / "sentence-02.ogg").read_bytes()
    long = (FIXTURES / "long-70s.ogg").read_bytes()
    assert len(short) < HEAD_BYTES < HEAD_BYTES + TAIL_BYTES < len(long)
    source = parse_wav_header((FIXTURES / "sentence-02.wav").read_bytes())
    assert source is not None
    assert probe(short) == pytest.approx(source.duration_seconds, abs=1e-9)
    assert probe(long) == pytest.approx(70.0, abs=1e-9)
    assert header_duration("ogg", long[:HEAD_BYTES]) is None
    # The head alone is enough when the caller says it is the whole file.
    assert header_duration("ogg", short, size=len(short)) == probe(short)
    assert header_duration("ogg", short[:HEAD_BYTES]) is None


def test_ogg_opus_subtracts_pre_skip(tmp_path: Path) -> None:
    path = tmp_path / "stereo48k.opus"
    decoded = av_encode(path, fmt="ogg", codec="libopus", rate=48_000, channels=2, frames=240_123)
    data = path.read_bytes()
    assert data[28:36] == b"OpusHead"
    (pre_skip,) = struct.unpack_from("<H", data, 28 + 10)
    assert pre_skip > 0
    assert probe(data) == pytest.approx(decoded / 48_000, abs=TOLERANCE)


def test_flac_in_ogg(tmp_path: Path) -> None:
    path = tmp_path / "mono44k.oga"
    decoded = av_encode(path, fmt="ogg", codec="flac", rate=44_100, channels=1, frames=132_307)
    data = path.read_bytes()
    assert data[28:33] == b"\x7fFLAC"
    assert probe(data) == pytest.approx(decoded / 44_100, abs=TOLERANCE)


def test_ogg_speex_reads_the_header_rate() -> None:
    serial = 0x5EED
    pages = [
        ogg_page(speex_header(16_000), granule=0, serial=serial, sequence=0, flags=0x02),
        ogg_page(b"\x00" * 8, granule=0, serial=serial, sequence=1),
    ]
    for sequence in range(2, 12):
        pages.append(
            ogg_page(
                b"\x55" * 3000, granule=(sequence - 1) * 4000, serial=serial, sequence=sequence
            )
        )
    pages.append(ogg_page(b"\x55" * 10, granule=40_000, serial=serial, sequence=12, flags=4))
    data = b"".join(pages)
    # 40,000 granules are 2.5 s at the header's 16 kHz, 5 s once it says 8 kHz.
    assert probe(data) == 2.5
    first = ogg_page(speex_header(8_000), granule=0, serial=serial, sequence=0, flags=0x02)
    assert probe(first + data[len(pages[0]) :]) == 5.0


def test_ogg_tail_pages_are_checked() -> None:
    data = (FIXTURES / "long-70s.ogg").read_bytes()
    pages = ogg_pages(data)
    last_offset, last_length = pages[-1]
    before = probe(data[:last_offset])
    assert before is not None
    assert 60.0 < before < 70.0
    # Cut inside the last page: the last whole page before it gives the length.
    assert probe(data[: last_offset + last_length - 1]) == before
    # A damaged last page (its CRC no longer matches) proves nothing.
    damaged = bytearray(data)
    damaged[last_offset + last_length - 1] ^= 0xFF
    assert probe(bytes(damaged)) is None
    # Pages of another stream do not count; nor does a tail with no page at all.
    serial = struct.unpack_from("<I", data, 14)[0]
    other = ogg_page(b"x" * 100, granule=10**9, serial=serial + 1, sequence=0)
    assert probe(data + other) == pytest.approx(70.0, abs=1e-9)
    assert header_duration("ogg", data[:HEAD_BYTES], b"\x00" * TAIL_BYTES) is None
    assert header_duration("ogg", data[:HEAD_BYTES], other) is None
    # Garbage after the stream (an appended tag, say) is stepped over.
    assert probe(data + b"TAG" + bytes(125)) == pytest.approx(70.0, abs=1e-9)
    # Unknown codecs on the first page are not guessed.
    unknown = data[:28] + b"theora!!" + data[36:]
    assert probe(unknown) is None


# --------------------------------------------------------------------------- other formats


def test_mp3_and_other_containers_are_not_proved() -> None:
    mp3 = (FIXTURES / "sentence-03.mp3").read_bytes()
    assert sniff(mp3[:SNIFF_BYTES]) == "mp3"
    assert probe(mp3) is None
    assert header_duration("mp3", mp3[:HEAD_BYTES], mp3[-TAIL_BYTES:], size=len(mp3)) is None
    wav = (FIXTURES / "sentence-02.wav").read_bytes()
    for container in ("aac", "amr", "asf", "webm", "mp4", "unknown", ""):
        assert header_duration(container, wav[:HEAD_BYTES], wav, size=len(wav)) is None


@needs_sox
def test_sox_mp3_is_not_proved(made: Callable[..., Path]) -> None:
    path = made("tone.mp3", "-n", "-r", "16000", "-c", "1", synth(2.0))
    assert probe(path.read_bytes()) is None


@pytest.mark.skipif(ESPEAK is None or SOX is None, reason="needs espeak-ng and sox")
def test_speech_in_every_container(tmp_path: Path) -> None:
    assert ESPEAK is not None
    speech = tmp_path / "speech.wav"
    _run(ESPEAK, "-v", "en-us", "-w", str(speech), "How long is this sentence, exactly?")
    for suffix in (".wav", ".flac", ".ogg"):
        path = tmp_path / f"speech16k{suffix}"
        sox(str(speech), "-r", "16000", str(path))
        assert probe(path.read_bytes()) == pytest.approx(soxi_seconds(path), abs=TOLERANCE)
    assert probe(speech.read_bytes()) == pytest.approx(soxi_seconds(speech), abs=TOLERANCE)


# -------------------------------------------------------------------------------- garbage


def _real_files() -> dict[str, bytes]:
    names = ["sentence-02.wav", "sentence-04.flac", "sentence-02.ogg", "long-70s.ogg"]
    return {name: (FIXTURES / name).read_bytes() for name in names}


@pytest.mark.parametrize(("name", "data"), _real_files().items())
def test_truncated_heads_give_none_or_the_truth(name: str, data: bytes) -> None:
    full = probe(data)
    assert full is not None
    container = sniff(data[:SNIFF_BYTES])
    assert container is not None
    tail = data[-TAIL_BYTES:] if needs_tail(container) else None
    for length in [*range(0, 200), 4095, 4096]:
        found = header_duration(container, data[:length], tail)
        assert found is None or found == full, (name, length)
    # The header's fields must all be there: a head too short for them proves nothing.
    assert header_duration(container, data[:20], tail) is None


def _check(value: float | None) -> None:
    assert value is None or (math.isfinite(value) and value >= 0), value


def test_random_bytes_never_raise() -> None:
    rng = random.Random(20240601)
    magics = [
        b"",
        b"RIFF\xff\xff\xff\xffWAVE",
        b"RF64\xff\xff\xff\xffWAVEds64",
        b"fLaC",
        b"OggS\x00\x02",
        b"ID3",
    ]
    containers = ["wav", "flac", "ogg", "mp3", "aac", "nonsense"]
    for _ in range(3000):
        head = rng.choice(magics) + rng.randbytes(rng.choice([0, 1, 7, 30, 64, 300, 5000]))
        tail = rng.choice([None, head, rng.randbytes(rng.choice([0, 27, 100, 70000]))])
        size = rng.choice([None, 0, -5, len(head), 10**12])
        for container in containers:
            _check(header_duration(container, head, tail, size=size))


def test_mutated_real_headers_never_raise() -> None:
    rng = random.Random(7)
    for data in _real_files().values():
        container = sniff(data[:SNIFF_BYTES])
        assert container is not None
        head, tail = bytearray(data[:HEAD_BYTES]), bytearray(data[-TAIL_BYTES:])
        for _ in range(400):
            mutated_head, mutated_tail = bytearray(head), bytearray(tail)
            for _ in range(rng.randint(1, 6)):
                at = rng.randrange(min(len(head), 128))
                mutated_head[at] = rng.randrange(256)
                mutated_tail[rng.randrange(len(tail))] = rng.randrange(256)
            _check(header_duration(container, bytes(mutated_head), bytes(mutated_tail)))
