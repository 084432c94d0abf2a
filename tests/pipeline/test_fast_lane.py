"""The fast lane on the offline stack: short files transcribed at once, fallbacks to batch."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.pipeline import fast_request
from shared.pipeline.budget import SpeechBudget
from shared.pipeline.claims import IntakeStatus
from shared.pipeline.intake import handle_audio_blob
from shared.pipeline.ledger.records import SourceRecord, SourceState
from tests.pipeline.conftest import SENTENCES, Pipeline


async def row_of(pipeline: Pipeline, name: str) -> SourceRecord:
    rows = await pipeline.ctx.ledger.sources_for_path(pipeline.settings.input_container, name)
    assert rows, f"no row for {name}"
    return rows[0]


def events(record: SourceRecord) -> list[str]:
    return [entry["event"] for entry in record.history]


async def test_a_short_file_is_transcribed_at_once_in_auto(make_pipeline: Any) -> None:
    pipeline: Pipeline = await make_pipeline(routing="auto")
    name = await pipeline.upload_fixture("sentence-01.wav", "voicemail/one.wav")

    outcome = await handle_audio_blob(pipeline.ctx, pipeline.settings.input_container, name)

    assert outcome.status is IntakeStatus.TRANSCRIBED, outcome
    assert await pipeline.admin.count("Transcriptions_Transcribe") == 1
    assert await pipeline.admin.count("Transcriptions_Submit") == 0, "no batch job"
    assert await pipeline.output_names() == [
        f"{name}{ext}" for ext in (".json", ".srt", ".txt", ".vtt")
    ]
    result = await pipeline.output_json(f"{name}.json")
    assert "combinedPhrases" in result, "the fast result as returned"
    assert "phrases" in result
    text = (await pipeline.output(f"{name}.txt") or b"").decode()
    first_word = SENTENCES["sentence-01.wav"].split()[0].strip(",.").lower()
    assert first_word in text.lower()
    srt = (await pipeline.output(f"{name}.srt") or b"").decode()
    assert srt.startswith("1\n00:00:0"), srt[:40]
    record = await row_of(pipeline, name)
    assert record.state is SourceState.SUCCEEDED
    assert record.route == "fast"
    assert record.audio_seconds is not None
    assert record.audio_seconds > 1
    assert events(record) == ["RoutedFast", "Transcribed"]
    assert "the header says" in record.history[0]["detail"]
    assert await pipeline.pending_rows() == 0
    assert await pipeline.queued_entries() == 0


async def test_the_mode_metadata_sends_one_file_fast_while_routing_is_batch(
    pipeline: Pipeline,
) -> None:
    fast = await pipeline.upload_fixture("sentence-02.wav", "a.wav", metadata={"mode": "fast"})
    batch = await pipeline.upload_fixture("sentence-03.wav", "b.wav")
    container = pipeline.settings.input_container

    assert (
        await handle_audio_blob(pipeline.ctx, container, fast)
    ).status is IntakeStatus.TRANSCRIBED
    assert (await handle_audio_blob(pipeline.ctx, container, batch)).status is IntakeStatus.QUEUED
    assert (await row_of(pipeline, batch)).route == "batch"
    assert events(await row_of(pipeline, batch)) == ["RoutedBatch"]


async def test_a_bad_mode_is_rejected_in_words(pipeline: Pipeline) -> None:
    name = await pipeline.upload_fixture("sentence-02.wav", metadata={"mode": "quick"})
    outcome = await handle_audio_blob(pipeline.ctx, pipeline.settings.input_container, name)
    assert outcome.status is IntakeStatus.REJECTED
    assert outcome.code == "InvalidMetadata"
    assert outcome.message is not None
    assert "mode: must be fast, batch or auto" in outcome.message


@pytest.mark.parametrize("status", [429, 503])
async def test_a_throttled_or_failing_fast_lane_falls_back_to_batch(
    make_pipeline: Any, status: int
) -> None:
    pipeline: Pipeline = await make_pipeline(routing="fast")
    await pipeline.admin.faults(fast_fail_status=status, fast_fail_times=0)
    name = await pipeline.upload_fixture("sentence-04.wav")

    outcome = await handle_audio_blob(pipeline.ctx, pipeline.settings.input_container, name)

    assert outcome.status is IntakeStatus.QUEUED, outcome
    assert await pipeline.admin.count("Transcriptions_Transcribe") >= 2, "retried first"
    record = await row_of(pipeline, name)
    assert record.route == "batch"
    assert events(record) == ["RoutedFast", "FellBackToBatch"]
    assert str(status) in record.history[-1]["detail"]
    await pipeline.admin.faults(fast_fail_status=None)
    await pipeline.settle()
    record = await row_of(pipeline, name)
    assert record.state is SourceState.SUCCEEDED
    assert "recognizedPhrases" in await pipeline.output_json(f"{name}.json"), "a batch result"


async def test_audio_the_service_cannot_decode_is_reported(make_pipeline: Any) -> None:
    pipeline: Pipeline = await make_pipeline(routing="fast")
    # A WAV header over bytes that are no audio: it passes the sniff, not the decoder.
    junk = b"RIFF" + (4000).to_bytes(4, "little") + b"WAVEfmt " + b"\x07" * 3992
    name = "broken.wav"
    await pipeline.upload(name, junk)

    outcome = await handle_audio_blob(pipeline.ctx, pipeline.settings.input_container, name)

    assert outcome.status is IntakeStatus.FAILED, outcome
    report = await pipeline.output_json(f"{name}.error.json")
    assert report["status"] == "Failed"
    assert "fast transcription could not transcribe the audio" in report["message"]
    assert "422" in report["message"]
    record = await row_of(pipeline, name)
    assert record.state is SourceState.FAILED
    assert await pipeline.queued_entries() == 0, "not sent to batch as well"


async def test_an_overwrite_during_the_fast_transcription_supersedes_the_old_version(
    make_pipeline: Any,
) -> None:
    pipeline: Pipeline = await make_pipeline(routing="fast")
    name = await pipeline.upload_fixture("sentence-05.wav", "same.wav")
    container = pipeline.settings.input_container
    fast = pipeline.ctx.speech.fast
    original = fast.transcribe

    async def overwrite_first(*args: Any, **kw: Any) -> Any:
        result = await original(*args, **kw)
        await pipeline.upload_fixture("sentence-06.wav", name)
        return result

    fast.transcribe = overwrite_first  # type: ignore[method-assign]
    outcome = await handle_audio_blob(pipeline.ctx, container, name)
    fast.transcribe = original  # type: ignore[method-assign]

    assert outcome.status is IntakeStatus.SUPERSEDED, outcome
    assert await pipeline.output(f"{name}.json") is None, "the old version wrote nothing"
    newest = await handle_audio_blob(pipeline.ctx, container, name)
    assert newest.status is IntakeStatus.TRANSCRIBED
    states = sorted(
        r.state.value for r in await pipeline.ctx.ledger.sources_for_path(container, name)
    )
    assert states == ["Succeeded", "Superseded"]
    text = (await pipeline.output(f"{name}.txt") or b"").decode().lower()
    assert SENTENCES["sentence-06.wav"].split()[-1].strip(".,").lower() in text


async def test_a_spent_fast_budget_sends_the_file_to_batch(
    make_pipeline: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline: Pipeline = await make_pipeline(routing="fast", fast_requests_per_minute=6)
    monkeypatch.setattr(fast_request, "BUDGET_WINDOWS", 0)
    budget = SpeechBudget.fast(pipeline.ctx.ledger, per_minute=6)
    while await budget.take(1):
        pass
    name = await pipeline.upload_fixture("sentence-07.wav")

    outcome = await handle_audio_blob(pipeline.ctx, pipeline.settings.input_container, name)

    assert outcome.status is IntakeStatus.QUEUED
    record = await row_of(pipeline, name)
    assert "FAST_REQUESTS_PER_MINUTE=6" in record.history[-1]["detail"]
    assert await pipeline.admin.count("Transcriptions_Transcribe") == 0


async def test_fast_transcriptions_wait_for_a_slot(make_pipeline: Any) -> None:
    pipeline: Pipeline = await make_pipeline(routing="fast", fast_concurrency=1)
    await pipeline.admin.faults(latency_ms=300)
    names = [await pipeline.upload_fixture(f"sentence-0{i}.wav") for i in (1, 2, 3)]
    container = pipeline.settings.input_container
    inflight = 0
    most = 0
    fast = pipeline.ctx.speech.fast
    original = fast.transcribe

    async def counted(*args: Any, **kw: Any) -> Any:
        nonlocal inflight, most
        inflight += 1
        most = max(most, inflight)
        try:
            return await original(*args, **kw)
        finally:
            inflight -= 1

    fast.transcribe = counted  # type: ignore[method-assign]
    outcomes = await asyncio.gather(*(handle_audio_blob(pipeline.ctx, container, n) for n in names))
    assert [o.status for o in outcomes] == [IntakeStatus.TRANSCRIBED] * 3
    assert most == 1


async def test_the_json_output_is_exactly_the_service_answer(make_pipeline: Any) -> None:
    pipeline: Pipeline = await make_pipeline(routing="fast")
    name = await pipeline.upload_fixture("stereo.wav", metadata={"channels": "0,1"})
    outcome = await handle_audio_blob(pipeline.ctx, pipeline.settings.input_container, name)
    assert outcome.status is IntakeStatus.TRANSCRIBED, outcome
    result = await pipeline.output_json(f"{name}.json")
    assert {p.get("channel") for p in result["phrases"]} == {0, 1}
    text = (await pipeline.output(f"{name}.txt") or b"").decode()
    assert "Channel 0" in text, "channels labelled"
    assert "Channel 1" in text
