"""Batch jobs end to end: audio in Azurite (or a local HTTP host), results out.

The emulator runs in-process (engine ``fixed``) with the offline stack's CA and identity key,
so jobs download through SAS URLs over HTTPS exactly as from Azure Blob Storage.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from azure.storage.blob import (
    BlobServiceClient,
    ContainerSasPermissions,
    generate_container_sas,
)

# jsonschema ships no type information and the repo does not carry types-jsonschema.
from local.emulator.asr.engines import DEFAULT_FIXED_TEXT
from local.stack import StackInfo
from tests.contract.openapi import assert_valid_result_file
from tests.emulator.conftest import (
    FIXTURES,
    KEY,
    UNREACHABLE_URL,
    EmulatorServer,
    StartEmulator,
    assert_error,
    job_id,
    minimal_submission,
    validate,
    wait_for_status,
)


@dataclass
class Storage:
    """Azurite of the offline stack, with the account key for SAS and checks."""

    env: dict[str, str]
    service: BlobServiceClient

    def container(self, *blobs: str, prefix: str = "") -> str:
        """A new container holding the named fixtures (under ``prefix``); its name."""
        name = f"audio-{uuid.uuid4().hex[:12]}"
        client = self.service.create_container(name)
        for blob in blobs:
            client.upload_blob(prefix + blob, (FIXTURES / blob).read_bytes())
        return name

    def sas_url(self, container: str, blob: str | None = None, *, permission: str = "rl") -> str:
        """A container SAS (account key) for the container or one of its blobs."""
        sas = generate_container_sas(
            self.env["LOCAL_STORAGE_ACCOUNT"],
            container,
            account_key=self.env["LOCAL_STORAGE_KEY"],
            permission=ContainerSasPermissions.from_string(permission),
            expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        )
        path = f"{container}/{blob}" if blob else container
        return f"{self.env['LOCAL_BLOB_ENDPOINT']}/{path}?{sas}"

    def read(self, url: str) -> bytes:
        """A blob's content, by its URL without a SAS (read with the account key)."""
        container, _, blob = url.removeprefix(self.env["LOCAL_BLOB_ENDPOINT"] + "/").partition("/")
        return self.service.get_blob_client(container, blob).download_blob().readall()


@pytest.fixture(scope="module")
def storage(local_stack_no_emulator: StackInfo) -> Iterator[Storage]:
    """Azurite, with a client that trusts the stack's CA."""
    env = local_stack_no_emulator.env
    service = BlobServiceClient.from_connection_string(
        env["LOCAL_STORAGE_CONNECTION_STRING"], connection_verify=env["LOCAL_CA_BUNDLE"]
    )
    with service:
        yield Storage(env, service)


@pytest.fixture
def server(start_emulator: StartEmulator, storage: Storage) -> EmulatorServer:
    """An emulator that trusts Azurite's certificate."""
    return start_emulator(ca_bundle=Path(storage.env["LOCAL_CA_BUNDLE"]))


def _files(server: EmulatorServer, tid: str, **params: Any) -> list[dict[str, Any]]:
    response = server.call("GET", f"/speechtotext/transcriptions/{tid}/files", params=params)
    validate("Transcriptions_ListFiles", response, "2024-11-15", headers=False)
    values: list[dict[str, Any]] = response.json()["values"]
    return values


def _content(file: dict[str, Any]) -> Any:
    response = httpx.get(file["links"]["contentUrl"])
    assert response.status_code == 200, response.text
    return response.json()


def _report(server: EmulatorServer, tid: str) -> dict[str, Any]:
    (report,) = _files(server, tid, filter="kind eq 'TranscriptionReport'")
    result: dict[str, Any] = _content(report)
    return result


def test_job_transcribes_blobs_with_sas(server: EmulatorServer, storage: Storage) -> None:
    container = storage.container("sentence-01.wav", "sentence-02.ogg")
    urls = [storage.sas_url(container, b) for b in ("sentence-01.wav", "sentence-02.ogg")]
    properties = {
        "timeToLiveHours": 6,
        "wordLevelTimestampsEnabled": True,
        "displayFormWordLevelTimestampsEnabled": True,
    }
    submitted = server.submit(minimal_submission(contentUrls=urls, properties=properties))
    tid = job_id(submitted)
    done = wait_for_status(server, tid)
    assert done["status"] == "Succeeded", str(done["properties"].get("error"))
    assert done["properties"]["durationMilliseconds"] > 5000

    results = _files(server, tid, filter="kind eq 'Transcription'")
    assert [f["name"] for f in results] == ["contenturl_0.json", "contenturl_1.json"]
    for index, file in enumerate(results):
        document = _content(file)
        assert_valid_result_file(document)
        assert document["source"] == urls[index].partition("?")[0]  # never the SAS
        assert document["combinedRecognizedPhrases"][0]["display"] == DEFAULT_FIXED_TEXT
        best = document["recognizedPhrases"][0]["nBest"][0]
        assert best["words"]
        assert best["displayWords"]
    report = _report(server, tid)
    assert report == {
        "successfulTranscriptionsCount": 2,
        "failedTranscriptionsCount": 0,
        "details": [{"source": u.partition("?")[0], "status": "Succeeded"} for u in urls],
    }


def test_failures_are_reported_per_file(
    server: EmulatorServer,
    storage: Storage,
    audio_host: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    container = storage.container("sentence-08.wav", "not-audio.wav")
    good = storage.sas_url(container, "sentence-08.wav")
    tampered = good.replace("sig=", "sig=AAAA")
    urls = [
        good,
        storage.sas_url(container, "not-audio.wav"),
        storage.sas_url(container, "missing.wav"),
        tampered,
        f"{audio_host}/silence-1s.wav",
    ]
    tid = job_id(server.submit(minimal_submission(contentUrls=urls)))
    done = wait_for_status(server, tid)
    assert done["status"] == "Succeeded"
    assert "error" not in done["properties"]
    names = [f["name"] for f in _files(server, tid, filter="kind eq 'Transcription'")]
    assert names == ["contenturl_0.json", "contenturl_4.json"]
    report = _report(server, tid)
    assert report["successfulTranscriptionsCount"] == 2
    assert report["failedTranscriptionsCount"] == 3
    kinds = [(d["status"], d.get("errorKind")) for d in report["details"]]
    assert kinds == [
        ("Succeeded", None),
        ("Failed", "InvalidAudioFormat"),
        ("Failed", "InvalidUri"),
        ("Failed", "InvalidUri"),
        ("Succeeded", None),
    ]
    assert "404" in report["details"][2]["errorMessage"]
    assert "403" in report["details"][3]["errorMessage"]
    assert all("sig=" not in d["errorMessage"] for d in report["details"] if "errorMessage" in d)
    # Nothing the emulator logged carries a SAS signature or the key.
    assert "Transcriptions_Submit" in caplog.text
    assert re.search(r"sig=(?!REDACTED)", caplog.text) is None
    assert KEY not in caplog.text


def test_all_files_failing_fails_the_job(server: EmulatorServer, audio_host: str) -> None:
    bad_data = [f"{audio_host}/not-audio.wav", f"{audio_host}/missing.wav"]
    done = wait_for_status(server, job_id(server.submit(minimal_submission(contentUrls=bad_data))))
    assert done["status"] == "Failed"
    assert done["properties"]["error"] == {
        "code": "InvalidData",
        "message": "The recordings URI contains invalid data.",
    }
    unreachable = [f"{audio_host}/forbidden/a.wav", UNREACHABLE_URL]
    tid = job_id(server.submit(minimal_submission(contentUrls=unreachable)))
    done = wait_for_status(server, tid)
    assert done["properties"]["error"]["code"] == "InvalidUri"
    assert [f["kind"] for f in _files(server, tid)] == ["TranscriptionReport"]


def test_injected_file_failure_fails_once_then_the_file_succeeds(
    server: EmulatorServer, storage: Storage
) -> None:
    chaos = storage.container("sentence-08.wav", prefix="chaos/")
    calm = storage.container("sentence-13.wav")
    flaky = storage.sas_url(chaos, "chaos/sentence-08.wav")
    fine = storage.sas_url(calm, "sentence-13.wav")
    flaky_path = urlsplit(flaky).path  # /devstoreaccount1/<container>/chaos/sentence-08.wav
    faults = {"fail_files": "*/chaos/*.wav", "fail_files_kind": "Transient"}
    assert server.admin("PUT", "/admin/faults", json=faults).json()["fail_files_times"] == 1

    # The matching file fails in the report; the other file of the same job is transcribed,
    # so the job itself Succeeded, as with a real per-file failure.
    tid = job_id(server.submit(minimal_submission(contentUrls=[flaky, fine])))
    done = wait_for_status(server, tid)
    assert done["status"] == "Succeeded"
    assert "error" not in done["properties"]
    names = [f["name"] for f in _files(server, tid, filter="kind eq 'Transcription'")]
    assert names == ["contenturl_1.json"]
    report = _report(server, tid)
    assert report["successfulTranscriptionsCount"] == 1
    assert report["failedTranscriptionsCount"] == 1
    failed, succeeded = report["details"]
    assert failed == {
        "source": flaky.partition("?")[0],
        "status": "Failed",
        "errorKind": "Transient",
        "errorMessage": failed["errorMessage"],
    }
    assert "injected" in failed["errorMessage"]
    assert "sig=" not in failed["errorMessage"]
    assert succeeded == {"source": fine.partition("?")[0], "status": "Succeeded"}
    stats = server.admin("GET", "/admin/stats").json()
    assert stats["faultsInjected"] == {"file": 1}
    assert stats["fileFailuresInjected"] == {flaky_path: 1}
    assert stats["files"] == {"Failed": 1, "Succeeded": 1}

    # Submitted again in a new job, the same blob is transcribed: it already failed once.
    second = job_id(server.submit(minimal_submission(contentUrls=[flaky])))
    assert wait_for_status(server, second)["status"] == "Succeeded"
    assert _report(server, second)["details"] == [
        {"source": flaky.partition("?")[0], "status": "Succeeded"}
    ]
    assert server.admin("GET", "/admin/stats").json()["fileFailuresInjected"] == {flaky_path: 1}

    # POST /admin/reset forgets the counts (and the faults): set again, it fails again.
    server.admin("POST", "/admin/reset")
    assert server.admin("GET", "/admin/stats").json()["fileFailuresInjected"] == {}
    server.admin("PUT", "/admin/faults", json=faults)
    third = job_id(server.submit(minimal_submission(contentUrls=[flaky])))
    assert wait_for_status(server, third)["status"] == "Failed"
    assert _report(server, third)["details"][0]["errorKind"] == "Transient"


def test_fail_files_times_zero_always_fails_and_keeps_the_all_failed_rule(
    start_emulator: StartEmulator, audio_host: str
) -> None:
    server = start_emulator(
        fail_files="*/chaos/*.wav", fail_files_times=0, fail_files_kind="Timeout"
    )
    # The query (a SAS in real use) is not part of what the glob is matched against.
    url = f"{audio_host}/chaos/sentence-08.wav?sv=2024-11-04&sig=secret"
    for _ in range(3):
        tid = job_id(server.submit(minimal_submission(contentUrls=[url])))
        done = wait_for_status(server, tid)
        # Every file failed, not all of them InvalidUri: the job's existing rule applies.
        assert done["status"] == "Failed"
        assert done["properties"]["error"] == {
            "code": "InvalidData",
            "message": "The recordings URI contains invalid data.",
        }
        (detail,) = _report(server, tid)["details"]
        assert detail["status"] == "Failed"
        assert detail["errorKind"] == "Timeout"
        assert "secret" not in detail["errorMessage"]
    # Only InvalidUri failures: the job fails with InvalidUri, as when nothing is reachable.
    server.admin("PUT", "/admin/faults", json={"fail_files_kind": "InvalidUri"})
    tid = job_id(server.submit(minimal_submission(contentUrls=[url, url])))
    done = wait_for_status(server, tid)
    assert done["properties"]["error"]["code"] == "InvalidUri"
    assert [d["errorKind"] for d in _report(server, tid)["details"]] == ["InvalidUri"] * 2
    stats = server.admin("GET", "/admin/stats").json()
    assert stats["faultsInjected"] == {"file": 5}
    assert stats["fileFailuresInjected"] == {"/chaos/sentence-08.wav": 5}
    assert stats["audioSecondsTranscribed"] == 0  # nothing was downloaded or transcribed


def test_container_source(server: EmulatorServer, storage: Storage) -> None:
    container = storage.container("sentence-08.wav", "sentence-13.wav", prefix="calls/")
    storage.service.get_container_client(container).upload_blob("other/x.wav", b"x")
    url = storage.sas_url(container)
    prefixed = url.replace(f"/{container}?", f"/{container}/calls/?")
    tid = job_id(server.submit(minimal_submission(contentUrls=None, contentContainerUrl=prefixed)))
    done = wait_for_status(server, tid)
    assert done["status"] == "Succeeded", str(done["properties"].get("error"))
    report = _report(server, tid)
    assert [d["source"] for d in report["details"]] == [
        "calls/sentence-08.wav",
        "calls/sentence-13.wav",
    ]

    no_list = storage.sas_url(container, permission="r")
    tid = job_id(server.submit(minimal_submission(contentUrls=None, contentContainerUrl=no_list)))
    failed = wait_for_status(server, tid)
    assert failed["properties"]["error"]["code"] == "InvalidUri"
    assert "sig=" not in failed["properties"]["error"]["message"]


def test_destination_container(server: EmulatorServer, storage: Storage) -> None:
    source = storage.container("sentence-08.wav")
    destination = storage.service.create_container(f"results-{uuid.uuid4().hex[:12]}")
    writable = storage.sas_url(destination.container_name, permission="racwl")
    body = minimal_submission(
        contentUrls=[storage.sas_url(source, "sentence-08.wav")],
        properties={"timeToLiveHours": 6, "destinationContainerUrl": writable},
    )
    tid = job_id(server.submit(body))
    assert wait_for_status(server, tid)["status"] == "Succeeded"
    files = _files(server, tid, sasLifetimeMinutes=5)
    assert {f["name"] for f in files} == {"contenturl_0.json", "report.json"}
    for file in files:
        url = file["links"]["contentUrl"]
        assert url.startswith(storage.env["LOCAL_BLOB_ENDPOINT"])
        assert "?" not in url  # "returned urls do not contain an SAS token"
        assert url.endswith(f"/{tid}/{file['name']}")
    names = sorted(b.name for b in destination.list_blobs())
    assert names == [f"{tid}/contenturl_0.json", f"{tid}/report.json"]
    report_url = next(f["links"]["contentUrl"] for f in files if f["name"] == "report.json")
    assert b'"successfulTranscriptionsCount": 1' in storage.read(report_url)

    read_only = storage.sas_url(destination.container_name, permission="rl")
    body["properties"]["destinationContainerUrl"] = read_only
    failed = wait_for_status(server, job_id(server.submit(body)))
    assert failed["status"] == "Failed"
    assert failed["properties"]["error"]["code"] == "InaccessibleCustomerStorage"


def test_channels_and_limits(start_emulator: StartEmulator, audio_host: str) -> None:
    server = start_emulator(max_audio_seconds=4.0)

    def run(url: str, **properties: Any) -> dict[str, Any]:
        body = minimal_submission(
            contentUrls=[url], properties={"timeToLiveHours": 6, **properties}
        )
        tid = job_id(server.submit(body))
        wait_for_status(server, tid)
        return {f["name"]: _content(f) for f in _files(server, tid)}

    stereo = f"{audio_host}/stereo.wav"
    both = run(stereo)["contenturl_0.json"]
    assert [c["channel"] for c in both["combinedRecognizedPhrases"]] == [0, 1]
    right = run(stereo, channels=[1])["contenturl_0.json"]
    assert [c["channel"] for c in right["combinedRecognizedPhrases"]] == [1]
    assert {p["channel"] for p in right["recognizedPhrases"]} == {1}
    mono_right = run(f"{audio_host}/sentence-08.wav", channels=[1])["report.json"]
    assert mono_right["details"][0]["errorKind"] == "BadChannelConfiguration"
    diarized_stereo = run(stereo, diarization={"enabled": True})["report.json"]
    assert diarized_stereo["details"][0]["errorKind"] == "BadChannelConfiguration"
    diarized = run(f"{audio_host}/sentence-08.wav", diarization={"enabled": True, "maxSpeakers": 2})
    assert all("speaker" in p for p in diarized["contenturl_0.json"]["recognizedPhrases"])
    too_long = run(f"{audio_host}/sentence-14.wav")["report.json"]  # 5 s > 4 s limit
    assert too_long["details"][0]["errorKind"] == "AudioLengthLimitExceeded"
    not_audio = run(f"{audio_host}/sentences.json")["report.json"]
    assert not_audio["details"][0]["errorKind"] == "InvalidAudioFormat"


def test_running_jobs_cannot_be_deleted(server: EmulatorServer, audio_host: str) -> None:
    tid = job_id(
        server.submit(minimal_submission(contentUrls=[f"{audio_host}/slow/sentence-08.wav"]))
    )
    path = f"/speechtotext/transcriptions/{tid}"
    deadline = time.monotonic() + 5
    while server.call("GET", path).json()["status"] != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert_error(server.call("DELETE", path), 400, "InvalidRequest", "DeleteNotAllowed")
    assert wait_for_status(server, tid)["status"] == "Succeeded"
    assert server.call("DELETE", path).status_code == 204


def test_result_urls_are_signed_and_expire(server: EmulatorServer, audio_host: str) -> None:
    tid = job_id(server.submit(minimal_submission(contentUrls=[f"{audio_host}/sentence-08.wav"])))
    wait_for_status(server, tid)
    file = _files(server, tid, sasLifetimeMinutes=10)[0]
    url = file["links"]["contentUrl"]
    assert httpx.get(url).status_code == 200
    for tampered in (
        url.replace("sig=", "sig=x"),
        url.replace("se=", "se=2099"),
        url.split("?")[0],
    ):
        refused = httpx.get(tampered)
        assert refused.status_code == 403
        assert "<Code>AuthenticationFailed</Code>" in refused.text
    server.clock.advance(dt.timedelta(minutes=11))
    assert httpx.get(url).status_code == 403
    fresh = _files(server, tid)[0]["links"]["contentUrl"]  # default lifetime: 12 hours
    assert httpx.get(fresh).status_code == 200
    assert server.call("DELETE", f"/speechtotext/transcriptions/{tid}").status_code == 204
    gone = httpx.get(fresh)
    assert gone.status_code == 404
    assert "<Code>BlobNotFound</Code>" in gone.text
    bad_lifetime = server.call(
        "GET",
        f"/speechtotext/transcriptions/{job_id(server.submit(minimal_submission()))}/files",
        params={"sasLifetimeMinutes": 0},
    )
    assert_error(bad_lifetime, 400, "InvalidRequest", "InvalidSasValidityDuration")


def test_time_to_live_sweep(server: EmulatorServer, audio_host: str) -> None:
    ttl6 = minimal_submission(contentUrls=[f"{audio_host}/sentence-08.wav"])
    ttl48 = minimal_submission(
        contentUrls=[f"{audio_host}/sentence-08.wav"], properties={"timeToLiveHours": 48}
    )
    short, long = job_id(server.submit(ttl6)), job_id(server.submit(ttl48))
    wait_for_status(server, short)
    wait_for_status(server, long)
    content_url = _files(server, short)[0]["links"]["contentUrl"]
    server.clock.advance(dt.timedelta(hours=6, seconds=1))
    deadline = time.monotonic() + 5
    while server.call("GET", f"/speechtotext/transcriptions/{short}").status_code != 404:
        assert time.monotonic() < deadline, "the sweep did not delete the expired job"
        time.sleep(0.05)
    assert server.call("GET", f"/speechtotext/transcriptions/{long}").status_code == 200
    assert httpx.get(content_url).status_code == 404
    server.clock.advance(dt.timedelta(hours=42))
    assert server.admin("POST", "/admin/sweep").json() == {"deleted": 1}
    assert server.call("GET", f"/speechtotext/transcriptions/{long}").status_code == 404
