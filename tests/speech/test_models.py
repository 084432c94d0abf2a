"""Wire models against Microsoft's own examples, the seeds, and every documented limit.

Round trips are compared strictly (:func:`assert_same_json`): same keys, same values and the
same JSON types, so an int that came back as a float (ticks) or a field that went missing
fails. No example needed normalising: their timestamps are whole seconds in ``Z`` form, which
is how the models write datetimes back (fractional seconds would come back with six digits).
The short-audio seed is the one deliberate exception: its numbers written as strings
(``"0.87"``, ``"1236645672289"``) parse as numbers, so those bodies are checked by value.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from shared.speech.models import (
    BaseSpeechModel,
    CustomSpeechModel,
    DetailedErrorCode,
    Error,
    ErrorCode,
    FileKind,
    LanguageIdentificationSettings,
    PaginatedBaseSpeechModels,
    PaginatedFiles,
    PaginatedTranscriptions,
    PronunciationAssessmentParams,
    PronunciationErrorType,
    RecognitionStatus,
    RequestModel,
    ResponseModel,
    ShortAudioResult,
    Status,
    TranscribeDefinition,
    TranscribeDiarization,
    TranscribeResult,
    Transcription,
    TranscriptionFile,
    TranscriptionLocales,
    TranscriptionReport,
    TranscriptionRequest,
    TranscriptionRequestProperties,
    TranscriptionResult,
    TranscriptionUpdate,
    parse_iso_duration,
)

_DATA = Path(__file__).resolve().parents[1] / "data"
#: Microsoft's spec and examples, copied into the repo (see tests/data/speech-spec/README.md).
SPEC_DIR = _DATA / "speech-spec"
EXAMPLES_DIR = SPEC_DIR / "2024-11-15" / "examples"
EXAMPLES_ALT_DIR = SPEC_DIR / "2024-11-15" / "examples-alt"
RESULTS_DIR = SPEC_DIR / "results"

#: The user's seed documents that the models must read (see tests/data/seeds/README.md).
SEEDS_DIR = _DATA / "seeds"

EXAMPLE_FILES = sorted([*EXAMPLES_DIR.glob("*.json"), *EXAMPLES_ALT_DIR.glob("*.json")])

SAS_URL = "https://acct.blob.core.windows.net/audio/a.wav?sv=2024&sig=abc"
MODEL_URL = "https://westus.api.cognitive.microsoft.com/speechtotext/models/base/1"

# Example file (name without the "@commit" of examples-alt) -> the model of its response body
# and the wire names the model keeps as extras. None: the response has no body (204).
RESPONSE_MODELS: dict[str, tuple[type[ResponseModel], set[str]] | None] = {
    "create_container_transcription": (Transcription, set()),
    "create_lid_transcription": (Transcription, set()),
    # v3 `diarization.speakers.minCount/maxCount` has no 2024-11-15 counterpart.
    "create_multispeaker_diarization_transcription": (Transcription, {"speakers"}),
    "create_uri_transcription": (Transcription, set()),
    "delete_transcription": None,
    "get_base_model": (BaseSpeechModel, set()),
    "get_english_base_models": (PaginatedBaseSpeechModels, set()),
    "get_failed_transcriptions": (PaginatedTranscriptions, set()),
    "get_model": (CustomSpeechModel, set()),
    "get_supported_transcription_locales": (TranscriptionLocales, set()),
    "get_transcription": (Transcription, set()),
    "get_transcription_file": (TranscriptionFile, set()),
    "get_transcription_files": (PaginatedFiles, set()),
    "get_transcriptions": (PaginatedTranscriptions, set()),
    "transcribe_file": (TranscribeResult, set()),
    "update_transcription": (Transcription, set()),
}

# Request bodies in the examples, by example parameter name.
REQUEST_MODELS: dict[str, type[RequestModel]] = {
    "transcription": TranscriptionRequest,
    "transcriptionUpdate": TranscriptionUpdate,
}
# Example file -> the wire names the strict model must reject (empty: the body is valid).
REQUEST_CASES: dict[str, set[str]] = {
    "create_container_transcription.json": set(),
    "create_lid_transcription.json": set(),
    "update_transcription.json": set(),
    "update_transcription@bea0a07c917e.json": set(),
    "create_uri_transcription.json": {"diarizationEnabled", "timeToLive"},
    "create_lid_transcription@bea0a07c917e.json": {"diarizationEnabled", "timeToLive"},
    "create_multispeaker_diarization_transcription.json": {
        "diarizationEnabled",
        "timeToLive",
        "speakers",
    },
}


# ------------------------------------------------------------------------------ helpers


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def json_objects(text: str) -> list[Any]:
    """Every top-level JSON object embedded in a text, in order."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    position = text.find("{")
    while position != -1:
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            position = text.find("{", position + 1)
            continue
        found.append(value)
        position = text.find("{", end)
    return found


def seed_text(name: str) -> str:
    return (SEEDS_DIR / name).read_text(encoding="utf-8")


def assert_same_json(actual: Any, expected: Any, path: str = "$") -> None:
    """Equal as JSON, with the same types: 48 and 48.0 or 1 and True are different here."""
    assert type(actual) is type(expected), (
        f"{path}: {type(actual).__name__} != {type(expected).__name__}"
    )
    if isinstance(expected, dict):
        assert actual.keys() == expected.keys(), f"{path}: keys {actual.keys() ^ expected.keys()}"
        for key, value in expected.items():
            assert_same_json(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), f"{path}: length {len(actual)} != {len(expected)}"
        for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
            assert_same_json(got, want, f"{path}[{index}]")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def extra_names(model: BaseModel) -> set[str]:
    """Wire names kept as extras anywhere in a parsed model tree."""
    names = set(model.model_extra or {})
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, dict):
            children = list(value.values())
        elif isinstance(value, list):
            children = value
        else:
            children = [value]
        for child in children:
            if isinstance(child, BaseModel):
                names |= extra_names(child)
    return names


def rejects(build: Callable[[], object], *names: str) -> ValidationError:
    """Assert ``build`` raises a pydantic ValueError whose message names one of ``names``."""
    with pytest.raises(ValueError, match="|".join(map(re.escape, names))) as caught:
        build()
    assert isinstance(caught.value, ValidationError)
    return caught.value


def _stem(path: Path) -> str:
    return path.stem.partition("@")[0]


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


# -------------------------------------------------------------------- spec examples


def test_examples_are_present_and_all_mapped() -> None:
    assert len(EXAMPLE_FILES) >= 23, f"examples missing under {SPEC_DIR}"
    assert {_stem(path) for path in EXAMPLE_FILES} == set(RESPONSE_MODELS)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=_id)
def test_example_response_parses_and_round_trips(path: Path) -> None:
    bodies = [resp["body"] for resp in load_json(path)["responses"].values() if "body" in resp]
    expected = RESPONSE_MODELS[_stem(path)]
    if expected is None:
        assert bodies == []
        return
    model_cls, extras = expected
    assert len(bodies) == 1
    parsed = model_cls.model_validate(bodies[0])
    assert_same_json(parsed.to_dict(), bodies[0])
    assert extra_names(parsed) == extras


_REQUEST_EXAMPLES = [
    path for path in EXAMPLE_FILES if set(load_json(path)["parameters"]) & set(REQUEST_MODELS)
]


def test_request_examples_are_all_mapped() -> None:
    assert {path.name for path in _REQUEST_EXAMPLES} == set(REQUEST_CASES)


@pytest.mark.parametrize("path", _REQUEST_EXAMPLES, ids=_id)
def test_example_request_is_validated_strictly(path: Path) -> None:
    parameters = load_json(path)["parameters"]
    (parameter,) = set(parameters) & set(REQUEST_MODELS)
    body = parameters[parameter]
    model_cls = REQUEST_MODELS[parameter]
    rejected = REQUEST_CASES[path.name]
    if not rejected:
        assert_same_json(model_cls.model_validate(body).to_body(), body)
        return
    error = rejects(lambda: model_cls.model_validate(body), *rejected)
    assert {err["type"] for err in error.errors()} == {"extra_forbidden"}
    assert {str(err["loc"][-1]) for err in error.errors()} == rejected


@pytest.mark.parametrize(
    "path", [p for p in EXAMPLE_FILES if _stem(p) == "transcribe_file"], ids=_id
)
def test_transcribe_examples_definition_is_not_json(path: Path) -> None:
    """Microsoft's `definition` here lacks a "[", so there is no request body to validate."""
    with pytest.raises(json.JSONDecodeError):
        json.loads(load_json(path)["parameters"]["definition"])


# ------------------------------------------------------------- transcription helpers


def _example_body(name: str) -> Any:
    (response,) = load_json(EXAMPLES_DIR / name)["responses"].values()
    return response["body"]


def test_transcription_helpers_on_a_2024_11_15_body() -> None:
    job = Transcription.model_validate(_example_body("get_transcription.json"))
    assert job.id == "ba7ea6f5-3065-40b7-b49a-a90f48584683"
    assert job.status is Status.SUCCEEDED
    assert job.is_terminal
    assert job.created_date_time == datetime(2019, 1, 7, 11, 34, 12, tzinfo=UTC)
    assert job.properties is not None
    assert job.properties.effective_time_to_live_hours == 48
    assert job.properties.effective_duration_ms == 42000
    assert job.properties.diarization_enabled is None


def test_transcription_helpers_fall_back_to_v3_names() -> None:
    job = Transcription.model_validate(_example_body("create_uri_transcription.json"))
    assert job.properties is not None
    assert job.properties.time_to_live_hours is None
    assert job.properties.effective_time_to_live_hours == 48.0
    assert job.properties.effective_duration_ms == 42000
    assert job.properties.diarization_enabled is False

    diarized = Transcription.model_validate(
        _example_body("create_multispeaker_diarization_transcription.json")
    )
    assert diarized.properties is not None
    assert diarized.properties.diarization_enabled is True


def test_transcription_diarization_prefers_the_current_name() -> None:
    props = Transcription.model_validate(
        {"properties": {"diarizationEnabled": False, "diarization": {"enabled": True}}}
    ).properties
    assert props is not None
    assert props.diarization_enabled is True


@pytest.mark.parametrize(
    ("status", "terminal"),
    [("NotStarted", False), ("Running", False), ("Succeeded", True), ("Failed", True)],
)
def test_transcription_is_terminal(status: str, terminal: bool) -> None:
    assert Transcription.model_validate({"status": status}).is_terminal is terminal


def test_unknown_values_from_a_newer_service_still_parse() -> None:
    job = Transcription.model_validate({"status": "Paused", "properties": {"newField": 1}})
    assert job.status == "Paused"
    assert not isinstance(job.status, Status)
    assert not job.is_terminal
    assert job.to_dict() == {"status": "Paused", "properties": {"newField": 1}}
    file = TranscriptionFile.model_validate({"kind": "TranscriptionReport"})
    assert file.kind is FileKind.TRANSCRIPTION_REPORT


def test_transcription_id_needs_self() -> None:
    assert Transcription.model_validate({}).id is None
    trailing = Transcription.model_validate({"self": "https://h/speechtotext/transcriptions/x/"})
    assert trailing.id == "x"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P2D", timedelta(days=2)),
        ("PT12H", timedelta(hours=12)),
        ("PT42S", timedelta(seconds=42)),
        ("PT0.76S", timedelta(seconds=0.76)),
        ("P1W", timedelta(weeks=1)),
        ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)),
        ("P", None),
        ("PT", None),
        ("P1DT", None),
        ("P1Y", None),
        ("P1M", None),
        ("42S", None),
        ("", None),
    ],
)
def test_parse_iso_duration(text: str, expected: timedelta | None) -> None:
    assert parse_iso_duration(text) == expected


# ------------------------------------------------------------------------------ errors


def test_error_innermost_code_from_seed_000() -> None:
    bodies = [obj for obj in json_objects(seed_text("000-models-get-v3.0.txt")) if "code" in obj]
    error = Error.model_validate(bodies[0])
    assert error.code is ErrorCode.INVALID_REQUEST
    assert error.innermost_code() == DetailedErrorCode.INVALID_BASE_MODEL
    assert_same_json(error.to_dict(), bodies[0])
    assert Error.model_validate(bodies[1]).innermost_code() is None


def test_error_innermost_code_walks_the_chain() -> None:
    error = Error.model_validate(
        {
            "code": "InvalidRequest",
            "details": [{"code": "SomethingNew"}],
            "innerError": {
                "code": "InvalidParameterValue",
                "innerError": {"code": "FutureCode", "innerError": {"message": "no code"}},
            },
        }
    )
    assert error.innermost_code() == "FutureCode"
    assert error.details is not None
    assert error.details[0].code == "SomethingNew"


# ------------------------------------------------------------------------- models (seeds)


def test_seed_000_v3_custom_model_parses_and_round_trips() -> None:
    body = json_objects(seed_text("000-models-get-v3.0.txt"))[0]
    model = CustomSpeechModel.model_validate(body)
    assert_same_json(model.to_dict(), body)
    assert extra_names(model) == set()
    assert model.transcription_deprecation == datetime(2023, 5, 4, tzinfo=UTC)
    assert model.links is not None
    assert model.links.copy_to is not None
    assert model.links.copy_to.endswith("/copy")
    assert model.datasets is not None
    assert model.base_model is not None
    assert model.status is Status.RUNNING


def test_base_model_deprecation_and_features() -> None:
    model = BaseSpeechModel.model_validate(_example_body("get_base_model.json"))
    assert model.transcription_deprecation == datetime(2023, 5, 4, tzinfo=UTC)
    assert model.properties is not None
    assert model.properties.features is not None
    assert model.properties.features.supports_adaptations_with == ["Language", "Acoustic"]
    assert BaseSpeechModel.model_validate({}).transcription_deprecation is None


def test_seed_003_samples_match_the_models() -> None:
    samples = json_objects(seed_text("003-transcriptions-submit-2024-11-15.txt"))
    requests = [obj for obj in samples if "self" not in obj]
    responses = [obj for obj in samples if "self" in obj]
    assert len(requests) == len(responses) == 4
    for body in requests:
        assert_same_json(TranscriptionRequest.model_validate(body).to_body(), body)
    for body in responses:
        parsed = Transcription.model_validate(body)
        assert_same_json(parsed.to_dict(), body)
        assert extra_names(parsed) == set()


# ---------------------------------------------------------------------------- short audio


def _short_audio_results() -> list[Any]:
    found = json_objects(seed_text("001-short-audio-rest-api-azure-cn.txt"))
    return [obj for obj in found if "RecognitionStatus" in obj]


def test_seed_001_simple_result() -> None:
    simple, _, _ = _short_audio_results()
    result = ShortAudioResult.model_validate(simple)
    assert result.recognition_status is RecognitionStatus.SUCCESS
    assert result.text == "Remind me to buy 5 pencils."
    assert result.offset == 1236645672289
    assert result.offset_ms == 123664567
    assert result.duration_ms == 123664567


def test_seed_001_detailed_result() -> None:
    _, detailed, _ = _short_audio_results()
    result = ShortAudioResult.model_validate(detailed)
    assert result.display_text is None
    assert result.text == "What's the weather like?"
    assert result.n_best is not None
    assert [entry.confidence for entry in result.n_best] == [0.9052885, 0.92459863]
    assert result.n_best[1].itn == "what is the weather like"
    assert result.n_best[1].masked_itn == "what is the weather like"
    assert_same_json(result.to_dict()["NBest"], detailed["NBest"])


def test_seed_001_pronunciation_result_parses_strings_as_numbers() -> None:
    _, _, scored = _short_audio_results()
    result = ShortAudioResult.model_validate(scored)
    assert (result.offset, result.duration) == (400000, 11000000)
    assert (result.offset_ms, result.duration_ms) == (40, 1100)
    assert result.n_best is not None
    best = result.n_best[0]
    assert isinstance(best.confidence, float)
    assert best.confidence == 0.87
    assert (best.pron_score, best.accuracy_score, best.fluency_score) == (84.4, 100.0, 74.0)
    assert best.completeness_score == 100.0
    assert best.words is not None
    assert [word.word for word in best.words] == ["Good", "morning"]
    assert best.words[0].error_type is PronunciationErrorType.NONE
    assert (best.words[1].offset, best.words[1].duration) == (5300000, 900000)


def test_nested_pronunciation_assessment_shape() -> None:
    body = {
        "RecognitionStatus": 0,
        "Offset": 7500000,
        "Duration": 13800000,
        "DisplayText": "Hello.",
        "SNR": 38.1,
        "NBest": [
            {
                "Confidence": 0.975003,
                "Display": "Hello.",
                "PronunciationAssessment": {"AccuracyScore": 100, "PronScore": 100},
                "Words": [
                    {
                        "Word": "hello",
                        "PronunciationAssessment": {"AccuracyScore": 99.0, "ErrorType": "Monotone"},
                        "Syllables": [
                            {"Syllable": "hɛ", "PronunciationAssessment": {"AccuracyScore": 91.0}}
                        ],
                        "Phonemes": [
                            {
                                "Phoneme": "h",
                                "PronunciationAssessment": {
                                    "AccuracyScore": 98.0,
                                    "NBestPhonemes": [{"Phoneme": "h", "Score": 100.0}],
                                },
                            }
                        ],
                    }
                ],
            }
        ],
    }
    result = ShortAudioResult.model_validate(body)
    assert result.recognition_status == 0
    assert result.model_extra == {"SNR": 38.1}
    assert result.n_best is not None
    best = result.n_best[0]
    assert best.pronunciation_assessment is not None
    assert best.pronunciation_assessment.pron_score == 100
    assert best.words is not None
    word = best.words[0]
    assert word.pronunciation_assessment is not None
    assert word.pronunciation_assessment.error_type is PronunciationErrorType.MONOTONE
    assert word.phonemes is not None
    assert word.phonemes[0].pronunciation_assessment is not None
    assert word.phonemes[0].pronunciation_assessment.n_best_phonemes is not None
    assert_same_json(result.to_dict(), body)


def test_short_audio_text_is_empty_without_any_hypothesis() -> None:
    result = ShortAudioResult.model_validate({"RecognitionStatus": "NoMatch"})
    assert result.text == ""
    assert result.recognition_status is RecognitionStatus.NO_MATCH
    assert result.offset_ms is None


def test_pronunciation_header_matches_the_seed_example() -> None:
    text = seed_text("001-short-audio-rest-api-azure-cn.txt")
    example = next(obj for obj in json_objects(text) if "ReferenceText" in obj)
    params = PronunciationAssessmentParams.model_validate(example)
    header = params.to_header()
    assert json.loads(base64.b64decode(header)) == example
    # Byte for byte what the docs' C# sample builds from its interpolated string.
    match = re.search(r'\$"(\{\{.*?\}\})";', text)
    assert match is not None
    csharp = match.group(1).replace("{{", "{").replace("}}", "}").replace('\\"', '"')
    assert header == base64.b64encode(csharp.encode("utf-8")).decode("ascii")


def test_pronunciation_header_keeps_non_ascii_text_as_utf8() -> None:
    params = PronunciationAssessmentParams(reference_text="Grüß Gott", enable_miscue=True)
    decoded = base64.b64decode(params.to_header()).decode("utf-8")
    assert decoded == '{"ReferenceText":"Grüß Gott","EnableMiscue":true}'


# ------------------------------------------------------------------------- fast transcription


def test_fast_result_milliseconds_fall_back_to_preview_names() -> None:
    current = TranscribeResult.model_validate(_example_body("transcribe_file.json"))
    (preview_path,) = EXAMPLES_ALT_DIR.glob("transcribe_file@*.json")
    (preview_response,) = load_json(preview_path)["responses"].values()
    preview = TranscribeResult.model_validate(preview_response["body"])
    assert current.duration_ms == preview.duration_ms == 2000
    assert current.phrases is not None
    assert preview.phrases is not None
    assert (current.phrases[0].offset_ms, current.phrases[0].duration_ms) == (40, 320)
    assert (preview.phrases[0].offset_ms, preview.phrases[0].duration_ms) == (40, 240)
    assert preview.phrases[0].words is not None
    assert preview.phrases[0].words[0].duration_ms == 240


def test_fast_definition_fields_since_2025_10_15_are_its_wire_names() -> None:
    definition = TranscribeDefinition.model_validate(
        {
            "locales": ["en-US"],
            "audioUrl": SAS_URL,
            "phraseList": {"phrases": ["Contoso"], "biasingWeight": 1.5},
            "enhancedMode": {"enabled": True, "task": "translate", "targetLanguage": "de"},
        }
    )
    newer = set(definition.to_body()) & TranscribeDefinition.FIELDS_SINCE_2025_10_15
    assert newer == {"audioUrl", "phraseList", "enhancedMode"}
    plain = TranscribeDefinition(locales=["en-US"], channels=[0, 1])
    assert plain.to_body() == {"locales": ["en-US"], "channels": [0, 1]}
    assert not set(plain.to_body()) & TranscribeDefinition.FIELDS_SINCE_2025_10_15


# --------------------------------------------------------------------------- result files


def _format_md_examples() -> tuple[Any, Any]:
    blocks = re.findall(
        r"```json\n(.*?)\n```", (RESULTS_DIR / "FORMAT.md").read_text("utf-8"), re.S
    )
    result, report = (json.loads(block) for block in blocks)
    return result, report


def test_transcript_sample_parses_with_old_duration_ticks() -> None:
    body = load_json(RESULTS_DIR / "transcriptSample.json")
    result = TranscriptionResult.model_validate(body)
    assert_same_json(result.to_dict(), body)
    assert extra_names(result) == {"durationTicks"}
    assert result.duration_in_ticks is None
    assert result.duration_ms == 7480  # from the ISO "PT7.48S"
    assert result.recognized_phrases is not None
    phrase = result.recognized_phrases[0]
    assert isinstance(phrase.offset_in_ticks, float)
    assert (phrase.offset_ms, phrase.duration_ms, phrase.speaker) == (40, 2180, 1)
    assert phrase.n_best is not None
    assert phrase.n_best[0].words is not None
    assert phrase.n_best[0].words[1].offset_ms == 520


def test_format_md_result_round_trips_and_prefers_milliseconds() -> None:
    body, _ = _format_md_examples()
    result = TranscriptionResult.model_validate(body)
    assert_same_json(result.to_dict(), body)
    assert extra_names(result) == set()
    assert isinstance(result.duration_in_ticks, int)
    assert result.duration_ms == 3200
    assert result.timestamp == datetime(2025, 1, 15, 10, 20, 30, tzinfo=UTC)
    assert result.combined_recognized_phrases is not None
    assert result.combined_recognized_phrases[0].masked_itn == "good morning"
    assert result.recognized_phrases is not None
    phrase = result.recognized_phrases[0]
    assert (phrase.offset_ms, phrase.duration_ms, phrase.locale) == (500, 1800, "en-US")
    assert phrase.n_best is not None
    assert phrase.n_best[0].words is not None
    assert phrase.n_best[0].words[1].offset_ms == 1100


@pytest.mark.parametrize(
    "drop",
    [
        ("offsetMilliseconds", "durationMilliseconds"),
        ("offsetMilliseconds", "durationMilliseconds", "offsetInTicks", "durationInTicks"),
    ],
    ids=["from-ticks", "from-iso"],
)
def test_result_milliseconds_fall_back(drop: tuple[str, ...]) -> None:
    body, _ = _format_md_examples()
    phrase_body = {k: v for k, v in body["recognizedPhrases"][0].items() if k not in drop}
    result = TranscriptionResult.model_validate({"recognizedPhrases": [phrase_body]})
    assert result.recognized_phrases is not None
    phrase = result.recognized_phrases[0]
    assert (phrase.offset_ms, phrase.duration_ms) == (500, 1800)


def test_format_md_report_and_older_report_shapes() -> None:
    _, body = _format_md_examples()
    report = TranscriptionReport.model_validate(body)
    assert_same_json(report.to_dict(), body)
    assert (report.successful_transcriptions_count, report.failed_transcriptions_count) == (2, 0)
    assert report.details is not None
    assert report.details[0].status is Status.SUCCEEDED
    assert report.details[0].effective_source == body["details"][0]["source"]

    older = TranscriptionReport.model_validate(
        {
            "details": [
                {
                    "sourceUrl": SAS_URL,
                    "status": "Failed",
                    "errorKind": "InvalidAudioFormat",
                    "errorMessage": "The format of input audio is not supported.",
                }
            ]
        }
    )
    assert older.details is not None
    assert older.details[0].effective_source == SAS_URL
    assert older.details[0].error_kind == "InvalidAudioFormat"


# ------------------------------------------------------------------- request constraints


def _submit(**overrides: Any) -> TranscriptionRequest:
    fields: dict[str, Any] = {
        "display_name": "job",
        "locale": "en-US",
        "content_urls": [SAS_URL],
    }
    fields.update(overrides)
    return TranscriptionRequest.model_validate(fields)


def _submit_properties(**properties: Any) -> TranscriptionRequest:
    return _submit(properties=properties)


def test_minimal_request_always_sends_time_to_live() -> None:
    assert _submit().to_body() == {
        "displayName": "job",
        "locale": "en-US",
        "contentUrls": [SAS_URL],
        "properties": {"timeToLiveHours": 48},
    }


def test_language_identification_mode_defaults_to_continuous() -> None:
    settings = LanguageIdentificationSettings(candidate_locales=["en-US", "de-DE"])
    assert settings.to_body() == {"mode": "Continuous", "candidateLocales": ["en-US", "de-DE"]}


@pytest.mark.parametrize("field", ["display_name", "locale"])
@pytest.mark.parametrize(("value", "ok"), [("a", True), ("", False), ("   ", False)])
def test_display_name_and_locale_not_blank(field: str, value: str, ok: bool) -> None:
    if ok:
        assert getattr(_submit(**{field: value}), field) == value
    else:
        rejects(lambda: _submit(**{field: value}), field)


@pytest.mark.parametrize(
    ("urls", "ok"),
    [
        ([SAS_URL] * 1000, True),
        ([SAS_URL] * 1001, False),
        ([], False),
        (["http://contoso.com/a.wav"], True),
        (["ftp://contoso.com/a.wav"], False),
        (["/relative/a.wav"], False),
        (["https://"], False),
    ],
    ids=["1000", "1001", "empty", "http", "ftp", "relative", "no-host"],
)
def test_content_urls(urls: list[str], ok: bool) -> None:
    if ok:
        assert _submit(content_urls=urls).content_urls == urls
    else:
        rejects(lambda: _submit(content_urls=urls), "content_urls")


@pytest.mark.parametrize(
    ("sources", "given"),
    [
        ({}, "none"),
        ({"content_container_url": SAS_URL}, "contentUrls, contentContainerUrl"),
        ({"dataset": {"self": MODEL_URL}}, "contentUrls, dataset"),
    ],
    ids=["none", "urls+container", "urls+dataset"],
)
def test_exactly_one_audio_source_rejected(sources: dict[str, Any], given: str) -> None:
    overrides: dict[str, Any] = {"content_urls": None} if not sources else dict(sources)
    rejects(lambda: _submit(**overrides), f"given: {given}")


@pytest.mark.parametrize(
    "source",
    [
        {"content_urls": [SAS_URL]},
        {"content_urls": None, "content_container_url": SAS_URL},
        {"content_urls": None, "dataset": {"self": MODEL_URL}},
    ],
    ids=["urls", "container", "dataset"],
)
def test_exactly_one_audio_source_accepted(source: dict[str, Any]) -> None:
    assert len(_submit(**source).to_body()) == 4


@pytest.mark.parametrize(("speakers", "ok"), [(2, True), (35, True), (1, False), (36, False)])
def test_diarization_max_speakers(speakers: int, ok: bool) -> None:
    def batch() -> object:
        return _submit_properties(diarization={"enabled": True, "max_speakers": speakers})

    def fast() -> object:
        return TranscribeDiarization(enabled=True, max_speakers=speakers)

    for build in (batch, fast):
        if ok:
            build()
        else:
            rejects(build, "max_speakers")


@pytest.mark.parametrize(("hours", "ok"), [(6, True), (744, True), (5, False), (745, False)])
def test_time_to_live_hours(hours: int, ok: bool) -> None:
    if ok:
        assert _submit_properties(time_to_live_hours=hours).properties.time_to_live_hours == hours
    else:
        rejects(lambda: _submit_properties(time_to_live_hours=hours), "time_to_live_hours")


def test_assignment_is_validated_too() -> None:
    request = _submit()
    rejects(lambda: setattr(request.properties, "time_to_live_hours", 5), "time_to_live_hours")


@pytest.mark.parametrize("model", [TranscriptionRequest, TranscriptionUpdate])
@pytest.mark.parametrize(
    ("properties", "ok"),
    [
        ({f"k{i}": "v" for i in range(10)}, True),
        ({f"k{i}": "v" for i in range(11)}, False),
        ({"k" * 64: "v"}, True),
        ({"k" * 65: "v"}, False),
        ({"k": "v" * 256}, True),
        ({"k": "v" * 257}, False),
    ],
    ids=["10-entries", "11-entries", "key-64", "key-65", "value-256", "value-257"],
)
def test_custom_properties_limits(
    model: type[TranscriptionRequest | TranscriptionUpdate], properties: dict[str, str], ok: bool
) -> None:
    def build() -> object:
        if model is TranscriptionRequest:
            return _submit(custom_properties=properties)
        return TranscriptionUpdate(custom_properties=properties)

    if ok:
        built = build()
        assert isinstance(built, model)
        assert built.to_body()["customProperties"] == properties
    else:
        rejects(build, "customProperties")


@pytest.mark.parametrize(("name", "ok"), [("renamed", True), ("", False), (" ", False)])
def test_update_display_name_not_blank(name: str, ok: bool) -> None:
    if ok:
        assert TranscriptionUpdate(display_name=name).to_body() == {"displayName": name}
    else:
        rejects(lambda: TranscriptionUpdate(display_name=name), "display_name")


def _locales(count: int) -> list[str]:
    return [f"l{i}-XX" for i in range(count)]


@pytest.mark.parametrize(
    ("mode", "count", "ok"),
    [
        ("Continuous", 2, True),
        ("Continuous", 10, True),
        ("Continuous", 1, False),
        ("Continuous", 11, False),
        ("Single", 2, True),
        ("Single", 11, True),
        ("Single", 50, True),
        ("Single", 1, False),
    ],
)
def test_candidate_locales(mode: str, count: int, ok: bool) -> None:
    def build() -> object:
        return _submit_properties(
            language_identification={"mode": mode, "candidate_locales": _locales(count)}
        )

    if ok:
        build()
    else:
        rejects(build, "candidateLocales")


def test_speech_model_mapping_keys_must_be_candidates() -> None:
    def build(mapped_locale: str) -> LanguageIdentificationSettings:
        return LanguageIdentificationSettings.model_validate(
            {
                "candidate_locales": ["en-US", "de-DE"],
                "speech_model_mapping": {mapped_locale: {"self": MODEL_URL}},
            }
        )

    assert build("de-DE").to_body()["speechModelMapping"] == {"de-DE": {"self": MODEL_URL}}
    rejects(lambda: build("fr-FR"), "speechModelMapping")


@pytest.mark.parametrize(
    ("channels", "ok"),
    [
        ([0], True),
        ([1], True),
        ([0, 1], True),
        ([0, 2], True),
        ([], False),
        ([2], False),
        ([2, 3], False),
        ([-1, 0], False),
    ],
)
def test_batch_channels(channels: list[int], ok: bool) -> None:
    if ok:
        assert _submit_properties(channels=channels).properties.channels == channels
    else:
        rejects(lambda: TranscriptionRequestProperties(channels=channels), "channels")


@pytest.mark.parametrize(
    ("channels", "ok"),
    [
        ([0], True),
        ([1], True),
        ([0, 1], True),
        ([], False),
        ([2], False),
        ([0, 0], False),
        ([0, 1, 1], False),
    ],
)
def test_fast_channels(channels: list[int], ok: bool) -> None:
    if ok:
        assert TranscribeDefinition(channels=channels).channels == channels
    else:
        rejects(lambda: TranscribeDefinition(channels=channels), "channels")


@pytest.mark.parametrize(
    ("url", "ok"), [(SAS_URL, True), ("ftp://h/a.wav", False), ("a.wav", False)]
)
def test_fast_audio_url(url: str, ok: bool) -> None:
    if ok:
        assert TranscribeDefinition(audio_url=url).to_body() == {"audioUrl": url}
    else:
        rejects(lambda: TranscribeDefinition(audio_url=url), "audio_url")


@pytest.mark.parametrize(
    ("fields", "ok", "name"),
    [
        ({"ReferenceText": "Good morning."}, True, ""),
        ({"ReferenceText": ""}, False, "ReferenceText"),
        ({"GradingSystem": "TenPoint", "ReferenceText": "x"}, False, "GradingSystem"),
        (
            {"ReferenceText": "x", "ScenarioId": "6c1f0a3e-2b7d-4c55-9d1e-0f2a3b4c5d6e"},
            True,
            "",
        ),
        ({"ReferenceText": "x", "ScenarioId": "not-a-guid"}, False, "ScenarioId"),
    ],
    ids=["text", "empty-text", "bad-grading", "uuid", "bad-uuid"],
)
def test_pronunciation_params(fields: dict[str, Any], ok: bool, name: str) -> None:
    if ok:
        assert PronunciationAssessmentParams.model_validate(fields).to_body() == fields
    else:
        rejects(lambda: PronunciationAssessmentParams.model_validate(fields), name)
