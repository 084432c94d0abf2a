"""The actions' HTTP adapter in-process: suffix parsing, error shapes, the UI's redirect.

The handlers run in a Starlette app mounted as the functions mount them, over a real
ledger and containers on the offline stack; versions are put into the states a test needs
with the ledger's own moves, so nothing here waits for a transcription.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from local.stack import StackInfo
from shared.app_context import build_context
from shared.http.actions import retry_many, transcription_action
from shared.pipeline.ledger.keys import SourceRef
from shared.pipeline.ledger.records import SourceKind, SourceState, source_fields
from tests.pipeline.conftest import (
    FIXTURES,
    EmulatorAdmin,
    Pipeline,
    speech_settings,
    stack_settings,
)

#: Real audio: a re-run of a version that never reached a queue checks it again.
WAV = (FIXTURES / "silence-1s.wav").read_bytes()


@pytest_asyncio.fixture
async def pipeline(local_stack: StackInfo) -> AsyncIterator[Pipeline]:
    """A ledger and containers of its own, as ``tests/pipeline`` builds them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REQUESTS_CA_BUNDLE", local_stack.env["REQUESTS_CA_BUNDLE"])
        settings = stack_settings(local_stack, retry_max_per_call=5)
        ctx = await asyncio.to_thread(
            build_context, settings, speech_settings=speech_settings(local_stack)
        )
        admin = EmulatorAdmin(local_stack.speech_url)
        built = Pipeline(ctx, local_stack, admin)
        await ctx.storage.ensure_container(settings.input_container)
        try:
            yield built
        finally:
            await built.close()
            await admin.aclose()


@pytest_asyncio.fixture
async def client(pipeline: Pipeline) -> AsyncIterator[httpx.AsyncClient]:
    """The two handlers on their routes, called in-process."""
    ctx = pipeline.ctx

    async def action(request: Request) -> Response:
        return await transcription_action(request, ctx, request.path_params["path"])

    async def many(request: Request) -> Response:
        return await retry_many(request, ctx)

    app = Starlette(
        routes=[
            Route("/api/transcriptions/{path:path}", action, methods=["POST"]),
            Route("/api/retry", many, methods=["POST"]),
        ]
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        yield http


async def version(pipeline: Pipeline, name: str, state: SourceState) -> str:
    """Upload ``name`` and put its row in ``state`` (Received, or a terminal state)."""
    await pipeline.upload(name, WAV)
    container = pipeline.settings.input_container
    blob = await pipeline.ctx.storage.get_properties(container, name)
    assert blob is not None
    ref = SourceRef(container, name, blob.etag)
    now = dt.datetime.now(dt.UTC)
    claim = await pipeline.ctx.ledger.claim_source(
        ref,
        kind=SourceKind.AUDIO,
        now=now,
        stale_after=dt.timedelta(minutes=10),
        max_attempts=3,
        extra=source_fields(output_container=pipeline.settings.output_container, output_base=name),
    )
    assert claim is not None
    if state is not SourceState.RECEIVED:
        closed = await pipeline.ctx.ledger.close_source(
            ref, state=state, now=now, code="TestFailure", message="made to fail by the test"
        )
        assert closed is not None
    return blob.etag


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    return error


async def test_the_action_is_whatever_follows_the_last_colon(
    pipeline: Pipeline, client: httpx.AsyncClient
) -> None:
    etag = await version(pipeline, "talks/2024:keynote.wav", SourceState.FAILED)

    response = await client.post("/api/transcriptions/talks/2024:keynote.wav:retry")

    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["path"], body["etag"], body["state"]) == ("talks/2024:keynote.wav", etag, "Queued")
    assert "error" not in body
    assert body["events"][-1]["event"] == "RetryRequested"


@pytest.mark.parametrize("path", ["a.wav", "a.wav:delete", "a.wav:", ":retry", "/:cancel"])
async def test_a_path_without_a_known_action_is_a_400_naming_the_path(
    client: httpx.AsyncClient, path: str
) -> None:
    error = error_of(await client.post(f"/api/transcriptions/{path}"), 400)

    assert error["code"] == "InvalidParameter"
    assert error["parameter"] == "path"


async def test_an_unknown_path_or_version_is_a_404(
    pipeline: Pipeline, client: httpx.AsyncClient
) -> None:
    await version(pipeline, "known.wav", SourceState.FAILED)

    unknown_path = error_of(await client.post("/api/transcriptions/nobody.wav:cancel"), 404)
    unknown_version = error_of(
        await client.post("/api/transcriptions/known.wav:retry", params={"etag": "0x8D0"}), 404
    )

    assert unknown_path["code"] == unknown_version["code"] == "NotFound"
    assert unknown_path["path"] == "nobody.wav"
    assert unknown_version["etag"] == "0x8D0"


async def test_a_state_that_does_not_allow_the_action_is_a_409_naming_it(
    pipeline: Pipeline, client: httpx.AsyncClient
) -> None:
    await version(pipeline, "arriving.wav", SourceState.RECEIVED)
    await version(pipeline, "failed.wav", SourceState.FAILED)

    rerun = error_of(await client.post("/api/transcriptions/arriving.wav:retry"), 409)
    cancel_intake = error_of(await client.post("/api/transcriptions/arriving.wav:cancel"), 409)
    cancel_failed = error_of(await client.post("/api/transcriptions/failed.wav:cancel"), 409)

    assert (rerun["code"], rerun["state"]) == ("InvalidState", "Received")
    assert "Failed" in rerun["message"]
    assert cancel_intake["code"] == "Busy"
    assert cancel_intake["retryable"] is True
    assert "being taken in; try again in a moment" in cancel_intake["message"]
    assert (cancel_failed["code"], cancel_failed["state"]) == ("InvalidState", "Failed")


async def test_redirect_ui_answers_303_to_the_files_page_with_the_key(
    pipeline: Pipeline, client: httpx.AsyncClient
) -> None:
    await version(pipeline, "dir/a b.wav", SourceState.CANCELLED)

    response = await client.post(
        "/api/transcriptions/dir/a b.wav:retry", params={"redirect": "ui", "code": "k3y/+="}
    )
    wrong = error_of(
        await client.post("/api/transcriptions/dir/a b.wav:retry", params={"redirect": "html"}),
        400,
    )

    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/api/ui/files/dir/a%20b.wav?code=k3y%2F%2B%3D"
    rows = await pipeline.ctx.ledger.sources_for_path(
        pipeline.settings.input_container, "dir/a b.wav"
    )
    assert rows[0].state is SourceState.QUEUED
    assert wrong["parameter"] == "redirect"


async def test_a_bulk_rerun_says_what_it_did_and_refuses_bad_parameters(
    pipeline: Pipeline, client: httpx.AsyncClient
) -> None:
    await version(pipeline, "bulk/a.wav", SourceState.FAILED)
    await version(pipeline, "bulk/b.wav", SourceState.SUPERSEDED)
    await version(pipeline, "other/c.wav", SourceState.FAILED)

    done = await client.post("/api/retry", params={"state": "Failed", "prefix": "bulk/"})
    bad_state = error_of(await client.post("/api/retry", params={"state": "Succeeded"}), 400)
    no_state = error_of(await client.post("/api/retry"), 400)
    too_many = error_of(
        await client.post("/api/retry", params={"state": "Failed", "limit": "6"}), 400
    )

    assert done.status_code == 202, done.text
    assert done.json() == {"requeued": 1, "skipped": [], "continuation": None}
    assert bad_state["parameter"] == no_state["parameter"] == "state"
    assert "Cancelled, Failed, Superseded" in bad_state["message"]
    assert too_many["parameter"] == "limit"
    assert "5" in too_many["message"]


async def test_a_bulk_rerun_from_the_page_goes_back_to_the_filtered_list(
    pipeline: Pipeline, client: httpx.AsyncClient
) -> None:
    await version(pipeline, "bulk/a.wav", SourceState.FAILED)

    response = await client.post(
        "/api/retry",
        params={"state": "Failed", "prefix": "bulk/", "redirect": "ui", "code": "k3y"},
    )

    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/api/ui?code=k3y&state=Failed&prefix=bulk%2F"
    rows = await pipeline.ctx.ledger.sources_for_path(
        pipeline.settings.input_container, "bulk/a.wav"
    )
    assert rows[0].state is SourceState.QUEUED
