"""App settings (``%SETTING%``, local.settings.json, host.json) and the host keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.app_settings import read_local_settings
from local.host.settings import (
    HostSettings,
    SettingError,
    merge_local_settings,
    resolve_binding,
    resolve_references,
)
from local.keys import ensure_keys


def test_setting_references_resolve_or_name_the_missing_setting() -> None:
    env = {"CONTAINER": "audio-input", "CRON": "0 */5 * * * *"}
    assert resolve_references("%CONTAINER%/{name}", env) == "audio-input/{name}"
    binding = {"name": "%CONTAINER%", "type": "blobTrigger", "path": "%CONTAINER%/{name}"}
    assert resolve_binding(binding, env)["path"] == "audio-input/{name}"
    assert resolve_binding(binding, env)["name"] == "%CONTAINER%"  # names are not values
    with pytest.raises(SettingError, match="set OTHER"):
        resolve_references("%OTHER%/{name}", env)


def test_local_settings_fill_gaps_and_never_shadow_an_environment_connection() -> None:
    env = {
        "SPEECH_ENDPOINT": "http://127.0.0.1:7080",
        "AudioStorage__blobServiceUri": "https://127.0.0.1:10000/devstoreaccount1",
    }
    values = {
        "SPEECH_ENDPOINT": "https://elsewhere",
        "AudioStorage": "UseDevelopmentStorage=true",
        "AudioStorage__clientId": "someone",
        "OutputContainer": "transcripts",
        "Other__setting": "kept",
    }
    added, skipped = merge_local_settings(env, values)
    assert added == {"OutputContainer": "transcripts", "Other__setting": "kept"}
    assert sorted(skipped) == ["AudioStorage", "AudioStorage__clientId", "SPEECH_ENDPOINT"]


def test_local_settings_file(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    assert read_local_settings(path) == {}
    path.write_text(json.dumps({"Values": {"A": "x", "B": 3, "C": True, "D": None}}))
    assert read_local_settings(path) == {"A": "x", "B": "3", "C": "true"}
    path.write_text(json.dumps({"IsEncrypted": True, "Values": {}}))
    with pytest.raises(SettingError, match="IsEncrypted"):
        read_local_settings(path)
    path.write_text("{not json")
    with pytest.raises(SettingError, match="JSON"):
        read_local_settings(path)


def test_host_settings_from_environment_and_host_json(tmp_path: Path) -> None:
    assert HostSettings.load({}, tmp_path) == HostSettings()
    (tmp_path / "host.json").write_text(
        json.dumps(
            {"extensions": {"http": {"routePrefix": "/v1/"}, "queues": {"maxDequeueCount": 3}}}
        )
    )
    settings = HostSettings.load(
        {"LOCAL_BLOB_POLL_SECONDS": "0.25", "LOCAL_BLOB_CONCURRENCY": "2"}, tmp_path
    )
    assert settings.route_prefix == "v1"
    assert settings.blob_max_attempts == 3
    assert settings.blob_poll_seconds == 0.25
    assert settings.blob_concurrency == 2
    with pytest.raises(SettingError, match="LOCAL_BLOB_POLL_SECONDS"):
        HostSettings.load({"LOCAL_BLOB_POLL_SECONDS": "soon"}, tmp_path)
    with pytest.raises(SettingError, match="greater than 0"):
        HostSettings.load({"LOCAL_BLOB_RETRY_SECONDS": "0"}, tmp_path)


def test_keys_are_made_once_private_and_distinct(tmp_path: Path) -> None:
    keys = ensure_keys(tmp_path)
    assert ensure_keys(tmp_path) == keys
    assert (tmp_path / "host-keys.json").stat().st_mode & 0o777 == 0o600
    assert keys.master != keys.function
    assert keys.master not in repr(keys)
    assert keys.opens(keys.function, admin=False)
    assert keys.opens(keys.master, admin=False)
    assert keys.opens(keys.master, admin=True)
    assert not keys.opens(keys.function, admin=True)
    assert not keys.opens(None, admin=False)
    assert not keys.opens("", admin=False)
    assert not keys.opens(keys.function[:-1], admin=False)
