"""The emulator's REST API against Microsoft's spec, in both API versions.

Every success response is validated strictly (no undeclared properties, declared headers
present) with ``tests/contract/openapi.py``; error responses must be the spec's ``Error``
with the right ``DetailedErrorCode``. Microsoft's example requests with current field names
are accepted; the ones still using v3 names are rejected.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.emulator.conftest import (
    EXAMPLES,
    UNREACHABLE_URL,
    VERSIONS,
    EmulatorServer,
    EntraKeys,
    StartEmulator,
    assert_error,
    example_request,
    job_id,
    launch,
    minimal_submission,
    validate,
    wait_for_status,
)

CUSTOM_MODEL_ID = "827712a5-f942-4997-91c3-7c6cde35600b"


def write_custom_models(directory: Path) -> Path:
    """A custom models file: Microsoft's get_model.json model, as nl-NL (the LID example
    maps nl-NL to it), and seed 000's v3.0 model."""
    example = json.loads((EXAMPLES / "get_model.json").read_text())["responses"]["200"]["body"]
    seed_model = {
        "self": "https://westus.api.cognitive.microsoft.com/speechtotext/v3.0/models/"
        "021a72d0-54c4-43d3-8254-27336ead9037",
        "baseModel": {
            "self": "https://westus.api.cognitive.microsoft.com/speechtotext/v3.0/models/base/"
            "8a043172-65b7-4cf3-a8b5-4449efa5a0f1"
        },
        "links": {"copyTo": "https://westus.api.cognitive.microsoft.com/x"},
        "properties": {
            "deprecationDates": {
                "adaptationDateTime": "2022-11-04T00:00:00Z",
                "transcriptionDateTime": "2023-05-04T00:00:00Z",
            }
        },
        "lastActionDateTime": "2019-01-07T11:36:07Z",
        "status": "Running",
        "createdDateTime": "2019-01-07T11:34:12Z",
        "locale": "en-US",
        "displayName": "Language model",
        "description": "This is a language model",
    }
    example["locale"] = "nl-NL"
    example["status"] = "Succeeded"
    example["properties"]["deprecationDates"]["transcriptionDateTime"] = "2099-01-01T00:00:00Z"
    path = directory / "custom-models.json"
    path.write_text(json.dumps([example, seed_model]))
    return path


@pytest.fixture(scope="module")
def parked_server(
    tmp_path_factory: pytest.TempPathFactory, entra: EntraKeys
) -> Iterator[EmulatorServer]:
    """One emulator for the module whose jobs never start (they stay NotStarted)."""
    directory = tmp_path_factory.mktemp("parked")
    with contextlib.ExitStack() as stack:
        yield launch(
            stack,
            directory,
            entra,
            job_start_delay_seconds=3600,
            custom_models=write_custom_models(directory),
        )


@pytest.fixture
def parked(parked_server: EmulatorServer) -> Iterator[EmulatorServer]:
    """The module's parked emulator, emptied of jobs after each test."""
    yield parked_server
    assert parked_server.admin("POST", "/admin/reset", params={"jobs": "true"}).status_code == 200


@pytest.mark.parametrize("version", VERSIONS)
def test_locales_and_models_conform(parked: EmulatorServer, version: str) -> None:
    locales = parked.call("GET", "/speechtotext/transcriptions/locales", version)
    validate("Transcriptions_ListSupportedLocales", locales, version)
    assert "en-US" in locales.json()["Submit"]
    assert "ja-JP" in locales.json()["Transcribe"]

    english = parked.call(
        "GET",
        "/speechtotext/models/base",
        version,
        params={"filter": "locale eq 'en-US'", "top": 2},
    )
    validate("Models_ListBaseModels", english, version)
    page = english.json()
    assert len(page["values"]) == 2
    assert {m["locale"] for m in page["values"]} == {"en-US"}
    following = httpx.get(page["@nextLink"], headers=parked.client.headers)
    validate("Models_ListBaseModels", following, version)
    assert {m["locale"] for m in following.json()["values"]} == {"en-US"}
    assert "@nextLink" not in following.json()

    model = page["values"][0]
    one = httpx.get(model["self"], headers=parked.client.headers)
    validate("Models_GetBaseModel", one, version)
    assert one.json() == model

    customs = parked.call("GET", "/speechtotext/models", version)
    validate("Models_ListCustomModels", customs, version, headers=False)
    assert customs.headers["Retry-After"] == "1"  # seed 000's model is still Running
    ready = parked.call("GET", f"/speechtotext/models/{CUSTOM_MODEL_ID}", version)
    validate("Models_GetCustomModel", ready, version, headers=False)
    assert "Retry-After" not in ready.headers
    running = parked.call(
        "GET", "/speechtotext/models/021a72d0-54c4-43d3-8254-27336ead9037", version
    )
    validate("Models_GetCustomModel", running, version)
    assert running.json()["baseModel"]["self"].startswith(parked.url)
    assert "adaptationDateTime" not in running.json()["properties"]["deprecationDates"]

    for path in (
        "/speechtotext/models/base/00000000-0000-0000-0000-000000000000",
        "/speechtotext/models/00000000-0000-0000-0000-000000000000",
    ):
        assert_error(parked.call("GET", path, version), 404, "NotFound")


@pytest.mark.parametrize("version", VERSIONS)
def test_transcription_lifecycle_conforms(start_emulator: StartEmulator, version: str) -> None:
    server = start_emulator(job_start_delay_seconds=0.3)
    submitted = server.submit(minimal_submission(customProperties={"a": "b"}), version)
    validate("Transcriptions_Submit", submitted, version)
    assert submitted.headers["Location"] == submitted.json()["self"]
    assert submitted.json()["status"] == "NotStarted"
    assert "contentUrls" not in submitted.json()
    tid = job_id(submitted)
    base = f"/speechtotext/transcriptions/{tid}"

    pending = server.call("GET", base, version)
    validate("Transcriptions_Get", pending, version)  # Retry-After is required here
    assert pending.json()["status"] == "NotStarted"
    files = server.call("GET", f"{base}/files", version)
    validate("Transcriptions_ListFiles", files, version)
    assert files.json()["values"] == []
    listed = server.call("GET", "/speechtotext/transcriptions", version)
    validate("Transcriptions_List", listed, version)
    running_delete = server.call("DELETE", base, version)
    assert_error(running_delete, 400, "InvalidRequest", "DeleteNotAllowed")

    renamed = server.call("PATCH", base, version, json={"displayName": "renamed"})
    validate("Transcriptions_Update", renamed, version)
    assert renamed.json()["displayName"] == "renamed"
    patched = server.call(
        "PATCH",
        base,
        version,
        content=json.dumps({"customProperties": {"a": None, "c": "d"}, "description": "x"}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    validate("Transcriptions_Update", patched, version)
    assert patched.json()["customProperties"] == {"c": "d"}
    assert patched.json()["description"] == "x"

    done = wait_for_status(server, tid)
    assert done["status"] == "Failed"
    assert done["properties"]["error"]["code"] == "InvalidUri"
    final = server.call("GET", base, version)
    validate("Transcriptions_Get", final, version, headers=False)
    assert "Retry-After" not in final.headers  # only while the job is not finished
    files = server.call("GET", f"{base}/files", version, params={"sasLifetimeMinutes": 5})
    validate("Transcriptions_ListFiles", files, version, headers=False)
    (report,) = files.json()["values"]
    assert report["kind"] == "TranscriptionReport"
    assert report["name"] == "report.json"
    one = server.call(
        "GET", f"{base}/files/{report['self'].split('/files/')[1].split('?')[0]}", version
    )
    validate("Transcriptions_GetFile", one, version)
    content = httpx.get(one.json()["links"]["contentUrl"]).json()
    assert content["failedTranscriptionsCount"] == 1
    assert content["details"][0] == {
        "source": UNREACHABLE_URL,
        "status": "Failed",
        "errorKind": "InvalidUri",
        "errorMessage": content["details"][0]["errorMessage"],
    }

    deleted = server.call("DELETE", base, version)
    validate("Transcriptions_Delete", deleted, version)
    assert deleted.status_code == 204
    assert_error(server.call("GET", base, version), 404, "NotFound")
    again = server.call("DELETE", base, version)  # "deleted or did not exist"
    assert again.status_code == 204


@pytest.mark.parametrize(
    "name", ["create_container_transcription.json", "create_lid_transcription.json"]
)
def test_microsoft_examples_with_current_names_are_accepted(
    parked: EmulatorServer, name: str
) -> None:
    body = example_request(name)
    response = parked.submit(body)
    validate("Transcriptions_Submit", response, "2024-11-15")
    document = response.json()
    assert document["displayName"] == body["displayName"]
    assert document["properties"]["timeToLiveHours"] == 48
    if "languageIdentification" in body["properties"]:
        assert document["properties"]["languageIdentification"]["mode"] == "Single"


def test_microsoft_update_example_is_accepted(parked: EmulatorServer) -> None:
    created = parked.submit(minimal_submission())
    update = example_request("update_transcription.json")
    response = parked.call("PATCH", f"/speechtotext/transcriptions/{job_id(created)}", json=update)
    validate("Transcriptions_Update", response, "2024-11-15")
    assert response.json()["description"] == "Updated transcription description"


@pytest.mark.parametrize(
    "name", ["create_uri_transcription.json", "create_multispeaker_diarization_transcription.json"]
)
def test_examples_with_v3_names_are_rejected(parked: EmulatorServer, name: str) -> None:
    # timeToLive ("P2D") and diarizationEnabled are v3 names; 2024-11-15 requires
    # timeToLiveHours, so the service refuses the job.
    assert_error(parked.submit(example_request(name)), 400, "InvalidRequest", "InvalidTimeToLive")


def _props(**values: Any) -> dict[str, Any]:
    return {"timeToLiveHours": 6, **values}


ELEVEN_LOCALES = ["en-US", "de-DE", "fr-FR", "es-ES", "it-IT", "ja-JP", "ko-KR", "nl-NL"]
ELEVEN_LOCALES += ["pl-PL", "pt-BR", "sv-SE"]
BAD = "InvalidParameterValue"

BAD_SUBMISSIONS: list[tuple[str, Any, str]] = [
    ("no display name", minimal_submission(displayName=None), BAD),
    ("empty display name", minimal_submission(displayName=""), BAD),
    ("no locale", minimal_submission(locale=None), BAD),
    ("empty locale", minimal_submission(locale=""), BAD),
    ("unknown locale", minimal_submission(locale="xx-XX"), "InvalidLocale"),
    ("no source", minimal_submission(contentUrls=None), "OnlyOneOfUrlsOrContainerOrDataset"),
    ("empty urls", minimal_submission(contentUrls=[]), "OnlyOneOfUrlsOrContainerOrDataset"),
    (
        "urls and container",
        minimal_submission(contentContainerUrl="https://a.blob.core.windows.net/c"),
        "OnlyOneOfUrlsOrContainerOrDataset",
    ),
    (
        "urls and dataset",
        minimal_submission(dataset={"self": "https://x/speechtotext/datasets/1"}),
        "OnlyOneOfUrlsOrContainerOrDataset",
    ),
    (
        "dataset",
        minimal_submission(
            contentUrls=None,
            dataset={
                "self": "https://x/speechtotext/datasets/cdc91c24-3972-496d-a12f-209c35f4cc6c"
            },
        ),
        "InvalidDataset",
    ),
    (
        "1001 urls",
        minimal_submission(contentUrls=[f"https://a.example/{i}.wav" for i in range(1001)]),
        "ExceededNumberOfRecordingsUris",
    ),
    ("relative url", minimal_submission(contentUrls=["audio.wav"]), "InvalidRecordingsUri"),
    ("ftp url", minimal_submission(contentUrls=["ftp://a.example/x.wav"]), "InvalidRecordingsUri"),
    (
        "bad container",
        minimal_submission(contentUrls=None, contentContainerUrl="not a url"),
        "InvalidRecordingsUri",
    ),
    ("no properties", minimal_submission(properties=None), "InvalidTimeToLive"),
    ("ttl missing", minimal_submission(properties={}), "InvalidTimeToLive"),
    ("ttl 5", minimal_submission(properties={"timeToLiveHours": 5}), "InvalidTimeToLive"),
    ("ttl 745", minimal_submission(properties={"timeToLiveHours": 745}), "InvalidTimeToLive"),
    ("ttl text", minimal_submission(properties={"timeToLiveHours": "48"}), "InvalidTimeToLive"),
    ("channel 2", minimal_submission(properties=_props(channels=[2])), "InvalidChannels"),
    ("no channels", minimal_submission(properties=_props(channels=[])), "InvalidChannels"),
    ("channel twice", minimal_submission(properties=_props(channels=[0, 0])), "InvalidChannels"),
    (
        "1 speaker",
        minimal_submission(properties=_props(diarization={"enabled": True, "maxSpeakers": 1})),
        "InvalidParameterValue",
    ),
    (
        "36 speakers",
        minimal_submission(properties=_props(diarization={"enabled": True, "maxSpeakers": 36})),
        "InvalidParameterValue",
    ),
    (
        "one candidate",
        minimal_submission(
            properties=_props(languageIdentification={"candidateLocales": ["en-US"]})
        ),
        "InvalidParameterValue",
    ),
    (
        "11 continuous candidates",
        minimal_submission(
            properties=_props(languageIdentification={"candidateLocales": ELEVEN_LOCALES})
        ),
        "InvalidParameterValue",
    ),
    (
        "unknown candidate",
        minimal_submission(
            properties=_props(languageIdentification={"candidateLocales": ["en-US", "xx-XX"]})
        ),
        "InvalidLocale",
    ),
    (
        "mapping outside candidates",
        minimal_submission(
            properties=_props(
                languageIdentification={
                    "candidateLocales": ["en-US", "de-DE"],
                    "speechModelMapping": {"fr-FR": {"self": "https://x/speechtotext/models/1"}},
                }
            )
        ),
        "InvalidParameterValue",
    ),
    (
        "bad lid mode",
        minimal_submission(
            properties=_props(
                languageIdentification={"candidateLocales": ["en-US", "de-DE"], "mode": "Sometimes"}
            )
        ),
        BAD,
    ),
    (
        "11 custom properties",
        minimal_submission(customProperties={str(i): "v" for i in range(11)}),
        "InvalidParameterValue",
    ),
    ("long custom key", minimal_submission(customProperties={"k" * 65: "v"}), BAD),
    ("long custom value", minimal_submission(customProperties={"k": "v" * 257}), BAD),
    ("custom number", minimal_submission(customProperties={"k": 1}), BAD),
    ("punctuation", minimal_submission(properties=_props(punctuationMode="Some")), BAD),
    ("profanity", minimal_submission(properties=_props(profanityFilterMode="x")), BAD),
    (
        "timestamps text",
        minimal_submission(properties=_props(wordLevelTimestampsEnabled="yes")),
        BAD,
    ),
    (
        "unknown base model",
        minimal_submission(
            model={
                "self": "https://x/speechtotext/models/base/00000000-0000-0000-0000-000000000000"
            }
        ),
        "InvalidBaseModel",
    ),
    (
        "unknown custom model",
        minimal_submission(
            model={"self": "https://x/speechtotext/models/00000000-0000-0000-0000-000000000000"}
        ),
        "InvalidModel",
    ),
    ("model not a model", minimal_submission(model={"self": "https://x/y"}), "InvalidModel"),
    (
        "deprecated whisper model",
        minimal_submission(
            model={
                "self": "https://x/speechtotext/models/base/69adf293-9664-4040-932b-02ed16332e00"
            }
        ),
        "ModelDeprecated",
    ),
    (
        "model of another locale",
        minimal_submission(
            locale="de-DE",
            model={"self": f"https://x/speechtotext/models/{CUSTOM_MODEL_ID}"},
        ),
        "ModelMismatch",
    ),
    ("body is a list", [minimal_submission()], "InvalidRequestBodyFormat"),
]


@pytest.mark.parametrize(
    ("case", "body", "inner"), BAD_SUBMISSIONS, ids=[c[0] for c in BAD_SUBMISSIONS]
)
def test_bad_submissions(parked: EmulatorServer, case: str, body: Any, inner: str) -> None:
    del case  # the id names the case
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if v is not None}
    assert_error(parked.submit(body), 400, "InvalidRequest", inner)


def test_malformed_json_and_media_type(parked: EmulatorServer) -> None:
    response = parked.call(
        "POST",
        "/speechtotext/transcriptions:submit",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 400, "InvalidRequest", "InvalidRequestBodyFormat")
    text = parked.call(
        "POST",
        "/speechtotext/transcriptions:submit",
        content=json.dumps(minimal_submission()),
        headers={"Content-Type": "text/plain"},
    )
    assert_error(text, 415, "UnsupportedMediaType")


def test_project_is_checked_only_in_2025_10_15(parked: EmulatorServer) -> None:
    body = minimal_submission(project={"self": "https://x/speechtotext/projects/1"})
    assert parked.submit(body, "2024-11-15").status_code == 201  # not a 2024-11-15 field
    assert_error(parked.submit(body, "2025-10-15"), 400, "InvalidRequest", "InvalidProject")


@pytest.mark.parametrize("version", ["", "2023-01-01", "v3.2", "2024-11-15-preview"])
def test_api_version_is_required_and_checked(parked: EmulatorServer, version: str) -> None:
    response = parked.call("GET", "/speechtotext/transcriptions", version)
    assert_error(response, 400, "InvalidRequest", "InvalidParameterValue")
    assert "2024-11-15" in response.json()["message"]
    assert response.headers["api-supported-versions"] == "2024-11-15, 2025-10-15"


def test_unknown_ids_and_routes_are_404(parked: EmulatorServer) -> None:
    for path in (
        "/speechtotext/transcriptions/00000000-0000-0000-0000-000000000000",
        "/speechtotext/transcriptions/not-a-uuid",
        "/speechtotext/transcriptions/00000000-0000-0000-0000-000000000000/files",
        "/speechtotext/v3.2/transcriptions",
        "/speechtotext/datasets",
    ):
        assert_error(parked.call("GET", path), 404, "NotFound")
    created = job_id(parked.submit(minimal_submission()))
    missing = f"/speechtotext/transcriptions/{created}/files/00000000-0000-0000-0000-000000000000"
    assert_error(parked.call("GET", missing), 404, "NotFound")
    wrong_method = parked.call("PUT", f"/speechtotext/transcriptions/{created}")
    assert wrong_method.status_code == 405


def test_filters_and_paging(parked: EmulatorServer) -> None:
    names = ["alpha", "it's quoted", "gamma", "alpha"]
    ids = [job_id(parked.submit(minimal_submission(displayName=n))) for n in names]

    def listed(**params: Any) -> list[str]:
        response = parked.call("GET", "/speechtotext/transcriptions", params=params)
        values = response.json()["values"]
        # Retry-After comes with pages that show unfinished jobs (all of these are).
        validate("Transcriptions_List", response, "2024-11-15", headers=bool(values))
        return [v["displayName"] for v in values]

    assert listed(filter="displayName eq 'alpha'") == ["alpha", "alpha"]
    assert listed(filter="displayName eq 'it''s quoted'") == ["it's quoted"]
    assert listed(filter="status eq 'NotStarted' and displayName ne 'alpha'") == [
        "it's quoted",
        "gamma",
    ]
    assert listed(filter="(displayName eq 'gamma') and (status eq 'Running')") == []
    assert listed(filter="displayName eq 'gamma' or startswith(displayName, 'it')") == [
        "it's quoted",
        "gamma",
    ]
    assert listed(filter="not (displayName eq 'alpha')") == ["it's quoted", "gamma"]
    assert listed(filter="createdDateTime gt 2020-01-01T00:00:00Z") == names
    assert listed(filter="createdDateTime lt 2020-01-01T00:00:00Z") == []
    assert listed(filter="createdDateTime ge '2020-01-01T00:00:00Z'") == names

    first = parked.call(
        "GET", "/speechtotext/transcriptions", params={"top": 3, "filter": "locale eq 'en-US'"}
    )
    page = first.json()
    assert len(page["values"]) == 3
    link = urlsplit(page["@nextLink"])
    query = parse_qs(link.query)
    assert query == {
        "skip": ["3"],
        "top": ["3"],
        "filter": ["locale eq 'en-US'"],
        "api-version": ["2024-11-15"],
    }
    rest = httpx.get(page["@nextLink"], headers=parked.client.headers).json()
    assert [job_id_of(v) for v in page["values"] + rest["values"]] == ids
    assert "@nextLink" not in rest

    for bad in (
        "displayName gt 'a'",
        "size eq 1",
        "displayName eq alpha",
        "displayName eq 'a' and",
        "displayName like 'a'",
        "(displayName eq 'a'",
    ):
        response = parked.call("GET", "/speechtotext/transcriptions", params={"filter": bad})
        assert_error(response, 400, "InvalidRequest", "UnsupportedFilter")
    for params in ({"top": 101}, {"top": 0}, {"skip": -1}):
        response = parked.call("GET", "/speechtotext/transcriptions", params=params)
        assert_error(response, 400, "InvalidRequest", "UnsupportedPagination")


def job_id_of(transcription: dict[str, Any]) -> str:
    return str(transcription["self"].partition("?")[0].rsplit("/", 1)[1])


def test_update_validation(parked: EmulatorServer) -> None:
    path = f"/speechtotext/transcriptions/{job_id(parked.submit(minimal_submission()))}"
    assert_error(
        parked.call("PATCH", path, json={"displayName": ""}),
        400,
        "InvalidRequest",
        "InvalidParameterValue",
    )
    assert_error(
        parked.call("PATCH", path, json={"customProperties": {"k": "v" * 300}}),
        400,
        "InvalidRequest",
        "InvalidParameterValue",
    )
    assert_error(
        parked.call("PATCH", path, content=b"x", headers={"Content-Type": "text/plain"}),
        415,
        "UnsupportedMediaType",
    )
    unchanged = parked.call("PATCH", path, json={"locale": "de-DE"})  # not updatable: ignored
    assert unchanged.json()["locale"] == "en-US"
