"""The Speech web hook on the offline stack: registration, the challenge, revival, a delivery.

The receiver is the app's own handler (``shared.http.speech_webhooks``) served by uvicorn on
loopback in the test's event loop, with the test's app context: the emulator registers,
challenges and delivers to it over real HTTP, signed with the app's secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest_asyncio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from shared.http.speech_webhooks import speech_webhook
from shared.pipeline.claims import IntakeStatus
from shared.pipeline.intake import handle_audio_blob
from shared.pipeline.ledger.records import SourceState
from shared.pipeline.poller import poll_once
from shared.pipeline.speech_hook import HOOK_NAME, ensure_hook, hooks_healthy
from tests.pipeline.conftest import Pipeline
from tests.support.server import free_port

SECRET = "offline-test-secret-0123456789"


class Receiver:
    """Where the emulator delivers: the app's handler, or a wrong answer to the challenge."""

    def __init__(self) -> None:
        self.ctx: Any = None
        self.wrong_challenge = False
        self.calls: list[tuple[str, int]] = []

    async def handle(self, request: Request) -> Response:
        event = request.headers.get("x-microsoftspeechservices-event", "")
        if self.wrong_challenge and "validationToken" in request.query_params:
            response: Response = PlainTextResponse("not the token")
        else:
            response = await speech_webhook(request, self.ctx)
        self.calls.append((event, response.status_code))
        return response


@pytest_asyncio.fixture
async def hooked(
    make_pipeline: Callable[..., Awaitable[Pipeline]],
) -> AsyncIterator[tuple[Pipeline, Receiver]]:
    receiver = Receiver()
    port = free_port()
    app = Starlette(
        routes=[Route("/api/speech/webhooks", receiver.handle, methods=["GET", "POST"])]
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn's Server offers no started event)
        await asyncio.sleep(0.02)
    pipeline = await make_pipeline(
        speech_webhooks=True,
        speech_webhook_secret=SECRET,
        speech_webhook_url=f"http://127.0.0.1:{port}/api/speech/webhooks",
        webhook_check_seconds=1,
        # Without the hook a job would not be polled for a minute after its submission.
        poll_min_interval_seconds=60,
        poll_max_interval_seconds=120,
    )
    receiver.ctx = pipeline.ctx
    try:
        yield pipeline, receiver
    finally:
        with contextlib.suppress(Exception):
            async for hook in pipeline.ctx.speech.webhooks.list_webhooks():
                if hook.id:
                    await pipeline.ctx.speech.webhooks.delete_webhook(hook.id, missing_ok=True)
        server.should_exit = True
        await task


async def check_until(pipeline: Pipeline, action: str, *, timeout: float = 20) -> list[str]:
    """Run checks, a check interval apart, until one reports ``action``; the actions seen."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    now = dt.datetime.now(dt.UTC)
    while time.monotonic() < deadline:
        now += dt.timedelta(seconds=2)
        check = await ensure_hook(pipeline.ctx, now=now)
        seen.append(check.action)
        if check.action == action:
            return seen
        await asyncio.sleep(0.3)
    raise AssertionError(f"no {action!r} within {timeout} s: {seen}")


async def test_the_hook_is_registered_challenged_and_announces_a_finished_job(
    hooked: tuple[Pipeline, Receiver],
) -> None:
    pipeline, receiver = hooked
    assert (await ensure_hook(pipeline.ctx)).action == "registered"
    assert (await ensure_hook(pipeline.ctx)).action == "skipped", "one check per interval"
    await check_until(pipeline, "healthy")
    assert ("challenge", 200) in receiver.calls
    hooks = [h async for h in pipeline.ctx.speech.webhooks.list_webhooks()]
    assert [h.display_name for h in hooks] == [HOOK_NAME]
    assert await hooks_healthy(pipeline.ctx)

    name = await pipeline.upload_fixture("sentence-08.wav")
    container = pipeline.settings.input_container
    assert (await handle_audio_blob(pipeline.ctx, container, name)).status is IntakeStatus.QUEUED
    assert (await pipeline.submit()).jobs == 1
    job_id = await pipeline.job_of(name)

    deadline = time.monotonic() + 60
    while ("transcriptionCompletion", 200) not in receiver.calls:
        assert time.monotonic() < deadline, f"no delivery: {receiver.calls}"
        await asyncio.sleep(0.2)
    job = await pipeline.ctx.ledger.get_job(job_id)
    assert job is not None
    assert job.next_poll_at <= dt.datetime.now(dt.UTC), "the delivery made the job due"
    summary = await poll_once(pipeline.ctx)
    assert summary.succeeded == 1, summary
    rows = await pipeline.ctx.ledger.sources_for_path(container, name)
    assert rows[0].state is SourceState.SUCCEEDED
    assert await pipeline.output(f"{name}.json") is not None


async def test_a_job_under_a_healthy_hook_is_polled_at_the_backstop_pace(
    hooked: tuple[Pipeline, Receiver],
) -> None:
    pipeline, _ = hooked
    await ensure_hook(pipeline.ctx)
    await check_until(pipeline, "healthy")
    await pipeline.admin.faults(job_start_delay_seconds=30)
    name = await pipeline.upload_fixture("sentence-09.wav")
    await handle_audio_blob(pipeline.ctx, pipeline.settings.input_container, name)
    await pipeline.submit()
    job_id = await pipeline.job_of(name)
    job = await pipeline.ctx.ledger.get_job(job_id)
    assert job is not None
    later = job.next_poll_at + dt.timedelta(seconds=1)
    summary = await poll_once(pipeline.ctx, now=later)
    assert summary.running == 1
    polled = await pipeline.ctx.ledger.get_job(job_id)
    assert polled is not None
    assert polled.poll_interval_seconds == pipeline.settings.webhook_poll_interval_seconds


async def test_a_failed_hook_is_reenabled_then_replaced(
    hooked: tuple[Pipeline, Receiver],
) -> None:
    pipeline, receiver = hooked
    receiver.wrong_challenge = True
    first = await ensure_hook(pipeline.ctx)
    assert first.action == "registered"
    # The emulator challenges, gets the wrong answer and marks the hook Failed; the next
    # check tries an update (which challenges again), the one after replaces the hook.
    seen = await check_until(pipeline, "reenabled")
    seen += await check_until(pipeline, "replaced")
    replaced = await pipeline.ctx.ledger.get_hook()
    assert replaced.hook_id != first.hook_id
    assert "Challenge response payload" in (replaced.message or ""), replaced
    receiver.wrong_challenge = False
    await check_until(pipeline, "reenabled")
    await check_until(pipeline, "healthy")
    hooks = [h async for h in pipeline.ctx.speech.webhooks.list_webhooks()]
    assert len(hooks) == 1, "the replaced hook is gone"
