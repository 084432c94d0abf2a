"""``make up`` provisions storage as ``azd provision`` does, with the app's own settings."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
from azure.data.tables import TableServiceClient
from azure.identity import DefaultAzureCredential
from azure.storage.blob import BlobServiceClient

from local.stack import AZURITE, FUNCTIONS, IDENTITY, Ports, Stack, StackError, StackInfo
from local.stack.provision import StorageLayout
from tests.host.harness import SAMPLE_APP

pytestmark = pytest.mark.stack


def identity_blobs(info: StackInfo) -> BlobServiceClient:
    """The app's way in: managed identity, no key."""
    credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    return BlobServiceClient(
        info.blob_endpoint, credential=credential, connection_verify=info.ca_bundle, retry_total=0
    )


def test_audio_can_be_dropped_into_audio_input_straight_after_up(
    local_stack_no_emulator: StackInfo,
) -> None:
    """The README's first step, with no container created by the test."""
    info = local_stack_no_emulator
    with identity_blobs(info) as service:
        name = f"readme/{uuid.uuid4().hex}.wav"
        service.get_blob_client("audio-input", name).upload_blob(b"RIFF")
        for container in ("transcription-requests", "transcripts"):
            assert service.get_container_client(container).exists()
    tables = TableServiceClient.from_connection_string(
        info.env["LOCAL_STORAGE_CONNECTION_STRING"], connection_verify=info.ca_bundle
    )
    with tables:
        assert "transcriptionledger" in {table.name for table in tables.list_tables()}


def test_names_come_from_the_app_settings_and_up_is_idempotent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Environment and local.settings.json both reach the app, and name what is provisioned."""
    monkeypatch.setenv("SAMPLE_OUT_DIR", str(tmp_path))
    monkeypatch.setenv("SAMPLE_CONTAINER", "sample")
    monkeypatch.setenv("SAMPLE_TYPED_CONTAINER", "typed")
    monkeypatch.setenv("SAMPLE_TICK_SCHEDULE", "0 0 0 1 1 *")
    monkeypatch.setenv("POLL_MIN_INTERVAL_SECONDS", "7")  # not the offline default 2
    monkeypatch.setenv("INPUT_CONTAINER", "env-input")
    monkeypatch.setenv("SPEECH_ENDPOINT", "https://elsewhere.cognitiveservices.azure.com")
    local_settings = tmp_path / "local.settings.json"
    values = {"DEFAULT_LOCALE": "de-DE", "OUTPUT_CONTAINER": "file-output"}
    local_settings.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    lines: list[str] = []
    stack = Stack(
        tmp_path / "state",
        ports=Ports.free(),
        services={AZURITE, IDENTITY, FUNCTIONS},
        functions_app=SAMPLE_APP,
        local_settings=local_settings,
        echo=lines.append,
    )
    try:
        info = stack.up()
        key = {"x-functions-key": info.functions_key}

        def setting(name: str) -> object:
            url = f"{info.functions_url}/api/settings/{name}"
            return httpx.get(url, headers=key).raise_for_status().json()["value"]

        assert setting("POLL_MIN_INTERVAL_SECONDS") == "7"  # the environment
        assert setting("DEFAULT_LOCALE") == "de-DE"  # local.settings.json
        assert setting("POLL_SCHEDULE") == "*/2 * * * * *"  # the offline default
        assert setting("TIME_TO_LIVE_HOURS") == "48"  # the example's default
        assert setting("SPEECH_ENDPOINT") == info.env["SPEECH_ENDPOINT"]  # the wiring
        assert any(
            "created container env-input, container transcription-requests, "
            "container file-output, table transcriptionledger" in line
            for line in lines
        )
        service = BlobServiceClient.from_connection_string(
            info.env["LOCAL_STORAGE_CONNECTION_STRING"], connection_verify=info.ca_bundle
        )
        with service:
            assert service.get_container_client("env-input").exists()
            assert service.get_container_client("file-output").exists()
            assert not service.get_container_client("audio-input").exists()
        lines.clear()
        stack.up()
        assert not any("created" in line for line in lines)
    finally:
        stack.down()


def test_an_unset_name_stops_up_naming_the_setting() -> None:
    with pytest.raises(StackError, match="LEDGER_TABLE not set"):
        StorageLayout.from_settings(
            {"INPUT_CONTAINER": "a", "REQUESTS_CONTAINER": "b", "OUTPUT_CONTAINER": "c"}
        )
