"""Retries, error mapping and timeouts, against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING

import httpx
import pytest

from shared.speech.auth import KeyAuth
from shared.speech.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    SpeechConnectionError,
    SpeechError,
    SpeechHTTPError,
    SpeechTimeoutError,
)
from shared.speech.pipeline import Pipeline
from shared.speech.retry import RetryPolicy
from tests.support.scripted import Recorded, Reply
from tests.support.server import free_port

if TYPE_CHECKING:
    from tests.speech.conftest import Scripted, SleepRecorder


KEY = "0123456789abcdef0123456789abcdef"


def sequence(*replies: Reply):  # type: ignore[no-untyped-def]
    """A handler that answers with ``replies`` in order, repeating the last."""
    it = itertools.chain(replies, itertools.repeat(replies[-1]))
    return lambda _req: next(it)


async def test_transient_statuses_are_retried_with_growing_waits(
    scripted: Scripted, http: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    handler = sequence(Reply(503), Reply(502), Reply(200, {"ok": True}))
    with scripted(handler) as (url, app):
        pipe = Pipeline(http, sleep=sleeps, retry=RetryPolicy(backoff_base=1.0))
        response = await pipe.send("GET", url + "/x", auth=KeyAuth(KEY), idempotent=True)
    assert response.json() == {"ok": True}
    assert len(app.requests) == 3
    assert len(sleeps.waits) == 2
    assert 0.75 <= sleeps.waits[0] <= 1.0
    assert 1.5 <= sleeps.waits[1] <= 2.0
    assert all(r.headers["ocp-apim-subscription-key"] == KEY for r in app.requests)


async def test_retry_after_replaces_the_computed_wait(
    scripted: Scripted, http: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    handler = sequence(Reply(429, headers={"Retry-After": "3"}), Reply(200, {}))
    with scripted(handler) as (url, app):
        await Pipeline(http, sleep=sleeps).send("GET", url, auth=None, idempotent=True)
    assert sleeps.waits == [3.0]
    assert len(app.requests) == 2


async def test_a_retry_after_beyond_the_cap_is_raised_not_slept(
    scripted: Scripted, http: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    body = {"code": "TooManyRequests", "message": "quota"}
    handler = sequence(Reply(429, body, headers={"Retry-After": "120"}))
    with scripted(handler) as (url, app):
        pipe = Pipeline(http, sleep=sleeps, retry=RetryPolicy(retry_after_cap=60))
        with pytest.raises(RateLimitError) as info:
            await pipe.send("GET", url, auth=None, idempotent=True)
    assert info.value.retry_after == 120.0
    assert info.value.code == "TooManyRequests"
    assert sleeps.waits == []
    assert len(app.requests) == 1


async def test_attempts_are_bounded_and_the_last_error_is_raised(
    scripted: Scripted, http: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    with scripted(sequence(Reply(500, {"code": "InternalServerError", "message": "boom"}))) as (
        url,
        app,
    ):
        pipe = Pipeline(http, sleep=sleeps, retry=RetryPolicy(max_attempts=4))
        with pytest.raises(ServerError) as info:
            await pipe.send("GET", url, auth=None, idempotent=True)
        assert len(app.requests) == 4
        # A per-call policy overrides the client's.
        with pytest.raises(ServerError):
            await pipe.send(
                "GET", url, auth=None, idempotent=True, retry=RetryPolicy(max_attempts=1)
            )
        assert len(app.requests) == 5
    assert info.value.status_code == 500
    assert "boom" in str(info.value)


@pytest.mark.parametrize("status", [500, 502, 504, 408])
async def test_non_idempotent_requests_are_not_resent_after_processing_errors(
    scripted: Scripted, http: httpx.AsyncClient, sleeps: SleepRecorder, status: int
) -> None:
    with (
        scripted(sequence(Reply(status), Reply(201, {}))) as (url, app),
        pytest.raises(SpeechHTTPError),
    ):
        await Pipeline(http, sleep=sleeps).send("POST", url, auth=None, idempotent=False)
    assert len(app.requests) == 1


@pytest.mark.parametrize("status", [429, 503])
async def test_non_idempotent_requests_are_resent_when_the_service_refused_them(
    scripted: Scripted, http: httpx.AsyncClient, sleeps: SleepRecorder, status: int
) -> None:
    with scripted(sequence(Reply(status), Reply(201, {"ok": 1}))) as (url, app):
        response = await Pipeline(http, sleep=sleeps).send(
            "POST", url, auth=None, idempotent=False, json={"a": 1}
        )
    assert response.status_code == 201
    assert [r.json() for r in app.requests] == [{"a": 1}, {"a": 1}]


async def test_connection_refused_is_retried_then_raised_as_not_sent(
    http: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    url = f"http://127.0.0.1:{free_port()}/x"
    pipe = Pipeline(http, sleep=sleeps, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(SpeechConnectionError) as info:
        await pipe.send("POST", url, auth=None, idempotent=False)
    assert info.value.request_sent is False
    assert len(sleeps.waits) == 2, "a request that never left may be re-sent, even a submit"


async def test_a_read_timeout_after_sending_a_submit_is_not_retried(
    scripted: Scripted, http: httpx.AsyncClient, sleeps: SleepRecorder
) -> None:
    async def slow(_req: Recorded) -> Reply:
        await asyncio.sleep(1.0)
        return Reply(201, {})

    with scripted(slow) as (url, app):
        pipe = Pipeline(http, sleep=sleeps)
        with pytest.raises(SpeechTimeoutError) as info:
            await pipe.send("POST", url, auth=None, idempotent=False, timeout=0.2)
        assert info.value.request_sent is True
        assert len(app.requests) == 1
        # The same timeout on an idempotent GET is retried.
        with pytest.raises(SpeechTimeoutError):
            await pipe.send(
                "GET",
                url,
                auth=None,
                idempotent=True,
                timeout=httpx.Timeout(0.2),
                retry=RetryPolicy(max_attempts=2),
            )
        assert len(app.requests) == 3
    assert isinstance(info.value, SpeechConnectionError)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
        (413, SpeechHTTPError),
    ],
)
async def test_statuses_map_to_one_exception_tree(
    scripted: Scripted, http: httpx.AsyncClient, status: int, cls: type[SpeechHTTPError]
) -> None:
    body = {
        "code": "InvalidRequest",
        "message": "The locale is not supported.",
        "innerError": {
            "code": "InvalidParameterValue",
            "innerError": {"code": "InvalidLocale", "message": "xx-XX"},
        },
    }
    reply = Reply(status, body, headers={"apim-request-id": "req-123"})
    with scripted(lambda _r: reply) as (url, _app):
        pipe = Pipeline(http, retry=RetryPolicy(max_attempts=1))
        with pytest.raises(cls) as info:
            await pipe.send("GET", url, auth=None, idempotent=True)
    err = info.value
    assert type(err) is cls
    assert isinstance(err, SpeechError)
    assert err.status_code == status
    assert err.code == "InvalidRequest"
    assert err.inner_code == "InvalidLocale"
    assert err.request_id == "req-123"
    assert err.message == "The locale is not supported."
    assert str(err) == (
        f"HTTP {status} InvalidRequest/InvalidLocale: The locale is not supported. "
        "(request id req-123)"
    )


async def test_non_json_and_wrapped_error_bodies(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    replies = iter(
        [
            Reply(502, "<html>Bad gateway</html>"),
            Reply(401, {"error": {"code": "401", "message": "Access denied due to invalid key."}}),
        ]
    )
    with scripted(lambda _r: next(replies)) as (url, _app):
        pipe = Pipeline(http, retry=RetryPolicy(max_attempts=1))
        with pytest.raises(ServerError, match="Bad gateway"):
            await pipe.send("GET", url, auth=None, idempotent=True)
        with pytest.raises(AuthenticationError, match="invalid key") as info:
            await pipe.send("GET", url, auth=None, idempotent=True)
    assert info.value.code == "401"
