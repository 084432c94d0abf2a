"""Routing decisions, one per reason a file goes fast or batch (no stack: a fake storage)."""

from __future__ import annotations

import struct
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from shared.pipeline.options import OptionsError, options_from_metadata
from shared.pipeline.routing import decide, mode_from_metadata
from shared.settings import AppSettings, Routing
from shared.storage import BlobInfo

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "speech"


class FakeStorage:
    """Ranged reads over in-memory bytes, counting them."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.reads: list[tuple[int, int]] = []

    async def read_range(self, blob: BlobInfo, offset: int, length: int) -> bytes:
        self.reads.append((offset, length))
        return self.data[offset : offset + length]


def settings(**overrides: Any) -> AppSettings:
    return AppSettings(AudioStorage="UseDevelopmentStorage=true", **overrides)


async def route(
    data: bytes,
    container: str,
    *,
    requested: Routing = Routing.AUTO,
    metadata: dict[str, str] | None = None,
    size: int | None = None,
    **overrides: Any,
) -> tuple[Routing, str, float | None, FakeStorage]:
    app = settings(**overrides)
    storage = FakeStorage(data)
    ctx: Any = SimpleNamespace(settings=app, storage=storage)
    blob = BlobInfo("in", f"x.{container}", size if size is not None else len(data), "e")
    decision = await decide(
        ctx,
        blob,
        container=container,
        options=options_from_metadata(metadata or {}, app),
        requested=requested,
        source="ROUTING",
    )
    return decision.route, decision.reason, decision.audio_seconds, storage


def wav(seconds: float, rate: int = 8000) -> bytes:
    frames = int(seconds * rate)
    header = b"RIFF" + struct.pack("<I", 36 + frames) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate, 1, 8)
    return header + fmt + b"data" + struct.pack("<I", frames) + b"\x80" * frames


def flac_header(seconds: float, rate: int = 16000) -> bytes:
    """A FLAC STREAMINFO block claiming ``seconds`` of audio (no frames follow)."""
    total = int(seconds * rate)
    packed = (rate << 44) | (0 << 41) | (15 << 36) | total  # 1 channel, 16 bits
    body = struct.pack(">HH", 4096, 4096) + b"\x00" * 6 + packed.to_bytes(8, "big") + b"\0" * 16
    return b"fLaC" + bytes([0x80]) + len(body).to_bytes(3, "big") + body


async def test_batch_routing_never_reads_the_file() -> None:
    got, reason, _, storage = await route(wav(3), "wav", requested=Routing.BATCH)
    assert got is Routing.BATCH
    assert reason == "ROUTING is batch"
    assert storage.reads == []


async def test_auto_sends_a_short_wav_by_its_header() -> None:
    got, reason, seconds, storage = await route(wav(3.5), "wav")
    assert got is Routing.FAST
    assert seconds == pytest.approx(3.5)
    assert "3.5 s" in reason
    assert len(storage.reads) == 1, "one ranged read of the head"


async def test_auto_keeps_a_long_wav_in_batch() -> None:
    got, reason, seconds, _ = await route(wav(150), "wav")
    assert got is Routing.BATCH
    assert seconds == pytest.approx(150)
    assert "more than 120 s" in reason


async def test_fast_max_seconds_is_the_bound() -> None:
    assert (await route(wav(10), "wav", fast_max_seconds=5))[0] is Routing.BATCH
    assert (await route(wav(4), "wav", fast_max_seconds=5))[0] is Routing.FAST


async def test_ogg_is_measured_from_its_last_page() -> None:
    data = (FIXTURES / "long-70s.ogg").read_bytes()
    got, _, seconds, storage = await route(data, "ogg")
    assert got is Routing.FAST
    assert seconds == pytest.approx(70, abs=1.5)
    assert len(storage.reads) == 2, "head and tail"
    assert (await route(data, "ogg", fast_max_seconds=60))[0] is Routing.BATCH


async def test_flac_is_measured_from_streaminfo() -> None:
    got, _, seconds, _ = await route((FIXTURES / "sentence-04.flac").read_bytes(), "flac")
    assert got is Routing.FAST
    assert seconds is not None
    assert 1 < seconds < 20


async def test_a_header_of_two_hours_or_more_goes_to_batch_even_when_fast_is_asked() -> None:
    got, reason, _, _ = await route(flac_header(2 * 3600 + 1), "flac", requested=Routing.FAST)
    assert got is Routing.BATCH
    assert "under 2 hours" in reason


async def test_200_mb_or_more_goes_to_batch_without_a_read() -> None:
    got, reason, _, storage = await route(b"", "mp3", requested=Routing.FAST, size=200_000_000)
    assert got is Routing.BATCH
    assert "less than 200 MB" in reason
    assert storage.reads == []


async def test_a_format_without_length_is_bounded_by_its_size() -> None:
    small = b"ID3" + b"\0" * 50_000  # 50 kB of mp3 hold at most 50 s at 8 kbit/s
    got, reason, seconds, _ = await route(small, "mp3")
    assert (got, seconds) == (Routing.FAST, None)
    assert "hold at most 50 s" in reason
    big = b"ID3" + b"\0" * 500_000
    got, reason, _, _ = await route(big, "mp3")
    assert got is Routing.BATCH
    assert "does not tell the length" in reason


async def test_a_streaming_wav_without_a_length_falls_back_to_its_size() -> None:
    data = bytearray(wav(300))
    data[40:44] = b"\xff\xff\xff\xff"  # the data size a live recorder writes
    got, reason, seconds, _ = await route(bytes(data), "wav")
    assert (got, seconds) == (Routing.BATCH, None)
    assert "does not tell the length" in reason


async def test_fast_sends_a_long_file_the_service_can_take() -> None:
    got, reason, _, _ = await route(wav(600), "wav", requested=Routing.FAST)
    assert got is Routing.FAST
    assert "600.0 s" in reason


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        ({"model": "https://x.cognitiveservices.azure.com/speechtotext/models/base/1"}, "model"),
        ({"punctuation": "None"}, "punctuation None"),
        ({"diarization": "true", "channels": "0,1"}, "two separate channels"),
    ],
)
async def test_options_fast_transcription_cannot_honour_go_to_batch(
    metadata: dict[str, str], words: str
) -> None:
    got, reason, _, storage = await route(wav(2), "wav", metadata=metadata)
    assert got is Routing.BATCH
    assert words in reason
    assert storage.reads == [], "decided by the options alone"


async def test_options_fast_transcription_takes_stay_fast() -> None:
    metadata = {
        "diarization": "true",
        "maxspeakers": "3",
        "profanity": "Removed",
        "locale": "de-DE",
    }
    assert (await route(wav(2), "wav", metadata=metadata))[0] is Routing.FAST


def test_the_mode_metadata_overrides_and_is_checked() -> None:
    assert mode_from_metadata({"Mode": "FAST"}) is Routing.FAST
    assert mode_from_metadata({"mode": "batch"}) is Routing.BATCH
    assert mode_from_metadata({"color": "blue"}) is None
    with pytest.raises(OptionsError) as caught:
        mode_from_metadata({"mode": "quick"})
    assert caught.value.key == "mode"
    assert "fast, batch or auto" in str(caught.value)
