"""Audio recognised from its first bytes; everything else rejected with a reason."""

from __future__ import annotations

import pytest

from shared.audio_formats import MAX_AUDIO_BYTES, SNIFF_BYTES, AudioRejected, check_audio, sniff

HEADS = {
    "wav": b"RIFF\x24\x08\x00\x00WAVEfmt ",
    "ogg": b"OggS\x00\x02" + bytes(20),
    "flac": b"fLaC\x00\x00\x00\x22",
    "asf": bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c") + bytes(8),
    "amr": b"#!AMR\n",
    "webm": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81",
    "mp4": b"\x00\x00\x00\x20ftypM4A \x00\x00",
    "mp3": b"ID3\x04\x00\x00\x00\x00\x00\x00",
    "aac": b"\xff\xf1\x50\x80\x02\x1f\xfc",
}


@pytest.mark.parametrize(("container", "head"), HEADS.items())
def test_each_supported_container_is_recognised(container: str, head: bytes) -> None:
    assert sniff(head) == container


def test_bare_mpeg_frames_are_mp3() -> None:
    assert sniff(b"\xff\xfb\x90\x64\x00") == "mp3"
    assert sniff(b"\xff\xf3\x90\x64\x00") == "mp3"


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\x89PNG\r\n\x1a\n",
        b"%PDF-1.7",
        b"PK\x03\x04",
        b"hello world",
        b"RIFF\x00\x00\x00\x00AVI ",
    ],
)
def test_non_audio_is_not_recognised(head: bytes) -> None:
    assert sniff(head) is None


def test_accepted_files() -> None:
    assert check_audio("calls/2026/a.WAV", 1000, HEADS["wav"]).container == "wav"
    assert check_audio("x.opus", 10, HEADS["ogg"]).extension == ".opus"
    assert check_audio("x.m4a", MAX_AUDIO_BYTES, HEADS["mp4"]).container == "mp4"


@pytest.mark.parametrize(
    ("name", "size", "head", "code", "text"),
    [
        ("notes.txt", 10, b"hello", "UnsupportedExtension", "accepted: .aac"),
        ("noext", 10, HEADS["wav"], "UnsupportedExtension", "(none)"),
        ("a.wav", 0, b"", "EmptyFile", "empty"),
        ("a.wav", MAX_AUDIO_BYTES + 1, HEADS["wav"], "FileTooLarge", "limit is 1 GiB"),
        ("a.wav", 100, b"\x89PNG\r\n\x1a\n", "NotAudio", "not audio"),
        ("a.mp3", 100, HEADS["wav"], "ExtensionMismatch", "content is WAV"),
    ],
)
def test_rejections_say_why(name: str, size: int, head: bytes, code: str, text: str) -> None:
    with pytest.raises(AudioRejected) as info:
        check_audio(name, size, head)
    assert info.value.code == code
    assert text in str(info.value)


def test_sniff_needs_only_the_first_bytes() -> None:
    assert max(len(h) for h in HEADS.values()) <= SNIFF_BYTES
