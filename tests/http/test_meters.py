"""The WAV and Ogg meters give the same verdict however the stream is cut into chunks.

Network reads split a body anywhere (inside a page header, inside the ``fmt `` chunk); the
HTTP tests cannot choose where, so the meters are fed here in slices of every awkward size.
"""

from __future__ import annotations

import pytest

from shared.http.body import Meter
from shared.http.ogg import OggOpusMeter
from shared.http.problems import ApiProblem
from shared.http.wav import WavMeter
from tests.http.conftest import FIXTURES, riff_chunk, wav


def _feed(meter: Meter, data: bytes, size: int) -> int:
    """Feed ``data`` in slices of ``size``; return how many bytes were fed when it raised."""
    for start in range(0, len(data), size):
        try:
            meter.feed(data[start : start + size])
        except ApiProblem:
            return start + size
    meter.finish()
    return len(data)


@pytest.mark.parametrize("size", [1, 3, 7, 27, 28, 4096])
def test_ogg_duration_is_read_across_any_split(size: int) -> None:
    short = OggOpusMeter(60)
    _feed(short, (FIXTURES / "sentence-02.ogg").read_bytes(), size)
    assert short.ready
    assert short.input_rate == 16_000
    assert 2.5 < short.seconds < 3.5

    audio = (FIXTURES / "long-70s.ogg").read_bytes()
    whole = OggOpusMeter(60)
    with pytest.raises(ApiProblem) as refused:
        whole.feed(audio)
    assert refused.value.status == 413
    stopped_at = _feed(OggOpusMeter(60), audio, size)
    # Refused some way before the end of the 70 s stream, whatever the slicing.
    assert stopped_at < len(audio) * 0.95


@pytest.mark.parametrize("size", [1, 5, 13, 44, 4096])
def test_wav_header_is_read_across_any_split(size: int) -> None:
    audio = wav(2, before_data=riff_chunk(b"LIST", b"INFOISFT" + b"z" * 1001))
    meter = WavMeter(60)
    assert _feed(meter, audio, size) == len(audio)
    assert meter.header is not None
    assert meter.header.duration_seconds == 2.0

    streamed = wav(0, data_size=0xFFFFFFFF) + b"\x00\x00" * 16_000 * 61
    stopped_at = _feed(WavMeter(60), streamed, size if size > 13 else 997)
    assert 60 * 32_000 < stopped_at <= 60 * 32_000 + 44 + 4096
