"""Decoding uploaded audio into the 16 kHz float32 channels every engine works on.

PyAV (FFmpeg, bundled with faster-whisper) reads WAV PCM of any bit depth and rate, OGG/OPUS,
MP3, FLAC and anything else FFmpeg knows. Everything is done in memory from ``bytes``: the
emulator has already downloaded or received the whole file.

Channel policy: mono stays one channel, stereo is split into two channels (the service
transcribes each channel of stereo audio separately), and audio with more than two channels
is down-mixed by FFmpeg into a single mono channel, because the service documents channel
separation for two channels at most.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

from local.emulator.asr import SAMPLE_RATE, AudioDecodeError, DecodedAudio

if TYPE_CHECKING:
    from collections.abc import Iterator

    import av.container

__all__ = ["AudioInfo", "decode_audio", "probe_audio", "probe_duration_seconds"]


@dataclass(frozen=True)
class AudioInfo:
    """What the container header says about the first audio stream, without decoding it.

    ``container`` and ``codec`` are FFmpeg names (``wav``/``pcm_s16le``, ``ogg``/``opus``,
    ``mp3``/``mp3float``, ``flac``/``flac``); ``container`` may list aliases separated by
    commas (``mov,mp4,m4a,...``).
    """

    container: str
    codec: str
    sample_rate: int
    channels: int
    duration_seconds: float


def decode_audio(data: bytes) -> DecodedAudio:
    """Decode a whole audio file to 16 kHz float32 channels (see the module doc for channels).

    Raises :class:`AudioDecodeError` with ``kind="InvalidAudioFormat"`` when the bytes are not
    audio FFmpeg can decode, and ``kind="EmptyAudioFile"`` when they decode to no samples.
    """
    import av
    import numpy as np

    if not data:
        raise AudioDecodeError("the audio file is empty", kind="EmptyAudioFile")
    chunks: list[np.ndarray] = []
    try:
        with _open(data) as container:
            stream = container.streams.audio[0]
            layout = "stereo" if stream.codec_context.layout.nb_channels == 2 else "mono"
            # Planar float output: to_ndarray() gives (channels, samples), so stereo splits
            # without interleaving arithmetic, and no precision is lost to s16.
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=SAMPLE_RATE)
            for frame in _valid_frames(container, stream):
                # The resampler checks timestamps for continuity; files with gaps or broken
                # timestamps (common in MP3 and concatenated OGG) still decode.
                frame.pts = None
                chunks.extend(out.to_ndarray() for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray() for out in resampler.resample(None))
            channel_count = 2 if layout == "stereo" else 1
    except AudioDecodeError:
        raise
    except av.error.FFmpegError as exc:
        raise AudioDecodeError(f"the audio could not be decoded: {exc}") from exc
    except ValueError as exc:
        # PyAV raises ValueError when a stream changes its layout or format mid-way,
        # which the resampler cannot follow.
        raise AudioDecodeError(f"the audio could not be decoded: {exc}") from exc

    if not chunks:
        raise AudioDecodeError("the audio file holds no samples", kind="EmptyAudioFile")
    joined = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    if joined.shape[1] == 0:
        raise AudioDecodeError("the audio file holds no samples", kind="EmptyAudioFile")
    return DecodedAudio(channels=[np.ascontiguousarray(joined[i]) for i in range(channel_count)])


def probe_audio(data: bytes) -> AudioInfo:
    """Read the container header (and at most the packets, never decoding) of an audio file.

    The duration comes from the header when it has one (WAV, FLAC, OGG's last page, MP3's
    Xing header or bit rate estimate); otherwise packet durations are summed. Raises
    :class:`AudioDecodeError` like :func:`decode_audio` for non-audio or empty input.
    """
    import av

    if not data:
        raise AudioDecodeError("the audio file is empty", kind="EmptyAudioFile")
    try:
        with _open(data) as container:
            stream = container.streams.audio[0]
            ctx = stream.codec_context
            duration = _header_duration(container, stream)
            if duration is None:
                duration = _packet_duration(container, stream)
            return AudioInfo(
                container=container.format.name,
                codec=ctx.name,
                sample_rate=int(ctx.sample_rate or 0),
                channels=int(ctx.layout.nb_channels),
                duration_seconds=duration,
            )
    except av.error.FFmpegError as exc:
        raise AudioDecodeError(f"the audio could not be read: {exc}") from exc


def probe_duration_seconds(data: bytes) -> float:
    """Duration of an audio file in seconds, from its header where possible (no decoding)."""
    return probe_audio(data).duration_seconds


# ------------------------------------------------------------------------------ helpers


def _open(data: bytes) -> av.container.InputContainer:
    """Open ``data`` as an input container that has at least one audio stream."""
    import av

    container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    if not container.streams.audio:
        # FFmpeg happily opens images and videos without sound; the service calls any
        # such input an invalid audio format.
        container.close()
        raise AudioDecodeError("the file contains no audio stream")
    return container


def _valid_frames(
    container: av.container.InputContainer, stream: av.AudioStream
) -> Iterator[av.AudioFrame]:
    """Decoded frames of ``stream``, skipping packets FFmpeg reports as corrupt."""
    import av

    # Decoding packet by packet (rather than container.decode) lets one damaged packet in
    # the middle of a file be dropped, as players do, instead of ending the generator; a
    # file that is not audio at all already failed in av.open.
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            continue
        for frame in frames:
            if isinstance(frame, av.AudioFrame):
                yield frame


def _header_duration(
    container: av.container.InputContainer, stream: av.AudioStream
) -> float | None:
    """The stream's or the container's declared duration, if either declares one."""
    import av

    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / av.time_base
    return None


def _packet_duration(container: av.container.InputContainer, stream: av.AudioStream) -> float:
    """Sum of the packet durations of ``stream`` (demuxing only, no decoding).

    Raises ``EmptyAudioFile`` when the stream has no packet with data (a bare header).
    """
    total = packets = 0
    for packet in container.demux(stream):
        if packet.size:
            packets += 1
            total += packet.duration or 0
    if packets == 0:
        raise AudioDecodeError("the audio file holds no samples", kind="EmptyAudioFile")
    if stream.time_base is None:
        return 0.0
    return float(total * stream.time_base)
