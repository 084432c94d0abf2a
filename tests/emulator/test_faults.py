"""Fault injection, the admin API, stats and settings."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from local.emulator.app import create_app
from local.emulator.faults import FaultConfig, FaultState, blob_path
from local.emulator.settings import FILE_FAILURE_KINDS, SettingsError, load_settings
from tests.emulator.conftest import (
    FIXTURES,
    KEY,
    SECOND_KEY,
    UNREACHABLE_URL,
    EmulatorServer,
    StartEmulator,
    assert_error,
    job_id,
    minimal_submission,
    settings_for,
    wait_for_status,
)

LIST = "/speechtotext/transcriptions"


def test_quota_is_100_requests_per_10_seconds_per_key(start_emulator: StartEmulator) -> None:
    server = start_emulator(quota_enabled=True)
    for _ in range(100):
        assert server.call("GET", LIST).status_code == 200
    throttled = server.call("GET", LIST)
    assert_error(throttled, 429, "TooManyRequests")
    assert 1 <= int(throttled.headers["Retry-After"]) <= 10
    # Another key has its own window; short audio and the STS are not throttled.
    other = server.call("GET", LIST, headers={"Ocp-Apim-Subscription-Key": SECOND_KEY})
    assert other.status_code == 200
    assert server.client.post("/sts/v1.0/issueToken").status_code == 200

    server.clock.advance(dt.timedelta(seconds=10))
    assert server.call("GET", LIST).status_code == 200
    stats = server.admin("GET", "/admin/stats").json()
    assert stats["faultsInjected"] == {"quota": 1}
    assert stats["requests"]["byOperationAndStatus"]["Transcriptions_List"] == {
        "200": 102,
        "429": 1,
    }


def test_quota_can_be_changed_at_run_time(start_emulator: StartEmulator) -> None:
    server = start_emulator(quota_enabled=False)
    changed = server.admin(
        "PUT", "/admin/faults", json={"quota_enabled": True, "quota_requests": 3}
    )
    assert changed.status_code == 200
    assert changed.json()["quota_requests"] == 3
    statuses = [server.call("GET", LIST).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    assert server.admin("POST", "/admin/reset").json() == {"reset": True, "jobsDeleted": False}
    assert server.admin("GET", "/admin/faults").json()["quota_enabled"] is False
    assert server.call("GET", LIST).status_code == 200


def test_server_errors_are_injected_at_the_configured_rate(
    start_emulator: StartEmulator,
) -> None:
    server = start_emulator(error_rate=0.5)
    statuses = [server.call("GET", LIST).status_code for _ in range(200)]
    failures = [s for s in statuses if s >= 500]
    assert set(failures) == {500, 503}
    assert 60 <= len(failures) <= 140  # 0.5 of 200, far beyond 5 standard deviations
    server.admin("PUT", "/admin/faults", json={"error_rate": 1.0})
    failed = server.submit(minimal_submission())
    assert failed.status_code in (500, 503)
    assert failed.json()["code"] in ("InternalServerError", "ServiceUnavailable")
    server.admin("PUT", "/admin/faults", json={"error_rate": 0.0})
    # An injected failure happens before processing: no job was created.
    assert server.call("GET", LIST).json()["values"] == []


def test_latency(start_emulator: StartEmulator) -> None:
    server = start_emulator(latency_ms=150)
    started = time.monotonic()
    assert server.call("GET", LIST).status_code == 200
    assert time.monotonic() - started >= 0.15
    started = time.monotonic()
    assert server.admin("GET", "/health").status_code == 200
    assert time.monotonic() - started < 0.15


def test_job_start_delay_and_forced_failures(
    start_emulator: StartEmulator, audio_host: str
) -> None:
    server = start_emulator(job_start_delay_seconds=0.5, fail_jobs="broken-*")
    url = f"{audio_host}/sentence-08.wav"
    good = job_id(server.submit(minimal_submission(displayName="fine", contentUrls=[url])))
    bad = job_id(server.submit(minimal_submission(displayName="broken-1", contentUrls=[url])))
    time.sleep(0.2)
    assert server.call("GET", f"{LIST}/{good}").json()["status"] == "NotStarted"
    assert wait_for_status(server, good)["status"] == "Succeeded"
    failed = wait_for_status(server, bad)
    assert failed["status"] == "Failed"
    assert failed["properties"]["error"]["code"] == "Internal"

    server.admin("PUT", "/admin/faults", json={"fail_jobs": "*", "job_start_delay_seconds": 0})
    every = wait_for_status(server, job_id(server.submit(minimal_submission(contentUrls=[url]))))
    assert every["status"] == "Failed"
    stats = server.admin("GET", "/admin/stats").json()
    assert stats["faultsInjected"] == {"job": 2}
    assert stats["jobs"] == {"NotStarted": 0, "Running": 0, "Succeeded": 1, "Failed": 2}
    assert stats["files"] == {"Succeeded": 1}
    assert 2.0 < stats["audioSecondsTranscribed"] < 3.0  # sentence-08.wav once

    assert server.admin("POST", "/admin/reset", params={"jobs": "true"}).status_code == 200
    after = server.admin("GET", "/admin/stats").json()
    assert after["requests"]["total"] == 0
    assert after["jobs"] == {"NotStarted": 0, "Running": 0, "Succeeded": 0, "Failed": 0}


def test_stats_count_operations_and_statuses(emulator: EmulatorServer) -> None:
    emulator.call("GET", LIST)
    emulator.call("GET", f"{LIST}/00000000-0000-0000-0000-000000000000")
    emulator.call("GET", "/speechtotext/models/base")
    httpx.get(emulator.url + LIST + "?api-version=2024-11-15")  # no key
    emulator.client.post("/sts/v1.0/issueToken")
    stats = emulator.admin("GET", "/admin/stats").json()
    assert stats["requests"]["byOperation"] == {
        "Models_ListBaseModels": 1,
        "Sts_IssueToken": 1,
        "Transcriptions_Get": 1,
        "Transcriptions_List": 2,
    }
    assert stats["requests"]["byStatus"] == {"200": 3, "401": 1, "404": 1}
    assert stats["requests"]["total"] == 5


def test_admin_validation_and_loopback_only(emulator: EmulatorServer, tmp_path: Path) -> None:
    for body in ({"error_rate": 2}, {"latency_ms": -1}, {"nope": 1}, {"quota_enabled": "yes"}, [1]):
        response = emulator.admin("PUT", "/admin/faults", content=json.dumps(body))
        assert response.status_code == 400, body
    assert emulator.admin("GET", "/health").json() == {"status": "ok", "engine": "fixed"}

    remote = TestClient(create_app(settings_for(tmp_path)))  # client host "testclient"
    for method, path in (
        ("GET", "/admin/stats"),
        ("GET", "/admin/faults"),
        ("PUT", "/admin/faults"),
        ("POST", "/admin/reset"),
        ("POST", "/admin/sweep"),
        ("POST", "/admin/jobs:forget"),
    ):
        assert remote.request(method, path).status_code == 403


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EMULATOR_KEYS", f" {KEY} , {SECOND_KEY},")
    monkeypatch.setenv("EMULATOR_ENGINE", "fixed")
    monkeypatch.setenv("EMULATOR_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("EMULATOR_JWT_AUDIENCES", "https://cognitiveservices.azure.com/,api://x")
    settings = load_settings()
    assert settings.keys == [KEY, SECOND_KEY]
    assert settings.jwt_audiences == ["https://cognitiveservices.azure.com", "api://x"]
    client = TestClient(create_app())
    assert client.get("/health").json()["engine"] == "fixed"

    for name, value in (
        ("EMULATOR_WORKERS", "0"),
        ("EMULATOR_ENGINE", "deepspeech"),
        ("EMULATOR_ERROR_RATE", "1.5"),
        ("EMULATOR_JWT_PUBLIC_KEY", str(tmp_path / "missing.pem")),
        ("EMULATOR_PUBLIC_URL", "ftp://x"),
    ):
        with monkeypatch.context() as patch:
            patch.setenv(name, value)
            with pytest.raises(SettingsError, match=name):
                load_settings()

    not_pem = tmp_path / "key.pem"
    not_pem.write_text("not a key")
    monkeypatch.setenv("EMULATOR_JWT_PUBLIC_KEY", str(not_pem))
    with pytest.raises(SettingsError, match="EMULATOR_JWT_PUBLIC_KEY"):
        create_app()
    monkeypatch.delenv("EMULATOR_JWT_PUBLIC_KEY")
    models = tmp_path / "models.json"
    for content in ("{", '[{"displayName": "x", "locale": "en-US"}]', '[{"self": "x/1"}]'):
        models.write_text(content)
        monkeypatch.setenv("EMULATOR_CUSTOM_MODELS", str(models))
        with pytest.raises(SettingsError, match="EMULATOR_CUSTOM_MODELS"):
            create_app()


def test_file_fault_settings_at_run_time(emulator: EmulatorServer) -> None:
    defaults = emulator.admin("GET", "/admin/faults").json()
    assert (defaults["fail_files"], defaults["fail_files_kind"], defaults["fail_files_times"]) == (
        None,
        "InvalidUri",
        1,
    )
    for field, value in (
        ("fail_files_kind", "Bogus"),
        ("fail_files_kind", None),
        ("fail_files_kind", "invaliduri"),
        ("fail_files_times", -1),
        ("fail_files_times", True),
        ("fail_files_times", 1.5),
        ("fail_files", 3),
    ):
        refused = emulator.admin("PUT", "/admin/faults", json={field: value})
        assert refused.status_code == 400, (field, value)
        assert field in refused.json()["error"]["message"], refused.text
    refused = emulator.admin("PUT", "/admin/faults", json={"fail_files_kind": "Bogus"})
    assert "Transient" in refused.json()["error"]["message"]  # says what is accepted
    assert emulator.admin("GET", "/admin/faults").json() == defaults  # nothing half-applied

    for kind in ("InvalidUri", "Internal", "Timeout", "Transient", "InvalidData"):
        changes = {"fail_files": "*/chaos/*", "fail_files_kind": kind, "fail_files_times": 0}
        changed = emulator.admin("PUT", "/admin/faults", json=changes)
        assert changed.status_code == 200, changed.text
        assert {k: changed.json()[k] for k in changes} == changes
    blank = emulator.admin("PUT", "/admin/faults", json={"fail_files": " "}).json()
    assert blank["fail_files"] is None
    emulator.admin("POST", "/admin/reset")
    assert emulator.admin("GET", "/admin/faults").json() == defaults


def test_file_fault_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EMULATOR_ENGINE", "fixed")
    monkeypatch.setenv("EMULATOR_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("EMULATOR_FAIL_FILES", "*/chaos/*.wav")
    monkeypatch.setenv("EMULATOR_FAIL_FILES_KIND", "Timeout")
    monkeypatch.setenv("EMULATOR_FAIL_FILES_TIMES", "0")
    settings = load_settings()
    config = FaultConfig.from_settings(settings)
    assert (config.fail_files, config.fail_files_kind, config.fail_files_times) == (
        "*/chaos/*.wav",
        "Timeout",
        0,
    )
    assert create_app().state.emulator.faults.config == config
    for name, value in (("EMULATOR_FAIL_FILES_KIND", "Bogus"), ("EMULATOR_FAIL_FILES_TIMES", "-1")):
        with monkeypatch.context() as patch:
            patch.setenv(name, value)
            with pytest.raises(SettingsError, match=name):
                load_settings()
    monkeypatch.setenv("EMULATOR_FAIL_FILES", "  ")
    monkeypatch.delenv("EMULATOR_FAIL_FILES_KIND")
    monkeypatch.delenv("EMULATOR_FAIL_FILES_TIMES")
    settings = load_settings()
    assert (settings.fail_files, settings.fail_files_kind, settings.fail_files_times) == (
        None,
        "InvalidUri",
        1,
    )


def test_file_failures_are_counted_per_blob_path(tmp_path: Path) -> None:
    config = FaultConfig.from_settings(settings_for(tmp_path))
    state = FaultState(config)
    url = "https://acct.blob.core.windows.net/in/chaos/two%20words.wav?sv=1&sig=secret"
    assert blob_path(url) == "/in/chaos/two words.wav"
    assert state.file_failure(url) is None  # fail_files unset
    state.update({"fail_files": "*/chaos/two words.wav", "fail_files_times": 2})
    first = state.file_failure(url)
    assert first is not None
    assert first.kind == "InvalidUri"
    assert "https://acct.blob.core.windows.net/in/chaos/two%20words.wav" in first.message
    assert "secret" not in first.message
    # Another SAS for the same blob is the same source; a third failure is not injected.
    assert state.file_failure(url.replace("sig=secret", "sig=other")) is not None
    assert state.file_failure(url) is None
    assert state.file_failure("https://acct.blob.core.windows.net/in/calm/x.wav") is None
    assert state.file_failure_counts() == {"/in/chaos/two words.wav": 2}
    state.update({"fail_files_times": 0})
    assert all(state.file_failure(url) is not None for _ in range(5))
    assert state.file_failure_counts() == {"/in/chaos/two words.wav": 7}
    state.reset()
    assert state.config == config
    assert state.file_failure_counts() == {}
    for kind in FILE_FAILURE_KINDS:  # every accepted kind has a message
        state.update({"fail_files": "*", "fail_files_kind": kind, "fail_files_times": 0})
        failure = state.file_failure(url)
        assert failure is not None
        assert (failure.kind, failure.message.endswith("fault settings).")) == (kind, True)


def test_forget_drops_every_job_as_a_restart_would(
    emulator: EmulatorServer, audio_host: str
) -> None:
    finished = job_id(emulator.submit(minimal_submission(contentUrls=[UNREACHABLE_URL])))
    assert wait_for_status(emulator, finished)["status"] == "Failed"
    running = job_id(
        emulator.submit(minimal_submission(contentUrls=[f"{audio_host}/slow/sentence-08.wav"]))
    )
    deadline = time.monotonic() + 5
    while emulator.call("GET", f"{LIST}/{running}").json()["status"] != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    emulator.admin("PUT", "/admin/faults", json={"job_start_delay_seconds": 0.3})
    delayed = job_id(emulator.submit(minimal_submission(contentUrls=[UNREACHABLE_URL])))
    assert emulator.call("GET", f"{LIST}/{delayed}").json()["status"] == "NotStarted"

    state_dir = emulator.app.state.emulator.settings.state_dir
    assert (state_dir / finished / "").is_dir()  # its report.json

    forgotten = emulator.admin("POST", "/admin/jobs:forget")
    assert forgotten.status_code == 200
    assert forgotten.json() == {"forgotten": 3}
    for tid in (finished, running, delayed):
        assert_error(emulator.call("GET", f"{LIST}/{tid}"), 404, "NotFound")
    assert emulator.call("GET", LIST).json()["values"] == []
    # The running and the delayed job do not come back once their turn ends or comes.
    time.sleep(2.3)
    assert emulator.call("GET", LIST).json()["values"] == []
    assert not any((state_dir / tid).exists() for tid in (finished, running, delayed))
    stats = emulator.admin("GET", "/admin/stats").json()
    assert stats["jobs"] == {"NotStarted": 0, "Running": 0, "Succeeded": 0, "Failed": 0}
    # Only the jobs are gone: the faults and the counters stay, unlike POST /admin/reset.
    assert emulator.admin("GET", "/admin/faults").json()["job_start_delay_seconds"] == 0.3
    assert stats["requests"]["byOperation"]["Transcriptions_Submit"] == 3
    assert emulator.admin("POST", "/admin/jobs:forget").json() == {"forgotten": 0}
    # The emulator goes on taking jobs.
    emulator.admin("PUT", "/admin/faults", json={"job_start_delay_seconds": 0})
    after = job_id(
        emulator.submit(minimal_submission(contentUrls=[f"{audio_host}/sentence-08.wav"]))
    )
    assert wait_for_status(emulator, after)["status"] == "Succeeded"


def test_stats_count_submitted_jobs_per_display_name(emulator: EmulatorServer) -> None:
    for name in ("stt:aaaa first", "stt:bbbb second", "stt:aaaa first"):
        assert emulator.submit(minimal_submission(displayName=name)).status_code == 201
    # A refused submission created no job: it is not counted.
    refused = emulator.submit(minimal_submission(displayName="stt:cccc refused", locale="xx"))
    assert refused.status_code == 400
    expected = {"stt:aaaa first": 2, "stt:bbbb second": 1}
    assert emulator.admin("GET", "/admin/stats").json()["submittedDisplayNames"] == expected
    # Forgetting the jobs (a restart's effect on them) keeps the count; a reset clears it.
    assert emulator.admin("POST", "/admin/jobs:forget").json() == {"forgotten": 3}
    assert emulator.admin("GET", "/admin/stats").json()["submittedDisplayNames"] == expected
    emulator.admin("POST", "/admin/reset")
    assert emulator.admin("GET", "/admin/stats").json()["submittedDisplayNames"] == {}


FAST = "/speechtotext/transcriptions:transcribe"


def _fast(server: EmulatorServer, headers: dict[str, str] | None = None) -> httpx.Response:
    """One fast transcription of a short fixture (with the test key unless ``headers``)."""
    audio = (FIXTURES / "sentence-01.wav").read_bytes()
    files = {
        "definition": (None, json.dumps({"locales": ["en-US"]}), "application/json"),
        "audio": ("audio.wav", audio, "application/octet-stream"),
    }
    return server.call("POST", FAST, files=files, headers=headers)


def test_forced_fast_failures(emulator: EmulatorServer) -> None:
    defaults = emulator.admin("GET", "/admin/faults").json()
    assert (defaults["fast_fail_status"], defaults["fast_fail_times"]) == (None, 0)
    assert _fast(emulator).status_code == 200

    changed = emulator.admin(
        "PUT", "/admin/faults", json={"fast_fail_status": 429, "fast_fail_times": 2}
    )
    assert changed.status_code == 200, changed.text
    for _ in range(2):
        throttled = _fast(emulator)
        assert_error(throttled, 429, "TooManyRequests")
        assert throttled.headers["Retry-After"] == "1"
        assert emulator.call("GET", LIST).status_code == 200  # the batch surface is not hit
    assert _fast(emulator).status_code == 200  # two failures, then through
    assert _fast(emulator).status_code == 200

    # 0 = every request while set; naming the status again re-arms the count.
    emulator.admin("PUT", "/admin/faults", json={"fast_fail_status": 503, "fast_fail_times": 0})
    for _ in range(3):
        unavailable = _fast(emulator)
        assert_error(unavailable, 503, "ServiceUnavailable")
        assert unavailable.headers["Retry-After"] == "1"
    for status, code in ((500, "InternalServerError"), (502, "InternalCommunicationFailed")):
        emulator.admin("PUT", "/admin/faults", json={"fast_fail_status": status})
        assert_error(_fast(emulator), status, code)
    emulator.admin("PUT", "/admin/faults", json={"fast_fail_status": None})
    assert _fast(emulator).status_code == 200

    stats = emulator.admin("GET", "/admin/stats").json()
    assert stats["faultsInjected"] == {"fast_forced": 7}
    assert stats["requests"]["byOperationAndStatus"]["Transcriptions_Transcribe"] == {
        "200": 4,
        "429": 2,
        "500": 1,
        "502": 1,
        "503": 3,
    }

    for field, value in (
        ("fast_fail_status", 404),
        ("fast_fail_status", "503"),
        ("fast_fail_status", True),
        ("fast_fail_times", -1),
        ("fast_fail_times", 1.5),
        ("fast_quota_enabled", 1),
        ("fast_quota_requests", 0),
        ("fast_quota_window_seconds", 0),
    ):
        refused = emulator.admin("PUT", "/admin/faults", json={field: value})
        assert refused.status_code == 400, (field, value)
        assert field in refused.json()["error"]["message"]
    emulator.admin("PUT", "/admin/faults", json={"fast_fail_status": 503, "fast_fail_times": 1})
    emulator.admin("POST", "/admin/reset")
    assert emulator.admin("GET", "/admin/faults").json() == defaults
    assert _fast(emulator).status_code == 200


def test_fast_quota_is_600_per_minute_in_its_own_window(start_emulator: StartEmulator) -> None:
    server = start_emulator(quota_enabled=True, quota_requests=2)
    faults = server.admin("GET", "/admin/faults").json()
    assert (
        faults["fast_quota_enabled"],
        faults["fast_quota_requests"],
        faults["fast_quota_window_seconds"],
    ) == (False, 600, 60.0)
    server.admin(
        "PUT", "/admin/faults", json={"fast_quota_enabled": True, "fast_quota_requests": 3}
    )
    for _ in range(3):
        assert _fast(server).status_code == 200
    throttled = _fast(server)
    assert_error(throttled, 429, "TooManyRequests")
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert "3 requests per 60 seconds" in throttled.json()["message"]
    # The batch quota counts its own requests only, and another key has its own window.
    assert [server.call("GET", LIST).status_code for _ in range(3)] == [200, 200, 429]
    assert _fast(server, {"Ocp-Apim-Subscription-Key": SECOND_KEY}).status_code == 200

    server.clock.advance(dt.timedelta(seconds=60))
    assert _fast(server).status_code == 200
    stats = server.admin("GET", "/admin/stats").json()
    assert stats["faultsInjected"] == {"fast_quota": 1, "quota": 1}


def test_fast_fault_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EMULATOR_ENGINE", "fixed")
    monkeypatch.setenv("EMULATOR_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("EMULATOR_FAST_QUOTA_ENABLED", "true")
    monkeypatch.setenv("EMULATOR_FAST_QUOTA_REQUESTS", "5")
    monkeypatch.setenv("EMULATOR_FAST_QUOTA_WINDOW_SECONDS", "2.5")
    monkeypatch.setenv("EMULATOR_FAST_FAIL_STATUS", "503")
    monkeypatch.setenv("EMULATOR_FAST_FAIL_TIMES", "2")
    config = FaultConfig.from_settings(load_settings())
    assert (
        config.fast_quota_enabled,
        config.fast_quota_requests,
        config.fast_quota_window_seconds,
        config.fast_fail_status,
        config.fast_fail_times,
    ) == (True, 5, 2.5, 503, 2)
    monkeypatch.setenv("EMULATOR_FAST_FAIL_STATUS", " ")
    assert load_settings().fast_fail_status is None
    for name, value in (
        ("EMULATOR_FAST_FAIL_STATUS", "404"),
        ("EMULATOR_FAST_FAIL_STATUS", "teapot"),
        ("EMULATOR_FAST_FAIL_TIMES", "-1"),
        ("EMULATOR_FAST_QUOTA_REQUESTS", "0"),
        ("EMULATOR_WEBHOOK_DELIVERY_ATTEMPTS", "0"),
        ("EMULATOR_WEBHOOK_RETRY_SECONDS", "-1"),
        ("EMULATOR_WEBHOOK_TIMEOUT_SECONDS", "0"),
        ("EMULATOR_WEBHOOK_FAILURES_TO_DISABLE", "0"),
    ):
        with monkeypatch.context() as patch:
            patch.setenv(name, value)
            with pytest.raises(SettingsError, match=name):
                load_settings()
