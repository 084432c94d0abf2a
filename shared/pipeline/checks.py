"""Is a blob acceptable audio? Name and size first, then its first bytes only."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from shared.audio_formats import EXTENSIONS, AudioCheck, AudioRejected, check_audio

if TYPE_CHECKING:
    from shared.storage import BlobInfo, BlobStorage


def size_text(size: int) -> str:
    """A byte count for people: GiB, MiB or bytes."""
    if size >= 1024**3:
        return f"{size / 1024**3:.2f} GiB"
    if size >= 1024**2:
        return f"{size / 1024**2:.1f} MiB"
    return f"{size} bytes"


async def check_audio_blob(
    storage: BlobStorage, blob: BlobInfo, *, max_bytes: int
) -> AudioRejected | AudioCheck:
    """Why ``blob`` is not acceptable audio, or the format found when it is.

    Name and size are judged first, so a wrong file costs no read at all; only then are
    the first bytes of exactly this version read.
    """
    extension = PurePosixPath(blob.name).suffix.lower()
    if extension not in EXTENSIONS or blob.size <= 0:
        try:
            check_audio(blob.name, blob.size, b"")
        except AudioRejected as rejected:
            return rejected
    if blob.size > max_bytes:
        return AudioRejected(
            "FileTooLarge",
            f"the file is {size_text(blob.size)}; the limit is {size_text(max_bytes)}",
        )
    head = await storage.read_head(blob)
    try:
        return check_audio(blob.name, blob.size, head)
    except AudioRejected as rejected:
        return rejected
