"""The web hooks client: paths, verbs, bodies, 202/204 handling, paging, secrets, errors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from shared.speech.auth import KeyAuth
from shared.speech.config import AuthMode, SpeechClients, SpeechSettings
from shared.speech.endpoints import SpeechEndpoints
from shared.speech.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    SpeechError,
    SpeechHTTPError,
)
from shared.speech.models import (
    Status,
    WebHook,
    WebHookEvents,
    WebHookEventSettings,
    WebHookRequest,
    WebHookRequestProperties,
    WebHookUpdate,
)
from shared.speech.retry import RetryPolicy
from shared.speech.webhooks import WebHooksClient
from tests.support.scripted import Recorded, Reply

if TYPE_CHECKING:
    from tests.speech.conftest import Scripted

KEY = "0123456789abcdef0123456789abcdef"
HOOK = "2e856efe-ef53-465a-a632-6a084c1d349d"
SECRET = "wh-s3cret-9f2c4e7a1b"
CALLBACK = "https://contoso.example/api/speech-callback"
NO_RETRY = RetryPolicy(max_attempts=1)
# No backoff: a retry test takes no wall time.
FAST_RETRY = RetryPolicy(max_attempts=2, backoff_base=0)


def hook_body(host: str = "westus.api.cognitive.microsoft.com", **extra: Any) -> dict[str, Any]:
    """A web hook as Microsoft's get_web_hook.json example returns it (secret echoed)."""
    base = f"https://{host}/speechtotext/webhooks/{HOOK}"
    body: dict[str, Any] = {
        "self": f"{base}?api-version=2024-11-15",
        "displayName": "TranscriptionCompletionWebHook",
        "description": "POST for each completed transcription.",
        "properties": {"apiVersion": "v2024-11-15", "secret": SECRET},
        "webUrl": CALLBACK,
        "events": {"transcriptionCompletion": True},
        "createdDateTime": "2026-11-11T00:00:00Z",
        "lastActionDateTime": "2026-11-28T00:00:00Z",
        "status": "Succeeded",
        "links": {
            "ping": f"{base}:ping?api-version=2024-11-15",
            "test": f"{base}:test?api-version=2024-11-15",
        },
    }
    body.update(extra)
    return body


def client(url: str, http: httpx.AsyncClient, retry: RetryPolicy | None = None) -> WebHooksClient:
    return WebHooksClient(
        SpeechEndpoints.from_endpoint(url), KeyAuth(KEY), http_client=http, retry=retry
    )


def a_request(secret: str | None = SECRET) -> WebHookRequest:
    return WebHookRequest(
        display_name="transcriptions done",
        web_url=CALLBACK,
        events=WebHookEventSettings(transcription_completion=True),
        description="one POST per finished job",
        custom_properties={"app": "speech-func"},
        properties=WebHookRequestProperties(secret=SecretStr(secret))
        if secret is not None
        else None,
    )


# ------------------------------------------------------------------------------ create


async def test_create_posts_the_writable_fields_with_the_secret_in_clear(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    with scripted(lambda _r: Reply(201, hook_body(status="NotStarted"))) as (url, app):
        hook = await client(url, http).create_webhook(a_request())
    [sent] = app.requests
    assert (sent.method, sent.path) == ("POST", "/speechtotext/webhooks")
    assert sent.query == {"api-version": "2024-11-15"}
    assert sent.headers["ocp-apim-subscription-key"] == KEY
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == {
        "displayName": "transcriptions done",
        "webUrl": CALLBACK,
        "events": {"transcriptionCompletion": True},
        "description": "one POST per finished job",
        "customProperties": {"app": "speech-func"},
        "properties": {"secret": SECRET},
    }
    assert hook.id == HOOK
    assert hook.status == Status.NOT_STARTED
    assert hook.events is not None
    assert hook.events.transcription_completion is True


async def test_create_without_a_secret_sends_no_properties(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    with scripted(lambda _r: Reply(201, hook_body())) as (url, app):
        await client(url, http).create_webhook(a_request(secret=None))
    assert "properties" not in app.requests[0].json()


async def test_create_takes_the_id_from_location_when_the_body_lacks_self(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    location = f"http://127.0.0.1/speechtotext/webhooks/{HOOK}?api-version=2024-11-15"
    reply = Reply(201, {"displayName": "x"}, {"Location": location})
    with scripted(lambda _r: reply) as (url, _app):
        hook = await client(url, http).create_webhook(a_request())
    assert hook.id == HOOK


async def test_create_without_any_id_is_an_error(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    with (
        scripted(lambda _r: Reply(201, {"displayName": "x"})) as (url, _app),
        pytest.raises(SpeechError, match="no id"),
    ):
        await client(url, http).create_webhook(a_request())


async def test_create_is_not_resent_after_the_service_may_have_processed_it(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    with scripted(lambda _r: Reply(500, {"code": "InternalServerError"})) as (url, app):
        hooks = client(url, http, FAST_RETRY)
        with pytest.raises(ServerError):
            await hooks.create_webhook(a_request())
    assert len(app.requests) == 1


async def test_create_is_resent_when_the_service_refused_it_unprocessed(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    replies = iter([Reply(503, {"code": "ServiceUnavailable"}), Reply(201, hook_body())])
    with scripted(lambda _r: next(replies)) as (url, app):
        hooks = client(url, http, FAST_RETRY)
        hook = await hooks.create_webhook(a_request())
    assert hook.id == HOOK
    assert len(app.requests) == 2


# ------------------------------------------------------------------------- get / list


async def test_get_parses_the_hook_and_the_retry_after(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    with scripted(lambda _r: Reply(200, hook_body(), {"Retry-After": "5"})) as (url, app):
        hook = await client(url, http).get_webhook(HOOK.upper())
    sent = app.requests[0]
    assert (sent.method, sent.path) == ("GET", f"/speechtotext/webhooks/{HOOK}")
    assert sent.body == b""
    assert hook.id == HOOK
    assert hook.retry_after == 5.0
    assert hook.web_url == CALLBACK
    assert hook.status == Status.SUCCEEDED
    assert hook.properties is not None
    assert hook.properties.api_version == "v2024-11-15"
    assert hook.links is not None
    assert hook.links.ping is not None
    assert hook.links.ping.endswith(":ping?api-version=2024-11-15")


async def test_list_follows_next_link_and_passes_filter_top_skip(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    def handler(req: Recorded) -> Reply:
        if req.query.get("skip") == "2":
            return Reply(200, {"values": [hook_body(displayName="third")]})
        host = req.headers["host"]
        return Reply(
            200,
            {
                "values": [hook_body(displayName="first"), hook_body(displayName="second")],
                "@nextLink": f"http://{host}/speechtotext/webhooks?skip=2&top=2",
            },
        )

    with scripted(handler) as (url, app):
        pager = client(url, http).list_webhooks(filter="status eq 'Succeeded'", top=2, skip=0)
        hooks = await pager.to_list()
    assert [h.display_name for h in hooks] == ["first", "second", "third"]
    first, second = app.requests
    assert (first.method, first.path) == ("GET", "/speechtotext/webhooks")
    assert first.query == {
        "api-version": "2024-11-15",
        "filter": "status eq 'Succeeded'",
        "top": "2",
        "skip": "0",
    }
    assert second.query == {"skip": "2", "top": "2", "api-version": "2024-11-15"}


async def test_list_pages_lazily(scripted: Scripted, http: httpx.AsyncClient) -> None:
    def handler(req: Recorded) -> Reply:
        host = req.headers["host"]
        return Reply(
            200, {"values": [hook_body()], "@nextLink": f"http://{host}/speechtotext/webhooks?x"}
        )

    with scripted(handler) as (url, app):
        assert len(await client(url, http).list_webhooks().to_list(limit=1)) == 1
    assert len(app.requests) == 1


async def test_list_refuses_a_next_link_to_another_host(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    page = {"values": [], "@nextLink": "https://evil.example/speechtotext/webhooks?skip=1"}
    with (
        scripted(lambda _r: Reply(200, page)) as (url, app),
        pytest.raises(SpeechError, match="another host"),
    ):
        await client(url, http).list_webhooks().to_list()
    assert len(app.requests) == 1


# ----------------------------------------------------------------------- update / delete


async def test_update_patches_only_the_set_fields(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    with scripted(lambda _r: Reply(200, hook_body(displayName="renamed"))) as (url, app):
        hook = await client(url, http).update_webhook(
            HOOK,
            WebHookUpdate(
                display_name="renamed",
                events=WebHookEventSettings(transcription_completion=True, ping=False),
                properties=WebHookRequestProperties(secret=SecretStr(SECRET)),
            ),
        )
    sent = app.requests[0]
    assert (sent.method, sent.path) == ("PATCH", f"/speechtotext/webhooks/{HOOK}")
    assert sent.json() == {
        "displayName": "renamed",
        "events": {"transcriptionCompletion": True, "ping": False},
        "properties": {"secret": SECRET},
    }
    assert hook.display_name == "renamed"


async def test_update_with_an_empty_secret_removes_signing(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    with scripted(lambda _r: Reply(200, hook_body())) as (url, app):
        update = WebHookUpdate(properties=WebHookRequestProperties(secret=SecretStr("")))
        await client(url, http).update_webhook(HOOK, update)
    assert app.requests[0].json() == {"properties": {"secret": ""}}


async def test_delete_returns_true_on_204(scripted: Scripted, http: httpx.AsyncClient) -> None:
    with scripted(lambda _r: Reply(204)) as (url, app):
        assert await client(url, http).delete_webhook(HOOK) is True
    sent = app.requests[0]
    assert (sent.method, sent.path) == ("DELETE", f"/speechtotext/webhooks/{HOOK}")


async def test_delete_missing_ok(scripted: Scripted, http: httpx.AsyncClient) -> None:
    with scripted(lambda _r: Reply(404, {"code": "NotFound", "message": "gone"})) as (url, _app):
        hooks = client(url, http)
        assert await hooks.delete_webhook(HOOK, missing_ok=True) is False
        with pytest.raises(NotFoundError):
            await hooks.delete_webhook(HOOK)


# --------------------------------------------------------------------------- ping / test


async def test_ping_posts_to_the_ping_action_without_a_body(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    with scripted(lambda _r: Reply(202, headers={"Retry-After": "1"})) as (url, app):
        await client(url, http).ping_webhook(HOOK)
    sent = app.requests[0]
    assert (sent.method, sent.path) == ("POST", f"/speechtotext/webhooks/{HOOK}:ping")
    assert sent.query == {"api-version": "2024-11-15"}
    assert sent.body == b""


async def test_ping_is_retried_after_a_server_error(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    replies = iter([Reply(500, {"code": "InternalServerError"}), Reply(202)])
    with scripted(lambda _r: next(replies)) as (url, app):
        hooks = client(url, http, FAST_RETRY)
        await hooks.ping_webhook(HOOK)
    assert len(app.requests) == 2


@pytest.mark.parametrize(("status", "sent"), [(202, True), (200, True), (204, False)])
async def test_test_reports_whether_callbacks_were_sent(
    scripted: Scripted, http: httpx.AsyncClient, status: int, sent: bool
) -> None:
    # The spec's responses are 202 and 204; its prose says 200, which counts as sent too.
    with scripted(lambda _r: Reply(status)) as (url, app):
        assert await client(url, http).test_webhook(HOOK) is sent
    request = app.requests[0]
    assert (request.method, request.path) == ("POST", f"/speechtotext/webhooks/{HOOK}:test")
    assert request.body == b""


async def test_test_is_not_resent_after_the_service_may_have_processed_it(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    with scripted(lambda _r: Reply(500, {"code": "InternalServerError"})) as (url, app):
        hooks = client(url, http, FAST_RETRY)
        with pytest.raises(ServerError):
            await hooks.test_webhook(HOOK)
    assert len(app.requests) == 1


# -------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (429, RateLimitError),
        (500, ServerError),
        (418, SpeechHTTPError),
    ],
)
async def test_errors_map_into_the_exception_tree(
    scripted: Scripted, http: httpx.AsyncClient, status: int, error: type[SpeechHTTPError]
) -> None:
    body = {
        "code": "InvalidRequest",
        "message": "no such hook",
        "innerError": {"code": "InvalidWebHookUrl"},
    }
    reply = Reply(status, body, {"apim-request-id": "req-1"})
    with scripted(lambda _r: reply) as (url, _app), pytest.raises(error) as caught:
        await client(url, http, NO_RETRY).get_webhook(HOOK)
    assert caught.value.status_code == status
    assert caught.value.code == "InvalidRequest"
    assert caught.value.inner_code == "InvalidWebHookUrl"
    assert caught.value.request_id == "req-1"
    assert isinstance(caught.value, SpeechError)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get_webhook("../transcriptions"),
        lambda c: c.update_webhook("nope", WebHookUpdate(display_name="x")),
        lambda c: c.delete_webhook(""),
        lambda c: c.ping_webhook("1234"),
        lambda c: c.test_webhook("not-a-uuid"),
    ],
)
async def test_ids_are_checked_before_any_request(
    http: httpx.AsyncClient, call: Callable[[WebHooksClient], Any]
) -> None:
    with pytest.raises(ValueError, match="webhook_id must be a UUID"):
        await call(client("http://127.0.0.1:9", http))


async def test_arguments_are_checked_before_any_request(http: httpx.AsyncClient) -> None:
    hooks = client("http://127.0.0.1:9", http)
    with pytest.raises(ValueError, match="at least one"):
        await hooks.update_webhook(HOOK, WebHookUpdate())
    with pytest.raises(ValueError, match="at least one"):
        await hooks.update_webhook(HOOK, WebHookUpdate(properties=WebHookRequestProperties()))
    with pytest.raises(TypeError, match="WebHookRequest"):
        await hooks.create_webhook(hook_body())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="WebHookUpdate"):
        await hooks.update_webhook(HOOK, {"displayName": "x"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="top"):
        hooks.list_webhooks(top=0)
    with pytest.raises(ValueError, match="skip"):
        hooks.list_webhooks(skip=-1)


# ------------------------------------------------------------------------------- secrets


def test_the_secret_is_masked_everywhere_but_the_body() -> None:
    request = a_request()
    update = WebHookUpdate(properties=WebHookRequestProperties(secret=SecretStr(SECRET)))
    for model in (request, update):
        for text in (repr(model), str(model), model.model_dump_json(), str(model.model_dump())):
            assert SECRET not in text
        assert model.to_body()["properties"] == {"secret": SECRET}
    assert request.properties is not None
    assert isinstance(request.properties.secret, SecretStr)
    # A plain string (e.g. from JSON config) is wrapped too, never kept as a str.
    loose = WebHookRequestProperties.model_validate({"secret": SECRET})
    assert isinstance(loose.secret, SecretStr)
    assert SECRET not in repr(loose)


def test_a_rejected_secret_is_not_echoed_in_the_error() -> None:
    padded = f" {SECRET} "
    with pytest.raises(ValidationError, match="whitespace") as caught:
        WebHookRequestProperties(secret=SecretStr(padded))
    assert SECRET not in str(caught.value)


def test_a_response_never_keeps_an_echoed_secret() -> None:
    hook = WebHook.model_validate(hook_body())
    assert hook.properties is not None
    assert hook.properties.model_extra == {}
    for text in (repr(hook), str(hook), hook.model_dump_json(), str(hook.to_dict())):
        assert SECRET not in text
    assert hook.to_dict()["properties"] == {"apiVersion": "v2024-11-15"}


async def test_the_secret_stays_out_of_logs_and_errors(
    scripted: Scripted, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    def handler(req: Recorded) -> Reply:
        if req.method == "POST":
            # A service that quotes the offending field back in its error message.
            return Reply(400, {"code": "InvalidRequest", "message": f"bad secret {SECRET}"})
        return Reply(200, hook_body())

    with scripted(handler) as (url, _app):
        hooks = client(url, http, NO_RETRY)
        with pytest.raises(BadRequestError) as caught:
            await hooks.create_webhook(a_request())
        await hooks.update_webhook(
            HOOK, WebHookUpdate(properties=WebHookRequestProperties(secret=SecretStr(SECRET)))
        )
        logging.getLogger("shared.speech.http").info("request was %r", a_request())
    assert SECRET not in str(caught.value)
    assert SECRET not in caught.value.message
    assert caplog.records, "the pipeline logged the calls"
    assert SECRET not in caplog.text


# -------------------------------------------------------------------------------- models


def test_request_event_settings_match_the_response_events() -> None:
    names = {f.alias for f in WebHookEvents.model_fields.values()}
    assert names == {f.alias for f in WebHookEventSettings.model_fields.values()}
    assert {"transcriptionCompletion", "ping", "challenge"} <= names


def test_response_events_list_what_is_enabled_including_unknown_events() -> None:
    events = WebHookEvents.model_validate(
        {"transcriptionCompletion": True, "ping": False, "someFutureEvent": True}
    )
    assert events.enabled == {"transcriptionCompletion", "someFutureEvent"}


@pytest.mark.parametrize(
    "fields",
    [
        {"display_name": ""},
        {"web_url": "ftp://contoso.example/x"},
        {"web_url": "/relative/path"},
        {"custom_properties": {f"k{i}": "v" for i in range(11)}},
        {"displayname": "typo"},
    ],
)
def test_requests_are_validated_before_any_io(fields: dict[str, Any]) -> None:
    base: dict[str, Any] = {
        "display_name": "hook",
        "web_url": CALLBACK,
        "events": WebHookEventSettings(transcription_completion=True),
    }
    with pytest.raises(ValidationError):
        WebHookRequest(**{**base, **fields})


def test_event_settings_reject_a_misspelt_event() -> None:
    with pytest.raises(ValidationError, match="transcription_completed"):
        WebHookEventSettings(transcription_completed=True)  # type: ignore[call-arg]


def test_update_cannot_blank_the_display_name() -> None:
    with pytest.raises(ValidationError):
        WebHookUpdate(display_name="")


# ------------------------------------------------------------------------- composition


async def test_speech_clients_builds_the_webhooks_client_on_first_use() -> None:
    settings = SpeechSettings(region="westus", auth_mode=AuthMode.KEY, key=SecretStr(KEY))
    clients = SpeechClients(settings)
    try:
        assert "webhooks" not in vars(clients)
        hooks = clients.webhooks
        assert isinstance(hooks, WebHooksClient)
        assert clients.webhooks is hooks
        assert hooks._pipeline.http is clients.http
        assert (
            hooks.endpoints.batch_base == "https://westus.api.cognitive.microsoft.com/speechtotext"
        )
    finally:
        await clients.aclose()


def test_the_package_exports_the_client_lazily() -> None:
    import shared.speech

    assert shared.speech.WebHooksClient is WebHooksClient
    assert "WebHooksClient" in shared.speech.__all__
