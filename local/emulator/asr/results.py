"""The service's result documents, as plain dicts, built from engine segments.

- :func:`batch_result`: a batch transcription result file (``kind: Transcription``), API
  version 2024-11-15 (``transcriptionresult_v2024-11-15.schema.json``).
- :func:`short_audio_result`: the short-audio REST API body, ``simple`` or ``detailed``,
  optionally with pronunciation assessment.
- :func:`fast_result`: a fast transcription ``TranscribeResult``.

Times are quantised to whole milliseconds first, so ticks (100 ns), milliseconds and ISO 8601
durations of the same span always agree exactly. Standard library only (plus the sibling
text and WER modules): importing this does not load numpy or an engine.

Speaker diarization is not real: see :func:`assign_speakers` for the heuristic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from local.emulator.asr import Segment, Word
from local.emulator.asr.text import display_tokens, lexical_words, text_forms, word_core
from local.emulator.asr.wer import align_words, edit_distance

if TYPE_CHECKING:
    from local.emulator.asr import DecodedAudio

__all__ = [
    "DEFAULT_MAX_SPEAKERS",
    "SPEAKER_CHANGE_PAUSE_SECONDS",
    "TICKS_PER_MILLISECOND",
    "assign_speakers",
    "batch_result",
    "fast_result",
    "iso_duration",
    "short_audio_result",
]

TICKS_PER_MILLISECOND = 10_000
#: Diarization heuristic: a pause longer than this between two phrases starts a new speaker.
SPEAKER_CHANGE_PAUSE_SECONDS = 1.0
#: Speakers to cycle through when diarization is asked for without ``maxSpeakers`` (the
#: service's minimum for that hint).
DEFAULT_MAX_SPEAKERS = 2

#: Pronunciation assessment: a recognised word matching the reference scores 60..100 by
#: confidence; a misread word scores below 60, the service's mispronunciation threshold.
_MATCH_FLOOR = 60.0
#: Fluency: pauses between words up to this long are natural; longer ones count against it.
_NATURAL_PAUSE_SECONDS = 0.3
_GRADING_SYSTEMS = {"hundredmark": 1.0, "fivepoint": 0.05}
_GRANULARITIES = ("phoneme", "word", "fulltext")


def iso_duration(milliseconds: int) -> str:
    """ISO 8601 duration as the service writes it: 2580 -> "PT2.58S", 62500 -> "PT1M2.5S"."""
    if milliseconds < 0:
        raise ValueError("a duration cannot be negative")
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    text = "PT"
    if hours:
        text += f"{hours}H"
    if minutes:
        text += f"{minutes}M"
    if seconds or millis or text == "PT":
        text += f"{seconds}.{millis:03d}".rstrip("0").rstrip(".") + "S"
    return text


def assign_speakers(segments: Sequence[Segment], max_speakers: int | None) -> list[int]:
    """Speaker numbers (1-based) for the segments of one channel — a heuristic, not diarization.

    Segments are taken in time order; the first is speaker 1, and a pause longer than
    :data:`SPEAKER_CHANGE_PAUSE_SECONDS` before a segment moves to the next speaker, cycling
    through ``1..max_speakers`` (default :data:`DEFAULT_MAX_SPEAKERS`). Turn-taking in
    conversation usually comes with a pause, so the result is plausible, never right by design.
    Returned in the order of ``segments``.
    """
    limit = DEFAULT_MAX_SPEAKERS if max_speakers is None else max_speakers
    if limit < 1:
        raise ValueError(f"max_speakers must be at least 1, got {max_speakers}")
    speakers = [0] * len(segments)
    speaker, previous_end = 1, None
    for index in sorted(range(len(segments)), key=lambda i: segments[i].start):
        segment = segments[index]
        if previous_end is not None and segment.start - previous_end > SPEAKER_CHANGE_PAUSE_SECONDS:
            speaker = speaker % limit + 1
        speakers[index] = speaker
        previous_end = segment.end if previous_end is None else max(previous_end, segment.end)
    return speakers


# ------------------------------------------------------------------------------- batch


def batch_result(
    source: str,
    audio: DecodedAudio,
    per_channel: Sequence[Sequence[Segment]],
    *,
    word_timestamps: bool,
    display_words: bool,
    diarization: bool,
    max_speakers: int | None,
    locale: str | None,
    profanity: str,
    punctuation: str,
    timestamp: datetime,
) -> dict[str, Any]:
    """A batch result file: ``per_channel[c]`` holds the segments of channel ``c``.

    ``words`` (lexical, with confidence) and ``displayWords`` appear on each top hypothesis
    when asked; ``speaker`` on each phrase when ``diarization`` is on (see
    :func:`assign_speakers`); ``locale`` on each phrase only when given, which the caller does
    when language identification was requested. Segments with no words are left out;
    every channel still gets its ``combinedRecognizedPhrases`` entry. A segment without
    engine words gets its words spread evenly over it.
    """
    total_ms = _ms(audio.duration_seconds)
    phrases: list[dict[str, Any]] = []
    combined: list[dict[str, Any]] = []
    for channel, segments in enumerate(per_channel):
        speakers = assign_speakers(segments, max_speakers) if diarization else None
        channel_forms: list[tuple[str, str, str, str]] = []
        for index, segment in enumerate(segments):
            words = _timed_words(segment)
            tokens = [w.text for w in words]
            forms = text_forms(tokens, profanity=profanity, punctuation=punctuation)
            if not forms.lexical:
                continue
            channel_forms.append((forms.lexical, forms.itn, forms.masked_itn, forms.display))
            best: dict[str, Any] = {
                "confidence": _confidence(segment.confidence),
                "lexical": forms.lexical,
                "itn": forms.itn,
                "maskedITN": forms.masked_itn,
                "display": forms.display,
            }
            if word_timestamps:
                best["words"] = [
                    {"word": text, **_batch_timing(start, end), "confidence": confidence}
                    for text, start, end, confidence in _lexical_pieces(words)
                ]
            if display_words:
                best["displayWords"] = [
                    {
                        "displayText": token.text,
                        **_batch_timing(words[token.first].start, words[token.last].end),
                    }
                    for token in display_tokens(
                        tokens, profanity=profanity, punctuation=punctuation
                    )
                ]
            phrase: dict[str, Any] = {"recognitionStatus": "Success", "channel": channel}
            if speakers is not None:
                phrase["speaker"] = speakers[index]
            if locale is not None:
                phrase["locale"] = locale
            phrase.update(_batch_timing(segment.start, segment.end))
            phrase["nBest"] = [best]
            phrases.append(phrase)
        combined.append(
            {
                "channel": channel,
                "lexical": " ".join(f[0] for f in channel_forms),
                "itn": " ".join(f[1] for f in channel_forms),
                "maskedITN": " ".join(f[2] for f in channel_forms),
                "display": " ".join(f[3] for f in channel_forms),
            }
        )
    phrases.sort(key=lambda p: (p["offsetInTicks"], p["channel"]))
    return {
        "source": source,
        "timestamp": _utc_timestamp(timestamp),
        "durationInTicks": total_ms * TICKS_PER_MILLISECOND,
        "durationMilliseconds": total_ms,
        "duration": iso_duration(total_ms),
        "combinedRecognizedPhrases": combined,
        "recognizedPhrases": phrases,
    }


# --------------------------------------------------------------------------- short audio


def short_audio_result(
    segments: Sequence[Segment],
    duration_s: float,
    *,
    fmt: str = "simple",
    profanity: str = "masked",
    pronunciation: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The short-audio body for the segments of (mono) audio of ``duration_s`` seconds.

    All segments form one result (the service stops at the first long pause; the emulator
    returns everything it heard, which a caller cannot tell apart for clips of one phrase).
    ``Offset``/``Duration`` are ticks. Status:

    - ``InitialSilenceTimeout`` when there are no segments (``Offset`` 0, ``Duration`` the
      whole audio: the service waited through it and heard nothing);
    - ``NoMatch`` when segments hold no words, or only profanity that ``removed`` took out;
    - ``Success`` otherwise, with ``DisplayText``, and ``NBest`` for ``fmt="detailed"``.

    ``pronunciation`` is the decoded ``Pronunciation-Assessment`` header (``ReferenceText``,
    ``GradingSystem``, ``Granularity``, ``Dimension``, ``EnableMiscue``); with it, the
    ``NBest`` entry (present then even for ``simple``, so the scores are not lost) carries
    ``PronScore``/``AccuracyScore``/``FluencyScore``/``CompletenessScore`` and, unless
    ``Granularity`` is ``FullText``, per-word ``Words`` — see :func:`_pronunciation_scores`.
    Raises ``ValueError`` for an unknown format, mode or assessment parameter.
    """
    detailed = _output_format(fmt)
    if pronunciation is not None:
        _check_pronunciation(pronunciation)
    if not segments:
        return {
            "RecognitionStatus": "InitialSilenceTimeout",
            "Offset": 0,
            "Duration": _ms(duration_s) * TICKS_PER_MILLISECOND,
        }
    words = [w for segment in segments for w in _timed_words(segment)]
    forms = text_forms([w.text for w in words], profanity=profanity, punctuation="Automatic")
    start_ms = _ms(min(s.start for s in segments))
    span = {
        "Offset": start_ms * TICKS_PER_MILLISECOND,
        "Duration": max(0, _ms(max(s.end for s in segments)) - start_ms) * TICKS_PER_MILLISECOND,
    }
    if not forms.lexical or not forms.display:
        return {"RecognitionStatus": "NoMatch", **span}
    body: dict[str, Any] = {"RecognitionStatus": "Success", "DisplayText": forms.display, **span}
    if detailed or pronunciation is not None:
        best: dict[str, Any] = {
            "Confidence": _confidence(_weighted_confidence(segments)),
            "Lexical": forms.lexical,
            "ITN": forms.itn,
            "MaskedITN": forms.masked_itn,
            "Display": forms.display,
        }
        if pronunciation is not None:
            best.update(_pronunciation_scores(words, pronunciation))
        body["NBest"] = [best]
    return body


# ------------------------------------------------------------------------------- fast


def fast_result(
    duration_s: float,
    per_channel: Sequence[Sequence[Segment]],
    *,
    locale: str | None,
    diarization: bool,
    max_speakers: int | None = None,
    profanity: str = "Masked",
    channels: Sequence[int] | None = None,
) -> dict[str, Any]:
    """A fast transcription ``TranscribeResult`` (display text, words in display form).

    ``channels`` are the channel numbers of ``per_channel`` when the request separated
    channels; by default they are ``0..n-1`` when there is more than one list and absent
    (merged audio) when there is one. ``speaker`` is added when ``diarization`` is on (see
    :func:`assign_speakers`), ``locale`` when given. ``profanity`` is the request's
    ``profanityFilterMode`` (the service's default is ``Masked``).
    """
    if channels is None and len(per_channel) > 1:
        channels = list(range(len(per_channel)))
    if channels is not None and len(channels) != len(per_channel):
        raise ValueError(f"{len(channels)} channel numbers for {len(per_channel)} channels")
    phrases: list[dict[str, Any]] = []
    combined: list[dict[str, Any]] = []
    for position, segments in enumerate(per_channel):
        channel = None if channels is None else channels[position]
        speakers = assign_speakers(segments, max_speakers) if diarization else None
        texts: list[str] = []
        for index, segment in enumerate(segments):
            words = _timed_words(segment)
            tokens = [w.text for w in words]
            shown = display_tokens(tokens, profanity=profanity, punctuation="Automatic")
            if not shown:
                continue
            text = " ".join(t.text for t in shown)
            texts.append(text)
            phrase: dict[str, Any] = {}
            if channel is not None:
                phrase["channel"] = channel
            if speakers is not None:
                phrase["speaker"] = speakers[index]
            phrase.update(_ms_timing(segment.start, segment.end))
            phrase["text"] = text
            phrase["words"] = [
                {"text": t.text, **_ms_timing(words[t.first].start, words[t.last].end)}
                for t in shown
            ]
            if locale is not None:
                phrase["locale"] = locale
            phrase["confidence"] = _confidence(segment.confidence)
            phrases.append(phrase)
        entry: dict[str, Any] = {} if channel is None else {"channel": channel}
        entry["text"] = " ".join(texts)
        combined.append(entry)
    phrases.sort(key=lambda p: (p["offsetMilliseconds"], p.get("channel", 0)))
    return {
        "durationMilliseconds": _ms(duration_s),
        "combinedPhrases": combined,
        "phrases": phrases,
    }


# ------------------------------------------------------------------------------ helpers


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _batch_timing(start_s: float, end_s: float) -> dict[str, Any]:
    start = _ms(start_s)
    duration = max(0, _ms(end_s) - start)
    return {
        "offset": iso_duration(start),
        "duration": iso_duration(duration),
        "offsetInTicks": start * TICKS_PER_MILLISECOND,
        "durationInTicks": duration * TICKS_PER_MILLISECOND,
        "offsetMilliseconds": start,
        "durationMilliseconds": duration,
    }


def _ms_timing(start_s: float, end_s: float) -> dict[str, int]:
    start = _ms(start_s)
    return {"offsetMilliseconds": start, "durationMilliseconds": max(0, _ms(end_s) - start)}


def _confidence(value: float) -> float:
    return round(min(max(value, 0.0), 1.0), 7)


def _utc_timestamp(moment: datetime) -> str:
    # A naive datetime is taken as UTC, the service's only time zone.
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.strftime("%Y-%m-%dT%H:%M:%SZ")


def _timed_words(segment: Segment) -> list[Word]:
    """The segment's words, or its text's tokens spread evenly over it when it has none."""
    if segment.words:
        return list(segment.words)
    tokens = segment.text.split()
    if not tokens:
        return []
    step = (segment.end - segment.start) / len(tokens)
    return [
        Word(token, segment.start + i * step, segment.start + (i + 1) * step, segment.confidence)
        for i, token in enumerate(tokens)
    ]


def _lexical_pieces(words: Sequence[Word]) -> list[tuple[str, float, float, float]]:
    """Lexical words with timing; a token that reads as several words ("300") shares its time."""
    pieces: list[tuple[str, float, float, float]] = []
    for word in words:
        lexical = lexical_words(word.text)
        step = (word.end - word.start) / max(len(lexical), 1)
        pieces.extend(
            (text, word.start + i * step, word.start + (i + 1) * step, _confidence(word.confidence))
            for i, text in enumerate(lexical)
        )
    return pieces


def _weighted_confidence(segments: Sequence[Segment]) -> float:
    total = sum(max(s.end - s.start, 0.0) for s in segments)
    if total == 0:
        return sum(s.confidence for s in segments) / len(segments)
    return sum(s.confidence * max(s.end - s.start, 0.0) for s in segments) / total


def _output_format(fmt: str) -> bool:
    """``True`` for ``detailed``, ``False`` for ``simple`` (case-insensitive)."""
    lowered = fmt.strip().lower()
    if lowered not in ("simple", "detailed"):
        raise ValueError(f"unknown format {fmt!r}; known: ['simple', 'detailed']")
    return lowered == "detailed"


def _check_pronunciation(params: Mapping[str, Any]) -> None:
    reference = params.get("ReferenceText")
    if not isinstance(reference, str) or not reference.split():
        raise ValueError("pronunciation assessment needs a non-empty ReferenceText")
    grading = str(params.get("GradingSystem") or "FivePoint")
    if grading.lower() not in _GRADING_SYSTEMS:
        raise ValueError(f"unknown GradingSystem {grading!r}; known: HundredMark, FivePoint")
    granularity = str(params.get("Granularity") or "Phoneme")
    if granularity.lower() not in _GRANULARITIES:
        raise ValueError(f"unknown Granularity {granularity!r}; known: Phoneme, Word, FullText")


def _flag(value: object) -> bool:
    # The header is JSON written by many clients: true, "True" and "true" all occur.
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _pronunciation_scores(words: Sequence[Word], params: Mapping[str, Any]) -> dict[str, Any]:
    """Pronunciation scores from aligning the recognised words with ``ReferenceText``.

    A word-level minimum-edit alignment of normalised words decides each reference word:

    - recognised as itself: ``ErrorType`` ``None``, accuracy 60..100 by word confidence;
    - recognised as another word: ``Mispronunciation``, accuracy below 60 by spelling
      similarity;
    - not recognised: ``Omission`` (accuracy 0) with ``EnableMiscue``, else
      ``Mispronunciation`` with accuracy 0;
    - an extra recognised word: ``Insertion`` with ``EnableMiscue``, else left out.

    ``AccuracyScore`` is the mean over the reference words that were spoken (all of them
    without miscue), ``CompletenessScore`` the share of reference words spoken,
    ``FluencyScore`` the share of the spoken span not lost to pauses longer than 0.3 s, and
    ``PronScore`` weighs the lowest of the three 0.6 and the others 0.2 each (the weighting
    of Microsoft's pronunciation-assessment sample). ``FivePoint`` scales everything to 0..5.
    ``Dimension`` is accepted and the full (Comprehensive) set always returned; phoneme
    granularity gives word-level results, as the emulator has no phonemes.
    """
    miscue = _flag(params.get("EnableMiscue", False))
    scale = _GRADING_SYSTEMS[str(params.get("GradingSystem") or "FivePoint").lower()]
    granularity = str(params.get("Granularity") or "Phoneme").lower()

    reference: list[str] = []  # as shown in Words: the reference's spelling where it is a word
    for token in str(params["ReferenceText"]).split():
        lexical = lexical_words(token)
        plain = word_core(token)
        reference.extend([plain] if len(lexical) == 1 and plain.lower() == lexical[0] else lexical)
    spoken = _lexical_pieces(words)
    pairs = align_words([r.lower() for r in reference], [p[0] for p in spoken])

    rows: list[dict[str, Any]] = []
    accuracies: list[float] = []
    pronounced = 0
    cursor = _ms(spoken[0][1]) if spoken else 0
    for pair in pairs:
        expected = "" if pair.ref is None else reference[pair.ref]
        if pair.hyp is None:
            # An omitted word sits, without duration, where the speech had got to.
            text, confidence = "", 0.0
            timing = {"Offset": cursor * TICKS_PER_MILLISECOND, "Duration": 0}
        else:
            text, start, end, confidence = spoken[pair.hyp]
            timing = {
                "Offset": _ms(start) * TICKS_PER_MILLISECOND,
                "Duration": max(0, _ms(end) - _ms(start)) * TICKS_PER_MILLISECOND,
            }
            cursor = _ms(end)
        if pair.op == "match":
            score = _MATCH_FLOOR + (100.0 - _MATCH_FLOOR) * confidence
            rows.append(_word_row(expected, score, "None", timing, scale))
            accuracies.append(score)
            pronounced += 1
        elif pair.op == "substitution":
            longest = max(len(expected), len(text), 1)
            similarity = 1 - edit_distance(expected.lower(), text) / longest
            score = _MATCH_FLOOR * similarity * confidence
            rows.append(_word_row(expected, score, "Mispronunciation", timing, scale))
            accuracies.append(score)
            pronounced += 1
        elif pair.op == "deletion":
            rows.append(
                _word_row(
                    expected, 0.0, "Omission" if miscue else "Mispronunciation", timing, scale
                )
            )
            if not miscue:
                accuracies.append(0.0)
        elif miscue:  # an insertion, reported only when miscues are asked for
            score = _MATCH_FLOOR + (100.0 - _MATCH_FLOOR) * confidence
            rows.append(_word_row(text, score, "Insertion", timing, scale))

    accuracy = sum(accuracies) / len(accuracies) if accuracies else 0.0
    completeness = 100.0 * pronounced / len(reference)
    fluency = _fluency(spoken)
    low, middle, high = sorted((accuracy, fluency, completeness))
    scores: dict[str, Any] = {
        "PronScore": _score(0.6 * low + 0.2 * middle + 0.2 * high, scale),
        "AccuracyScore": _score(accuracy, scale),
        "FluencyScore": _score(fluency, scale),
        "CompletenessScore": _score(completeness, scale),
    }
    if granularity != "fulltext":
        scores["Words"] = rows
    return scores


def _fluency(spoken: Sequence[tuple[str, float, float, float]]) -> float:
    if not spoken:
        return 0.0
    span = spoken[-1][2] - spoken[0][1]
    if span <= 0:
        return 100.0
    lost = sum(
        max(0.0, following[1] - current[2] - _NATURAL_PAUSE_SECONDS)
        for current, following in pairwise(spoken)
    )
    return 100.0 * max(0.0, 1.0 - lost / span)


def _score(value: float, scale: float) -> float:
    # HundredMark scores carry one decimal (84.4), FivePoint ones two (4.22).
    return round(min(max(value, 0.0), 100.0) * scale, 1 if scale == 1.0 else 2)


def _word_row(
    word: str, accuracy: float, error: str, timing: dict[str, int], scale: float
) -> dict[str, Any]:
    return {"Word": word, "AccuracyScore": _score(accuracy, scale), "ErrorType": error, **timing}
