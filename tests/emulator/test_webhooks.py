"""Web hooks: the ``WebHooks_*`` operations against the spec, the challenge and the callbacks.

Receivers are real HTTP servers on loopback (uvicorn in a thread, one per test) that record
every callback, so the tests see exactly what a customer's endpoint would: method, query,
headers and the raw body the signature covers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from local.emulator.webhooks import EVENT_NAMES, sign, trust_store
from tests.contract.openapi import SpeechSpec
from tests.emulator.conftest import (
    UNREACHABLE_URL,
    VERSIONS,
    EmulatorServer,
    StartEmulator,
    assert_error,
    job_id,
    minimal_submission,
    validate,
    wait_for_status,
)
from tests.support.server import serve

HOOKS = "/speechtotext/webhooks"
NO_SUCH_HOOK = "00000000-0000-0000-0000-000000000000"
SECRET = "s3cr3t-for-the-receiver"
TRANSCRIPTION_EVENTS = (
    "transcriptionCreation",
    "transcriptionProcessing",
    "transcriptionCompletion",
    "transcriptionDeletion",
)


@dataclass(frozen=True)
class Callback:
    """One request a receiver got."""

    mode: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def event(self) -> str | None:
        """The ``X-MicrosoftSpeechServices-Event`` header."""
        return self.headers.get("x-microsoftspeechservices-event")

    @property
    def signature(self) -> str | None:
        """The ``X-MicrosoftSpeechServices-Signature`` header."""
        return self.headers.get("x-microsoftspeechservices-signature")


@dataclass
class Receiver:
    """A web hook endpoint: ``/ok`` answers everything, ``/wrong`` answers challenges with
    the wrong text, ``/flaky`` answers events with 500 while ``failing`` is set."""

    url: str = ""
    failing: bool = False
    calls: list[Callback] = field(default_factory=list)

    def app(self) -> Starlette:
        """The ASGI app recording each call."""

        async def endpoint(request: Request) -> Response:
            call = Callback(
                mode=request.path_params["mode"],
                query=dict(request.query_params),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=await request.body(),
            )
            self.calls.append(call)
            if call.event == "challenge":
                token = request.query_params.get("validationToken", "")
                return PlainTextResponse("nope" if call.mode == "wrong" else token)
            if call.mode == "flaky" and self.failing:
                return Response(status_code=500)
            return Response(status_code=200)

        return Starlette(routes=[Route("/{mode}", endpoint, methods=["POST"])])

    def received(self, event: str | None = None, mode: str | None = None) -> list[Callback]:
        """The calls so far, optionally only those of one event or endpoint."""
        return [
            c
            for c in list(self.calls)
            if (event is None or c.event == event) and (mode is None or c.mode == mode)
        ]

    def wait(
        self, count: int, event: str | None = None, mode: str | None = None, timeout: float = 10
    ) -> list[Callback]:
        """Wait until at least ``count`` matching calls came in; return them."""
        deadline = time.monotonic() + timeout
        while len(calls := self.received(event, mode)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(calls)} of {count} {event} callbacks after {timeout}s")
            time.sleep(0.02)
        return calls


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver on loopback for this test."""
    hooks = Receiver()
    with serve(hooks.app()) as url:
        hooks.url = url
        yield hooks


def wait_until(check: Callable[[], bool], timeout: float = 10) -> None:
    """Poll ``check`` until it is true."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def hook_id(response: httpx.Response) -> str:
    """The web hook id in a WebHook body's ``self``."""
    return str(response.json()["self"].partition("?")[0].rsplit("/", 1)[1])


def hook_body(url: str, **overrides: Any) -> dict[str, Any]:
    """A valid WebHooks_Create body for ``url``."""
    body: dict[str, Any] = {
        "displayName": "emulator hook",
        "webUrl": url,
        "events": {"transcriptionCompletion": True},
    }
    body.update(overrides)
    return body


def create(server: EmulatorServer, body: dict[str, Any], version: str = VERSIONS[0]) -> str:
    """Create a hook (asserting 201) and return its id."""
    response = server.call("POST", HOOKS, version, json=body)
    assert response.status_code == 201, response.text
    return hook_id(response)


def wait_for_hook(
    server: EmulatorServer, hook: str, status: str, version: str = VERSIONS[0]
) -> dict[str, Any]:
    """Poll WebHooks_Get until the hook has ``status``; return its body."""
    deadline = time.monotonic() + 10
    while True:
        body: dict[str, Any] = server.call("GET", f"{HOOKS}/{hook}", version).json()
        if body["status"] == status:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"hook still {body['status']}, expected {status}")
        time.sleep(0.02)


def deliveries(server: EmulatorServer) -> Any:
    """``webhookDeliveries`` of ``GET /admin/stats``."""
    return server.admin("GET", "/admin/stats").json()["webhookDeliveries"]


def expected_signature(body: bytes) -> str:
    """What the receiver computes: base64(HMAC-SHA256(secret, body))."""
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


@pytest.mark.parametrize("version", VERSIONS)
def test_web_hook_lifecycle_conforms(
    start_emulator: StartEmulator,
    receiver: Receiver,
    version: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = start_emulator()
    body = hook_body(
        f"{receiver.url}/ok",
        description="calls me back",
        customProperties={"team": "speech"},
        properties={"secret": SECRET},
    )
    # The test's own request is what the spec describes, so the emulator is checked
    # against a well-formed client.
    SpeechSpec.load(version).validate_request(
        "POST",
        f"{server.url}{HOOKS}?api-version={version}",
        {"Ocp-Apim-Subscription-Key": "k", "Content-Type": "application/json"},
        json.dumps(body).encode(),
        base_url=server.url,
    )
    created = server.call("POST", HOOKS, version, json=body)
    validate("WebHooks_Create", created, version)
    document = created.json()
    assert created.headers["Location"] == document["self"]
    assert document["status"] == "NotStarted"
    assert document["properties"] == {"apiVersion": version}
    assert document["events"] == {"transcriptionCompletion": True}
    assert document["customProperties"] == {"team": "speech"}
    assert document["links"]["ping"] == document["self"].replace("?", ":ping?")
    assert SECRET not in created.text
    hook = hook_id(created)

    (challenge,) = receiver.wait(1, "challenge")
    token = challenge.query["validationToken"]
    assert len(token) == 32
    assert challenge.body == b""
    assert challenge.signature == expected_signature(b"")
    ready = wait_for_hook(server, hook, "Succeeded", version)
    assert "error" not in ready["properties"]

    got = server.call("GET", f"{HOOKS}/{hook}", version)
    validate("WebHooks_Get", got, version, headers=False)
    assert "Retry-After" not in got.headers  # only while the challenge is pending
    assert SECRET not in got.text

    for n in range(2):
        create(server, hook_body(f"{receiver.url}/ok", displayName=f"other {n}"), version)
    receiver.wait(3, "challenge")
    for other in server.call("GET", HOOKS, version).json()["values"]:
        wait_for_hook(server, hook_id_of(other), "Succeeded", version)
    first = server.call("GET", HOOKS, version, params={"top": 2})
    validate("WebHooks_List", first, version, headers=False)
    page = first.json()
    assert [h["displayName"] for h in page["values"]] == ["emulator hook", "other 0"]
    following = httpx.get(page["@nextLink"], headers=server.client.headers)
    validate("WebHooks_List", following, version, headers=False)
    assert [h["displayName"] for h in following.json()["values"]] == ["other 1"]
    wanted = (
        f"webUrl eq '{receiver.url}/ok' and status eq 'Succeeded' "
        "and startswith(displayName, 'other')"
    )
    filtered = server.call("GET", HOOKS, version, params={"filter": wanted})
    assert [h["displayName"] for h in filtered.json()["values"]] == ["other 0", "other 1"]
    assert SECRET not in first.text
    assert_error(
        server.call("GET", HOOKS, version, params={"filter": "locale eq 'en-US'"}),
        400,
        "InvalidRequest",
        "UnsupportedFilter",
    )

    renamed = server.call(
        "PATCH", f"{HOOKS}/{hook}", version, json={"displayName": "renamed", "description": "x"}
    )
    validate("WebHooks_Update", renamed, version, headers=False)
    assert (renamed.json()["displayName"], renamed.json()["status"]) == ("renamed", "Succeeded")
    assert len(receiver.received("challenge")) == 3  # same URL and events: no new challenge
    patched = server.call(
        "PATCH",
        f"{HOOKS}/{hook}",
        version,
        content=json.dumps(
            {
                "customProperties": {"team": None, "a": "b"},
                "events": {"transcriptionDeletion": True},
                "properties": {"secret": "rotated-secret"},
            }
        ),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    validate("WebHooks_Update", patched, version)  # Retry-After: challenged again
    assert patched.json()["status"] == "NotStarted"
    assert patched.json()["customProperties"] == {"a": "b"}
    assert patched.json()["events"] == {
        "transcriptionCompletion": True,
        "transcriptionDeletion": True,
    }
    assert "secret" not in patched.text
    again = receiver.wait(4, "challenge")[-1]
    assert (
        again.signature
        == base64.b64encode(hmac.new(b"rotated-secret", b"", hashlib.sha256).digest()).decode()
    )
    wait_for_hook(server, hook, "Succeeded", version)

    deleted = server.call("DELETE", f"{HOOKS}/{hook}", version)
    validate("WebHooks_Delete", deleted, version)
    assert deleted.status_code == 204
    assert_error(server.call("GET", f"{HOOKS}/{hook}", version), 404, "NotFound")
    assert server.call("DELETE", f"{HOOKS}/{hook}", version).status_code == 204
    stats = server.admin("GET", "/admin/stats").json()
    assert stats["webhookChallenges"] == {"succeeded": 4, "failed": 0}
    assert stats["requests"]["byOperation"]["WebHooks_Create"] == 3
    assert not [r for r in caplog.records if SECRET in r.getMessage()]
    assert not [r for r in caplog.records if "rotated-secret" in r.getMessage()]


def hook_id_of(document: dict[str, Any]) -> str:
    """The id in a listed WebHook's ``self``."""
    return str(document["self"].partition("?")[0].rsplit("/", 1)[1])


def test_wrong_challenge_answer_fails_the_hook(
    start_emulator: StartEmulator, receiver: Receiver
) -> None:
    server = start_emulator(webhook_retry_seconds=0.01)
    hook = create(server, hook_body(f"{receiver.url}/wrong"))
    (challenge,) = receiver.wait(1, "challenge")
    failed = wait_for_hook(server, hook, "Failed")
    token = challenge.query["validationToken"]
    assert failed["properties"]["error"] == {
        "code": "ChallengeFailed",
        "message": "Challenge response payload doesn't match validation token. "
        f"Expected: {token}, actual: nope",
    }
    assert challenge.signature is None  # no secret, no signature
    validate("WebHooks_Get", server.call("GET", f"{HOOKS}/{hook}"), VERSIONS[0], headers=False)
    # A Failed hook gets nothing: not even a ping.
    assert server.call("POST", f"{HOOKS}/{hook}:ping").status_code == 202
    wait_for_status(server, job_id(server.submit(minimal_submission())))
    time.sleep(0.3)
    assert [c.event for c in receiver.calls] == ["challenge"]
    stats = server.admin("GET", "/admin/stats").json()
    assert stats["webhookChallenges"] == {"succeeded": 0, "failed": 1}
    assert stats["webhookDeliveries"] == {}

    # Nothing listening at all: Failed with a message naming the URL, not the token text.
    nowhere = create(server, hook_body(UNREACHABLE_URL))
    error = wait_for_hook(server, nowhere, "Failed")["properties"]["error"]
    assert error["code"] == "ChallengeFailed"
    assert "http://127.0.0.1:1/audio.wav" in error["message"]
    assert "ConnectError" in error["message"]


def test_signed_deliveries_for_real_jobs(
    start_emulator: StartEmulator, receiver: Receiver, audio_host: str
) -> None:
    server = start_emulator()
    signed = create(server, hook_body(f"{receiver.url}/ok", properties={"secret": SECRET}))
    every = dict.fromkeys(TRANSCRIPTION_EVENTS, True)
    unsigned = create(server, hook_body(f"{receiver.url}/all", events=every))
    wait_for_hook(server, signed, "Succeeded")
    wait_for_hook(server, unsigned, "Succeeded")

    tid = job_id(server.submit(minimal_submission(contentUrls=[f"{audio_host}/sentence-08.wav"])))
    assert wait_for_status(server, tid)["status"] == "Succeeded"
    (completion,) = receiver.wait(1, "transcriptionCompletion", "ok")
    assert completion.headers["content-type"] == "application/json"
    assert completion.signature == expected_signature(completion.body)
    assert completion.signature == sign(SECRET, completion.body)
    current = server.call("GET", f"/speechtotext/transcriptions/{tid}")
    assert json.loads(completion.body) == current.json()  # the GET shape, as it ended
    SpeechSpec.load(VERSIONS[0]).validate_response(
        "Transcriptions_Get", 200, completion.body, strict=True
    )

    calls = receiver.wait(4, mode="all")
    assert [c.event for c in calls] == ["challenge", *TRANSCRIPTION_EVENTS[:3]]
    assert all(c.signature is None for c in calls)
    states = [json.loads(c.body)["status"] for c in calls[1:]]
    assert states == ["NotStarted", "Running", "Succeeded"]

    failing = job_id(server.submit(minimal_submission(contentUrls=[UNREACHABLE_URL])))
    assert wait_for_status(server, failing)["status"] == "Failed"
    last = receiver.wait(2, "transcriptionCompletion", "ok")[-1]
    assert json.loads(last.body)["status"] == "Failed"
    assert json.loads(last.body)["properties"]["error"]["code"] == "InvalidUri"
    assert last.signature == expected_signature(last.body)

    assert server.call("DELETE", f"/speechtotext/transcriptions/{tid}").status_code == 204
    (deletion,) = receiver.wait(1, "transcriptionDeletion", "all")
    assert json.loads(deletion.body)["self"] == current.json()["self"]
    assert not receiver.received("transcriptionDeletion", "ok")  # not registered there
    expected = {
        "transcriptionCompletion": {"delivered": 4, "failed": 0},
        "transcriptionCreation": {"delivered": 2, "failed": 0},
        "transcriptionDeletion": {"delivered": 1, "failed": 0},
        "transcriptionProcessing": {"delivered": 2, "failed": 0},
    }
    # The emulator counts a delivery once the receiver's answer is in, just after it.
    wait_until(lambda: deliveries(server) == expected)


def test_ping_and_test(start_emulator: StartEmulator, receiver: Receiver) -> None:
    server = start_emulator()
    hook = create(server, hook_body(f"{receiver.url}/ok", properties={"secret": SECRET}))
    # Right after create: the ping waits for the challenge, then goes out.
    pinged = server.call("POST", f"{HOOKS}/{hook}:ping")
    validate("WebHooks_Ping", pinged, VERSIONS[0])
    assert pinged.status_code == 202
    (ping,) = receiver.wait(1, "ping")
    assert [c.event for c in receiver.calls] == ["challenge", "ping"]
    assert ping.signature == expected_signature(ping.body)
    document = json.loads(ping.body)
    assert document == server.call("GET", f"{HOOKS}/{hook}").json()
    assert document["status"] == "Succeeded"
    assert SECRET.encode() not in ping.body
    SpeechSpec.load(VERSIONS[0]).validate_response("WebHooks_Get", 200, ping.body, strict=True)

    nothing = server.call("POST", f"{HOOKS}/{hook}:test")
    validate("WebHooks_Test", nothing, VERSIONS[0])
    assert nothing.status_code == 204

    tid = job_id(server.submit(minimal_submission()))
    wait_for_status(server, tid)
    (completion,) = receiver.wait(1, "transcriptionCompletion")
    tested = server.call("POST", f"{HOOKS}/{hook}:test", "2025-10-15")
    validate("WebHooks_Test", tested, "2025-10-15")
    assert tested.status_code == 202
    calls = receiver.wait(2, "transcriptionCompletion")
    assert json.loads(calls[1].body) == json.loads(completion.body)
    assert calls[1].signature == expected_signature(calls[1].body)

    assert_error(server.call("POST", f"{HOOKS}/{NO_SUCH_HOOK}:ping"), 404, "NotFound")
    expected = {
        "ping": {"delivered": 1, "failed": 0},
        "transcriptionCompletion": {"delivered": 2, "failed": 0},
    }
    wait_until(lambda: deliveries(server) == expected)


def test_failing_receiver_disables_the_hook_until_an_update(
    start_emulator: StartEmulator, receiver: Receiver
) -> None:
    server = start_emulator(
        webhook_delivery_attempts=2, webhook_retry_seconds=0.01, webhook_failures_to_disable=2
    )
    hook = create(server, hook_body(f"{receiver.url}/flaky"))
    wait_for_hook(server, hook, "Succeeded")
    receiver.failing = True
    for _ in range(2):
        wait_for_status(server, job_id(server.submit(minimal_submission())))
    failed = wait_for_hook(server, hook, "Failed")
    error = failed["properties"]["error"]
    assert error["code"] == "DeliveryFailed"
    assert "2 consecutive failed deliveries" in error["message"]
    assert "HTTP 500" in error["message"]
    # Two deliveries, each tried twice.
    assert len(receiver.received("transcriptionCompletion")) == 4

    wait_for_status(server, job_id(server.submit(minimal_submission())))
    assert server.call("POST", f"{HOOKS}/{hook}:ping").status_code == 202
    assert server.call("POST", f"{HOOKS}/{hook}:test").status_code == 202
    time.sleep(0.3)
    assert len(receiver.received("transcriptionCompletion")) == 4  # disabled: nothing more
    assert not receiver.received("ping")
    assert deliveries(server) == {"transcriptionCompletion": {"delivered": 0, "failed": 2}}

    receiver.failing = False
    revived = server.call("PATCH", f"{HOOKS}/{hook}", json={"description": "fixed"})
    assert revived.status_code == 200
    assert revived.json()["status"] == "NotStarted"
    assert "error" not in revived.json()["properties"]
    assert len(receiver.wait(2, "challenge")) == 2
    wait_for_hook(server, hook, "Succeeded")
    wait_for_status(server, job_id(server.submit(minimal_submission())))
    receiver.wait(5, "transcriptionCompletion")
    expected = {"transcriptionCompletion": {"delivered": 1, "failed": 2}}
    wait_until(lambda: deliveries(server) == expected)


def test_a_failed_delivery_is_retried(start_emulator: StartEmulator, receiver: Receiver) -> None:
    server = start_emulator(webhook_delivery_attempts=3, webhook_retry_seconds=0.2)
    hook = create(server, hook_body(f"{receiver.url}/flaky"))
    wait_for_hook(server, hook, "Succeeded")
    receiver.failing = True
    wait_for_status(server, job_id(server.submit(minimal_submission())))
    receiver.wait(1, "transcriptionCompletion")
    started = time.monotonic()
    receiver.failing = False  # the first retry, 0.2 s later, gets through
    receiver.wait(2, "transcriptionCompletion")
    assert time.monotonic() - started < 2
    time.sleep(0.5)
    assert len(receiver.received("transcriptionCompletion")) == 2
    expected = {"transcriptionCompletion": {"delivered": 1, "failed": 0}}
    wait_until(lambda: deliveries(server) == expected)
    assert server.call("GET", f"{HOOKS}/{hook}").json()["status"] == "Succeeded"


_GOOD = hook_body("https://example.com/hook")


def _without(name: str) -> dict[str, Any]:
    return {k: v for k, v in _GOOD.items() if k != name}


@pytest.mark.parametrize(
    ("body", "inner"),
    [
        ([1], "InvalidRequestBodyFormat"),
        (_without("displayName"), "InvalidParameterValue"),
        ({**_GOOD, "displayName": " "}, "InvalidParameterValue"),
        ({**_GOOD, "displayName": 3}, "InvalidParameterValue"),
        ({**_GOOD, "description": 3}, "InvalidParameterValue"),
        (_without("webUrl"), "InvalidCallbackUri"),
        ({**_GOOD, "webUrl": "ftp://example.com/x"}, "InvalidCallbackUri"),
        ({**_GOOD, "webUrl": "/relative"}, "InvalidCallbackUri"),
        ({**_GOOD, "webUrl": "https://exa mple.com/x"}, "InvalidCallbackUri"),
        (_without("events"), "InvalidParameterValue"),
        ({**_GOOD, "events": ["transcriptionCompletion"]}, "InvalidParameterValue"),
        ({**_GOOD, "events": {"transcriptionDone": True}}, "InvalidWebHookEventKind"),
        ({**_GOOD, "events": {"transcriptionCompletion": False}}, "InvalidWebHookEventKind"),
        ({**_GOOD, "events": {}}, "InvalidWebHookEventKind"),
        ({**_GOOD, "events": {"ping": "yes"}}, "InvalidParameterValue"),
        ({**_GOOD, "properties": {"secret": 5}}, "InvalidParameterValue"),
        ({**_GOOD, "properties": "secret"}, "InvalidParameterValue"),
        ({**_GOOD, "customProperties": {"k": 1}}, "InvalidParameterValue"),
    ],
)
def test_bad_creations_are_refused(emulator: EmulatorServer, body: Any, inner: str) -> None:
    response = emulator.call("POST", HOOKS, json=body)
    assert_error(response, 400, "InvalidRequest", inner)
    assert emulator.call("GET", HOOKS).json()["values"] == []


def test_request_checks(emulator: EmulatorServer, receiver: Receiver) -> None:
    unknown = emulator.call(
        "POST", HOOKS, json=hook_body(f"{receiver.url}/ok", events={"nope": True})
    )
    assert "nope" in unknown.json()["message"]
    assert all(name in unknown.json()["message"] for name in ("transcriptionCompletion", "ping"))
    assert_error(
        emulator.call("POST", HOOKS, content="{}", headers={"Content-Type": "text/plain"}),
        415,
        "UnsupportedMediaType",
    )
    assert_error(emulator.call("GET", HOOKS, ""), 400, "InvalidRequest", "InvalidParameterValue")
    assert_error(emulator.call("GET", f"{HOOKS}/not-a-uuid"), 404, "NotFound")
    missing = f"{HOOKS}/{NO_SUCH_HOOK}"
    for method, path in (("GET", missing), ("PATCH", missing), ("POST", f"{missing}:test")):
        assert_error(emulator.call(method, path, json={}), 404, "NotFound")
    assert httpx.get(f"{emulator.url}{HOOKS}?api-version=2024-11-15").status_code == 401

    hook = create(emulator, hook_body(f"{receiver.url}/ok"))
    wait_for_hook(emulator, hook, "Succeeded")
    before = emulator.call("GET", f"{HOOKS}/{hook}").json()
    for change, inner in (
        ({"events": {"transcriptionCompletion": False}}, "InvalidWebHookEventKind"),
        ({"events": {"bogus": True}}, "InvalidWebHookEventKind"),
        ({"webUrl": "not a url"}, "InvalidCallbackUri"),
        ({"displayName": ""}, "InvalidParameterValue"),
        ({"displayName": "fine", "properties": []}, "InvalidParameterValue"),
    ):
        refused = emulator.call("PATCH", f"{HOOKS}/{hook}", json=change)
        assert_error(refused, 400, "InvalidRequest", inner)
    merge = emulator.call(
        "PATCH",
        f"{HOOKS}/{hook}",
        content=json.dumps({"events": {"transcriptionCompletion": None}, "displayName": "y"}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert_error(merge, 400, "InvalidRequest", "InvalidWebHookEventKind")
    assert emulator.call("GET", f"{HOOKS}/{hook}").json() == before  # nothing half-applied

    # The spec's events are all accepted (those the emulator never raises included).
    everything = emulator.call(
        "POST", HOOKS, json=hook_body(f"{receiver.url}/ok", events=dict.fromkeys(EVENT_NAMES, True))
    )
    assert everything.status_code == 201, everything.text
    spec_events = SpeechSpec.load(VERSIONS[0]).definitions["WebHookEvents"]["properties"]
    assert set(EVENT_NAMES) == set(spec_events)


def test_batch_faults_apply_and_reset_clears_hooks(
    start_emulator: StartEmulator, receiver: Receiver
) -> None:
    server = start_emulator(quota_enabled=True, quota_requests=3)
    hook = create(server, hook_body(f"{receiver.url}/ok"))
    assert server.call("GET", f"{HOOKS}/{hook}").status_code == 200
    assert server.call("GET", HOOKS).status_code == 200
    throttled = server.call("GET", HOOKS)
    assert_error(throttled, 429, "TooManyRequests")
    assert "Retry-After" in throttled.headers
    server.admin("PUT", "/admin/faults", json={"quota_enabled": False, "error_rate": 1.0})
    assert server.call("POST", f"{HOOKS}/{hook}:ping").status_code in (500, 503)
    server.admin("PUT", "/admin/faults", json={"error_rate": 0.0})
    wait_for_hook(server, hook, "Succeeded")

    assert server.admin("POST", "/admin/reset").status_code == 200
    assert server.call("GET", HOOKS).json()["values"] == []
    assert_error(server.call("GET", f"{HOOKS}/{hook}"), 404, "NotFound")
    assert server.admin("GET", "/admin/stats").json()["webhookChallenges"] == {
        "succeeded": 0,
        "failed": 0,
    }


@contextlib.contextmanager
def serve_tls(app: Any, certfile: Path, keyfile: Path) -> Iterator[str]:
    """``app`` over HTTPS on 127.0.0.1 (uvicorn in a thread); yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        ws="none",
        ssl_certfile=str(certfile),
        ssl_keyfile=str(keyfile),
        # The emulators' pooled connections may outlive the test; do not wait for them.
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    wait_until(lambda: server.started)
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_https_receiver_with_a_local_ca(
    start_emulator: StartEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, cert_file, key_file = (tmp_path / n for n in ("ca.pem", "cert.pem", "key.pem"))
    ca.cert_pem.write_to_path(str(ca_file))
    leaf.private_key_pem.write_to_path(str(key_file))
    for blob in leaf.cert_chain_pems:
        blob.write_to_path(str(cert_file), append=True)
    hooks = Receiver()
    with serve_tls(hooks.app(), cert_file, key_file) as url:
        # Without the CA the certificate cannot be verified: the challenge fails.
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        untrusting = start_emulator(webhook_retry_seconds=0.01)
        refused = create(untrusting, hook_body(f"{url}/ok"))
        error = wait_for_hook(untrusting, refused, "Failed")["properties"]["error"]
        assert "ConnectError" in error["message"]
        assert not hooks.calls

        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        trusting = start_emulator()
        accepted = create(trusting, hook_body(f"{url}/ok"))
        wait_for_hook(trusting, accepted, "Succeeded")
        assert [c.event for c in hooks.calls] == ["challenge"]

    missing = tmp_path / "missing.pem"
    context = trust_store(None, {"REQUESTS_CA_BUNDLE": str(missing), "SSL_CERT_FILE": ""})
    assert context.cert_store_stats()["x509_ca"] > 0  # certifi's roots, the bad file skipped
