"""Is this blob audio the batch service can read? Decided from its name, size and first bytes.

The intake function must never read whole audio files, so it looks at a ranged read of the
first :data:`SNIFF_BYTES` bytes only. The formats are the ones batch transcription lists
(WAV incl. A-law/µ-law, MP3, OGG/OPUS, FLAC, WMA, AAC, AMR, WebM, M4A, SPEEX in OGG).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

#: How much of the blob the intake reads to recognise its format.
SNIFF_BYTES = 64
#: Largest file the app submits (the service's own limit is higher; see README).
MAX_AUDIO_BYTES = 1024**3

# Extension → the container formats that may legitimately carry it.
EXTENSIONS: dict[str, frozenset[str]] = {
    ".wav": frozenset({"wav"}),
    ".mp3": frozenset({"mp3"}),
    ".ogg": frozenset({"ogg"}),
    ".opus": frozenset({"ogg"}),
    ".oga": frozenset({"ogg"}),
    ".spx": frozenset({"ogg"}),
    ".flac": frozenset({"flac"}),
    ".wma": frozenset({"asf"}),
    ".aac": frozenset({"aac"}),
    ".amr": frozenset({"amr"}),
    ".webm": frozenset({"webm"}),
    ".m4a": frozenset({"mp4"}),
    ".mp4": frozenset({"mp4"}),
}

_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")


class AudioRejected(ValueError):
    """The blob is not acceptable audio; ``code`` is stable for reports and metrics."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class AudioCheck:
    """The outcome of a successful check: the container format found."""

    container: str
    extension: str


def sniff(head: bytes) -> str | None:
    """The container format of a file starting with ``head``, or None if not audio we know."""
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:16] == _ASF_GUID:
        return "asf"
    if head[:5] == b"#!AMR":
        return "amr"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if len(head) >= 8 and head[4:8] == b"ftyp":
        return "mp4"
    if head[:3] == b"ID3":
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF:
        # ADTS (AAC) has layer bits 00; MPEG audio layer III has 01.
        if head[1] & 0xF6 == 0xF0:
            return "aac"
        if head[1] & 0xE0 == 0xE0 and head[1] & 0x06 == 0x02:
            return "mp3"
    return None


def check_audio(name: str, size: int, head: bytes) -> AudioCheck:
    """Accept ``name`` as audio or raise :class:`AudioRejected` saying what is accepted."""
    extension = PurePosixPath(name).suffix.lower()
    if extension not in EXTENSIONS:
        accepted = ", ".join(sorted(EXTENSIONS))
        raise AudioRejected(
            "UnsupportedExtension",
            f"'{extension or '(none)'}' is not an audio file type the service reads; "
            f"accepted: {accepted}",
        )
    if size <= 0:
        raise AudioRejected("EmptyFile", "the file is empty")
    if size > MAX_AUDIO_BYTES:
        raise AudioRejected(
            "FileTooLarge",
            f"the file is {size / 1024**3:.2f} GiB; "
            f"the limit is {MAX_AUDIO_BYTES / 1024**3:.0f} GiB",
        )
    container = sniff(head)
    if container is None:
        raise AudioRejected(
            "NotAudio",
            f"the file's content is not audio (it does not start like a {extension} file)",
        )
    if container not in EXTENSIONS[extension]:
        raise AudioRejected(
            "ExtensionMismatch",
            f"the file is named {extension} but its content is {container.upper()}",
        )
    return AudioCheck(container=container, extension=extension)
