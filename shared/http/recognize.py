"""``POST /api/recognize``: up to 60 s of speech in, one recognised utterance out.

The body is streamed to the short-audio endpoint as it arrives: only the header is read ahead
(to refuse bad audio before Speech is called), and every chunk is measured before it is sent
on, so an upload longer than the limit is stopped with 413 without reading the rest.

Outcomes follow the Speech SDK's recognize-once semantics (seed 002): ``Success`` is the
recognised text; ``NoMatch``, ``InitialSilenceTimeout`` and ``BabbleTimeout`` are answers
too (200, empty text, the reason); ``Error`` is the service failing (502).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.http import params
from shared.http.body import Meter, MeteredBody
from shared.http.exchange import Exchange, answer
from shared.http.ogg import OggOpusMeter
from shared.http.problems import ApiProblem, invalid_parameter
from shared.http.wav import WavMeter
from shared.redact import get_logger
from shared.speech.models import (
    Dimension,
    GradingSystem,
    Granularity,
    NBestEntry,
    OutputFormat,
    PronunciationAssessmentParams,
    RecognitionStatus,
    ShortAudioProfanity,
    ShortAudioResult,
)
from shared.speech.models.common import ticks_to_ms
from shared.speech.short_audio import OGG_OPUS, WAV_PCM_16K

if TYPE_CHECKING:
    from shared.settings import AppSettings
    from shared.speech.short_audio import ShortAudioClient

_log = get_logger("shared.http.recognize")

_WAV_TYPES = frozenset({"audio/wav", "audio/wave", "audio/x-wav"})
_OGG_TYPES = frozenset({"audio/ogg"})
ACCEPTED_CONTENT_TYPES = [
    "audio/wav; codecs=audio/pcm; samplerate=16000 (also audio/wave, audio/x-wav; "
    "parameters optional)",
    "audio/ogg; codecs=opus (codecs optional)",
]
#: What each non-success status means (seed 001's RecognitionStatus table).
_NO_SPEECH = {
    RecognitionStatus.NO_MATCH: (
        "Speech was detected but no words of the target language were matched; check "
        "the language parameter."
    ),
    RecognitionStatus.INITIAL_SILENCE_TIMEOUT: (
        "The audio began with silence only, and the service timed out waiting for speech."
    ),
    RecognitionStatus.BABBLE_TIMEOUT: (
        "The audio began with noise only, and the service timed out waiting for speech."
    ),
}
#: Model field -> query parameter, for messages.
_PRONUNCIATION_NAMES = {
    "reference_text": "referenceText",
    "grading_system": "gradingSystem",
    "granularity": "granularity",
    "dimension": "dimension",
    "enable_miscue": "enableMiscue",
    "scenario_id": "scenarioId",
}


class _Options:
    """The query parameters of one request, validated."""

    def __init__(self, request: Request) -> None:
        query = request.query_params
        language = params.one(query, "language")
        if language is None:
            raise ApiProblem(
                400,
                "MissingParameter",
                "The 'language' query parameter is required, e.g. ?language=en-US.",
                parameter="language",
            )
        self.language = params.locale("language", language)
        self.format = (
            params.choice("format", params.one(query, "format"), OutputFormat)
            or OutputFormat.SIMPLE
        )
        self.profanity = params.choice(
            "profanity", params.one(query, "profanity"), ShortAudioProfanity
        )
        self.cid = params.guid("cid", params.one(query, "cid"))
        self.pronunciation = _pronunciation(request)


def _pronunciation(request: Request) -> PronunciationAssessmentParams | None:
    """Pronunciation assessment parameters, when any is given (``referenceText`` required)."""
    query = request.query_params
    raw = {name: params.one(query, name) for name in _PRONUNCIATION_NAMES.values()}
    if all(value is None for value in raw.values()):
        return None
    reference = raw["referenceText"]
    if reference is None:
        given = ", ".join(name for name, value in raw.items() if value is not None)
        raise invalid_parameter(
            "referenceText",
            f"Pronunciation assessment ({given}) needs 'referenceText', the text the speaker "
            "was asked to read.",
        )
    grading_system = params.choice("gradingSystem", raw["gradingSystem"], GradingSystem)
    granularity = params.choice("granularity", raw["granularity"], Granularity)
    dimension = params.choice("dimension", raw["dimension"], Dimension)
    enable_miscue = params.boolean("enableMiscue", raw["enableMiscue"])
    scenario_id = params.guid("scenarioId", raw["scenarioId"])
    try:
        return PronunciationAssessmentParams(
            reference_text=reference,
            grading_system=grading_system,
            granularity=granularity,
            dimension=dimension,
            enable_miscue=enable_miscue,
            scenario_id=scenario_id,
        )
    except ValidationError as exc:
        # Every field was checked above; what is left is the model's own rules.
        raise params.from_validation_error(exc, _PRONUNCIATION_NAMES) from None


def _audio_kind(request: Request) -> str:
    """``"wav"`` or ``"ogg"`` from the Content-Type, else 415 saying what is accepted."""
    header = request.headers.get("content-type")
    media, options = params.media_type(header)
    if media in _WAV_TYPES:
        # Parameters may be left out; given ones must match what the service takes.
        if options.get("codecs", "audio/pcm") == "audio/pcm" and (
            options.get("samplerate", "16000") == "16000"
        ):
            return "wav"
    elif media in _OGG_TYPES and options.get("codecs", "opus") == "opus":
        return "ogg"
    shown = (header or "none")[:100]
    raise params.unsupported_media_type(
        f"Content-Type '{shown}' is not accepted; send 16 kHz mono WAV (PCM) or Ogg Opus.",
        ACCEPTED_CONTENT_TYPES,
    )


def _nbest(entry: NBestEntry) -> dict[str, Any]:
    return {
        "confidence": entry.confidence,
        "lexical": entry.lexical,
        "itn": entry.itn,
        "maskedItn": entry.masked_itn,
        "display": entry.display,
    }


def _first(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)


def _pronunciation_scores(entry: NBestEntry) -> dict[str, Any]:
    """Scores of the best hypothesis: flat on it (older responses) or nested (newer ones)."""
    nested = entry.pronunciation_assessment
    scores: dict[str, Any] = {
        camel: _first(getattr(entry, name), getattr(nested, name, None))
        for name, camel in (
            ("accuracy_score", "accuracyScore"),
            ("fluency_score", "fluencyScore"),
            ("completeness_score", "completenessScore"),
            ("prosody_score", "prosodyScore"),
            ("pron_score", "pronScore"),
        )
    }
    scores["words"] = [
        {
            "word": word.word,
            "accuracyScore": _first(
                word.accuracy_score,
                getattr(word.pronunciation_assessment, "accuracy_score", None),
            ),
            "errorType": _first(
                word.error_type,
                getattr(word.pronunciation_assessment, "error_type", None),
            ),
            "offsetMs": ticks_to_ms(word.offset),
            "durationMs": ticks_to_ms(word.duration),
        }
        for word in entry.words or []
    ]
    return scores


def _answer(result: ShortAudioResult, options: _Options) -> Response:
    status = result.recognition_status
    if status == RecognitionStatus.SUCCESS:
        body: dict[str, Any] = {
            "status": "Success",
            "text": result.text,
            "offsetMs": result.offset_ms,
            "durationMs": result.duration_ms,
        }
        best = result.n_best or []
        if options.format is OutputFormat.DETAILED:
            body["nbest"] = [_nbest(entry) for entry in best]
        if options.pronunciation is not None and best:
            body["pronunciation"] = _pronunciation_scores(best[0])
        return JSONResponse(body)
    for reason, message in _NO_SPEECH.items():
        if status == reason:
            return JSONResponse(
                {
                    "status": reason.value,
                    "text": "",
                    "message": message,
                    "offsetMs": result.offset_ms,
                    "durationMs": result.duration_ms,
                }
            )
    if status == RecognitionStatus.ERROR:
        raise ApiProblem(
            502,
            "RecognitionError",
            "The recognition service hit an internal error and could not continue; retry.",
            recognitionStatus="Error",
            retryable=True,
        )
    raise ApiProblem(
        502,
        "UnexpectedRecognitionStatus",
        f"Speech answered with recognition status {status!r}, which this app does not know.",
        recognitionStatus=str(status),
    )


async def recognize(
    request: Request, short_audio: ShortAudioClient, settings: AppSettings
) -> Response:
    """Handle ``POST /api/recognize?language=..[&format=..&profanity=..&cid=..]``.

    The body is 16 kHz mono WAV (PCM) or Ogg Opus of at most ``settings.recognize_max_seconds``
    seconds, streamed to ``short_audio``. Pronunciation assessment is asked for with
    ``referenceText`` (plus ``gradingSystem``, ``granularity``, ``dimension``,
    ``enableMiscue``, ``scenarioId``). Errors are JSON ``{"error": {"code", "message", ...}}``.
    """

    async def work(exchange: Exchange) -> Response:
        options = _Options(request)
        kind = _audio_kind(request)
        meter: Meter = (
            WavMeter(settings.recognize_max_seconds)
            if kind == "wav"
            else OggOpusMeter(settings.recognize_max_seconds)
        )
        body = MeteredBody(request.stream(), max_bytes=settings.recognize_max_bytes, meter=meter)
        exchange.body = body
        await body.read_head()
        result = await short_audio.recognize(
            body.chunks(),
            language=options.language,
            content_type=WAV_PCM_16K if kind == "wav" else OGG_OPUS,
            format=options.format,
            profanity=options.profanity,
            cid=options.cid,
            pronunciation_assessment=options.pronunciation,
        )
        response = _answer(result, options)
        exchange.outcome = str(result.recognition_status)
        return response

    return await answer(
        "recognize", work, auth_mode=settings.speech.auth_mode, short_audio=True, log=_log
    )
