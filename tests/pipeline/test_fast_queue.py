"""A manifest's mode: its short files go to fast transcription through the submitter."""

from __future__ import annotations

from typing import Any

from shared.pipeline.claims import IntakeStatus
from shared.pipeline.ledger.records import SourceRecord, SourceState
from shared.pipeline.manifest import handle_manifest_blob
from tests.pipeline.conftest import Pipeline
from tests.pipeline.test_manifest import put_manifest


async def row_of(pipeline: Pipeline, path: str) -> SourceRecord:
    rows = await pipeline.ctx.ledger.sources_for_path(pipeline.settings.input_container, path)
    assert rows, f"no row for {path}"
    return rows[0]


def events(record: SourceRecord) -> list[str]:
    return [entry["event"] for entry in record.history]


async def take_in(pipeline: Pipeline, document: dict[str, Any]) -> None:
    manifest = await put_manifest(pipeline, "requests/fast.json", document)
    outcome = await handle_manifest_blob(
        pipeline.ctx, pipeline.settings.requests_container, manifest
    )
    assert outcome.status is IntakeStatus.QUEUED, outcome


async def test_a_manifest_in_auto_sends_short_files_fast_and_long_ones_to_a_job(
    make_pipeline: Any,
) -> None:
    pipeline: Pipeline = await make_pipeline(fast_max_seconds=30)
    await pipeline.upload_fixture("sentence-02.wav", "in/short.wav")
    await pipeline.upload_fixture("long-70s.ogg", "in/long.ogg")
    await take_in(
        pipeline,
        {"files": ["in/short.wav", "in/long.ogg"], "destinationPrefix": "out/", "mode": "auto"},
    )

    summary = await pipeline.submit()

    assert summary.fast == 1, summary
    assert summary.jobs == 1, "the long file is in a batch job"
    short = await row_of(pipeline, "in/short.wav")
    assert short.state is SourceState.SUCCEEDED
    assert short.route == "fast"
    assert events(short)[:1] == ["RoutedFast"]
    assert events(short)[-1] == "Transcribed"
    assert "combinedPhrases" in await pipeline.output_json("out/in/short.wav.json")
    long = await row_of(pipeline, "in/long.ogg")
    assert long.state is SourceState.SUBMITTED
    assert long.route == "batch"
    assert "more than 30 s" in long.history[0]["detail"]
    await pipeline.poll_until_idle()
    assert (await row_of(pipeline, "in/long.ogg")).state is SourceState.SUCCEEDED
    assert await pipeline.admin.count("Transcriptions_Transcribe") == 1


async def test_a_throttled_fast_lane_hands_a_manifest_file_back_to_batch(
    pipeline: Pipeline,
) -> None:
    await pipeline.admin.faults(fast_fail_status=429, fast_fail_times=0)
    await pipeline.upload_fixture("sentence-03.wav", "in/a.wav")
    await take_in(pipeline, {"files": ["in/a.wav"], "mode": "fast"})

    first = await pipeline.submit()

    assert first.handed_back == 1, first
    row = await row_of(pipeline, "in/a.wav")
    assert row.state is SourceState.QUEUED
    assert row.route == "batch"
    assert events(row) == ["RoutedFast", "FellBackToBatch"]
    assert "429" in row.history[-1]["detail"]
    await pipeline.admin.faults(fast_fail_status=None)
    await pipeline.settle()
    done = await row_of(pipeline, "in/a.wav")
    assert done.state is SourceState.SUCCEEDED
    assert "recognizedPhrases" in await pipeline.output_json("in/a.wav.json"), "a batch result"


async def test_a_fast_attempt_that_died_is_resumed_as_a_batch_job(
    pipeline: Pipeline, monkeypatch: Any
) -> None:
    from shared.pipeline import fast_queue

    await pipeline.upload_fixture("sentence-04.wav", "in/b.wav")
    await take_in(pipeline, {"files": ["in/b.wav"], "mode": "fast"})

    async def die(*_args: Any, **_kw: Any) -> Any:
        raise RuntimeError("the instance went away mid-request")

    monkeypatch.setattr(fast_queue, "request_fast", die)
    crashed = await pipeline.submit()
    assert crashed.errors == 1
    monkeypatch.undo()

    resumed = await pipeline.submit()

    assert resumed.recovered == 1, resumed
    assert (await row_of(pipeline, "in/b.wav")).state is SourceState.SUBMITTED
    await pipeline.poll_until_idle()
    assert (await row_of(pipeline, "in/b.wav")).state is SourceState.SUCCEEDED


async def test_a_bad_manifest_mode_is_named(pipeline: Pipeline) -> None:
    await pipeline.upload_fixture("sentence-05.wav", "in/c.wav")
    manifest = await put_manifest(
        pipeline, "requests/bad.json", {"files": ["in/c.wav"], "mode": "quick"}
    )
    outcome = await handle_manifest_blob(
        pipeline.ctx, pipeline.settings.requests_container, manifest
    )
    assert outcome.status is IntakeStatus.REJECTED
    assert outcome.message is not None
    assert "mode: must be fast, batch or auto" in outcome.message
