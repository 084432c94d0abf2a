"""Every request the clients build is valid against Microsoft's spec, for both API versions.

A loopback server stands in for the service: it routes each request to its Swagger
operation, validates it (path, method, query, auth, body schema, no undeclared or readOnly
fields) and answers with Microsoft's example response for that operation. The clients
must then parse those answers. Microsoft publishes no web hook examples with the spec copy
in this repo, so the stand-in builds those answers itself and checks each one against the
spec's response schema (strictly) before sending it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, SecretStr

from shared.speech.auth import KeyAuth
from shared.speech.batch import BatchTranscriptionClient
from shared.speech.endpoints import SpeechEndpoints
from shared.speech.fast import FastTranscriptionClient
from shared.speech.models import (
    DiarizationSettings,
    EntityReferenceRequest,
    FileKind,
    LanguageIdentificationMode,
    LanguageIdentificationSettings,
    ModelReference,
    ProfanityFilterMode,
    PunctuationMode,
    TranscribeDefinition,
    TranscribeDiarization,
    TranscriptionRequest,
    TranscriptionRequestProperties,
    TranscriptionUpdate,
    WebHook,
    WebHookEvents,
    WebHookEventSettings,
    WebHookLinks,
    WebHookProperties,
    WebHookRequest,
    WebHookRequestProperties,
    WebHookUpdate,
)
from shared.speech.models_client import ModelDeprecationWarning, ModelsClient
from shared.speech.webhooks import WebHooksClient
from tests.contract.openapi import API_VERSIONS, SpecViolation, SpeechSpec, load_example
from tests.support.scripted import Recorded, Reply, ScriptedApp
from tests.support.server import serve

JOB = "ba7ea6f5-3065-40b7-b49a-a90f48584683"
FILE = "ee4733cd-b1a7-4813-87e2-00d582c28a29"
MODEL = "827712a5-f942-4997-91c3-7c6cde35600b"
SAS = "https://acct.blob.core.windows.net/audio/a.wav?sv=2025-01-05&sr=b&sp=r&sig=abc%3D"
HOOK = "2e856efe-ef53-465a-a632-6a084c1d349d"
HOOK_SECRET = "contract-s3cret-0b1c2d3e"
CALLBACK = "https://contoso.example/api/speech-callback?code=fn-key"

# Operation → the Microsoft example whose response the stand-in returns.
EXAMPLES = {
    "Transcriptions_Submit": "create_container_transcription.json",
    "Transcriptions_Get": "get_transcription.json",
    "Transcriptions_List": "get_transcriptions.json",
    "Transcriptions_ListFiles": "get_transcription_files.json",
    "Transcriptions_GetFile": "get_transcription_file.json",
    "Transcriptions_Update": "update_transcription.json",
    "Transcriptions_Delete": "delete_transcription.json",
    "Transcriptions_ListSupportedLocales": "get_supported_transcription_locales.json",
    "Transcriptions_Transcribe": "transcribe_file.json",
    "Models_GetBaseModel": "get_base_model.json",
    "Models_ListBaseModels": "get_english_base_models.json",
    "Models_GetCustomModel": "get_model.json",
}


# The web hook operations the client calls; answered by StandIn.webhook_reply.
WEBHOOK_OPERATIONS = frozenset(
    {
        "WebHooks_List",
        "WebHooks_Create",
        "WebHooks_Get",
        "WebHooks_Update",
        "WebHooks_Delete",
        "WebHooks_Ping",
        "WebHooks_Test",
    }
)


def webhook_body(base_url: str, api_version: str, **fields: Any) -> dict[str, Any]:
    """A web hook as the service returns it, shaped after Microsoft's get_web_hook.json.

    Like that example it echoes ``properties.secret``, which the client must not keep.
    """
    entity = f"{base_url}/speechtotext/webhooks/{HOOK}"
    body: dict[str, Any] = {
        "self": f"{entity}?api-version={api_version}",
        "displayName": "TranscriptionCompletionWebHook",
        "description": "I registered this URL to get a POST request for each completed job.",
        "properties": {"apiVersion": f"v{api_version}", "secret": HOOK_SECRET},
        "webUrl": CALLBACK,
        "events": {"transcriptionCompletion": True},
        "createdDateTime": "2026-11-11T00:00:00Z",
        "lastActionDateTime": "2026-11-28T00:00:00Z",
        "status": "Succeeded",
        "customProperties": {"app": "speech-func"},
        "links": {
            "ping": f"{entity}:ping?api-version={api_version}",
            "test": f"{entity}:test?api-version={api_version}",
        },
    }
    body.update(fields)
    return body


@dataclass
class StandIn:
    """The spec-checking stand-in's record of one test."""

    spec: SpeechSpec
    base_url: str = ""
    operations: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)

    def handle(self, req: Recorded) -> Reply:
        self.requests.append(req)
        url = f"{self.base_url}{req.path}" + (f"?{req.raw_query}" if req.raw_query else "")
        try:
            op = self.spec.validate_request(
                req.method, url, req.headers, req.body, base_url=self.base_url
            )
        except SpecViolation as exc:
            self.violations.append(str(exc))
            return Reply(400, {"code": "InvalidRequest", "message": str(exc)})
        self.operations.append(op.operation_id)
        return self.reply(op.operation_id, req)

    def reply(self, operation_id: str, req: Recorded) -> Reply:
        if operation_id in WEBHOOK_OPERATIONS:
            reply = self.webhook_reply(operation_id, req)
            try:
                self.spec.validate_response(
                    operation_id, reply.status, reply.body, reply.headers, strict=True
                )
            except SpecViolation as exc:
                self.violations.append(f"stand-in answer: {exc}")
            return reply
        if operation_id == "Models_ListCustomModels":
            model = load_example("2024-11-15", "get_model.json")["responses"]["200"]["body"]
            return Reply(200, {"values": [model]})
        example = load_example("2024-11-15", EXAMPLES[operation_id])["responses"]
        status = int(next(iter(example)))
        body = example[str(status)].get("body")
        if operation_id == "Transcriptions_List":
            # Two pages: the first links to the second on this server.
            body = dict(body)
            if "skip" not in req.query:
                body["@nextLink"] = (
                    f"{self.base_url}/speechtotext/transcriptions?skip=1&top=1"
                    f"&api-version={req.query['api-version']}"
                )
            else:
                body.pop("@nextLink", None)
        if operation_id == "Transcriptions_ListFiles":
            body = {k: v for k, v in body.items() if k != "@nextLink"}
        headers = {}
        if operation_id == "Transcriptions_Submit":
            headers["Location"] = body["self"]
        return Reply(status, body, headers=headers)

    def webhook_reply(self, operation_id: str, req: Recorded) -> Reply:
        version = req.query["api-version"]
        hook = webhook_body(self.base_url, version)
        hint = {"Retry-After": "1"}
        if operation_id == "WebHooks_Create":
            created = webhook_body(self.base_url, version, status="NotStarted")
            return Reply(201, created, {"Location": created["self"]})
        if operation_id in ("WebHooks_Get", "WebHooks_Update"):
            return Reply(200, hook, hint)
        if operation_id == "WebHooks_List":
            # Two pages: the first links to the second on this server.
            if req.query.get("skip") == "1":
                return Reply(200, {"values": [hook]}, hint)
            next_link = f"{self.base_url}/speechtotext/webhooks?skip=1&top=1&api-version={version}"
            return Reply(200, {"values": [hook], "@nextLink": next_link}, hint)
        if operation_id == "WebHooks_Delete":
            return Reply(204)
        if operation_id == "WebHooks_Ping":
            return Reply(202, headers=hint)
        # WebHooks_Test: the first call finds an entity to send (202), later ones none (204).
        earlier = self.operations[:-1].count("WebHooks_Test")
        return Reply(202, headers=hint) if earlier == 0 else Reply(204)


@pytest.fixture(params=API_VERSIONS)
def stand_in(request: pytest.FixtureRequest) -> Iterator[StandIn]:
    state = StandIn(SpeechSpec.load(request.param))
    with serve(ScriptedApp(state.handle)) as url:
        state.base_url = url
        yield state
    assert not state.violations, "\n".join(state.violations)


@pytest.fixture
async def clients(
    stand_in: StandIn,
) -> AsyncIterator[tuple[BatchTranscriptionClient, ModelsClient, FastTranscriptionClient]]:
    endpoints = SpeechEndpoints.from_endpoint(stand_in.base_url)
    auth = KeyAuth("0123456789abcdef0123456789abcdef")
    version = stand_in.spec.api_version
    async with httpx.AsyncClient() as http:
        yield (
            BatchTranscriptionClient(endpoints, auth, api_version=version, http_client=http),
            ModelsClient(endpoints, auth, api_version=version, http_client=http),
            FastTranscriptionClient(endpoints, auth, api_version=version, http_client=http),
        )


@pytest.fixture
async def webhooks(stand_in: StandIn) -> AsyncIterator[WebHooksClient]:
    endpoints = SpeechEndpoints.from_endpoint(stand_in.base_url)
    auth = KeyAuth("0123456789abcdef0123456789abcdef")
    async with httpx.AsyncClient() as http:
        yield WebHooksClient(
            endpoints, auth, api_version=stand_in.spec.api_version, http_client=http
        )


def submit_requests() -> list[TranscriptionRequest]:
    """One request per shape the client can build: each source and each option family."""
    model = ModelReference(
        self_url=f"https://westus.api.cognitive.microsoft.com/speechtotext/models/base/{MODEL}"
    )
    return [
        TranscriptionRequest(display_name="urls", locale="en-US", content_urls=[SAS, SAS]),
        TranscriptionRequest(
            display_name="container",
            locale="en-US",
            content_container_url="https://acct.blob.core.windows.net/audio?sv=1&sig=x",
            description="all of it",
            custom_properties={"source": "audio-input/a.wav", "etag": '"0x1"'},
        ),
        TranscriptionRequest(
            display_name="dataset",
            locale="en-US",
            dataset=EntityReferenceRequest(
                self_url=f"https://westus.api.cognitive.microsoft.com/speechtotext/datasets/{MODEL}"
            ),
        ),
        TranscriptionRequest(
            display_name="everything",
            locale="de-DE",
            content_urls=[SAS],
            model=model,
            properties=TranscriptionRequestProperties(
                word_level_timestamps_enabled=True,
                display_form_word_level_timestamps_enabled=True,
                channels=[0, 1],
                destination_container_url="https://acct.blob.core.windows.net/out?sv=1&sig=y",
                punctuation_mode=PunctuationMode.DICTATED_AND_AUTOMATIC,
                profanity_filter_mode=ProfanityFilterMode.MASKED,
                time_to_live_hours=6,
                diarization=DiarizationSettings(enabled=True, max_speakers=5),
            ),
        ),
        TranscriptionRequest(
            display_name="language identification",
            locale="en-US",
            content_urls=[SAS],
            properties=TranscriptionRequestProperties(
                language_identification=LanguageIdentificationSettings(
                    mode=LanguageIdentificationMode.SINGLE,
                    candidate_locales=["en-US", "fr-FR", "nl-NL"],
                    speech_model_mapping={"nl-NL": model},
                )
            ),
        ),
    ]


async def test_batch_surface(stand_in: StandIn, clients: Any) -> None:
    batch, _models, _fast = clients
    for request in submit_requests():
        job = await batch.submit_transcription(request)
        assert job.id == JOB
    assert (await batch.get_transcription(JOB)).id == JOB
    jobs = await batch.list_transcriptions(filter="status eq 'Failed'", top=1, skip=0).to_list()
    assert len(jobs) == 2, "the pager followed @nextLink to the second page"
    assert [j async for j in batch.find_transcriptions("it's a name")]
    files = await batch.list_transcription_files(
        JOB, kind=FileKind.TRANSCRIPTION, sas_lifetime_minutes=60, top=10
    ).to_list()
    assert [f.name for f in files] == ["mywavefile1.wav.json", "mywavefile2.wav.json"]
    file = await batch.get_transcription_file(JOB, FILE, sas_lifetime_minutes=5)
    assert file.links is not None
    assert file.links.content_url
    updated = await batch.update_transcription(
        JOB, TranscriptionUpdate(display_name="new", custom_properties={"k": "v"})
    )
    assert updated.display_name
    assert await batch.delete_transcription(JOB) is True
    locales = await batch.get_supported_locales()
    assert locales.to_dict()

    list_queries = [r.query for r in stand_in.requests if r.path.endswith("/transcriptions")]
    assert list_queries[0]["filter"] == "status eq 'Failed'"
    assert any(q.get("filter") == "displayName eq 'it''s a name'" for q in list_queries)
    files_query = next(r.query for r in stand_in.requests if r.path.endswith("/files"))
    assert files_query["filter"] == "kind eq 'Transcription'"
    assert files_query["sasLifetimeMinutes"] == "60"


async def test_models_surface(stand_in: StandIn, clients: Any) -> None:
    _batch, models, _fast = clients
    with pytest.warns(ModelDeprecationWarning, match="no longer be used"):
        base = await models.get_base_model(MODEL)
    assert base.locale == "en-US"
    english = await models.list_base_models(locale="en-US", top=2).to_list()
    assert english
    assert english[0].properties is not None
    with pytest.warns(ModelDeprecationWarning, match="no longer be used"):
        custom = await models.get_custom_model(MODEL)
    assert custom.display_name
    assert await models.list_custom_models(locale="en-US", skip=0).to_list()
    base_query = next(r.query for r in stand_in.requests if r.path.endswith("/models/base"))
    assert base_query["filter"] == "locale eq 'en-US'"


async def test_fast_surface(stand_in: StandIn, clients: Any) -> None:
    _batch, _models, fast = clients
    definition = TranscribeDefinition(
        locales=["en-US"],
        profanity_filter_mode=ProfanityFilterMode.MASKED,
        diarization=TranscribeDiarization(enabled=True, max_speakers=2),
        channels=[0],
    )
    result = await fast.transcribe(b"RIFF\x00\x00\x00\x00WAVEfmt ", definition, filename="a.wav")
    assert result.combined_phrases
    assert result.combined_phrases[0].text == "Weather"
    sent = stand_in.requests[-1]
    assert b'name="audio"; filename="a.wav"' in sent.body
    assert json.loads(sent.body.split(b"\r\n\r\n", 1)[1].split(b"\r\n", 1)[0]) == {
        "locales": ["en-US"],
        "profanityFilterMode": "Masked",
        "diarization": {"enabled": True, "maxSpeakers": 2},
        "channels": [0],
    }


def webhook_requests() -> list[WebHookRequest]:
    """One create request per shape: minimal, and every writable field with a secret."""
    return [
        WebHookRequest(
            display_name="minimal",
            web_url=CALLBACK,
            events=WebHookEventSettings(transcription_completion=True),
        ),
        WebHookRequest(
            display_name="everything",
            web_url=CALLBACK,
            events=WebHookEventSettings(
                transcription_creation=True,
                transcription_processing=True,
                transcription_completion=True,
                transcription_deletion=True,
                ping=True,
                challenge=True,
            ),
            description="all the transcription events",
            custom_properties={"app": "speech-func", "env": "test"},
            properties=WebHookRequestProperties(secret=SecretStr(HOOK_SECRET)),
        ),
    ]


def webhook_updates() -> list[WebHookUpdate]:
    """One PATCH body per shape the client can build."""
    return [
        WebHookUpdate(display_name="renamed"),
        WebHookUpdate(
            display_name="everything",
            description="changed",
            web_url="https://contoso.example/api/other-callback",
            events=WebHookEventSettings(transcription_completion=True, ping=False),
            custom_properties={"k": "v"},
            properties=WebHookRequestProperties(secret=SecretStr(HOOK_SECRET)),
        ),
        # An empty secret is how the spec says to stop signing callbacks.
        WebHookUpdate(properties=WebHookRequestProperties(secret=SecretStr(""))),
    ]


async def test_webhooks_surface(stand_in: StandIn, webhooks: WebHooksClient) -> None:
    for request in webhook_requests():
        created = await webhooks.create_webhook(request)
        assert created.id == HOOK
    hook = await webhooks.get_webhook(HOOK)
    assert hook.id == HOOK
    assert hook.events is not None
    assert hook.events.enabled == {"transcriptionCompletion"}
    hooks = await webhooks.list_webhooks(filter="displayName eq 'x'", top=1, skip=0).to_list()
    assert len(hooks) == 2, "the pager followed @nextLink to the second page"
    for update in webhook_updates():
        assert (await webhooks.update_webhook(HOOK, update)).id == HOOK
    await webhooks.ping_webhook(HOOK)
    assert await webhooks.test_webhook(HOOK) is True
    assert await webhooks.test_webhook(HOOK) is False
    assert await webhooks.delete_webhook(HOOK) is True

    assert set(stand_in.operations) == WEBHOOK_OPERATIONS
    hook_path = "/speechtotext/webhooks"
    creates = [r.json() for r in stand_in.requests if (r.method, r.path) == ("POST", hook_path)]
    assert creates[1]["properties"] == {"secret": HOOK_SECRET}, "the secret is sent in clear"
    lists = [r.query for r in stand_in.requests if (r.method, r.path) == ("GET", hook_path)]
    version = stand_in.spec.api_version
    first_page = {"filter": "displayName eq 'x'", "top": "1", "skip": "0", "api-version": version}
    assert lists[0] == first_page
    assert lists[1]["skip"] == "1"


@pytest.mark.parametrize("api_version", API_VERSIONS)
def test_webhook_models_round_trip_through_the_spec_schema(api_version: str) -> None:
    """A parsed hook written back by to_dict() is a valid WebHook, minus the echoed secret."""
    spec = SpeechSpec.load(api_version)
    body = webhook_body("https://westus.api.cognitive.microsoft.com", api_version)
    spec.validate_response("WebHooks_Get", 200, body, strict=True)
    hook = WebHook.model_validate(body)
    written = hook.to_dict()
    spec.validate_response("WebHooks_Get", 200, written, strict=True)
    expected = {**body, "properties": {"apiVersion": f"v{api_version}"}}
    assert written == expected
    page = {"values": [written], "@nextLink": body["self"]}
    spec.validate_response("WebHooks_List", 200, page, strict=True)


def _wire_names(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


@pytest.mark.parametrize("api_version", API_VERSIONS)
def test_webhook_models_declare_exactly_the_spec_properties(api_version: str) -> None:
    """Responses name every property of the spec; requests every writable one, no more."""
    spec = SpeechSpec.load(api_version)

    def declared(name: str, *, writable: bool = False) -> set[str]:
        properties = spec.definitions[name]["properties"]
        return {
            key for key, prop in properties.items() if not (writable and spec._is_read_only(prop))
        }

    assert _wire_names(WebHook) == declared("WebHook")
    assert _wire_names(WebHookEvents) == declared("WebHookEvents")
    assert _wire_names(WebHookEventSettings) == declared("WebHookEvents")
    assert _wire_names(WebHookLinks) == declared("WebHookLinks")
    # The secret is write-only on this side; error and apiVersion are read-only.
    assert _wire_names(WebHookProperties) == declared("WebHookProperties") - {"secret"}
    assert _wire_names(WebHookRequest) == declared("WebHook", writable=True)
    assert _wire_names(WebHookRequestProperties) == declared("WebHookProperties", writable=True)
    assert _wire_names(WebHookRequestProperties) == declared("WebHookPropertiesUpdate")
    assert _wire_names(WebHookUpdate) == declared("WebHookUpdate")


def test_every_client_operation_is_in_the_spec() -> None:
    """The operations the clients call exist in both versions (the closing note counts them)."""
    ours = {*EXAMPLES, "Models_ListCustomModels", *WEBHOOK_OPERATIONS}
    for version in API_VERSIONS:
        ids = {op.operation_id for op in SpeechSpec.load(version).operations()}
        assert ours <= ids
    assert len(ours) == 20
