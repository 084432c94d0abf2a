"""The contract validator must accept what the spec allows and reject what it does not.

Microsoft's own examples are the first check: the ones written with 2024-11-15 field names
must pass, the ones that still carry v3 names must fail, naming the offending fields. Then
targeted negatives prove each rule can fail on its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlencode

import pytest

from tests.contract.openapi import (
    SPEC_DIR,
    Operation,
    SpecViolation,
    SpeechSpec,
    load_example,
)

BASE = "https://westus.api.cognitive.microsoft.com"
KEY = {"Ocp-Apim-Subscription-Key": "test-key"}
JSON = {"Content-Type": "application/json"}
ID = "ba7ea6f5-3065-40b7-b49a-a90f48584683"
# Binary audio with CR/LF, NUL and a line that looks like a multipart delimiter, so the
# multipart parser is shown not to split or mangle it.
AUDIO = b"RIFF\x00\x01\xff\xfe\r\n--boundary\r\n\r\n" + bytes(range(256))
BOUNDARY = "contract-test-boundary"
VALID_SUBMIT: dict[str, Any] = {
    "displayName": "Contract test",
    "locale": "en-US",
    "contentUrls": ["https://contoso.com/audio.wav"],
    "properties": {"timeToLiveHours": 48, "wordLevelTimestampsEnabled": True},
}

EXAMPLES_2024 = sorted(
    path.relative_to(SPEC_DIR / "2024-11-15").as_posix()
    for folder in ("examples", "examples-alt")
    for path in (SPEC_DIR / "2024-11-15" / folder).glob("*.json")
)

# Microsoft examples whose request breaks the 2024-11-15 contract, with every expected problem.
# SOURCE.md lists these as carrying field names of earlier API versions; transcribe_file's
# `definition` is not even JSON (`{ "locales":  "en-US"] }`) and it sends no api-version.
_V3_SUBMIT_PROBLEMS = (
    "body.properties: 'timeToLiveHours' is a required property",
    "body.properties.diarizationEnabled: property is not declared by TranscriptionProperties",
    "body.properties.timeToLive: property is not declared by TranscriptionProperties",
)
_BROKEN_TRANSCRIBE = (
    "required query parameter 'api-version' is missing",
    "multipart part 'definition' is not valid JSON (TranscribeDefinition)",
)
REQUEST_FAILURES: dict[str, tuple[str, ...]] = {
    "examples/create_uri_transcription.json": _V3_SUBMIT_PROBLEMS,
    "examples/create_multispeaker_diarization_transcription.json": (
        *_V3_SUBMIT_PROBLEMS,
        # v3's diarization.speakers.minCount/maxCount became diarization.maxSpeakers.
        "body.properties.diarization.speakers: property is not declared by DiarizationProperties",
    ),
    "examples/transcribe_file.json": _BROKEN_TRANSCRIBE,
    "examples-alt/create_lid_transcription@bea0a07c917e.json": _V3_SUBMIT_PROBLEMS,
    "examples-alt/transcribe_file@baab4a7d6321.json": _BROKEN_TRANSCRIBE,
}

# Microsoft example responses that do not validate, even leniently, against the 2024-11-15
# response schema: they show v3 transcriptions (`timeToLive`, `duration`, no
# `timeToLiveHours`) or a v3 transcribe result (`duration`/`offset` instead of
# `durationMilliseconds`/`offsetMilliseconds`). Undeclared names alone pass leniently; the
# missing required 2024-11-15 names are what fail.
_V3_TRANSCRIPTION = ("body.properties: 'timeToLiveHours' is a required property",)
RESPONSE_FAILURES: dict[str, tuple[str, ...]] = {
    "examples/create_uri_transcription.json": _V3_TRANSCRIPTION,
    "examples/create_multispeaker_diarization_transcription.json": _V3_TRANSCRIPTION,
    "examples/get_transcriptions.json": (
        "body.values[0].properties: 'timeToLiveHours' is a required property",
        "body.values[1].properties: 'timeToLiveHours' is a required property",
    ),
    "examples-alt/create_lid_transcription@bea0a07c917e.json": _V3_TRANSCRIPTION,
    "examples-alt/update_transcription@bea0a07c917e.json": _V3_TRANSCRIPTION,
    "examples-alt/transcribe_file@baab4a7d6321.json": (
        "body: 'durationMilliseconds' is a required property",
        "body.phrases[0]: 'durationMilliseconds' is a required property",
        "body.phrases[0]: 'offsetMilliseconds' is a required property",
        "body.phrases[0].words[0]: 'durationMilliseconds' is a required property",
        "body.phrases[0].words[0]: 'offsetMilliseconds' is a required property",
    ),
}


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


@pytest.fixture(scope="module")
def spec() -> SpeechSpec:
    return SpeechSpec.load("2024-11-15")


@pytest.fixture(scope="module")
def spec_2025() -> SpeechSpec:
    return SpeechSpec.load("2025-10-15")


def url(path: str, query: Mapping[str, str] | None = None, *, version: str = "2024-11-15") -> str:
    params = {"api-version": version} if query is None else dict(query)
    return f"{BASE}/speechtotext{path}" + (f"?{urlencode(params)}" if params else "")


def multipart(*parts: tuple[str, str | None, bytes]) -> tuple[dict[str, str], bytes]:
    """Headers and body of a form with (name, filename or None, content) parts."""
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += content + b"\r\n"
    body += f"--{BOUNDARY}--\r\n".encode()
    return {**KEY, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}, body


def submit(spec: SpeechSpec, body: Any, headers: Mapping[str, str] | None = None) -> Operation:
    payload = json.dumps(body).encode()
    return spec.validate_request(
        "POST",
        url("/transcriptions:submit"),
        {**KEY, **JSON} if headers is None else headers,
        payload,
        base_url=BASE,
    )


def violation(call: Callable[..., object], *args: Any, **kwargs: Any) -> SpecViolation:
    with pytest.raises(SpecViolation) as caught:
        call(*args, **kwargs)
    return caught.value


def example_operation(spec: SpeechSpec, relative: str) -> Operation:
    # examples-alt files are "<name>@<commit>.json", other stored versions of examples/<name>.
    name = relative.split("/", 1)[1].split("@")[0].removesuffix(".json") + ".json"
    (op,) = [op for op in spec.operations() if name in op.examples]
    return op


def example_request(op: Operation, parameters: Mapping[str, Any]) -> Request:
    """The HTTP request an x-ms-examples `parameters` object describes."""
    path = op.path_template
    headers: dict[str, str] = {}
    query: dict[str, str] = {}
    body = b""
    for name, value in parameters.items():
        if name == "Endpoint":
            continue
        if name in ("Ocp-Apim-Subscription-Key", "Content-Type"):
            headers[name] = value
        elif name in op.parameters_in("path"):
            path = path.replace(f"{{{name}}}", value)
        elif name in op.parameters_in("body"):
            body = json.dumps(value).encode()
        elif name in op.parameters_in("formData"):
            continue  # assembled below, in one multipart body
        else:
            # Examples show filter values already percent-encoded; encode them exactly once.
            query[name] = unquote(str(value))
    if op.parameters_in("formData"):
        form_headers, body = multipart(
            ("definition", None, parameters["definition"].encode()),
            ("audio", "audio.wav", AUDIO),  # the example has the placeholder "{binary}"
        )
        headers["Content-Type"] = form_headers["Content-Type"]
    base = parameters["Endpoint"].rstrip("/")
    target = f"{base}/speechtotext{path}" + (f"?{urlencode(query)}" if query else "")
    return Request(op.method, target, headers, body)


def args_of(request: Request) -> tuple[str, str, dict[str, str], bytes]:
    return request.method, request.url, request.headers, request.body


# -- the spec itself -------------------------------------------------------------------


def test_operation_counts(spec: SpeechSpec, spec_2025: SpeechSpec) -> None:
    assert len(spec.operations()) == 56
    assert len(spec_2025.operations()) == 67


def test_load_is_cached_and_rejects_unknown_versions(spec: SpeechSpec) -> None:
    assert SpeechSpec.load("2024-11-15") is spec
    with pytest.raises(ValueError, match="unknown api-version"):
        SpeechSpec.load("v3.2")


def test_load_example_reads_microsofts_file() -> None:
    example = load_example("2024-11-15", "get_transcription.json")
    assert example["parameters"]["id"] == ID


@pytest.mark.parametrize("version", ["2024-11-15", "2025-10-15"])
def test_every_path_template_routes_to_its_own_operation(version: str) -> None:
    spec = SpeechSpec.load(version)
    for op in spec.operations():
        path = op.path_template
        for name in op.parameters_in("path"):
            path = path.replace(f"{{{name}}}", ID)
        found, params = spec.match(op.method, url(path), BASE)
        assert found is op
        assert params == dict.fromkeys(op.parameters_in("path"), ID)


@pytest.mark.parametrize(
    ("method", "path", "operation_id"),
    [
        ("GET", "/models/base", "Models_ListBaseModels"),  # not /models/{id} with id "base"
        ("GET", f"/models/base/{ID}", "Models_GetBaseModel"),
        ("POST", f"/models/{ID}:copy", "Models_Copy"),  # not /models/{id} with "{id}:copy"
        ("POST", "/models:authorizecopy", "Models_AuthorizeCopy"),
        ("GET", "/transcriptions/locales", "Transcriptions_ListSupportedLocales"),
        ("POST", "/transcriptions:submit", "Transcriptions_Submit"),
    ],
)
def test_concrete_segments_and_custom_actions_route_correctly(
    spec: SpeechSpec, method: str, path: str, operation_id: str
) -> None:
    op, _ = spec.match(method, url(path), BASE + "/")
    assert op.operation_id == operation_id


# -- Microsoft's examples as requests ----------------------------------------------------


def test_every_example_is_classified() -> None:
    # The count makes a newly added example file visible: decide whether it should pass.
    assert set(REQUEST_FAILURES) <= set(EXAMPLES_2024)
    assert set(RESPONSE_FAILURES) <= set(EXAMPLES_2024)
    assert len(EXAMPLES_2024) == 23


@pytest.mark.parametrize("relative", EXAMPLES_2024)
def test_microsoft_example_request(spec: SpeechSpec, relative: str) -> None:
    op = example_operation(spec, relative)
    example = json.loads((SPEC_DIR / "2024-11-15" / relative).read_text(encoding="utf-8"))
    request = example_request(op, example["parameters"])
    expected = REQUEST_FAILURES.get(relative)
    if expected is None:
        assert spec.validate_request(*args_of(request), base_url=BASE) is op
        return
    problems = violation(spec.validate_request, *args_of(request), base_url=BASE).problems
    assert len(problems) == len(expected), problems
    for problem in expected:
        assert any(problem in line for line in problems), (problem, problems)


def test_v3_example_failure_names_the_v3_fields(spec: SpeechSpec) -> None:
    op = spec.operation("Transcriptions_Submit")
    example = load_example("2024-11-15", "create_uri_transcription.json")
    request = example_request(op, example["parameters"])
    message = str(violation(spec.validate_request, *args_of(request), base_url=BASE))
    assert "body.properties.timeToLive: property is not declared" in message
    assert "body.properties.diarizationEnabled: property is not declared" in message
    assert "'timeToLiveHours' is a required property" in message
    assert all(line.startswith("Transcriptions_Submit: ") for line in message.splitlines())


# -- Microsoft's examples as responses ---------------------------------------------------


@pytest.mark.parametrize("relative", EXAMPLES_2024)
def test_microsoft_example_response(spec: SpeechSpec, relative: str) -> None:
    op = example_operation(spec, relative)
    example = json.loads((SPEC_DIR / "2024-11-15" / relative).read_text(encoding="utf-8"))
    (status, response), *_ = example["responses"].items()
    assert len(example["responses"]) == 1
    expected = RESPONSE_FAILURES.get(relative)
    if expected is None:
        spec.validate_response(op.operation_id, int(status), response.get("body"))
        # The emulator will be held to strict mode; Microsoft's current examples meet it.
        spec.validate_response(op.operation_id, int(status), response.get("body"), strict=True)
        return
    problems = violation(
        spec.validate_response, op.operation_id, int(status), response.get("body")
    ).problems
    assert [p.removeprefix(f"{op.operation_id}: ") for p in problems] == list(expected)


# -- routing and query negatives ---------------------------------------------------------


def test_unknown_path(spec: SpeechSpec) -> None:
    error = violation(spec.validate_request, "GET", url("/transcription"), KEY, b"", base_url=BASE)
    assert "path '/transcription' matches no path template" in str(error)


def test_url_outside_the_speechtotext_host(spec: SpeechSpec) -> None:
    other = "https://eastus.api.cognitive.microsoft.com/speechtotext/transcriptions"
    error = violation(spec.validate_request, "GET", other, KEY, b"", base_url=BASE)
    assert f"does not start with '{BASE}/speechtotext'" in str(error)


def test_wrong_method(spec: SpeechSpec) -> None:
    target = url(f"/transcriptions/{ID}")
    error = violation(spec.validate_request, "PUT", target, KEY, b"", base_url=BASE)
    assert "method PUT is not defined for /transcriptions/{id}" in str(error)


def test_unknown_query_key(spec: SpeechSpec) -> None:
    target = url("/transcriptions", {"api-version": "2024-11-15", "pageSize": "10"})
    error = violation(spec.validate_request, "GET", target, KEY, b"", base_url=BASE)
    assert "query parameter 'pageSize' is not declared" in str(error)


def test_wrong_api_version(spec: SpeechSpec) -> None:
    target = url("/transcriptions", version="v3.2")
    error = violation(spec.validate_request, "GET", target, KEY, b"", base_url=BASE)
    assert "api-version is 'v3.2', this spec is '2024-11-15'" in str(error)


def test_missing_api_version(spec: SpeechSpec) -> None:
    error = violation(
        spec.validate_request, "GET", url("/transcriptions", {}), KEY, b"", base_url=BASE
    )
    assert "required query parameter 'api-version' is missing" in str(error)


def test_integer_query_parameter_must_be_an_integer(spec: SpeechSpec) -> None:
    target = url("/transcriptions", {"api-version": "2024-11-15", "top": "two", "skip": "0"})
    error = violation(spec.validate_request, "GET", target, KEY, b"", base_url=BASE)
    assert error.problems == (
        "Transcriptions_List: query parameter 'top': 'two' is not an integer",
    )


def test_non_uuid_id(spec: SpeechSpec) -> None:
    target = url("/transcriptions/my-transcription")
    error = violation(spec.validate_request, "GET", target, KEY, b"", base_url=BASE)
    assert "path parameter 'id': 'my-transcription' is not a UUID" in str(error)


# -- auth --------------------------------------------------------------------------------


def test_missing_auth(spec: SpeechSpec) -> None:
    error = violation(spec.validate_request, "GET", url("/transcriptions"), {}, b"", base_url=BASE)
    assert "neither Ocp-Apim-Subscription-Key nor Authorization" in str(error)


def test_both_auth_headers(spec: SpeechSpec) -> None:
    headers = {**KEY, "Authorization": "Bearer token"}
    error = violation(
        spec.validate_request, "GET", url("/transcriptions"), headers, b"", base_url=BASE
    )
    assert "exactly one of ocp-apim-subscription-key, authorization" in str(error)


def test_bearer_token_alone_and_lower_case_key_are_accepted(spec: SpeechSpec) -> None:
    for headers in ({"authorization": "Bearer eyJ0"}, {"ocp-apim-subscription-key": "k"}):
        spec.validate_request("GET", url("/transcriptions"), headers, b"", base_url=BASE)


def test_authorization_must_be_a_bearer_token(spec: SpeechSpec) -> None:
    headers = {"Authorization": "Basic dXNlcjpwYXNz"}
    error = violation(
        spec.validate_request, "GET", url("/transcriptions"), headers, b"", base_url=BASE
    )
    assert "Authorization must be 'Bearer <token>'" in str(error)


def test_routing_failure_still_reports_auth(spec: SpeechSpec) -> None:
    error = violation(spec.validate_request, "GET", url("/nope"), {}, b"", base_url=BASE)
    assert len(error.problems) == 2


# -- JSON bodies -------------------------------------------------------------------------


def test_valid_submit_passes(spec: SpeechSpec) -> None:
    assert submit(spec, VALID_SUBMIT).operation_id == "Transcriptions_Submit"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "Succeeded"),
        ("self", f"{BASE}/speechtotext/transcriptions/{ID}"),
        ("createdDateTime", "2024-11-15T10:00:00Z"),
        ("links", {"files": f"{BASE}/speechtotext/transcriptions/{ID}/files"}),
    ],
)
def test_read_only_property_sent(spec: SpeechSpec, field: str, value: Any) -> None:
    error = violation(submit, spec, {**VALID_SUBMIT, field: value})
    assert error.problems == (
        f"Transcriptions_Submit: body.{field}: readOnly property must not be sent",
    )


def test_nested_read_only_property_sent(spec: SpeechSpec) -> None:
    body = {**VALID_SUBMIT, "properties": {"timeToLiveHours": 48, "durationMilliseconds": 5}}
    error = violation(submit, spec, body)
    assert "body.properties.durationMilliseconds: readOnly property" in str(error)


def test_undeclared_property(spec: SpeechSpec) -> None:
    error = violation(submit, spec, {**VALID_SUBMIT, "callbackUrl": "https://contoso.com/cb"})
    assert error.problems == (
        "Transcriptions_Submit: body.callbackUrl: property is not declared by Transcription",
    )


def test_additional_properties_allow_any_key_but_check_the_value(spec: SpeechSpec) -> None:
    mapping = {"nl-NL": {"self": f"{BASE}/speechtotext/models/{ID}"}}
    lid = {"candidateLocales": ["en-US", "nl-NL"], "speechModelMapping": mapping}
    body = {
        **VALID_SUBMIT,
        "customProperties": {"anything": "goes"},
        "properties": {"timeToLiveHours": 48, "languageIdentification": lid},
    }
    submit(spec, body)
    mapping["nl-NL"]["extra"] = "x"
    error = violation(submit, spec, body)
    assert (
        "body.properties.languageIdentification.speechModelMapping.nl-NL.extra: "
        "property is not declared by EntityReference"
    ) in str(error)


def test_all_of_properties_are_declared_and_read_only(spec: SpeechSpec) -> None:
    # CustomModel takes displayName, locale, description and self from SharedModel via allOf.
    model = {
        "displayName": "model",
        "locale": "en-US",
        "description": "from SharedModel",
        "baseModel": {"self": f"{BASE}/speechtotext/models/base/{ID}"},
    }
    target = url("/models")
    spec.validate_request(
        "POST", target, {**KEY, **JSON}, json.dumps(model).encode(), base_url=BASE
    )
    body = json.dumps({**model, "self": f"{BASE}/speechtotext/models/{ID}"}).encode()
    error = violation(spec.validate_request, "POST", target, {**KEY, **JSON}, body, base_url=BASE)
    assert "body.self: readOnly property must not be sent" in str(error)


def test_schema_errors_are_reported(spec: SpeechSpec) -> None:
    body = {**VALID_SUBMIT, "contentUrls": ["not a url"], "locale": ""}
    problems = violation(submit, spec, body).problems
    assert "Transcriptions_Submit: body.contentUrls[0]: 'not a url' is not a 'uri'" in problems
    assert any(p.startswith("Transcriptions_Submit: body.locale: ''") for p in problems)


def test_every_problem_is_collected(spec: SpeechSpec) -> None:
    body = json.dumps({**VALID_SUBMIT, "status": "Running", "extra": 1}).encode()
    target = url("/transcriptions:submit", version="3.2")
    error = violation(spec.validate_request, "POST", target, JSON, body, base_url=BASE)
    assert len(error.problems) == 4  # auth, api-version, readOnly, undeclared
    assert str(error).count("\n") == 3


def test_body_must_be_json(spec: SpeechSpec) -> None:
    text_plain = {**KEY, "Content-Type": "text/plain"}
    error = violation(submit, spec, VALID_SUBMIT, text_plain)
    assert "Content-Type 'text/plain' is not one of application/json" in str(error)
    target = url("/transcriptions:submit")
    error = violation(spec.validate_request, "POST", target, {**KEY, **JSON}, b"{", base_url=BASE)
    assert "body is not valid JSON" in str(error)


def test_merge_patch_content_type_is_accepted_where_declared(spec: SpeechSpec) -> None:
    headers = {**KEY, "Content-Type": "application/merge-patch+json"}
    body = json.dumps({"displayName": "renamed"}).encode()
    spec.validate_request("PATCH", url(f"/transcriptions/{ID}"), headers, body, base_url=BASE)


def test_required_body_missing(spec: SpeechSpec) -> None:
    target = url("/transcriptions:submit")
    error = violation(spec.validate_request, "POST", target, {**KEY, **JSON}, b"", base_url=BASE)
    assert "required body parameter 'transcription' is missing" in str(error)


def test_operation_without_body_rejects_one(spec: SpeechSpec) -> None:
    target = url(f"/transcriptions/{ID}")
    error = violation(
        spec.validate_request, "DELETE", target, {**KEY, **JSON}, b"{}", base_url=BASE
    )
    assert "takes no request body, got 2 bytes" in str(error)


# -- multipart (Transcriptions_Transcribe) -----------------------------------------------

DEFINITION = json.dumps({"locales": ["en-US"], "profanityFilterMode": "Masked"}).encode()


def transcribe(spec: SpeechSpec, headers: Mapping[str, str], body: bytes) -> Operation:
    target = url("/transcriptions:transcribe", version=spec.api_version)
    return spec.validate_request("POST", target, headers, body, base_url=BASE)


def test_valid_multipart_with_binary_audio(spec: SpeechSpec) -> None:
    headers, body = multipart(("definition", None, DEFINITION), ("audio", "a.wav", AUDIO))
    assert transcribe(spec, headers, body).operation_id == "Transcriptions_Transcribe"
    headers, body = multipart(("audio", "a.wav", AUDIO))  # definition is optional
    transcribe(spec, headers, body)


def test_multipart_without_audio(spec: SpeechSpec) -> None:
    headers, body = multipart(("definition", None, DEFINITION))
    error = violation(transcribe, spec, headers, body)
    assert error.problems == (
        "Transcriptions_Transcribe: required multipart part 'audio' is missing",
    )


def test_multipart_audio_without_filename(spec: SpeechSpec) -> None:
    headers, body = multipart(("definition", None, DEFINITION), ("audio", None, AUDIO))
    error = violation(transcribe, spec, headers, body)
    assert "multipart file part 'audio' has no filename" in str(error)


def test_multipart_with_bad_definition_json(spec: SpeechSpec) -> None:
    headers, body = multipart(
        ("definition", None, b"{locales: [en-US]}"), ("audio", "a.wav", AUDIO)
    )
    error = violation(transcribe, spec, headers, body)
    assert "multipart part 'definition' is not valid JSON (TranscribeDefinition)" in str(error)


def test_multipart_definition_is_checked_strictly(spec: SpeechSpec) -> None:
    definition = json.dumps({"locale": "en-US", "channels": "0"}).encode()
    headers, body = multipart(("definition", None, definition), ("audio", "a.wav", AUDIO))
    problems = violation(transcribe, spec, headers, body).problems
    assert "Transcriptions_Transcribe: definition.channels: '0' is not of type 'array'" in problems
    assert (
        "Transcriptions_Transcribe: definition.locale: property is not declared by "
        "TranscribeDefinition"
    ) in problems


def test_multipart_with_unknown_part(spec: SpeechSpec) -> None:
    headers, body = multipart(("audio", "a.wav", AUDIO), ("language", None, b"en-US"))
    error = violation(transcribe, spec, headers, body)
    assert "multipart part 'language' is not declared (allowed: definition, audio)" in str(error)


def test_multipart_content_type_and_framing(spec: SpeechSpec) -> None:
    error = violation(transcribe, spec, {**KEY, **JSON}, b"{}")
    assert "is not multipart/form-data" in str(error)
    headers, _ = multipart()
    error = violation(transcribe, spec, headers, b"not a multipart body")
    assert "multipart body does not parse" in str(error)


def test_audio_url_is_new_in_2025_10_15(spec: SpeechSpec, spec_2025: SpeechSpec) -> None:
    # The 2025-10-15 spec still marks `audio` required, so the form carries both.
    definition = json.dumps({"locales": ["en-US"], "audioUrl": "https://contoso.com/a.wav"})
    headers, body = multipart(("definition", None, definition.encode()), ("audio", "a.wav", AUDIO))
    transcribe(spec_2025, headers, body)
    error = violation(transcribe, spec, headers, body)
    assert error.problems == (
        "Transcriptions_Transcribe: definition.audioUrl: property is not declared by "
        "TranscribeDefinition",
    )


# -- responses ---------------------------------------------------------------------------


def test_204_must_have_no_body(spec: SpeechSpec) -> None:
    spec.validate_response("Transcriptions_Delete", 204, b"")
    error = violation(spec.validate_response, "Transcriptions_Delete", 204, {"deleted": True})
    assert "a 204 response must not have a body" in str(error)


def test_undeclared_status_without_default(spec: SpeechSpec, spec_2025: SpeechSpec) -> None:
    error_body = {"code": "InvalidRequest", "message": "bad audio"}
    error = violation(spec.validate_response, "Transcriptions_Transcribe", 400, error_body)
    assert "status 400 is not declared (declared: 200)" in str(error)
    spec_2025.validate_response("Transcriptions_Transcribe", 400, error_body)


def test_errors_fall_back_to_default(spec: SpeechSpec) -> None:
    spec.validate_response("Transcriptions_Get", 404, {"code": "NotFound", "message": "gone"})


def test_strict_rejects_undeclared_response_properties(spec: SpeechSpec) -> None:
    body = {**load_example("2024-11-15", "get_transcription.json")["responses"]["200"]["body"]}
    body["etag"] = "W/1"
    spec.validate_response("Transcriptions_Get", 200, body)
    error = violation(spec.validate_response, "Transcriptions_Get", 200, body, strict=True)
    assert error.problems == (
        "Transcriptions_Get: body.etag: property is not declared by Transcription",
    )


def test_response_body_must_match_schema(spec: SpeechSpec) -> None:
    body = json.dumps({"values": [{"displayName": "x", "locale": "en-US"}]}).encode()
    error = violation(spec.validate_response, "Transcriptions_List", 200, body)
    assert "body.values[0]: 'properties' is a required property" in str(error)
    error = violation(spec.validate_response, "Transcriptions_Get", 200, None)
    assert "status 200 declares a body, got none" in str(error)
    files = {"values": [{"kind": "Transcription", "createdDateTime": "yesterday"}]}
    error = violation(spec.validate_response, "Transcriptions_ListFiles", 200, files)
    assert "body.values[0].createdDateTime: 'yesterday' is not a 'date-time'" in str(error)


def test_strict_checks_declared_response_headers(spec: SpeechSpec) -> None:
    example = load_example("2024-11-15", "create_container_transcription.json")
    created = example["responses"]["201"]
    spec.validate_response(
        "Transcriptions_Submit", 201, created["body"], created["headers"], strict=True
    )
    spec.validate_response("Transcriptions_Submit", 201, created["body"], {})  # lenient
    error = violation(
        spec.validate_response, "Transcriptions_Submit", 201, created["body"], {}, strict=True
    )
    assert error.problems == ("Transcriptions_Submit: response header 'Location' is missing",)
    bad = {"location": "/speechtotext/transcriptions/x"}
    error = violation(
        spec.validate_response, "Transcriptions_Submit", 201, created["body"], bad, strict=True
    )
    assert "response header 'Location': '/speechtotext/transcriptions/x' is not a URI" in str(error)
