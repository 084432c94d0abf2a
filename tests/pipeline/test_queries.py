"""The status API's data, from the ledger: pages, filters, history of a path."""

from __future__ import annotations

import pytest

from shared.pipeline.claims import IntakeStatus
from shared.pipeline.intake import handle_audio_blob
from shared.pipeline.ledger.records import SourceState
from shared.pipeline.queries import get_transcription, list_transcriptions
from tests.pipeline.conftest import Pipeline


async def ingest(pipeline: Pipeline, fixture: str, name: str) -> None:
    await pipeline.upload_fixture(fixture, name)
    await handle_audio_blob(pipeline.ctx, pipeline.settings.input_container, name)


async def test_list_filters_by_prefix_and_state_and_pages(pipeline: Pipeline) -> None:
    await ingest(pipeline, "sentence-01.wav", "team a/one.wav")
    await ingest(pipeline, "sentence-02.wav", "team a/two.wav")
    await ingest(pipeline, "sentence-03.wav", "team b/three.wav")
    await ingest(pipeline, "not-audio.wav", "team a/junk.wav")

    team_a = await list_transcriptions(pipeline.ctx, prefix="team a/")
    assert [i.path for i in team_a.items] == ["team a/junk.wav", "team a/one.wav", "team a/two.wav"]
    assert team_a.continuation is None

    rejected = await list_transcriptions(pipeline.ctx, state="rejected")
    assert [i.path for i in rejected.items] == ["team a/junk.wav"]
    item = rejected.items[0]
    assert item.error is not None
    assert item.error.code == "NotAudio"
    assert [o.kind for o in item.outputs] == ["error"]
    assert item.outputs[0].url.endswith("/team%20a/junk.wav.error.json")
    assert "?" not in item.outputs[0].url, "no SAS in links"

    seen: list[str] = []
    token: str | None = None
    for _ in range(10):
        page = await list_transcriptions(pipeline.ctx, limit=1, continuation=token)
        seen += [i.path for i in page.items]
        token = page.continuation
        if token is None:
            break
    assert seen == ["team a/junk.wav", "team a/one.wav", "team a/two.wav", "team b/three.wav"]

    assert (await pipeline.submit()).jobs == 1
    submitted = await list_transcriptions(pipeline.ctx, state="Submitted", prefix="team b")
    assert [(i.path, i.state) for i in submitted.items] == [
        ("team b/three.wav", SourceState.SUBMITTED)
    ]
    assert submitted.items[0].job_id
    body = submitted.model_dump(mode="json")
    assert body["items"][0]["jobId"] == submitted.items[0].job_id, "camelCase on the wire"


async def test_bad_arguments_name_the_parameter(pipeline: Pipeline) -> None:
    with pytest.raises(ValueError, match="state must be one of"):
        await list_transcriptions(pipeline.ctx, state="Sideways")
    with pytest.raises(ValueError, match="continuation"):
        await list_transcriptions(pipeline.ctx, continuation="bm90IGpzb24")
    with pytest.raises(ValueError, match="limit"):
        await list_transcriptions(pipeline.ctx, limit=0)


async def test_a_path_shows_its_latest_version_and_history(pipeline: Pipeline) -> None:
    name = "history/take.wav"
    await ingest(pipeline, "not-audio.wav", name)
    await pipeline.upload_fixture("sentence-04.wav", name)  # overwritten: a new version
    outcome = await handle_audio_blob(pipeline.ctx, pipeline.settings.input_container, name)
    assert outcome.status is IntakeStatus.QUEUED

    queued = await get_transcription(pipeline.ctx, name)

    assert queued is not None
    assert queued.latest.state is SourceState.QUEUED
    assert queued.latest.group, "the queue group it waits in"
    assert queued.latest.waiting_seconds is not None
    assert queued.latest.waiting_seconds >= 0
    assert (await pipeline.submit()).jobs == 1
    history = await get_transcription(pipeline.ctx, name)
    assert history is not None
    assert history.latest.etag == outcome.etag
    assert history.latest.state is SourceState.SUBMITTED
    assert history.latest.job_id == await pipeline.job_of(name)
    assert history.latest.waiting_seconds is None
    assert [h.state for h in history.history] == [SourceState.SUBMITTED, SourceState.REJECTED]
    assert await get_transcription(pipeline.ctx, "history/never.wav") is None
    assert await get_transcription(pipeline.ctx, "history/take") is None, "exact path only"
