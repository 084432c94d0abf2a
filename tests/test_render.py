"""Plain text, SRT and WebVTT from batch results."""

from __future__ import annotations

import itertools
from typing import Any

import srt
import webvtt

from shared.render import MAX_CUE_MS, MAX_LINE_CHARS, cues, to_srt, to_text, to_vtt
from shared.speech.models import TranscriptionResult


def phrase(
    text: str,
    start_ms: int,
    end_ms: int,
    *,
    channel: int = 0,
    speaker: int | None = None,
    display_words: list[tuple[str, int, int]] | None = None,
) -> dict[str, Any]:
    best: dict[str, Any] = {
        "confidence": 0.9,
        "lexical": text.lower(),
        "itn": text.lower(),
        "maskedITN": text.lower(),
        "display": text,
    }
    if display_words is not None:
        best["displayWords"] = [
            {"displayText": w, "offsetMilliseconds": s, "durationMilliseconds": e - s}
            for w, s, e in display_words
        ]
    out: dict[str, Any] = {
        "recognitionStatus": "Success",
        "channel": channel,
        "offsetMilliseconds": start_ms,
        "durationMilliseconds": end_ms - start_ms,
        "nBest": [best],
    }
    if speaker is not None:
        out["speaker"] = speaker
    return out


def result(*phrases: dict[str, Any], combined: list[str] | None = None) -> TranscriptionResult:
    return TranscriptionResult.model_validate(
        {
            "source": "a.wav",
            "recognizedPhrases": list(phrases),
            "combinedRecognizedPhrases": [
                {"channel": i, "display": text} for i, text in enumerate(combined or [])
            ],
        }
    )


def test_mono_text_uses_the_combined_display() -> None:
    r = result(
        phrase("Hello there.", 0, 900),
        phrase("How are you?", 1200, 2000),
        combined=["Hello there. How are you?"],
    )
    assert to_text(r) == "Hello there. How are you?\n"


def test_srt_and_vtt_for_a_mono_result_parse_back() -> None:
    r = result(phrase("Hello there.", 500, 1400), phrase("How are you?", 3725, 5010))
    subs = list(srt.parse(to_srt(r)))
    assert [(s.start.total_seconds(), s.end.total_seconds(), s.content) for s in subs] == [
        (0.5, 1.4, "Hello there."),
        (3.725, 5.01, "How are you?"),
    ]
    vtt = to_vtt(r)
    assert vtt.startswith("WEBVTT\n")
    captions = webvtt.from_string(vtt).captions
    assert [(c.start, c.end, c.text) for c in captions] == [
        ("00:00:00.500", "00:00:01.400", "Hello there."),
        ("00:00:03.725", "00:00:05.010", "How are you?"),
    ]


def test_speakers_label_every_format() -> None:
    r = result(
        phrase("Good morning.", 0, 1000, speaker=1),
        phrase("Shall we start?", 1100, 2000, speaker=1),
        phrase("Yes, please.", 2500, 3300, speaker=2),
    )
    assert to_text(r) == "Speaker 1: Good morning. Shall we start?\n\nSpeaker 2: Yes, please.\n"
    assert "Speaker 2: Yes, please." in to_srt(r)
    assert "<v Speaker 1>Good morning." in to_vtt(r)


def test_stereo_without_diarization_is_labelled_by_channel() -> None:
    r = result(phrase("Left side.", 0, 900, channel=0), phrase("Right side.", 100, 1000, channel=1))
    assert to_text(r) == "Channel 0: Left side.\n\nChannel 1: Right side.\n"
    assert [c.label for c in cues(r)] == ["Channel 0", "Channel 1"]


def test_long_phrases_split_within_the_limits_using_word_times() -> None:
    words = [f"word{i}" for i in range(40)]
    timed = [(w, i * 500, i * 500 + 400) for i, w in enumerate(words)]
    r = result(phrase(" ".join(words), 0, 20000, display_words=timed))
    out = cues(r)
    assert len(out) > 2
    for cue in out:
        lines = cue.text.split("\n")
        assert len(lines) <= 2
        assert all(len(line) <= MAX_LINE_CHARS for line in lines)
        assert cue.end_ms - cue.start_ms <= MAX_CUE_MS
    assert out[0].start_ms == 0
    assert out[1].start_ms == timed[len(out[0].text.split())][1], "cues start on a word's time"
    assert " ".join(c.text.replace("\n", " ") for c in out) == " ".join(words)


def test_long_phrases_without_word_times_are_timed_by_characters() -> None:
    text = "alpha beta gamma delta " * 8
    r = result(phrase(text.strip(), 10000, 26000))
    out = cues(r)
    assert len(out) >= 3
    assert out[0].start_ms == 10000
    assert out[-1].end_ms == 26000
    assert all(a.end_ms <= b.start_ms for a, b in itertools.pairwise(out))


def test_markup_characters_are_escaped_in_webvtt_only() -> None:
    r = result(phrase("Q&A: x < y --> z", 0, 1000))
    assert "Q&amp;A: x &lt; y --&gt; z" in to_vtt(r)
    assert "Q&A: x < y --> z" in to_srt(r)


def test_an_empty_result_gives_empty_but_valid_files() -> None:
    r = result()
    assert to_text(r) == ""
    assert to_srt(r) == ""
    assert to_vtt(r).startswith("WEBVTT")
    failed = TranscriptionResult.model_validate(
        {"recognizedPhrases": [{"recognitionStatus": "Failure", "nBest": []}]}
    )
    assert cues(failed) == []
