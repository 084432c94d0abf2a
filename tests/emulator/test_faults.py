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
from local.emulator.settings import SettingsError, load_settings
from tests.emulator.conftest import (
    KEY,
    SECOND_KEY,
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
