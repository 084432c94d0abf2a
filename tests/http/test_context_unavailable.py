"""Every HTTP function answers JSON when the app cannot build (or use) its context.

The functions of the real ``function_app.app`` are mounted by their own routes in a
Starlette app, as the Functions host mounts them; an app exception becomes Starlette's
plain-text 500, as the worker's does, so a route that lets the failure escape is caught.
The context build fails the ways it does in production: a managed identity that cannot
get a token (``ClientAuthenticationError``), settings that do not validate.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from function_app import app as function_app
from shared import app_context
from tests.support.scripted import Recorded, Reply, ScriptedApp
from tests.support.server import free_port, serve

#: Looks like what an Azure SDK message may quote: the identity header, a token, a SAS.
IDENTITY_SECRET = "identity-header-secret-5f0c9a7e21"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJzdG9yYWdlIn0.c2lnbmF0dXJl"
SAS = "sig=c2FzLXNpZ25hdHVyZS1zZWNyZXQ%3D"
SECRETS = (IDENTITY_SECRET, TOKEN, SAS, "c2lnbmF0dXJl", "c2FzLXNpZ25hdHVyZS1zZWNyZXQ")
SDK_MESSAGE = (
    "DefaultAzureCredential failed to retrieve a token from the included credentials.\n"
    f"ManagedIdentityCredential: X-IDENTITY-HEADER {IDENTITY_SECRET} refused; "
    f"last token {TOKEN}; https://account.blob.core.windows.net/c/b?{SAS}"
)


def _http_functions() -> list[tuple[str, str, str, Callable[..., Any]]]:
    """(name, method, route template, user callable) of every HTTP function of the app."""
    found = []
    # get_functions() indexes the app and may be called only once per process.
    for function in function_app.get_functions():
        trigger = function.get_trigger()
        if type(trigger).__name__ == "HttpTrigger":
            method = str(getattr(trigger.methods[0], "value", trigger.methods[0]))
            name = function.get_function_name()
            found.append((name, method, str(trigger.route), function.get_user_function()))
    return found


HTTP_FUNCTIONS = _http_functions()
ROUTES = [(name, method, route) for name, method, route, _ in HTTP_FUNCTIONS]


def _url(route: str) -> str:
    """A concrete URL for a route template (``{*path}`` -> a nested path)."""
    return "/api/" + re.sub(r"\{\*?(\w+)\??\}", "calls/2026/meeting.wav", route)


def _mounted() -> Starlette:
    """Each HTTP function's user callable at its route, with Starlette's Request."""
    routes = []
    for _, method, route, user in HTTP_FUNCTIONS:

        async def endpoint(request: Request, user: Callable[..., Any] = user) -> Response:
            response: Response = await user(request)
            return response

        path = "/api/" + re.sub(r"\{\*(\w+)\}", r"{\1:path}", route)
        routes.append(Route(path, endpoint, methods=[method]))
    return Starlette(routes=routes)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The app's HTTP functions, answering as the worker would (a plain 500 on a crash)."""
    transport = httpx.ASGITransport(app=_mounted(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://functions") as http:
        yield http


@pytest.fixture
def fresh_context(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No context built yet, storage settings only from this test; forgotten afterwards."""
    assert app_context._context is None, "another test left a context behind"
    for name in list(os.environ):
        if name.lower().startswith("audiostorage"):
            monkeypatch.delenv(name)
    yield
    # Only fakes are ever stored by these tests: nothing to close.
    app_context._context = None


@pytest.fixture
def builds(fresh_context: None, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The context build fails as a managed identity without a token does; calls recorded."""
    monkeypatch.setenv("AudioStorage", "UseDevelopmentStorage=true")
    calls: list[str] = []

    def failing_build(settings: Any, **kwargs: Any) -> Any:
        calls.append("build")
        raise ClientAuthenticationError(SDK_MESSAGE)

    monkeypatch.setattr(app_context, "build_context", failing_build)
    return calls


def _refuse(request: Recorded) -> Reply:
    """An App Service identity endpoint that has no such identity (and echoes its secret)."""
    echoed = request.headers.get("x-identity-header", "")
    return Reply(400, {"statusCode": 400, "message": f"Unable to load identity {echoed}"})


def _broken_identity_settings(identity_url: str) -> dict[str, str]:
    """App settings of an identity-based app whose identity endpoint refuses it."""
    closed = f"https://127.0.0.1:{free_port()}/devstoreaccount1"
    return {
        "IDENTITY_ENDPOINT": f"{identity_url}/msi/token",
        "IDENTITY_HEADER": IDENTITY_SECRET,
        "AudioStorage__blobServiceUri": closed,
        "AudioStorage__tableServiceUri": closed,
        "SPEECH_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "STORAGE_RETRY_TOTAL": "0",
    }


#: Environment variables that would give the app some other identity or storage.
FOREIGN = ("AZURE_", "MSI_", "IDENTITY_", "IMDS_", "AudioStorage", "AzureWebJobs", "SPEECH_")


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json", response.text
    for secret in SECRETS:
        assert secret not in response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


#: The HTTP functions that answer HTML (the status page), errors included.
PAGES = frozenset({"ui", "ui_file"})


def test_every_http_function_is_covered() -> None:
    names = {name for name, _, _ in ROUTES}
    assert names == {
        "recognize",
        "transcribe",
        "transcriptions",
        "transcription",
        "health",
        "speech_webhooks",
        "transcription_action",
        "retry_many",
        "stats",
        "ui",
        "ui_file",
    }


@pytest.mark.parametrize(("name", "method", "route"), ROUTES, ids=lambda v: str(v))
async def test_every_route_answers_503_when_the_identity_fails(
    client: httpx.AsyncClient, builds: list[str], name: str, method: str, route: str
) -> None:
    response = await client.request(
        method,
        _url(route),
        params={"language": "en-US", "locale": "en-US"},
        content=b"RIFF" if method == "POST" else None,
        headers={"Content-Type": "audio/wav"} if method == "POST" else {},
    )
    if name in PAGES:
        # Pages for people answer a page: the same problem, as HTML, and no secret either.
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("text/html"), response.text
        for secret in SECRETS:
            assert secret not in response.text
        assert "managed identity" in response.text
        assert builds == ["build"]
        return
    error = _problem(response, 503, "IdentityUnavailable")
    for what in ("managed identity", "AudioStorage__clientId", "IDENTITY_ENDPOINT"):
        assert what in error["hint"], error
    assert error["retryable"] is True
    assert error["cause"] == "ClientAuthenticationError"
    assert builds == ["build"]


async def test_health_keeps_its_shape_and_says_what_failed(
    client: httpx.AsyncClient, builds: list[str]
) -> None:
    response = await client.get("/api/health")
    _problem(response, 503, "IdentityUnavailable")
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"] == {"settings": "ok", "ledger": "unreachable (IdentityUnavailable)"}
    assert body["speechEndpoint"] is None


async def test_a_failed_build_is_retried_and_a_good_one_kept(
    client: httpx.AsyncClient, builds: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await client.get("/api/health")).status_code == 503
    assert (await client.get("/api/health")).status_code == 503
    assert builds == ["build", "build"], "each call tries again"

    async def get_job(job_id: str) -> None:
        return None

    healthy = SimpleNamespace(
        settings=SimpleNamespace(ledger_table="ledger"),
        ledger=SimpleNamespace(get_job=get_job),
        speech=SimpleNamespace(endpoints=SimpleNamespace(batch_base="http://speech/")),
    )

    def recovered_build(settings: Any, **kwargs: Any) -> Any:
        builds.append("recovered")
        return healthy

    monkeypatch.setattr(app_context, "build_context", recovered_build)
    for _ in range(2):
        response = await client.get("/api/health")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "ok"
    assert builds == ["build", "build", "recovered"], "the identity is back: built once"


async def test_invalid_settings_are_named(client: httpx.AsyncClient, fresh_context: None) -> None:
    # No storage setting at all: the real settings loader refuses to build.
    error = _problem(await client.get("/api/transcriptions"), 503, "InvalidSettings")
    assert "AudioStorage__blobServiceUri" in error["message"], error
    health = await client.get("/api/health")
    assert health.status_code == 503
    assert health.json()["checks"] == {"settings": "invalid"}
    assert health.json()["error"]["code"] == "InvalidSettings"


async def test_a_failure_after_the_build_is_json_too() -> None:
    # The context was built, then the identity stopped handing out tokens (or a bug).
    from shared.http.context import with_context

    ctx: Any = SimpleNamespace()

    async def identity_gone(ctx: Any) -> Response:
        raise ClientAuthenticationError(SDK_MESSAGE)

    async def bug(ctx: Any) -> Response:
        raise RuntimeError(f"unexpected, with {TOKEN}")

    app_context._context = ctx
    try:
        gone = await with_context(identity_gone)
        crashed = await with_context(bug)
    finally:
        app_context._context = None
    for response, status, code in (
        (gone, 503, "IdentityUnavailable"),
        (crashed, 500, "InternalError"),
    ):
        assert response.status_code == status
        assert response.headers["content-type"] == "application/json"
        text = bytes(response.body).decode()
        assert f'"code":"{code}"' in text, text
        assert all(secret not in text for secret in SECRETS)


async def test_a_real_identity_that_is_not_assigned_gives_503_without_secrets(
    client: httpx.AsyncClient, fresh_context: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real build, DefaultAzureCredential included, against an identity endpoint that
    # refuses (and echoes the identity header, as no endpoint should).
    identity = ScriptedApp(_refuse)
    with serve(identity) as identity_url:
        for name in list(os.environ):
            if name.startswith(FOREIGN):
                monkeypatch.delenv(name)
        for name, value in _broken_identity_settings(identity_url).items():
            monkeypatch.setenv(name, value)
        response = await asyncio.wait_for(client.get("/api/health"), timeout=60)
    assert identity.requests, "the real credential asked the identity endpoint"
    assert {r.headers.get("x-identity-header") for r in identity.requests} == {IDENTITY_SECRET}
    error = _problem(response, 503, "IdentityUnavailable")
    assert "AudioStorage__clientId" in error["hint"]
    assert response.json()["checks"]["ledger"] == "unreachable (IdentityUnavailable)"


@pytest.mark.stack
def test_through_the_local_functions_host(tmp_path: Path) -> None:
    # The real app in the local functions host (a process of its own), identity refused.
    from tests.host.harness import HostProcess

    app_dir = tmp_path / "app"
    app_dir.mkdir()
    shutil.copy(Path(__file__).resolve().parents[2] / "host.json", app_dir)
    identity = ScriptedApp(_refuse)
    with serve(identity) as identity_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith((*FOREIGN, "LOCAL_"))}
        env.update(
            _broken_identity_settings(identity_url),
            INPUT_CONTAINER="audio-input",
            REQUESTS_CONTAINER="transcription-requests",
            POLL_SCHEDULE="0 0 0 1 1 *",
        )
        host = HostProcess(
            app="function_app:app",
            app_dir=app_dir,
            state_dir=tmp_path / "state",
            env=env,
            log=tmp_path / "host.log",
        ).start()
        try:
            key = {"x-functions-key": host.keys()["function"]}
            with httpx.Client(base_url=host.url, headers=key, timeout=60) as http:
                for name, method, route in ROUTES:
                    response = http.request(
                        method,
                        _url(route),
                        params={"language": "en-US"},
                        content=b"RIFF" if method == "POST" else None,
                    )
                    if name in PAGES:
                        assert response.status_code == 503, response.text
                        assert "managed identity" in response.text
                        assert IDENTITY_SECRET not in response.text
                    else:
                        _problem(response, 503, "IdentityUnavailable")
            # The missing key is the host's own answer, before the app: 401 and no body.
            unkeyed = httpx.get(f"{host.url}/api/health", timeout=10)
            assert (unkeyed.status_code, unkeyed.content) == (401, b"")
        finally:
            host.stop()
    assert identity.requests
    # The app's own log lines are scrubbed (azure-identity's logger and the host's trigger
    # listener quote the endpoint's echo as they please: not the app's to redact).
    records = re.split(r"\n(?=\d{4}-\d\d-\d\d )", host.output())
    ours = [r for r in records if "app context unavailable (IdentityUnavailable)" in r]
    assert len(ours) == len(ROUTES)
    assert all(IDENTITY_SECRET not in record for record in ours)
