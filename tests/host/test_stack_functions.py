"""The functions host as a service of the offline stack (``make up``)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from azure.storage.blob import BlobServiceClient

from local.app_settings import read_env_file
from local.stack import (
    ALL_SERVICES,
    FUNCTIONS,
    IDENTITY,
    SERVICES,
    STACK_HEADER,
    Ports,
    Stack,
    StackError,
    StackInfo,
    default_services,
    services,
)
from tests.host.conftest import new_container
from tests.host.harness import SAMPLE_APP, HostProcess, read_jsonl, wait_for

pytestmark = pytest.mark.stack


def quiet(_line: str) -> None:
    """Swallow the stack's progress lines."""


def test_up_with_functions_writes_its_url_and_key_and_the_host_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sample app's own settings; the stack passes its environment on to the host.
    monkeypatch.setenv("SAMPLE_OUT_DIR", str(tmp_path))
    monkeypatch.setenv("SAMPLE_CONTAINER", "sample")
    monkeypatch.setenv("SAMPLE_TYPED_CONTAINER", "typed")
    monkeypatch.setenv("SAMPLE_TICK_SCHEDULE", "0 0 0 1 1 *")
    ports = Ports.free()
    stack = Stack(
        tmp_path, ports=ports, services={IDENTITY, FUNCTIONS}, functions_app=SAMPLE_APP, echo=quiet
    )
    try:
        info = stack.up()
        env = read_env_file(stack.env_file)
        assert env == info.env
        assert info.functions_url == f"http://127.0.0.1:{ports.functions}"
        keys = (tmp_path / "functions" / "host-keys.json").read_text()
        assert info.functions_key in keys
        assert info.functions_master_key in keys

        health = httpx.get(f"{info.functions_url}/health")
        assert health.status_code == 200
        assert health.headers[STACK_HEADER].startswith(f"{FUNCTIONS}@")
        url = f"{info.functions_url}/api/items/9"
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"x-functions-key": info.functions_key}).json()["id"] == "9"
        status = {s.name: s for s in stack.status()}
        assert status[FUNCTIONS].state == "healthy"
        assert status[FUNCTIONS].ports == {"functions": ports.functions}

        log = stack.log_file(FUNCTIONS).read_text()
        assert "Functions in tests.host.sample_app:app" in log
        assert info.functions_key not in log

        with pytest.raises(StackError, match="serves another app"):
            Stack(
                tmp_path, ports=ports, services={FUNCTIONS}, functions_app="other:app", echo=quiet
            ).up()
    finally:
        stopped = stack.down()
    assert FUNCTIONS in stopped
    assert "Application shutdown complete" in stack.log_file(FUNCTIONS).read_text()
    assert {s.state for s in stack.status()} == {"stopped"}
    core_only = Stack(tmp_path, ports=ports, echo=quiet)
    assert [s.name for s in core_only.status()] == list(SERVICES)  # functions: not chosen


def test_an_app_that_does_not_import_fails_up_with_the_error(tmp_path: Path) -> None:
    stack = Stack(
        tmp_path,
        ports=Ports.free(),
        services={FUNCTIONS},
        functions_app="tests.host.broken_app:app",
        echo=quiet,
    )
    with pytest.raises(StackError) as caught:
        stack.up()
    message = str(caught.value)
    assert "functions exited with code 1" in message
    assert "sample import failure" in message  # from the log tail
    assert "cannot load the function app tests.host.broken_app:app" in message
    assert not stack.pid_file(FUNCTIONS).exists()


def test_the_cli_starts_functions_only_once_there_is_an_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "FUNCTION_APP_FILE", tmp_path / "function_app.py")
    assert default_services() == SERVICES
    assert default_services("tests.host.sample_app:app") == ALL_SERVICES
    (tmp_path / "function_app.py").write_text("")
    assert default_services() == ALL_SERVICES


def test_the_host_by_hand_with_stack_env(
    local_stack_no_emulator: StackInfo, storage: BlobServiceClient, tmp_path: Path
) -> None:
    """``--stack-env``: the stack's settings and the app settings, as ``make up`` gives them."""
    container = new_container(storage, "by-hand")
    stack_env = local_stack_no_emulator.env
    # Only what a developer's shell has: none of the stack's settings.
    env = {key: value for key, value in os.environ.items() if key not in stack_env}
    env.update(
        SAMPLE_OUT_DIR=str(tmp_path),
        SAMPLE_CONTAINER=container.container_name,
        SAMPLE_TYPED_CONTAINER=container.container_name,
        SAMPLE_TICK_SCHEDULE="0 0 0 1 1 *",
        LOCAL_BLOB_POLL_SECONDS="0.2",
    )
    host = HostProcess(
        app=SAMPLE_APP,
        app_dir=tmp_path,
        state_dir=tmp_path / "state",
        env=env,
        log=tmp_path / "host.log",
        extra_args=["--stack-env", str(local_stack_no_emulator.state_dir / "stack.env")],
    ).start()
    try:
        container.upload_blob("by-hand.wav", b"x")
        delivered = wait_for(
            lambda: read_jsonl(tmp_path / "on_blob.jsonl"), what="a delivery through identity"
        )
        assert delivered[0]["name"] == "by-hand.wav"
        key = {"x-functions-key": host.keys()["function"]}
        assert httpx.get(f"{host.url}/api/items/2", headers=key).status_code == 200
    finally:
        host.stop()
