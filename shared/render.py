"""Turn a batch result into what people read: plain text, SRT and WebVTT.

Subtitles follow the usual broadcast limits — at most two lines of 42 characters and 7 s per
cue — because a phrase from the service can run for half a minute. Long phrases are split at
word boundaries, timed by the service's word timestamps when the job asked for them and by
character share otherwise. Diarized phrases carry their speaker: ``Speaker N:`` in text and
SRT, a ``<v Speaker N>`` voice span in WebVTT. Stereo without diarization is labelled by
channel. SRT and WebVTT files are written with the ``srt`` and ``webvtt-py`` libraries.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import timedelta

from shared.speech.models import RecognizedPhrase, TranscriptionResult

MAX_LINE_CHARS = 42
MAX_LINES = 2
MAX_CUE_MS = 7000


@dataclass(frozen=True)
class Cue:
    """One subtitle: a time span, its text and who said it."""

    start_ms: int
    end_ms: int
    text: str
    label: str | None


@dataclass(frozen=True)
class _Token:
    text: str
    start_ms: int
    end_ms: int


def _phrases(result: TranscriptionResult) -> list[RecognizedPhrase]:
    phrases = [
        p
        for p in result.recognized_phrases or []
        if p.n_best and (p.recognition_status in (None, "Success")) and p.n_best[0].display
    ]
    return sorted(phrases, key=lambda p: (p.offset_ms or 0, p.channel or 0))


def _label(phrase: RecognizedPhrase, *, diarized: bool, multichannel: bool) -> str | None:
    if diarized and phrase.speaker is not None:
        return f"Speaker {phrase.speaker}"
    if multichannel:
        return f"Channel {phrase.channel or 0}"
    return None


def _tokens(phrase: RecognizedPhrase) -> list[_Token]:
    """The phrase's display words with times: measured when present, else interpolated."""
    best = phrase.n_best[0] if phrase.n_best else None
    display = (best.display if best else None) or ""
    start = phrase.offset_ms or 0
    end = start + (phrase.duration_ms or 0)
    words = display.split()
    timed = best.display_words if best else None
    if timed and len(timed) == len(words) and all(w.offset_ms is not None for w in timed):
        return [
            _Token(text, w.offset_ms or start, (w.offset_ms or start) + (w.duration_ms or 0))
            for text, w in zip(words, timed, strict=True)
        ]
    # No usable word timings: share the phrase's time out by characters.
    total = sum(len(w) + 1 for w in words) or 1
    tokens, used = [], 0
    for text in words:
        begin = start + (end - start) * used // total
        used += len(text) + 1
        tokens.append(_Token(text, begin, start + (end - start) * used // total))
    return tokens


def cues(result: TranscriptionResult) -> list[Cue]:
    """The result as subtitle cues, in time order, each within the size and time limits."""
    phrases = _phrases(result)
    diarized = any(p.speaker is not None for p in phrases)
    multichannel = len({p.channel or 0 for p in phrases}) > 1
    out: list[Cue] = []
    max_chars = MAX_LINE_CHARS * MAX_LINES
    for phrase in phrases:
        label = _label(phrase, diarized=diarized, multichannel=multichannel)
        chunk: list[_Token] = []
        for token in _tokens(phrase):
            text_len = sum(len(t.text) + 1 for t in chunk) + len(token.text)
            too_long = chunk and (
                text_len > max_chars or token.end_ms - chunk[0].start_ms > MAX_CUE_MS
            )
            if too_long:
                out.append(_cue(chunk, label))
                chunk = []
            chunk.append(token)
        if chunk:
            out.append(_cue(chunk, label))
    return out


def _cue(tokens: list[_Token], label: str | None) -> Cue:
    text = "\n".join(textwrap.wrap(" ".join(t.text for t in tokens), MAX_LINE_CHARS))
    end = max(tokens[-1].end_ms, tokens[0].start_ms + 1)
    return Cue(tokens[0].start_ms, end, text, label)


def to_text(result: TranscriptionResult) -> str:
    """Readable plain text: one paragraph per speaker turn, or per channel, or just the text."""
    phrases = _phrases(result)
    diarized = any(p.speaker is not None for p in phrases)
    multichannel = len({p.channel or 0 for p in phrases}) > 1
    if not diarized and not multichannel:
        combined = [c.display for c in result.combined_recognized_phrases or [] if c.display]
        body = " ".join(combined) if combined else " ".join(_display(p) for p in phrases)
        return body.strip() + "\n" if body.strip() else ""
    paragraphs: list[tuple[str | None, list[str]]] = []
    for phrase in phrases:
        label = _label(phrase, diarized=diarized, multichannel=multichannel)
        if paragraphs and paragraphs[-1][0] == label:
            paragraphs[-1][1].append(_display(phrase))
        else:
            paragraphs.append((label, [_display(phrase)]))
    return "\n\n".join(f"{label}: {' '.join(texts)}" for label, texts in paragraphs) + "\n"


def _display(phrase: RecognizedPhrase) -> str:
    return (phrase.n_best[0].display or "") if phrase.n_best else ""


def to_srt(result: TranscriptionResult) -> str:
    """SubRip subtitles; speakers as a ``Speaker N:`` prefix (SRT has no voice markup)."""
    import srt  # type: ignore[import-untyped]  # srt ships no type information

    subtitles = [
        srt.Subtitle(
            index=i,
            start=timedelta(milliseconds=cue.start_ms),
            end=timedelta(milliseconds=cue.end_ms),
            content=f"{cue.label}: {cue.text}" if cue.label else cue.text,
        )
        for i, cue in enumerate(cues(result), start=1)
    ]
    return str(srt.compose(subtitles, reindex=False))


def _vtt_time(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _vtt_escape(text: str) -> str:
    # Cue text is markup: a literal "<", ">" or "&" would be read as a tag or an entity.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(result: TranscriptionResult) -> str:
    """WebVTT subtitles; speakers as ``<v Speaker N>`` voice spans."""
    import webvtt

    captions = []
    for cue in cues(result):
        text = _vtt_escape(cue.text)
        if cue.label:
            text = f"<v {cue.label}>{text}"
        captions.append(webvtt.Caption(_vtt_time(cue.start_ms), _vtt_time(cue.end_ms), text))
    return str(webvtt.WebVTT(captions=captions).content)
