"""``GET /api/stats`` in-process: the blueprint's function, ``with_context``, a real ledger.

The function of ``functions/stats.py`` is mounted at its route in a Starlette app, as the
Functions host mounts it, with the process context pointing at a ledger in Azurite.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import azure.functions as func
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from functions import stats as stats_blueprint
from local.stack import StackInfo
from shared import app_context
from shared.app_context import AppContext, build_context
from shared.pipeline.ledger.keys import SourceRef
from shared.pipeline.ledger.records import SourceKind, SourceState, source_fields
from tests.pipeline.conftest import speech_settings, stack_settings


def _stats_function() -> tuple[str, Callable[..., Any]]:
    """The blueprint's route and user function, as the host indexes them."""
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(stats_blueprint.bp)
    (function,) = app.get_functions()
    assert function.get_function_name() == "stats"
    trigger: Any = function.get_trigger()
    assert [str(getattr(m, "value", m)) for m in trigger.methods] == ["GET"]
    return str(trigger.route), function.get_user_function()


@pytest.fixture
async def ctx(local_stack: StackInfo, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AppContext]:
    """The process context on a fresh ledger with prices set; forgotten afterwards."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", local_stack.env["REQUESTS_CA_BUNDLE"])
    settings = stack_settings(
        local_stack, price_per_audio_hour_batch=0.36, price_per_audio_hour_fast=1.2
    )
    context = await asyncio.to_thread(
        build_context, settings, speech_settings=speech_settings(local_stack)
    )
    assert app_context._context is None, "another test left a context behind"
    app_context._context = context
    try:
        yield context
    finally:
        app_context._context = None
        await asyncio.to_thread(context.table_service.delete_table, settings.ledger_table)
        await context.aclose()


@pytest.fixture
async def client(ctx: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    route, user = _stats_function()

    async def endpoint(request: Request) -> Response:
        response: Response = await user(request)
        return response

    app = Starlette(routes=[Route(f"/api/{route}", endpoint, methods=["GET"])])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://functions") as http:
        yield http


#: When the seeded files were uploaded and settled.
AGO = dt.timedelta(minutes=30)


async def _settle(ctx: AppContext, path: str, state: SourceState | None, **fields: Any) -> None:
    now = dt.datetime.now(dt.UTC) - AGO
    claim = await ctx.ledger.claim_source(
        SourceRef(ctx.settings.input_container, path, "0x1"),
        kind=SourceKind.AUDIO,
        now=now,
        stale_after=dt.timedelta(minutes=10),
        max_attempts=3,
    )
    assert claim is not None
    if state is not None:
        await ctx.ledger.resolve_claim(claim, source_fields(state=state, now=now, **fields))


async def test_stats_shape(ctx: AppContext, client: httpx.AsyncClient) -> None:
    await _settle(ctx, "calls/a.wav", SourceState.SUCCEEDED, route="fast", audio_seconds=1800.0)
    await _settle(ctx, "calls/b.wav", SourceState.REJECTED, error_code="NotAudio")
    await _settle(ctx, "stuck.wav", None)  # still Received: the oldest wait
    settled_on = (dt.datetime.now(dt.UTC) - AGO).date().isoformat()

    response = await client.get("/api/stats", params={"days": "7"})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert sorted(body) == ["oldestWaiting", "states", "usage"]
    assert body["states"] == {
        state.value: {"Succeeded": 1, "Rejected": 1, "Received": 1}.get(state.value, 0)
        for state in SourceState
    }
    waiting = body["oldestWaiting"]
    assert sorted(waiting) == ["ageSeconds", "container", "etag", "path", "since", "state"]
    assert (waiting["path"], waiting["state"]) == ("stuck.wav", "Received")
    assert waiting["ageSeconds"] >= 1800
    usage = body["usage"]
    assert sorted(usage) == ["currency", "days", "prefixes", "pricePerHour", "total"]
    assert usage["currency"] == "USD"
    assert usage["pricePerHour"] == {"batch": 0.36, "fast": 1.2}
    assert len(usage["days"]) == 7
    assert usage["days"][-1]["day"] == dt.datetime.now(dt.UTC).date().isoformat()
    (today,) = [day for day in usage["days"] if day["day"] == settled_on]
    assert sorted(today) == ["audioHours", "audioSeconds", "cost", "day", "files"]
    assert today["files"]["Succeeded"] == 1
    assert today["audioSeconds"] == {"batch": 0.0, "fast": 1800.0}
    assert today["cost"] == pytest.approx(0.6)
    assert usage["prefixes"][0]["prefix"] == "calls/"
    assert sorted(usage["total"]) == [
        "audioHours",
        "audioSeconds",
        "cost",
        "files",
        "monthEstimate",
    ]
    assert usage["total"]["monthEstimate"] == pytest.approx(18.0)

    assert len((await client.get("/api/stats")).json()["usage"]["days"]) == 30, "default"


@pytest.mark.parametrize("days", ["0", "367", "week"])
async def test_a_bad_days_is_named(client: httpx.AsyncClient, days: str) -> None:
    response = await client.get("/api/stats", params={"days": days})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "InvalidParameter"
    assert "'days'" in error["message"]
