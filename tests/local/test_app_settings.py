"""Offline app settings: wiring over environment over local.settings.json over defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.app_settings import (
    OFFLINE_DEFAULTS,
    SettingError,
    function_app_settings,
    read_local_settings,
)

STACK_ENV = {
    "LOCAL_BLOB_ENDPOINT": "https://127.0.0.1:1/devstoreaccount1",
    "LOCAL_QUEUE_ENDPOINT": "https://127.0.0.1:2/devstoreaccount1",
    "LOCAL_TABLE_ENDPOINT": "https://127.0.0.1:3/devstoreaccount1",
    "SPEECH_ENDPOINT": "http://127.0.0.1:4",
    "SPEECH_RESOURCE_ID": "/subscriptions/x/resourceGroups/local/providers/a/b/c",
    "IDENTITY_ENDPOINT": "http://127.0.0.1:5/msi/token",
    "IDENTITY_HEADER": "h",
    "FUNCTIONS_KEY": "k",
}


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    example = {
        "Values": {
            "POLL_SCHEDULE": "0 * * * * *",
            "POLL_MIN_INTERVAL_SECONDS": "60.0",
            "DEFAULT_LOCALE": "en-US",
            "TIME_TO_LIVE_HOURS": "48",
            "DEFAULT_MODEL": "",
            "AudioStorage": "",
        }
    }
    (tmp_path / "local.settings.json.example").write_text(json.dumps(example))
    return tmp_path


def test_each_layer_wins_over_the_ones_below(app_dir: Path) -> None:
    settings = function_app_settings(
        STACK_ENV,
        environ={"POLL_MIN_INTERVAL_SECONDS": "7", "PATH": "/bin"},
        local_settings={"POLL_MIN_INTERVAL_SECONDS": "9", "DEFAULT_LOCALE": "de-DE"},
        app_dir=app_dir,
    )
    assert settings["POLL_MIN_INTERVAL_SECONDS"] == "7"  # environment over local.settings.json
    assert settings["DEFAULT_LOCALE"] == "de-DE"  # local.settings.json over the example
    assert settings["POLL_SCHEDULE"] == OFFLINE_DEFAULTS["POLL_SCHEDULE"]  # offline over example
    assert settings["TIME_TO_LIVE_HOURS"] == "48"  # the example, where nothing else says
    assert settings["PATH"] == "/bin"  # the environment passes through
    assert "DEFAULT_MODEL" not in settings  # empty means unset
    assert "FUNCTIONS_KEY" not in settings  # the stack's client keys are not the app's


def test_the_wiring_always_wins_and_replaces_a_connection_whole(app_dir: Path) -> None:
    elsewhere = "https://elsewhere.blob.core.windows.net"
    settings = function_app_settings(
        STACK_ENV,
        environ={
            "SPEECH_ENDPOINT": "https://elsewhere.cognitiveservices.azure.com",
            "SPEECH_AUTH_MODE": "key",
            "SPEECH_KEY": "not-offline",
            "AudioStorage__blobServiceUri": elsewhere,
        },
        local_settings={
            "AudioStorage": "UseDevelopmentStorage=true",
            "AudioStorage__clientId": "someone-else",
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        },
        app_dir=app_dir,
    )
    assert settings["SPEECH_ENDPOINT"] == STACK_ENV["SPEECH_ENDPOINT"]
    assert settings["SPEECH_AUTH_MODE"] == "entra"
    assert "SPEECH_KEY" not in settings
    assert settings["AudioStorage__blobServiceUri"] == STACK_ENV["LOCAL_BLOB_ENDPOINT"]
    assert settings["AudioStorage__credential"] == "managedidentity"
    assert "AudioStorage" not in settings
    assert "AudioStorage__clientId" not in settings
    assert "AzureWebJobsStorage" not in settings
    assert settings["IDENTITY_ENDPOINT"] == STACK_ENV["IDENTITY_ENDPOINT"]


def test_function_app_settings_map_the_stack_onto_the_app(app_dir: Path) -> None:
    settings = function_app_settings(STACK_ENV, local_settings={}, app_dir=app_dir)
    for connection in ("AudioStorage", "AzureWebJobsStorage"):
        assert settings[f"{connection}__blobServiceUri"] == STACK_ENV["LOCAL_BLOB_ENDPOINT"]
        assert settings[f"{connection}__queueServiceUri"] == STACK_ENV["LOCAL_QUEUE_ENDPOINT"]
        assert settings[f"{connection}__tableServiceUri"] == STACK_ENV["LOCAL_TABLE_ENDPOINT"]
        assert settings[f"{connection}__credential"] == "managedidentity"
    assert settings["SPEECH_RESOURCE_ID"] == STACK_ENV["SPEECH_RESOURCE_ID"]
    assert settings["PYTHON_ENABLE_INIT_INDEXING"] == "1"
    assert settings["FUNCTIONS_WORKER_RUNTIME"] == "python"


def test_a_broken_local_settings_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text("{not json")
    with pytest.raises(SettingError, match=r"local\.settings\.json: not readable JSON"):
        read_local_settings(path)
