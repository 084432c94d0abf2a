"""The retry policy's arithmetic: backoff, jitter, Retry-After parsing and caps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from shared.speech.retry import RetryPolicy, parse_retry_after, request_not_sent


def test_backoff_doubles_and_is_capped_with_up_to_25_percent_jitter() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_max=5.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)]:
        waits = [policy.backoff(attempt) for _ in range(200)]
        assert all(0.75 * ceiling <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1, "jitter must vary the wait"


@pytest.mark.parametrize(
    ("hint", "expected"),
    [(3.0, 3.0), (0.0, 0.0), (60.0, 60.0), (61.0, None)],
)
def test_retry_after_is_honoured_up_to_the_cap(hint: float, expected: float | None) -> None:
    assert RetryPolicy(retry_after_cap=60.0).wait(1, hint) == expected


@pytest.mark.parametrize(
    ("status", "idempotent", "retried"),
    [
        (408, True, True),
        (429, True, True),
        (500, True, True),
        (502, True, True),
        (503, True, True),
        (504, True, True),
        (400, True, False),
        (401, True, False),
        (404, True, False),
        (409, True, False),
        # submit: only "not processed" answers may be re-sent.
        (429, False, True),
        (503, False, True),
        (500, False, False),
        (502, False, False),
        (504, False, False),
        (408, False, False),
    ],
)
def test_which_statuses_retry(status: int, idempotent: bool, retried: bool) -> None:
    assert RetryPolicy().retries_status(status, idempotent=idempotent) is retried


def test_retry_after_forms() -> None:
    now = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)
    later = now + timedelta(seconds=42)
    http_date = later.strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(httpx.Headers({"Retry-After": "7"})) == 7.0
    assert parse_retry_after(httpx.Headers({"Retry-After": "1.5"})) == 1.5
    assert parse_retry_after(httpx.Headers({"Retry-After": http_date}), now=now) == 42.0
    past = (now - timedelta(minutes=5)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(httpx.Headers({"Retry-After": past}), now=now) == 0.0
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "250"})) == 0.25
    assert parse_retry_after(httpx.Headers({"x-ms-retry-after-ms": "1000"})) == 1.0
    assert parse_retry_after(httpx.Headers({"Retry-After": "soon"})) is None
    assert parse_retry_after(httpx.Headers({})) is None


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="backoff"):
        RetryPolicy(backoff_base=-1)


def test_only_connect_failures_prove_the_request_was_not_sent() -> None:
    assert request_not_sent(httpx.ConnectError("refused"))
    assert request_not_sent(httpx.ConnectTimeout("slow"))
    assert request_not_sent(httpx.PoolTimeout("busy"))
    assert not request_not_sent(httpx.ReadTimeout("late"))
    assert not request_not_sent(httpx.RemoteProtocolError("closed"))
