"""Completion events: one CloudEvent per terminal state, read back from the Azurite queue.

Crashes are simulated where they hurt: between the outbox row and the transition (a merge
that raises once), between sending and deleting the row, and a queue that cannot be
reached. Nothing is lost; a repeat carries the same ``id``; an outbox row whose transition
never happened is dropped once old (aged with ``now=``, not by sleeping).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import trustme
from azure.core.messaging import CloudEvent
from azure.storage.queue import QueueClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.pipeline import events
from shared.pipeline.intake import handle_audio_blob
from shared.pipeline.ledger.keys import ACTIVE_PARTITION, OUTBOX_PREFIX, SourceRef
from shared.pipeline.ledger.outbox import event_id
from shared.pipeline.ledger.records import SourceKind, SourceRecord, SourceState, source_fields
from tests.emulator.test_webhooks import serve_tls
from tests.pipeline.conftest import Pipeline
from tests.support.server import free_port

MakePipeline = Callable[..., Awaitable[Pipeline]]
LATER = dt.timedelta(minutes=10)


class EventQueue:
    """The pipeline's events queue, read as a consumer reads it (Base64, structured JSON)."""

    def __init__(self, pipeline: Pipeline) -> None:
        settings = pipeline.settings
        self.client = QueueClient(
            str(settings.storage_queue_uri),
            settings.events_queue,
            credential=pipeline.ctx.credential,
        )

    async def drain(self) -> list[dict[str, Any]]:
        def receive() -> list[dict[str, Any]]:
            found = []
            for message in self.client.receive_messages(max_messages=32, visibility_timeout=60):
                found.append(json.loads(base64.b64decode(str(message.content))))
                self.client.delete_message(message)
            return found

        return await asyncio.to_thread(receive)

    async def close(self) -> None:
        await asyncio.to_thread(self.client.delete_queue)
        self.client.close()


@pytest_asyncio.fixture
async def with_events(
    make_pipeline: MakePipeline,
) -> AsyncIterator[Callable[..., Awaitable[tuple[Pipeline, EventQueue]]]]:
    """A pipeline with an events queue of its own (created by the first publication)."""
    queues: list[EventQueue] = []

    async def make(**overrides: Any) -> tuple[Pipeline, EventQueue]:
        pipeline = await make_pipeline(events_queue=f"events-{uuid.uuid4().hex[:12]}", **overrides)
        queue = EventQueue(pipeline)
        queues.append(queue)
        return pipeline, queue

    yield make
    for queue in queues:
        try:
            await queue.close()
        except Exception:  # a test whose queue was never created
            queue.client.close()


async def claimed(pipeline: Pipeline, path: str, *, now: dt.datetime) -> SourceRef:
    ref = SourceRef(pipeline.settings.input_container, path, "0x8DC")
    claim = await pipeline.ctx.ledger.claim_source(
        ref, kind=SourceKind.AUDIO, now=now, stale_after=dt.timedelta(minutes=10), max_attempts=3
    )
    assert claim is not None
    return ref


async def outbox_rows(pipeline: Pipeline) -> list[Any]:
    return await asyncio.to_thread(
        lambda: list(
            pipeline.ctx.ledger_table.query_entities(
                "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                parameters={"pk": ACTIVE_PARTITION, "lo": OUTBOX_PREFIX, "hi": "outbox}"},
            )
        )
    )


def the_id(record: SourceRecord) -> str:
    assert record.completed_at is not None
    return event_id(record.ref, record.state, record.completed_at)


async def test_every_terminal_state_publishes_one_event(with_events: Any) -> None:
    pipeline, queue = await with_events()
    ctx = pipeline.ctx
    container = pipeline.settings.input_container
    await pipeline.upload_fixture("sentence-01.wav", "calls/one.wav")
    await handle_audio_blob(ctx, container, "calls/one.wav")
    await pipeline.upload_fixture("not-audio.wav", "junk.wav")
    await handle_audio_blob(ctx, container, "junk.wav")
    await pipeline.poll_until_idle()
    now = dt.datetime.now(dt.UTC)
    for path, state in (
        ("failed.wav", SourceState.FAILED),
        ("superseded.wav", SourceState.SUPERSEDED),
        ("cancelled.wav", SourceState.CANCELLED),
    ):
        ref = await claimed(pipeline, path, now=now)
        closed = await ctx.ledger.close_source(
            ref, state=state, now=now, code=f"{state.value}Code", message=f"{path} is {state}"
        )
        assert closed is not None

    summary = await events.publish_once(ctx)

    assert (summary.published, summary.failed, summary.dropped) == (5, 0, 0)
    received = {message["type"]: message for message in await queue.drain()}
    assert sorted(received) == [
        "transcription.cancelled",
        "transcription.failed",
        "transcription.rejected",
        "transcription.succeeded",
        "transcription.superseded",
    ]
    rows, _ = await ctx.ledger.query_sources(container, limit=50)
    by_path = {row.ref.path: row for row in rows}
    done = received["transcription.succeeded"]
    record = by_path["calls/one.wav"]
    assert done["specversion"] == "1.0"
    assert done["source"] == "/transcription-pipeline/devstoreaccount1"
    assert done["subject"] == f"{container}/calls/one.wav"
    assert done["datacontenttype"] == "application/json"
    assert done["id"] == the_id(record), "deterministic: the version, its state and time"
    assert record.completed_at is not None
    assert dt.datetime.fromisoformat(done["time"]) == record.completed_at
    data = done["data"]
    assert data["state"] == "Succeeded"
    assert (data["container"], data["path"], data["etag"]) == (
        container,
        "calls/one.wav",
        record.ref.etag,
    )
    assert data["outputs"]["container"] == pipeline.settings.output_container
    assert sorted(data["outputs"]["names"]) == sorted(record.outputs)
    assert any(name.endswith(".json") for name in data["outputs"]["names"])
    assert data["route"] == "batch"
    assert data["jobId"] == record.job_id
    assert data["audioSeconds"] == pytest.approx(record.audio_seconds)
    assert data["error"] is None
    parsed: CloudEvent[Any] = CloudEvent.from_dict(done)  # the azure-core shape a consumer parses
    assert (parsed.id, parsed.type) == (done["id"], "transcription.succeeded")

    rejected = received["transcription.rejected"]["data"]
    assert rejected["error"]["code"] == "NotAudio"
    assert rejected["reportPath"] == by_path["junk.wav"].report_path
    failed = received["transcription.failed"]
    assert failed["data"]["error"] == {"code": "FailedCode", "message": "failed.wav is Failed"}
    assert failed["data"]["outputs"]["container"] == pipeline.settings.output_container
    assert received["transcription.cancelled"]["id"] == the_id(by_path["cancelled.wav"])

    assert await outbox_rows(pipeline) == []
    assert (await events.publish_once(ctx)).published == 0
    assert await queue.drain() == [], "published once"


async def test_a_crash_between_outbox_and_transition_loses_and_repeats_nothing(
    with_events: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, queue = await with_events()
    ctx = pipeline.ctx
    now = dt.datetime.now(dt.UTC)
    ref = await claimed(pipeline, "crash.wav", now=now)
    original = ctx.ledger._merge
    crashes: list[str] = []

    async def crash_once(partition: str, row: str, changes: Any, etag: str) -> str | None:
        if partition == ref.partition_key and not crashes:
            crashes.append(row)
            raise ConnectionError("the instance died before the state write")
        etag_after: str | None = await original(partition, row, changes, etag)
        return etag_after

    monkeypatch.setattr(ctx.ledger, "_merge", crash_once)
    with pytest.raises(ConnectionError):
        await ctx.ledger.close_source(
            ref, state=SourceState.FAILED, now=now, code="Boom", message="first try"
        )
    assert len(await outbox_rows(pipeline)) == 1, "announced before the transition"
    early = await events.publish_once(ctx, now=now)
    assert (early.published, early.waiting) == (0, 1), "not yet: the transition may be coming"

    retried_at = now + dt.timedelta(seconds=5)  # the host's retry
    closed = await ctx.ledger.close_source(
        ref, state=SourceState.FAILED, now=retried_at, code="Boom", message="second try"
    )
    assert closed is not None
    second = await events.publish_once(ctx, now=retried_at)
    assert (second.published, second.waiting) == (1, 1), "the orphan is still young"
    late = await events.publish_once(ctx, now=now + LATER)
    assert (late.published, late.dropped) == (0, 1), "its transition never happened"
    assert await outbox_rows(pipeline) == []

    messages = await queue.drain()
    assert [m["id"] for m in messages] == [the_id(closed)]
    assert messages[0]["data"]["error"]["message"] == "second try"


async def test_a_crash_after_sending_repeats_the_same_id(
    with_events: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, queue = await with_events()
    ctx = pipeline.ctx
    now = dt.datetime.now(dt.UTC)
    ref = await claimed(pipeline, "twice.wav", now=now)
    closed = await ctx.ledger.close_source(
        ref, state=SourceState.SUPERSEDED, now=now, code="SourceChanged", message="newer"
    )
    assert closed is not None
    original = ctx.ledger.drop_outbox
    calls = []

    async def die_once(row: Any) -> None:
        calls.append(row)
        if len(calls) == 1:
            raise ConnectionError("the instance died after sending")
        await original(row)

    monkeypatch.setattr(ctx.ledger, "drop_outbox", die_once)
    with pytest.raises(ConnectionError):
        await events.publish_once(ctx)
    assert (await events.publish_once(ctx)).published == 1
    ids = [m["id"] for m in await queue.drain()]
    assert ids == [the_id(closed)] * 2, "at least once, and a repeat says so by its id"


async def test_publishing_resumes_after_a_queue_outage(
    with_events: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # One failure is "many" here: the row moves to the page of rows that keep failing.
    monkeypatch.setattr(events, "MAX_ATTEMPTS", 1)
    pipeline, queue = await with_events(storage_retry_total=0)
    ctx = pipeline.ctx
    now = dt.datetime.now(dt.UTC)
    ref = await claimed(pipeline, "outage.wav", now=now)
    await ctx.ledger.close_source(
        ref, state=SourceState.FAILED, now=now, code="Stuck", message="no end"
    )
    working = ctx.settings
    ctx.settings = working.model_copy(
        update={"storage_queue_uri": f"https://127.0.0.1:{free_port()}/devstoreaccount1"}
    )
    outage = await events.publish_once(ctx)
    assert (outage.published, outage.failed) == (0, 1)
    (row,) = await outbox_rows(pipeline)
    assert row["Attempts"] == 1
    assert "Error" in row["LastError"], "why it failed is on the row"
    assert any(r.levelname == "ERROR" and "not published" in r.message for r in caplog.records)
    fresh = await ctx.ledger.outbox_page(limit=10, max_attempts=1, stuck=False)
    assert fresh == [], "kept apart from new rows, so it never holds them up"

    ctx.settings = working
    assert (await events.publish_once(ctx)).published == 1
    assert len(await queue.drain()) == 1
    assert await outbox_rows(pipeline) == []


async def test_a_state_left_before_publication_still_publishes(with_events: Any) -> None:
    pipeline, queue = await with_events()
    ctx = pipeline.ctx
    now = dt.datetime.now(dt.UTC)
    ref = await claimed(pipeline, "rerun.wav", now=now)
    failed = await ctx.ledger.close_source(
        ref, state=SourceState.FAILED, now=now, code="InvalidData", message="bad audio"
    )
    assert failed is not None
    # An operator re-runs it before the publisher's tick: the Failed state did happen.
    rerun = await ctx.ledger._transition(
        ref,
        lambda row: row.state is SourceState.FAILED,
        lambda _row: source_fields(state=SourceState.QUEUED, now=now, error_code=""),
    )
    assert rerun is not None
    assert rerun.state is SourceState.QUEUED

    assert (await events.publish_once(ctx, now=now + LATER)).published == 1
    (message,) = await queue.drain()
    assert message["id"] == the_id(failed)
    assert message["type"] == "transcription.failed"
    assert message["data"]["error"] == {"code": "InvalidData", "message": "bad audio"}


async def test_event_grid_gets_the_event_too_and_an_outage_there_repeats_no_queue_message(
    with_events: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key, bundle = (tmp_path / name for name in ("cert.pem", "key.pem", "bundle.pem"))
    leaf.private_key_pem.write_to_path(str(key))
    for blob in leaf.cert_chain_pems:
        blob.write_to_path(str(cert), append=True)
    # Azurite's CA (the stack's bundle) and the fake topic's, as REQUESTS_CA_BUNDLE offers.
    stack_bundle = os.environ["REQUESTS_CA_BUNDLE"]
    await asyncio.to_thread(
        lambda: bundle.write_bytes(Path(stack_bundle).read_bytes() + ca.cert_pem.bytes())
    )
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    deliveries: list[tuple[str, Any]] = []

    async def topic(request: Request) -> Response:
        deliveries.append((request.headers.get("authorization", ""), await request.json()))
        return Response(status_code=200)

    with serve_tls(
        Starlette(routes=[Route("/api/events", topic, methods=["POST"])]), cert, key
    ) as url:
        closed_topic = f"https://127.0.0.1:{free_port()}/api/events"
        pipeline, queue = await with_events(
            event_grid_topic_endpoint=closed_topic, storage_retry_total=0
        )
        ctx = pipeline.ctx
        now = dt.datetime.now(dt.UTC)
        ref = await claimed(pipeline, "grid.wav", now=now)
        done = await ctx.ledger.close_source(
            ref, state=SourceState.SUPERSEDED, now=now, code="SourceDeleted", message="gone"
        )
        assert done is not None

        outage = await events.publish_once(ctx)
        assert (outage.published, outage.failed) == (0, 1)
        (row,) = await outbox_rows(pipeline)
        assert row["SentTo"] == "queue", "the queue has it; only Event Grid is tried again"

        ctx.settings = ctx.settings.model_copy(
            update={"event_grid_topic_endpoint": f"{url}/api/events"}
        )
        assert (await events.publish_once(ctx)).published == 1

    assert [m["id"] for m in await queue.drain()] == [the_id(done)], "one queue message"
    ((authorization, batch),) = deliveries
    assert authorization.startswith("Bearer "), "Entra, no key"
    (sent,) = batch
    assert sent["id"] == the_id(done)
    assert sent["type"] == "transcription.superseded"
    assert sent["specversion"] == "1.0"
    assert sent["data"]["error"]["code"] == "SourceDeleted"
