"""Batch client behaviour beyond the contract: ids, paging safety, downloads, deletes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from shared.speech.auth import KeyAuth
from shared.speech.batch import BatchTranscriptionClient
from shared.speech.endpoints import SpeechEndpoints
from shared.speech.errors import NotFoundError, SpeechError
from shared.speech.models import TranscriptionRequest, TranscriptionUpdate
from tests.support.scripted import Recorded, Reply

if TYPE_CHECKING:
    from tests.speech.conftest import Scripted


KEY = "0123456789abcdef0123456789abcdef"
JOB = "ba7ea6f5-3065-40b7-b49a-a90f48584683"
RESULT = {
    "source": "https://acct.blob.core.windows.net/audio/a.wav",
    "timestamp": "2026-11-21T10:00:00Z",
    "durationInTicks": 20000000,
    "durationMilliseconds": 2000,
    "duration": "PT2S",
    "combinedRecognizedPhrases": [
        {
            "channel": 0,
            "lexical": "hello",
            "itn": "hello",
            "maskedITN": "hello",
            "display": "Hello.",
        }
    ],
    "recognizedPhrases": [],
}


def client(url: str, http) -> BatchTranscriptionClient:  # type: ignore[no-untyped-def]
    return BatchTranscriptionClient(
        SpeechEndpoints.from_endpoint(url), KeyAuth(KEY), http_client=http
    )


def a_request() -> TranscriptionRequest:
    return TranscriptionRequest(
        display_name="job", locale="en-US", content_urls=["https://a.example/x.wav"]
    )


async def test_submit_takes_the_id_from_location_when_the_body_lacks_self(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    location = f"http://127.0.0.1/speechtotext/transcriptions/{JOB}?api-version=2024-11-15"
    reply = Reply(201, {"displayName": "job", "status": "NotStarted"}, {"Location": location})
    with scripted(lambda _r: reply) as (url, _app):
        job = await client(url, http).submit_transcription(a_request())
    assert job.id == JOB


async def test_submit_without_any_id_is_an_error(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    with (
        scripted(lambda _r: Reply(201, {"displayName": "job"})) as (url, _app),
        pytest.raises(SpeechError, match="no id"),
    ):
        await client(url, http).submit_transcription(a_request())


async def test_get_exposes_the_services_retry_after(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    body = {"self": f"http://x/speechtotext/transcriptions/{JOB}", "status": "Running"}
    with scripted(lambda _r: Reply(200, body, {"Retry-After": "30"})) as (url, _app):
        job = await client(url, http).get_transcription(JOB)
    assert job.retry_after == 30.0
    assert not job.is_terminal


async def test_downloads_never_carry_speech_credentials(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    def handler(req: Recorded) -> Reply:
        if "authorization" in req.headers or "ocp-apim-subscription-key" in req.headers:
            return Reply(400, "credentials sent to storage")
        if req.path.endswith("report.json"):
            return Reply(
                200,
                {
                    "successfulTranscriptionsCount": 1,
                    "failedTranscriptionsCount": 0,
                    "details": [{"source": "a.wav", "status": "Succeeded"}],
                },
            )
        return Reply(200, RESULT)

    with scripted(handler) as (url, app):
        batch = client(url, http)
        raw = await batch.download_file(f"{url}/results/a.json?sv=1&sig=abc")
        from shared.speech.models import TranscriptionFile

        result_file = TranscriptionFile.model_validate(
            {
                "kind": "Transcription",
                "name": "a.json",
                "links": {"contentUrl": f"{url}/results/a.json?sig=x"},
            }
        )
        report_file = TranscriptionFile.model_validate(
            {
                "kind": "TranscriptionReport",
                "name": "report.json",
                "links": {"contentUrl": f"{url}/results/report.json?sig=x"},
            }
        )
        result = await batch.download_result(result_file)
        report = await batch.download_report(report_file)
    assert b"Hello." in raw
    assert result.combined_recognized_phrases is not None
    assert result.combined_recognized_phrases[0].display == "Hello."
    assert report.successful_transcriptions_count == 1
    assert len(app.requests) == 3


async def test_downloads_refuse_plain_http_off_loopback(http: httpx.AsyncClient) -> None:
    batch = client("http://127.0.0.1:9", http)
    with pytest.raises(ValueError, match="https"):
        await batch.download_file("http://acct.blob.core.windows.net/r/a.json?sig=x")


async def test_a_next_link_to_another_host_is_not_followed(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    page = {"values": [], "@nextLink": "https://evil.example/speechtotext/transcriptions?skip=1"}
    with (
        scripted(lambda _r: Reply(200, page)) as (url, app),
        pytest.raises(SpeechError, match="another host"),
    ):
        await client(url, http).list_transcriptions().to_list()
    assert len(app.requests) == 1


async def test_a_next_link_that_repeats_stops_the_pager(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    def handler(req: Recorded) -> Reply:
        base = req.headers["host"]
        return Reply(
            200, {"values": [], "@nextLink": f"http://{base}/speechtotext/transcriptions?skip=5"}
        )

    with (
        scripted(handler) as (url, app),
        pytest.raises(SpeechError, match="same @nextLink twice"),
    ):
        await client(url, http).list_transcriptions().to_list()
    assert len(app.requests) == 2


async def test_next_link_without_api_version_gets_one(
    scripted: Scripted, http: httpx.AsyncClient
) -> None:
    def handler(req: Recorded) -> Reply:
        if req.query.get("skip") == "1":
            assert req.query["api-version"] == "2024-11-15"
            return Reply(200, {"values": [{"displayName": "second"}]})
        host = req.headers["host"]
        return Reply(
            200,
            {
                "values": [{"displayName": "first"}],
                "@nextLink": f"http://{host}/speechtotext/transcriptions?skip=1",
            },
        )

    with scripted(handler) as (url, _app):
        jobs = await client(url, http).list_transcriptions().to_list()
    assert [j.display_name for j in jobs] == ["first", "second"]


async def test_delete_missing_ok(scripted: Scripted, http: httpx.AsyncClient) -> None:
    with scripted(lambda _r: Reply(404, {"code": "NotFound", "message": "gone"})) as (url, _app):
        batch = client(url, http)
        assert await batch.delete_transcription(JOB, missing_ok=True) is False
        with pytest.raises(NotFoundError):
            await batch.delete_transcription(JOB)


async def test_arguments_are_checked_before_any_request(http: httpx.AsyncClient) -> None:
    batch = client("http://127.0.0.1:9", http)
    with pytest.raises(ValueError, match="transcription_id must be a UUID"):
        await batch.get_transcription("../models")
    with pytest.raises(ValueError, match="at least one"):
        await batch.update_transcription(JOB, TranscriptionUpdate())
    with pytest.raises(ValueError, match="top"):
        batch.list_transcriptions(top=0)
    with pytest.raises(ValueError, match="sas_lifetime_minutes"):
        batch.list_transcription_files(JOB, sas_lifetime_minutes=0)
    with pytest.raises(ValueError, match=r"kind must be one of .*TranscriptionReport"):
        batch.list_transcription_files(JOB, kind="Transcripts")
    with pytest.raises(ValueError, match="display_name"):
        batch.find_transcriptions("")
    with pytest.raises(ValueError, match="api_version"):
        BatchTranscriptionClient(
            SpeechEndpoints.from_region("westus"), KeyAuth(KEY), api_version="v3.2"
        )
