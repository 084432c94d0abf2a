"""A fast-transcription result in the shape of a batch result, so one renderer serves both.

The ``.json`` output keeps the service's own ``TranscribeResult``; only the ``.txt``, ``.srt``
and ``.vtt`` renderings go through this mapping: each fast ``phrase`` becomes a recognized
phrase with one hypothesis whose display words carry the fast API's word timings.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from shared.pipeline.outputs import write_transcript
from shared.speech.models import (
    DisplayWord,
    NBestHypothesis,
    RecognizedPhrase,
    TranscribeResult,
    TranscriptionResult,
)

if TYPE_CHECKING:
    from shared.app_context import AppContext


def as_transcription_result(result: TranscribeResult, *, source: str) -> TranscriptionResult:
    """``result`` as a :class:`TranscriptionResult` for :mod:`shared.render`."""
    phrases = []
    for phrase in result.phrases or []:
        if not phrase.text:
            continue
        words = [
            DisplayWord(
                display_text=word.text,
                offset_milliseconds=word.offset_ms,
                duration_milliseconds=word.duration_ms,
            )
            for word in phrase.words or []
            if word.text
        ]
        phrases.append(
            RecognizedPhrase(
                recognition_status="Success",
                channel=phrase.channel,
                speaker=phrase.speaker,
                locale=phrase.locale,
                offset_milliseconds=phrase.offset_ms,
                duration_milliseconds=phrase.duration_ms,
                n_best=[
                    NBestHypothesis(
                        confidence=phrase.confidence,
                        display=phrase.text,
                        display_words=words or None,
                    )
                ],
            )
        )
    return TranscriptionResult(
        source=source,
        duration_milliseconds=result.duration_ms,
        recognized_phrases=phrases,
    )


async def write_fast_transcript(
    ctx: AppContext, result: TranscribeResult, *, container: str, base: str, source: str
) -> list[str]:
    """The outputs of a fast result: the renderings, then the result as returned (``.json``)."""
    raw = json.dumps(result.to_dict(), ensure_ascii=False).encode()
    return await write_transcript(
        ctx,
        container=container,
        base=base,
        raw=raw,
        result=as_transcription_result(result, source=source),
    )
