"""A function app for the local host's tests only: every trigger and binding it serves.

Functions record what they saw under ``SAMPLE_OUT_DIR`` (JSON lines per function), so the
tests can check what arrived, when, and with which types.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blobext
from azurefunctions.extensions.http.fastapi import (
    JSONResponse,
    PlainTextResponse,
    Request,
    StreamingResponse,
)

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
MIB = 1024 * 1024
_slow_tick_calls = 0
_slow_tick_running = threading.Lock()


def _out() -> Path:
    return Path(os.environ["SAMPLE_OUT_DIR"])


def record(name: str, entry: dict[str, Any]) -> None:
    """Append ``entry`` to ``<SAMPLE_OUT_DIR>/<name>.jsonl``."""
    with (_out() / f"{name}.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


def _type_name(value: object) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


# HTTP ---------------------------------------------------------------------------------------


@app.route(route="items/{id:int}", methods=["GET", "POST"])
async def echo(req: Request) -> JSONResponse:
    return JSONResponse(
        {
            "id": req.path_params["id"],
            "method": req.method,
            "query": dict(req.query_params),
            "request_type": _type_name(req),
        }
    )


@app.route(route="files/{*path}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def files(req: Request) -> JSONResponse:
    return JSONResponse({"path": req.path_params.get("path")})


@app.route(route="settings/{name}", methods=["GET"])
async def setting(req: Request) -> JSONResponse:
    """The app setting ``name`` as the app sees it (``null`` when unset)."""
    return JSONResponse({"value": os.environ.get(req.path_params["name"])})


@app.route(route="admin-only", auth_level=func.AuthLevel.ADMIN)
async def admin_only(req: Request) -> PlainTextResponse:
    return PlainTextResponse("admin")


@app.route(route="open", auth_level=func.AuthLevel.ANONYMOUS)
async def anonymous(req: Request) -> dict[str, bool]:
    return {"open": True}


@app.route(route="upload", methods=["POST"])
async def upload(req: Request) -> JSONResponse:
    """Count what arrives; signal the test as soon as the first chunk is here."""
    digest = hashlib.sha256()
    chunks = size = largest = 0
    async for chunk in req.stream():
        if not chunk:
            continue
        if chunks == 0:
            (_out() / "upload-started").touch()
        chunks += 1
        size += len(chunk)
        largest = max(largest, len(chunk))
        digest.update(chunk)
    return JSONResponse(
        {"chunks": chunks, "bytes": size, "largest_chunk": largest, "sha256": digest.hexdigest()}
    )


@app.route(route="download/{mib:int}", methods=["GET"])
async def download(req: Request) -> StreamingResponse:
    count = int(req.path_params["mib"])

    async def body() -> Any:
        for index in range(count):
            yield bytes([index % 256]) * MIB
            await asyncio.sleep(0)

    return StreamingResponse(body(), media_type="application/octet-stream")


@app.route(route="classic/{name}", methods=["GET", "POST"])
def classic(req: func.HttpRequest) -> func.HttpResponse:
    body = req.get_body().decode()
    return func.HttpResponse(
        f"hello {req.route_params['name']} {body}".strip(),
        status_code=201,
        headers={"X-Classic": "1"},
    )


@app.route(route="context", methods=["GET"])
def sync_context(req: Request, context: func.Context) -> JSONResponse:
    return JSONResponse(
        {
            "function": context.function_name,
            "invocation": context.invocation_id,
            "thread": threading.current_thread().name,
        }
    )


@app.route(route="boom")
async def boom(req: Request) -> JSONResponse:
    raise RuntimeError("boom: https://x.blob.core.windows.net/c/b?sv=1&sig=SAMPLESECRETSIG")


# Timers -------------------------------------------------------------------------------------


@app.timer_trigger(
    schedule="%SAMPLE_TICK_SCHEDULE%", arg_name="timer", run_on_startup=True, use_monitor=False
)
async def tick(timer: func.TimerRequest) -> None:
    record(
        "tick",
        {"at": time.time(), "past_due": timer.past_due, "status": timer.schedule_status},
    )


@app.timer_trigger(schedule="* * * * * *", arg_name="timer")
async def failing_tick(timer: func.TimerRequest) -> None:
    raise ValueError("this timer always fails")


@app.timer_trigger(schedule="* * * * * *", arg_name="timer")
def slow_tick(timer: func.TimerRequest) -> None:
    """Sync; the first call overruns the 1-second schedule, so the next one is past due."""
    global _slow_tick_calls
    if not _slow_tick_running.acquire(blocking=False):
        record("slow_tick", {"overlap": True})
        return
    try:
        _slow_tick_calls += 1
        started = time.time()
        if _slow_tick_calls == 1:
            time.sleep(2.2)
        record(
            "slow_tick",
            {
                "start": started,
                "end": time.time(),
                "past_due": timer.past_due,
                "thread": threading.current_thread().name,
            },
        )
    finally:
        _slow_tick_running.release()


@app.timer_trigger(schedule="%SAMPLE_SETTING_NOBODY_SETS%", arg_name="timer")
def unresolved(timer: func.TimerRequest) -> None:
    raise AssertionError("never runs: its schedule setting does not exist")


# Blobs --------------------------------------------------------------------------------------


@app.blob_trigger(
    arg_name="blob",
    path="%SAMPLE_CONTAINER%/{name}",
    connection="AudioStorage",
    source=func.BlobSource.EVENT_GRID,
)
def on_blob(blob: blobext.BlobClient, context: func.Context) -> None:
    """Record the client it got; ``poison/`` blobs always fail, ``flaky/`` ones twice."""
    properties = blob.get_blob_properties()
    entry = {
        "name": blob.blob_name,
        "container": blob.container_name,
        "type": _type_name(blob),
        "credential": _type_name(blob.credential),
        "etag": properties.etag,
        "content": blob.download_blob().readall().decode(),
        "retry": context.retry_context.retry_count,
    }
    record("on_blob_attempts", entry)
    if blob.blob_name.startswith("poison/"):
        raise RuntimeError(f"cannot process {blob.blob_name}")
    if blob.blob_name.startswith("flaky/") and context.retry_context.retry_count < 2:
        raise RuntimeError(f"transient failure for {blob.blob_name}")
    record("on_blob", entry)


@app.blob_trigger(
    arg_name="stream", path="%SAMPLE_TYPED_CONTAINER%/in/{stem}.txt", connection="AudioStorage"
)
@app.blob_input(
    arg_name="meta", path="%SAMPLE_TYPED_CONTAINER%/meta/{stem}.json", connection="AudioStorage"
)
@app.blob_output(
    arg_name="out", path="%SAMPLE_TYPED_CONTAINER%/out/{stem}.txt", connection="AudioStorage"
)
def on_typed(stream: func.InputStream, meta: bytes | None, out: func.Out[str]) -> None:
    text = stream.read().decode()
    record(
        "on_typed",
        {
            "name": stream.name,
            "length": stream.length,
            "type": _type_name(stream),
            "meta": meta.decode() if meta is not None else None,
        },
    )
    out.set(text.upper())


@app.blob_trigger(
    arg_name="download", path="%SAMPLE_TYPED_CONTAINER%/dl/{name}", connection="AudioStorage"
)
@app.blob_input(
    arg_name="container", path="%SAMPLE_TYPED_CONTAINER%/dl/{name}", connection="AudioStorage"
)
async def on_download(
    download: blobext.StorageStreamDownloader, container: blobext.ContainerClient, text: str = ""
) -> None:
    # ``text`` has no binding but a default: the host leaves it alone, as the worker does.
    record(
        "on_download",
        {
            "type": _type_name(download),
            "content": download.readall().decode(),
            "container_type": _type_name(container),
            "container": container.container_name,
            "at": dt.datetime.now(dt.UTC).isoformat(),
        },
    )


# Not supported locally -----------------------------------------------------------------------


@app.queue_trigger(arg_name="message", queue_name="work", connection="AudioStorage")
def on_queue(message: func.QueueMessage) -> None:
    raise AssertionError("never runs: queue triggers are skipped locally")
