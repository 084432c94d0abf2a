"""HTTP triggers on the local host: keys, routes, HTTP streams, classic functions, status."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.host.conftest import SampleHost
from tests.host.harness import peak_rss_bytes, reset_peak_rss, wait_for

MIB = 1024 * 1024


def test_health_is_open(sample_host: SampleHost) -> None:
    response = httpx.get(f"{sample_host.url}/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}


@pytest.mark.parametrize(
    ("route", "key", "status"),
    [
        ("items/7", None, 401),
        ("items/7", "wrong", 401),
        ("items/7", "function", 200),
        ("items/7", "master", 200),
        ("admin-only", None, 401),
        ("admin-only", "function", 401),
        ("admin-only", "master", 200),
        ("open", None, 200),
        ("open", "wrong", 200),
    ],
)
@pytest.mark.parametrize("where", ["header", "query"])
def test_auth_levels(
    sample_host: SampleHost, route: str, key: str | None, status: int, where: str
) -> None:
    value = {"function": sample_host.function_key, "master": sample_host.master_key}.get(
        key or "", key
    )
    headers = {"x-functions-key": value} if value and where == "header" else {}
    params = {"code": value} if value and where == "query" else {}
    response = httpx.get(f"{sample_host.url}/api/{route}", headers=headers, params=params)
    assert response.status_code == status
    if status == 401:
        assert response.content == b""


def test_keys_never_reach_the_log(sample_host: SampleHost) -> None:
    key = sample_host.function_key
    assert httpx.get(f"{sample_host.url}/api/items/1", params={"code": key}).status_code == 200
    # The host logs the request once the response has gone out: wait for the line.
    output = wait_for(
        lambda: (
            (text := sample_host.process.output()) and "GET /api/items/1 -> 200" in text and text
        ),
        what="the request's log line",
    )
    assert key not in output
    assert sample_host.master_key not in output


def test_route_parameters_constraints_and_catch_all(sample_host: SampleHost) -> None:
    headers = {"x-functions-key": sample_host.function_key}
    echo = httpx.post(f"{sample_host.url}/api/ITEMS/42/?a=b", headers=headers)
    assert echo.status_code == 200
    body = echo.json()
    assert body["id"] == "42"
    assert body["method"] == "POST"
    assert body["query"] == {"a": "b"}
    assert body["request_type"] == "starlette.requests.Request"  # FastAPI's Request is this
    assert httpx.get(f"{sample_host.url}/api/items/abc", headers=headers).status_code == 404
    assert httpx.delete(f"{sample_host.url}/api/items/1", headers=headers).status_code == 404
    assert httpx.get(f"{sample_host.url}/api/nothing-here").status_code == 404
    assert httpx.get(f"{sample_host.url}/items/1", headers=headers).status_code == 404

    deep = httpx.get(f"{sample_host.url}/api/files/a/b/c%20d.txt")
    assert deep.json() == {"path": "a/b/c d.txt"}
    assert httpx.get(f"{sample_host.url}/api/files").json() == {"path": None}


def test_plain_return_values_are_json(sample_host: SampleHost) -> None:
    response = httpx.get(f"{sample_host.url}/api/open")
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"open": True}


def test_classic_functions_get_a_buffered_http_request(sample_host: SampleHost) -> None:
    response = httpx.post(
        f"{sample_host.url}/api/classic/ada",
        content=b"lovelace",
        headers={"x-functions-key": sample_host.function_key},
    )
    assert response.status_code == 201
    assert response.text == "hello ada lovelace"
    assert response.headers["x-classic"] == "1"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert "mixes HTTP-stream functions" in sample_host.process.output()


def test_sync_functions_run_in_the_thread_pool_with_a_context(sample_host: SampleHost) -> None:
    body = httpx.get(
        f"{sample_host.url}/api/context", params={"code": sample_host.function_key}
    ).json()
    assert body["function"] == "sync_context"
    assert len(body["invocation"]) == 36
    assert body["thread"].startswith("function_")


def test_a_failing_function_answers_500_and_the_host_goes_on(sample_host: SampleHost) -> None:
    key = {"x-functions-key": sample_host.function_key}
    for _ in range(3):
        response = httpx.get(f"{sample_host.url}/api/boom", headers=key)
        assert response.status_code == 500
        assert response.content == b""
    assert httpx.get(f"{sample_host.url}/api/items/3", headers=key).status_code == 200
    output = sample_host.process.output()
    assert "Executed 'Functions.boom' (Failed" in output
    assert "RuntimeError: boom" in output
    assert "SAMPLESECRETSIG" not in output  # the SAS signature in the exception is redacted
    assert "sig=REDACTED" in output


def test_upload_streams_to_the_function_without_buffering(sample_host: SampleHost) -> None:
    """A 50 MiB chunked upload: the function sees the first chunk while most is unsent.

    The generator stops after 8 MiB until the function reports its first chunk (a file
    the sample app touches): a host that read the body ahead would deadlock here. The
    host's peak RSS must also stay far below the body size.
    """
    started = sample_host.out / "upload-started"
    started.unlink(missing_ok=True)
    total = 50 * MIB
    digest = hashlib.sha256()
    waited: list[float] = []

    def body() -> Iterator[bytes]:
        for index in range(total // MIB):
            if index == 8:
                began = time.monotonic()
                deadline = began + 10
                while not started.exists():
                    if time.monotonic() > deadline:
                        raise AssertionError("the function got nothing after 8 MiB were sent")
                    time.sleep(0.01)
                waited.append(time.monotonic() - began)
            chunk = bytes([index % 256]) * MIB
            digest.update(chunk)
            yield chunk

    pid = sample_host.process.pid
    reset_peak_rss(pid)
    before = peak_rss_bytes(pid)
    response = httpx.post(
        f"{sample_host.url}/api/upload",
        content=body(),
        headers={"x-functions-key": sample_host.function_key},
        timeout=60,
    )
    growth = peak_rss_bytes(pid) - before
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["bytes"] == total
    assert result["sha256"] == digest.hexdigest()
    assert result["chunks"] > 50  # delivered piecemeal, not as one buffered body
    assert waited  # the first chunk arrived while 42 MiB were still unsent
    assert growth < 20 * MIB, f"the host's peak RSS grew by {growth / MIB:.1f} MiB"


def test_streaming_responses_are_sent_as_they_are_produced(sample_host: SampleHost) -> None:
    pid = sample_host.process.pid
    reset_peak_rss(pid)
    before = peak_rss_bytes(pid)
    received = 0
    with httpx.stream(
        "GET",
        f"{sample_host.url}/api/download/40",
        headers={"x-functions-key": sample_host.function_key},
        timeout=60,
    ) as response:
        assert response.status_code == 200
        assert response.headers.get("transfer-encoding") == "chunked"
        for chunk in response.iter_bytes(MIB):
            assert chunk == bytes([received // MIB % 256]) * len(chunk)
            received += len(chunk)
    assert received == 40 * MIB
    growth = peak_rss_bytes(pid) - before
    assert growth < 20 * MIB, f"the host's peak RSS grew by {growth / MIB:.1f} MiB"


def test_concurrent_requests_are_served_together(sample_host: SampleHost) -> None:
    key = {"x-functions-key": sample_host.function_key}
    results: list[int] = []

    def call(index: int) -> None:
        results.append(httpx.get(f"{sample_host.url}/api/items/{index}", headers=key).status_code)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 20


def test_status_needs_the_master_key_and_lists_everything(sample_host: SampleHost) -> None:
    url = f"{sample_host.url}/admin/host/status"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, params={"code": sample_host.function_key}).status_code == 401
    httpx.get(f"{sample_host.url}/api/items/5", params={"code": sample_host.function_key})
    status = httpx.get(url, headers={"x-functions-key": sample_host.master_key}).json()
    assert status["state"] == "Running"
    assert status["routePrefix"] == "api"
    functions = {entry["name"]: entry for entry in status["functions"]}
    assert functions["echo"]["route"] == "/api/items/{id:int}"
    assert functions["echo"]["methods"] == ["GET", "POST"]
    assert functions["echo"]["http"] == "stream"
    assert functions["classic"]["http"] == "classic"
    assert functions["echo"]["last"]["status"] == "Succeeded"
    assert functions["admin_only"]["authLevel"] == "admin"
    assert functions["tick"]["schedule"] == "* * * * * *"  # from local.settings.json
    assert functions["on_blob"]["source"] == "EventGrid"
    skipped = {entry["name"]: entry for entry in status["skipped"]}
    assert skipped["on_queue"]["trigger"] == "queueTrigger"
    assert "not supported" in skipped["on_queue"]["reason"]
    assert "SAMPLE_SETTING_NOBODY_SETS" in skipped["unresolved"]["reason"]
    assert set(functions).isdisjoint(skipped)
