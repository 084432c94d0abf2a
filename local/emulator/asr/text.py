"""The service's four text forms of a recognition, made from an engine's raw text.

- ``lexical``: what was said, lower case, no punctuation, numbers spelled as words
  ("remind me to buy five pencils").
- ``itn``: inverse-text-normalised form, lower case, no punctuation, numbers as digits.
  Whisper already writes most numbers as digits (its own normalisation), so the ITN form
  keeps the engine's digits and words as they are; it does not turn number words into digits.
- ``maskedITN``: the ITN form with profanity masked by asterisks, whatever the mode.
- ``display``: capitalised and punctuated, digits kept, profanity and punctuation per mode.

Profanity is recognised with :data:`PROFANE_WORDS`, a tiny stand-in list for the service's
real (large, per-language) one. Standard library only, so importing this module is cheap.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "PROFANE_WORDS",
    "PROFANITY_MODES",
    "PUNCTUATION_MODES",
    "DisplayToken",
    "TextForms",
    "display_tokens",
    "is_profane",
    "itn_token",
    "lexical_words",
    "normalize_words",
    "profanity_mode",
    "punctuation_mode",
    "spell_number",
    "text_forms",
    "word_core",
]

#: Batch (``profanityFilterMode``) names. Short audio's ``masked``/``removed``/``raw`` map
#: onto ``Masked``/``Removed``/``None`` (see :func:`profanity_mode`).
PROFANITY_MODES = ("None", "Removed", "Tags", "Masked")
#: Batch ``punctuationMode`` names. Short audio and fast transcription use ``Automatic``.
PUNCTUATION_MODES = ("None", "Dictated", "Automatic", "DictatedAndAutomatic")

_SHORT_AUDIO_PROFANITY = {"masked": "Masked", "removed": "Removed", "raw": "None"}

#: A tiny stand-in for the service's profanity list: enough to exercise every mode.
PROFANE_WORDS = frozenset(
    {
        "arse",
        "ass",
        "asshole",
        "bastard",
        "bitch",
        "bullshit",
        "crap",
        "damn",
        "damned",
        "fuck",
        "fucked",
        "fucking",
        "shit",
        "shitty",
    }
)

#: Spoken punctuation ("Dictated" mode), longest phrases first so "full stop" wins over "stop".
_DICTATED = (
    (("question", "mark"), "?"),
    (("exclamation", "mark"), "!"),
    (("exclamation", "point"), "!"),
    (("full", "stop"), "."),
    (("period",), "."),
    (("comma",), ","),
    (("colon",), ":"),
    (("semicolon",), ";"),
)

# Punctuation stripped from the edges of a token. "$", "%" and inner marks ("3.5", "it's",
# "9:30") are part of the word, not punctuation.
# Written as escapes: curly quotes (\u2018 \u2019 \u201c \u201d), guillemets, inverted
# marks, en and em dashes (\u2013 \u2014) and the ellipsis (\u2026).
_LEADING = "\"'([{\u00bf\u00a1\u201c\u2018\u00ab-\u2013\u2014\u2026"
_TRAILING = ".,!?;:\u2026\"')]}\u201d\u2019\u00bb-\u2013\u2014"
_SENTENCE_END = (".", "?", "!")

_ONES = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
_TENS = ("_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
_ORDINAL_IRREGULAR = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}

_INTEGER = r"(\d{1,3}(?:,\d{3})+|\d+)"
_NUMBER_RE = re.compile(rf"^(\$)?{_INTEGER}(?:\.(\d+))?(%)?$")
_ORDINAL_RE = re.compile(r"^(\d+)(st|nd|rd|th)$")
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})$")
_DIGITS_RE = re.compile(r"\d+")
# Characters kept inside a lexical word; anything else separates words.
_NON_WORD_RE = re.compile(r"[^a-z0-9']+")


@dataclass(frozen=True)
class TextForms:
    """The four forms of one phrase (or of a whole channel, joined)."""

    lexical: str
    itn: str
    masked_itn: str
    display: str


@dataclass(frozen=True)
class DisplayToken:
    """One display word and the source tokens it came from (``first``..``last``, inclusive).

    A dictated mark ("comma") merges into the word before it, so one display word can span
    several source tokens; its timing is theirs.
    """

    text: str
    first: int
    last: int


def profanity_mode(mode: str) -> str:
    """The batch name (``None``/``Removed``/``Tags``/``Masked``) for a batch or short-audio mode.

    Case-insensitive; short audio's ``raw`` is ``None``. Raises ``ValueError`` otherwise.
    """
    lowered = mode.strip().lower()
    if lowered in _SHORT_AUDIO_PROFANITY:
        return _SHORT_AUDIO_PROFANITY[lowered]
    for name in PROFANITY_MODES:
        if name.lower() == lowered:
            return name
    known = [*PROFANITY_MODES, *_SHORT_AUDIO_PROFANITY]
    raise ValueError(f"unknown profanity mode {mode!r}; known: {known}")


def punctuation_mode(mode: str) -> str:
    """The canonical punctuation mode name (case-insensitive); ``ValueError`` if unknown."""
    lowered = mode.strip().lower()
    for name in PUNCTUATION_MODES:
        if name.lower() == lowered:
            return name
    raise ValueError(f"unknown punctuation mode {mode!r}; known: {list(PUNCTUATION_MODES)}")


def spell_number(n: int) -> str:
    """An integer in words, US style without "and": 305 -> "three hundred five".

    Handles magnitudes below a trillion (``ValueError`` beyond) and negatives ("minus").
    """
    if n < 0:
        return "minus " + spell_number(-n)
    if n >= 10**12:
        raise ValueError(f"{n} is too large to spell")
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (" " + _ONES[ones] if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _ONES[hundreds] + " hundred" + (" " + spell_number(rest) if rest else "")
    for scale, word in _SCALES:
        if n >= scale:
            high, rest = divmod(n, scale)
            return spell_number(high) + " " + word + (" " + spell_number(rest) if rest else "")
    raise AssertionError("unreachable: every n >= 1000 has a scale")  # pragma: no cover


def lexical_words(token: str) -> list[str]:
    """The lexical words of one engine token: lower case, no punctuation, numbers spelled.

    "Friday?" -> ["friday"]; "12" -> ["twelve"]; "$5" -> ["five", "dollars"];
    "3.5%" -> ["three", "point", "five", "percent"]; "2nd" -> ["second"];
    "9:30" -> ["nine", "thirty"]; "twenty-one" -> ["twenty", "one"].
    """
    _, core, _ = _split(token)
    words: list[str] = []
    for part in re.split(r"[-\u2013\u2014/]+", core.lower()):
        if part:
            words.extend(_lexical_part(part))
    return words


def word_core(token: str) -> str:
    """The token without the punctuation around it, case kept: '"Hello,"' -> 'Hello'."""
    return _split(token)[1]


def itn_token(token: str) -> str:
    """The ITN form of one engine token: lower case, edge punctuation removed, digits kept."""
    return word_core(token).lower()


def is_profane(token: str) -> bool:
    """Whether the token (punctuation and case ignored) is on :data:`PROFANE_WORDS`."""
    return itn_token(token) in PROFANE_WORDS


def normalize_words(text: str) -> list[str]:
    """Lexical words of free text, for comparisons: "I have 5 cats!" -> i have five cats."""
    return [word for token in text.split() for word in lexical_words(token)]


def display_tokens(
    tokens: Sequence[str], *, profanity: str = "Masked", punctuation: str = "Automatic"
) -> list[DisplayToken]:
    """Display words of the engine tokens, with profanity and punctuation applied per mode.

    Punctuation: ``None`` strips the engine's punctuation; ``Dictated`` strips it and turns
    spoken "comma", "period", "full stop", "question mark", "exclamation mark/point",
    "colon", "semicolon" into marks on the word before; ``Automatic`` keeps the engine's
    punctuation; ``DictatedAndAutomatic`` does both. Profanity: ``None`` keeps the word,
    ``Removed`` drops it, ``Tags`` wraps it in ``<profanity>...</profanity>``, ``Masked``
    replaces it with asterisks of its length. The first word and each word after a sentence
    end are capitalised.
    """
    prof = profanity_mode(profanity)
    punct = punctuation_mode(punctuation)
    automatic = punct in ("Automatic", "DictatedAndAutomatic")
    dictated = punct in ("Dictated", "DictatedAndAutomatic")
    out: list[DisplayToken] = []
    i = 0
    while i < len(tokens):
        if dictated and out:
            mark, used = _dictated_mark(tokens, i)
            if mark:
                # The mark replaces whatever the engine put after the word before.
                lead, core, _ = _split(out[-1].text)
                out[-1] = DisplayToken(lead + core + mark, out[-1].first, i + used - 1)
                i += used
                continue
        lead, core, trail = _split(tokens[i])
        if not automatic:
            lead = trail = ""
        if core and core.lower() in PROFANE_WORDS:
            if prof == "Removed":
                # The word goes; punctuation after it stays, on the word before, unless
                # that word already ends in its own.
                if trail and out and not _split(out[-1].text)[2]:
                    prev = out[-1]
                    out[-1] = DisplayToken(prev.text + trail, prev.first, i)
                i += 1
                continue
            core = _filter_profanity(core, prof)
        text = lead + core + trail
        if text:
            out.append(DisplayToken(text, i, i))
        i += 1
    return _capitalise(out)


def text_forms(
    text: str | Sequence[str], *, profanity: str = "Masked", punctuation: str = "Automatic"
) -> TextForms:
    """The four forms of a phrase, from raw engine text or its word tokens.

    Pass the engine's word tokens (e.g. Whisper's words) when there are any, so the forms
    line up word for word with the timed words; a string is split on whitespace.
    """
    tokens = text.split() if isinstance(text, str) else list(text)
    lexical = [word for token in tokens for word in lexical_words(token)]
    itn = [form for token in tokens if (form := itn_token(token))]
    masked = [_filter_profanity(form, "Masked") if form in PROFANE_WORDS else form for form in itn]
    display = display_tokens(tokens, profanity=profanity, punctuation=punctuation)
    return TextForms(
        lexical=" ".join(lexical),
        itn=" ".join(itn),
        masked_itn=" ".join(masked),
        display=" ".join(t.text for t in display),
    )


# ------------------------------------------------------------------------------ helpers


def _split(token: str) -> tuple[str, str, str]:
    """``(leading punctuation, core, trailing punctuation)`` of a token."""
    stripped = token.strip()
    core = stripped.lstrip(_LEADING)
    lead = stripped[: len(stripped) - len(core)]
    body = core.rstrip(_TRAILING)
    return lead, body, core[len(body) :]


def _lexical_part(part: str) -> list[str]:
    if (number := _NUMBER_RE.match(part)) is not None:
        dollar, integer, decimals, percent = number.groups()
        words = _spell_digits_as_number(integer.replace(",", ""))
        if dollar and decimals is not None and len(decimals) == 2:
            # "$5.50": five dollars fifty cents.
            unit = "dollar" if words == ["one"] else "dollars"
            return [*words, unit, *spell_number(int(decimals)).split(), "cents"]
        if decimals is not None:
            words += ["point", *(_ONES[int(d)] for d in decimals)]
        if percent:
            words.append("percent")
        if dollar:
            words.append("dollar" if words == ["one"] else "dollars")
        return words
    if (ordinal := _ORDINAL_RE.match(part)) is not None:
        words = spell_number(int(ordinal.group(1))).split()
        return [*words[:-1], _ordinal(words[-1])]
    if (time := _TIME_RE.match(part)) is not None:
        hours, minutes = int(time.group(1)), int(time.group(2))
        if minutes == 0:
            return [*spell_number(hours).split(), "o'clock"]
        tail = spell_number(minutes).split()
        return [*spell_number(hours).split(), *(["oh", *tail] if minutes < 10 else tail)]
    spaced = _DIGITS_RE.sub(
        lambda m: " " + " ".join(_spell_digits_as_number(m.group())) + " ", part
    )
    return [word.strip("'") for word in _NON_WORD_RE.split(spaced) if word.strip("'")]


def _spell_digits_as_number(digits: str) -> list[str]:
    """ "300" -> three hundred; "007" and very long numbers are read digit by digit."""
    if (len(digits) > 1 and digits.startswith("0")) or len(digits) > 12:
        return [_ONES[int(d)] for d in digits]
    return spell_number(int(digits)).split()


def _ordinal(word: str) -> str:
    if word in _ORDINAL_IRREGULAR:
        return _ORDINAL_IRREGULAR[word]
    if word.endswith("y"):
        return word[:-1] + "ieth"
    return word + "th"


def _dictated_mark(tokens: Sequence[str], i: int) -> tuple[str, int]:
    """The mark spoken at ``tokens[i]`` and how many tokens it takes, else ``("", 0)``."""
    for phrase, mark in _DICTATED:
        window = tokens[i : i + len(phrase)]
        if len(window) == len(phrase) and all(
            _split(t)[1].lower() == w for t, w in zip(window, phrase, strict=True)
        ):
            return mark, len(phrase)
    return "", 0


def _filter_profanity(word: str, mode: str) -> str:
    if mode == "Masked":
        return "*" * len(word)
    if mode == "Tags":
        return f"<profanity>{word}</profanity>"
    return word


def _capitalise(tokens: list[DisplayToken]) -> list[DisplayToken]:
    out: list[DisplayToken] = []
    upper_next = True
    for token in tokens:
        text = token.text
        if upper_next:
            text = _upper_first_letter(text)
        out.append(DisplayToken(text, token.first, token.last))
        upper_next = text.endswith(_SENTENCE_END)
    return out


def _upper_first_letter(text: str) -> str:
    start = len("<profanity>") if text.startswith("<profanity>") else 0
    for i in range(start, len(text)):
        if text[i].isalpha():
            return text[:i] + text[i].upper() + text[i + 1 :]
    return text
