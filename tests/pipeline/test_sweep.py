"""The sweep on the offline stack: lost events, poison blobs, abandoned claims, deletions."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections.abc import Awaitable, Callable

from azure.identity import DefaultAzureCredential
from azure.storage.queue import QueueClient

from shared.pipeline.claims import IntakeStatus
from shared.pipeline.intake import handle_audio_blob
from shared.pipeline.ledger.keys import ACTIVE_PARTITION, SourceRef
from shared.pipeline.ledger.pending import pending_row_key
from shared.pipeline.ledger.records import SourceKind, SourceState
from shared.pipeline.sweep import sweep_once
from tests.pipeline.conftest import SENTENCES, Pipeline

OUTPUTS = (".txt", ".srt", ".vtt", ".json")


async def abandon_claim(pipeline: Pipeline, name: str) -> SourceRef:
    """What an intake that died after claiming leaves: a Received row, never submitted."""
    container = pipeline.settings.input_container
    blob = await pipeline.ctx.storage.get_properties(container, name)
    assert blob is not None
    ref = SourceRef(container, name, blob.etag)
    claim = await pipeline.ctx.ledger.claim_source(
        ref,
        kind=SourceKind.AUDIO,
        now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30),
        stale_after=dt.timedelta(minutes=10),
        max_attempts=5,
    )
    assert claim is not None
    return ref


async def test_an_abandoned_claim_is_recovered(pipeline: Pipeline) -> None:
    name = await pipeline.upload_fixture("sentence-02.wav", "abandoned.wav")
    ref = await abandon_claim(pipeline, name)

    summary = await sweep_once(pipeline.ctx)

    assert summary.recovered == 1
    row = await pipeline.ctx.ledger.get_source(ref)
    assert row is not None
    assert row.state is SourceState.QUEUED
    assert row.attempts == 2
    assert (await pipeline.submit()).jobs == 1
    # Recovered means done: the next tick has nothing left to recover.
    assert (await sweep_once(pipeline.ctx)).recovered == 0


async def test_an_abandoned_claim_of_an_overwritten_blob_is_superseded(pipeline: Pipeline) -> None:
    name = await pipeline.upload_fixture("sentence-04.wav", "replaced.wav")
    ref = await abandon_claim(pipeline, name)
    await pipeline.upload_fixture("sentence-05.wav", name)  # a new version replaced it

    await sweep_once(pipeline.ctx)

    old = await pipeline.ctx.ledger.get_source(ref)
    assert old is not None
    assert old.state is SourceState.SUPERSEDED
    assert old.error_code == "SourceChanged"
    rows = await pipeline.ctx.ledger.sources_for_path(ref.container, name)
    assert {row.state for row in rows if row.ref.etag != ref.etag} == {SourceState.QUEUED}


async def test_a_claim_whose_index_was_never_written_is_found(pipeline: Pipeline) -> None:
    """Fault 6: a claim row alone (its index row lost) is found by the row pass."""
    name = await pipeline.upload_fixture("sentence-03.wav", "no-index.wav")
    ref = await abandon_claim(pipeline, name)
    index = pending_row_key(ref.partition_key, ref.row_key)
    await asyncio.to_thread(pipeline.ctx.ledger_table.delete_entity, ACTIVE_PARTITION, index)
    assert await pipeline.pending_rows() == 0

    first = await sweep_once(pipeline.ctx)
    await sweep_once(pipeline.ctx)

    assert first.requeued == 1
    row = await pipeline.ctx.ledger.get_source(ref)
    assert row is not None
    assert row.state is SourceState.QUEUED
    await pipeline.settle()
    assert (await pipeline.output(name + ".txt") or b"").strip()


async def test_a_blob_whose_event_never_came_is_transcribed(pipeline: Pipeline) -> None:
    """Fault 2: no delivery at all (lost, or the host gave up): the blob pass takes it in."""
    names = [await pipeline.upload_fixture(f, f"lost/{f}") for f in ("sentence-06.wav",)]

    summary = await sweep_once(pipeline.ctx)
    await pipeline.settle()

    assert summary.taken_in == len(names)
    for name in names:
        rows = await pipeline.ctx.ledger.sources_for_path(pipeline.settings.input_container, name)
        assert [row.state for row in rows] == [SourceState.SUCCEEDED]
        for extension in OUTPUTS:
            assert await pipeline.output(name + extension) is not None
    assert await pipeline.admin.count("Transcriptions_Submit") == len(names)
    # Known now: a later pass takes nothing in.
    assert (await sweep_once(pipeline.ctx)).taken_in == 0


async def test_a_poison_message_is_taken_in(pipeline: Pipeline) -> None:
    """The blob trigger gave up (storage was down); its poison message brings the blob back."""
    settings = pipeline.settings
    name = await pipeline.upload_fixture("sentence-07.wav", "poisoned.wav")
    blob = await pipeline.ctx.storage.get_properties(settings.input_container, name)
    assert blob is not None
    message = {
        "Type": "BlobTrigger",
        "FunctionId": "Host.Functions.audio_intake",
        "BlobType": "BlockBlob",
        "ContainerName": settings.input_container,
        "BlobName": name,
        "ETag": f'"{blob.etag}"',
    }
    credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    queue = QueueClient(pipeline.stack.queue_endpoint, settings.poison_queue, credential=credential)
    with queue:
        await asyncio.to_thread(queue.create_queue)
        encoded = base64.b64encode(json.dumps(message).encode()).decode()
        await asyncio.to_thread(queue.send_message, encoded)

        # The blob pass must not be the one that finds it: it sees only young blobs here.
        pipeline.ctx.settings.sweep_grace_seconds = 3600
        summary = await sweep_once(pipeline.ctx)

        assert summary.poison == 1
        assert summary.taken_in == 0
        left = await asyncio.to_thread(lambda: list(queue.peek_messages(max_messages=5)))
        assert left == [], "a handled message is deleted"
    await pipeline.settle()
    assert (await pipeline.output(name + ".json")) is not None


async def test_a_deleted_blob_takes_its_outputs_with_it(pipeline: Pipeline) -> None:
    name = await pipeline.upload_fixture("sentence-08.wav", "deleted.wav")
    outcome = await handle_audio_blob(pipeline.ctx, pipeline.settings.input_container, name)
    assert outcome.status is IntakeStatus.QUEUED
    await pipeline.settle()
    assert await pipeline.output(name + ".json") is not None
    client = pipeline.ctx.blob_service.get_blob_client(pipeline.settings.input_container, name)
    await asyncio.to_thread(client.delete_blob)

    summary = await sweep_once(pipeline.ctx)

    assert summary.outputs_removed == len(OUTPUTS)
    for extension in OUTPUTS:
        assert await pipeline.output(name + extension) is None
    rows = await pipeline.ctx.ledger.sources_for_path(pipeline.settings.input_container, name)
    assert rows[0].state is SourceState.SUCCEEDED
    assert rows[0].outputs_removed
    assert rows[0].error_code == "SourceDeleted"


async def test_a_pass_is_resumed_page_by_page(
    make_pipeline: Callable[..., Awaitable[Pipeline]],
) -> None:
    pipeline = await make_pipeline(sweep_page_size=10, sweep_grace_seconds=3600)
    for index in range(25):
        await pipeline.upload(f"many/{index:02d}.wav", b"RIFF")

    ledger = pipeline.ctx.ledger
    container = pipeline.settings.input_container
    ticks = []
    passes = []
    for _ in range(4):
        ticks.append(await sweep_once(pipeline.ctx))
        passes.append((await ledger.get_cursor(container)).passes)

    assert [tick.listed for tick in ticks[:3]] == [10, 10, 5]
    assert passes == [0, 0, 1, 1], "the cursor carries the pass from tick to tick"
    assert ticks[3].listed == 10, "the next pass starts again from the first page"
    assert sum(tick.taken_in for tick in ticks) == 0, "young blobs are left to their events"


def test_the_fixtures_are_spoken_sentences() -> None:
    assert SENTENCES["sentence-02.wav"]
