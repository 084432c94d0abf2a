"""The sample app on a real local host, against the session's Azurite and identity endpoint.

``sample_host`` starts once for the tests in this folder (timers keep running while the
HTTP tests go on, so their assertions rarely wait). Its app dir is a temp folder with a
``local.settings.json`` that tries to override settings the environment already has: the
blob and timer tests only pass if the environment wins, as with Core Tools.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.queue import QueueClient

from local.stack import StackInfo
from tests.host.harness import SAMPLE_APP, HostProcess, host_environment


@dataclass
class SampleHost:
    """The running sample host and where its functions write."""

    process: HostProcess
    out: Path
    blobs: ContainerClient
    typed: ContainerClient

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def function_key(self) -> str:
        return self.process.keys()["function"]

    @property
    def master_key(self) -> str:
        return self.process.keys()["master"]


@pytest.fixture(scope="session")
def storage(local_stack_no_emulator: StackInfo) -> Iterator[BlobServiceClient]:
    """Test-side access to Azurite (the well-known account key; the host uses identity)."""
    env = local_stack_no_emulator.env
    client = BlobServiceClient.from_connection_string(
        env["LOCAL_STORAGE_CONNECTION_STRING"], connection_verify=env["LOCAL_CA_BUNDLE"]
    )
    with client:
        yield client


@pytest.fixture(scope="session")
def poison_queue(local_stack_no_emulator: StackInfo) -> Iterator[QueueClient]:
    """Test-side ``webjobs-blobtrigger-poison`` in Azurite, its messages left undecoded."""
    env = local_stack_no_emulator.env
    client = QueueClient.from_connection_string(
        env["LOCAL_STORAGE_CONNECTION_STRING"],
        "webjobs-blobtrigger-poison",
        connection_verify=env["LOCAL_CA_BUNDLE"],
    )
    with client:
        yield client


def new_container(storage: BlobServiceClient, prefix: str) -> ContainerClient:
    return storage.create_container(f"{prefix}-{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def sample_host(
    local_stack_no_emulator: StackInfo,
    storage: BlobServiceClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SampleHost]:
    root = tmp_path_factory.mktemp("sample-host")
    out = root / "out"
    out.mkdir()
    app_dir = root / "app"
    app_dir.mkdir()
    blobs = new_container(storage, "sample")
    typed = new_container(storage, "typed")
    (app_dir / "local.settings.json").write_text(
        json.dumps(
            {
                "IsEncrypted": False,
                "Values": {
                    "SAMPLE_TICK_SCHEDULE": "* * * * * *",
                    # Both lose to the environment: the first is set there, the second
                    # belongs to a connection the environment defines identity-based.
                    "SAMPLE_CONTAINER": "not-this-container",
                    "AudioStorage": "UseDevelopmentStorage=true",
                },
            }
        )
    )
    env = host_environment(
        local_stack_no_emulator.env,
        SAMPLE_OUT_DIR=str(out),
        SAMPLE_CONTAINER=blobs.container_name,
        SAMPLE_TYPED_CONTAINER=typed.container_name,
    )
    process = HostProcess(
        app=SAMPLE_APP, app_dir=app_dir, state_dir=root / "state", env=env, log=root / "host.log"
    )
    process.start()
    try:
        yield SampleHost(process, out, blobs, typed)
    finally:
        process.stop()
