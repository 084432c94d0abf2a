"""Word error rate and word alignment, on normalised words (standard library only).

Both sides are normalised with :func:`local.emulator.asr.text.normalize_words`: lower case,
punctuation stripped, numbers spelled out, so "5 pencils." and "five pencils" are equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from local.emulator.asr.text import normalize_words

__all__ = ["AlignedPair", "align_words", "edit_distance", "word_error_rate"]

#: ``match`` and ``substitution`` pair a reference word with a hypothesis word; ``deletion``
#: is a reference word nobody said, ``insertion`` a hypothesis word the reference lacks.
Operation = Literal["match", "substitution", "deletion", "insertion"]


@dataclass(frozen=True)
class AlignedPair:
    """One step of an alignment; ``ref``/``hyp`` are indexes, ``None`` where a side is absent."""

    op: Operation
    ref: int | None
    hyp: int | None


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER: total word edits over total reference words, after normalisation.

    ``references[i]`` is compared with ``hypotheses[i]``; the lists must be equally long and
    the references must hold at least one word (``ValueError`` otherwise).
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    edits = words = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        ref_words = normalize_words(reference)
        edits += edit_distance(ref_words, normalize_words(hypothesis))
        words += len(ref_words)
    if words == 0:
        raise ValueError("the references hold no words")
    return edits / words


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Levenshtein distance between two word sequences (unit costs)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, start=1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, start=1):
            current.append(
                min(
                    previous[j] + 1,
                    current[j - 1] + 1,
                    previous[j - 1] + (ref_word != hyp_word),
                )
            )
        previous = current
    return previous[-1]


def align_words(reference: Sequence[str], hypothesis: Sequence[str]) -> list[AlignedPair]:
    """A minimum-edit alignment of two word sequences, in order.

    A misread word costs one substitution, never a deletion plus an insertion. Where several
    alignments are minimal, matches are kept and substitutions pair words as early as
    possible ("good morning" / "good evening all": morning/evening, then "all" inserted).
    """
    rows, cols = len(reference), len(hypothesis)
    cost = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(rows + 1):
        cost[i][0] = i
    for j in range(cols + 1):
        cost[0][j] = j
    for i in range(1, rows + 1):
        for j in range(1, cols + 1):
            cost[i][j] = min(
                cost[i - 1][j] + 1,
                cost[i][j - 1] + 1,
                cost[i - 1][j - 1] + (reference[i - 1] != hypothesis[j - 1]),
            )
    pairs: list[AlignedPair] = []
    i, j = rows, cols
    while i > 0 or j > 0:
        diagonal = i > 0 and j > 0
        if diagonal and reference[i - 1] == hypothesis[j - 1] and cost[i][j] == cost[i - 1][j - 1]:
            pairs.append(AlignedPair("match", i - 1, j - 1))
            i, j = i - 1, j - 1
        elif j > 0 and cost[i][j] == cost[i][j - 1] + 1:
            pairs.append(AlignedPair("insertion", None, j - 1))
            j -= 1
        elif i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            pairs.append(AlignedPair("deletion", i - 1, None))
            i -= 1
        else:
            pairs.append(AlignedPair("substitution", i - 1, j - 1))
            i, j = i - 1, j - 1
    pairs.reverse()
    return pairs
