"""Bulk intake on the offline stack: manifests to jobs, per-file reports, field-named errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.pipeline.claims import IntakeStatus
from shared.pipeline.ledger.records import SourceState
from shared.pipeline.manifest import handle_manifest_blob
from tests.pipeline.conftest import SENTENCES, Pipeline
from tests.pipeline.test_poller import transcript_wer


async def put_manifest(pipeline: Pipeline, name: str, document: Any) -> str:
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    await pipeline.upload(name, data, container=pipeline.settings.requests_container)
    return name


async def test_manifest_of_three_files_makes_one_job_and_three_transcripts(
    pipeline: Pipeline,
) -> None:
    fixtures = ["sentence-02.wav", "sentence-09.wav", "sentence-13.wav"]
    for fixture in fixtures:
        await pipeline.upload_fixture(fixture, f"batch/{fixture}")
    manifest = await put_manifest(
        pipeline,
        "requests/monday.json",
        {"files": [f"batch/{f}" for f in fixtures], "destinationPrefix": "out/monday"},
    )

    outcome = await handle_manifest_blob(
        pipeline.ctx, pipeline.settings.requests_container, manifest
    )

    assert outcome.status is IntakeStatus.QUEUED, outcome
    assert outcome.files_queued == 3
    assert await pipeline.admin.count("Transcriptions_Submit") == 0, "queued, not submitted"
    assert (await pipeline.submit()).jobs == 1, "one submission path: the submitter"
    job_id = await pipeline.job_of(f"batch/{fixtures[0]}")
    job_row = await pipeline.ctx.ledger.get_job(job_id)
    assert job_row is not None
    assert sorted(s.path for s in job_row.sources) == [f"batch/{f}" for f in fixtures]
    assert {s.output_base for s in job_row.sources} == {f"out/monday/batch/{f}" for f in fixtures}

    await pipeline.poll_until_idle()

    names = await pipeline.output_names()
    for fixture in fixtures:
        for extension in (".json", ".txt", ".srt", ".vtt"):
            assert f"out/monday/batch/{fixture}{extension}" in names, names
        rows = await pipeline.ctx.ledger.sources_for_path(
            pipeline.settings.input_container, f"batch/{fixture}"
        )
        assert rows[0].state is SourceState.SUCCEEDED
        assert rows[0].manifest
        assert manifest in rows[0].manifest
        assert rows[0].destination_prefix == "out/monday/"
    wer = await transcript_wer(
        pipeline, {f"out/monday/batch/{f}": f for f in fixtures if f in SENTENCES}
    )
    assert wer <= 0.2
    manifest_rows = await pipeline.ctx.ledger.sources_for_path(
        pipeline.settings.requests_container, manifest
    )
    assert manifest_rows[0].state is SourceState.SUCCEEDED, "its work: the files are queued"
    assert manifest_rows[0].file_count == 3
    again = await handle_manifest_blob(pipeline.ctx, pipeline.settings.requests_container, manifest)
    assert again.status is IntakeStatus.DUPLICATE


async def test_bad_files_get_their_own_reports_and_the_rest_goes_on(pipeline: Pipeline) -> None:
    await pipeline.upload_fixture("sentence-10.wav", "mixed/good.wav")
    await pipeline.upload_fixture("not-audio.wav", "mixed/junk.wav")
    await pipeline.upload(
        "mixed/readme.txt", b"not audio", container=pipeline.settings.input_container
    )
    manifest = await put_manifest(
        pipeline,
        "mixed.json",
        {"prefix": "mixed/", "files": ["elsewhere/missing.wav"], "destinationPrefix": "mx/"},
    )

    outcome = await handle_manifest_blob(
        pipeline.ctx, pipeline.settings.requests_container, manifest
    )

    assert outcome.status is IntakeStatus.QUEUED, outcome
    assert outcome.files_queued == 1
    assert outcome.files_rejected == 3
    reports = {
        path: (await pipeline.output_json(f"mx/{path}.error.json"))["code"]
        for path in ("mixed/junk.wav", "mixed/readme.txt", "elsewhere/missing.wav")
    }
    assert reports == {
        "mixed/junk.wav": "NotAudio",
        "mixed/readme.txt": "UnsupportedExtension",
        "elsewhere/missing.wav": "NotFound",
    }
    assert (await pipeline.submit()).files == 1
    job_row = await pipeline.ctx.ledger.get_job(await pipeline.job_of("mixed/good.wav"))
    assert job_row is not None
    assert [s.path for s in job_row.sources] == ["mixed/good.wav"]
    rows = await pipeline.ctx.ledger.sources_for_path(
        pipeline.settings.input_container, "mixed/junk.wav"
    )
    assert rows[0].state is SourceState.REJECTED


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (b"{not json", "(document)"),
        ([1, 2], "(document)"),
        ({}, "(document)"),
        ({"files": ["a.wav", "b.wav", "c.wav", "  "]}, "files[3]"),
        ({"files": ["a.wav"], "maxSpeakers": 99}, "maxSpeakers"),
        ({"files": ["a.wav"], "profanity": "bleep"}, "profanity"),
        ({"files": ["a.wav"], "channels": [0, 2]}, "channels"),
        ({"prefix": "x/", "container": "Bad_Name"}, "container"),
        (
            {"prefix": "x/", "languageIdentification": {"candidateLocales": ["en-US"]}},
            "languageIdentification.candidateLocales",
        ),
        ({"files": ["a.wav"], "destination": "typo/"}, "destination"),
        ({"files": ["a.wav"], "diarization": False, "maxSpeakers": 3}, "maxSpeakers"),
    ],
)
async def test_an_invalid_manifest_gets_a_report_naming_the_field(
    pipeline: Pipeline, document: Any, field: str
) -> None:
    manifest = await put_manifest(pipeline, "broken.json", document)

    outcome = await handle_manifest_blob(
        pipeline.ctx, pipeline.settings.requests_container, manifest
    )

    assert outcome.status is IntakeStatus.REJECTED
    assert outcome.code == "InvalidManifest"
    report = await pipeline.output_json("broken.json.error.json")
    assert report["status"] == "Rejected"
    assert report["message"].startswith(f"{field}: "), report["message"]
    assert report["accepted"]
    assert await pipeline.admin.count("Transcriptions_Submit") == 0
    rows = await pipeline.ctx.ledger.sources_for_path(
        pipeline.settings.requests_container, manifest
    )
    assert rows[0].state is SourceState.REJECTED


async def test_language_identification_and_options_reach_the_job(pipeline: Pipeline) -> None:
    await pipeline.upload_fixture("sentence-01.wav", "lid/a.wav")
    manifest = await put_manifest(
        pipeline,
        "lid.json",
        {
            "files": ["lid/a.wav"],
            "languageIdentification": {"candidateLocales": ["en-US", "de-DE"], "mode": "single"},
            "wordTimestamps": False,
            "punctuation": "dictated",
        },
    )

    outcome = await handle_manifest_blob(
        pipeline.ctx, pipeline.settings.requests_container, manifest
    )
    assert outcome.status is IntakeStatus.QUEUED
    assert (await pipeline.submit()).jobs == 1

    job = await pipeline.ctx.speech.batch.get_transcription(await pipeline.job_of("lid/a.wav"))
    assert job.locale == "en-US"
    assert job.properties is not None
    identification = job.properties.language_identification
    assert identification is not None
    assert identification.candidate_locales == ["en-US", "de-DE"]
    assert identification.mode == "Single"
    assert job.properties.punctuation_mode == "Dictated"
    assert job.properties.word_level_timestamps_enabled is False


async def test_a_manifests_files_and_an_upload_with_the_same_options_stay_apart(
    pipeline: Pipeline,
) -> None:
    """The destination prefix is part of the grouping key: one job per destination."""
    for name in ("apart/a.wav", "apart/b.wav"):
        await pipeline.upload_fixture("sentence-03.wav", name)
    manifest = await put_manifest(
        pipeline, "apart.json", {"files": ["apart/a.wav"], "destinationPrefix": "m/"}
    )
    await handle_manifest_blob(pipeline.ctx, pipeline.settings.requests_container, manifest)
    await handle_manifest_blob(pipeline.ctx, pipeline.settings.requests_container, manifest)

    summary = await pipeline.submit()

    assert summary.jobs == 1, "the duplicate manifest event queued nothing more"
    assert summary.files == 1
    await pipeline.poll_until_idle()
    assert await pipeline.output("m/apart/a.wav.json") is not None


@pytest.mark.parametrize(
    "document",
    [
        {"container": "no-such-container", "prefix": "2026/"},
        {"container": "no-such-container", "files": ["a.wav"]},
    ],
)
async def test_a_missing_container_is_rejected_at_once_in_words(
    pipeline: Pipeline, document: Any
) -> None:
    """Fault 4: not an outage to wait out, and no SDK XML in the report."""
    manifest = await put_manifest(pipeline, "missing.json", document)

    outcome = await handle_manifest_blob(
        pipeline.ctx, pipeline.settings.requests_container, manifest
    )

    assert outcome.status is IntakeStatus.REJECTED
    report = await pipeline.output_json("missing.json.error.json")
    assert report["message"] == (
        "container: there is no container 'no-such-container' in the storage account"
    )
    assert "<?xml" not in json.dumps(report)
    rows = await pipeline.ctx.ledger.sources_for_path(
        pipeline.settings.requests_container, manifest
    )
    assert [row.state for row in rows] == [SourceState.REJECTED]
    assert rows[0].attempts == 1, "decided on the first attempt"
