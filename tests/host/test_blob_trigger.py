"""Blob triggers on the local host, against the offline stack's Azurite and identity."""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient

from local.stack import StackInfo
from tests.host.conftest import SampleHost, new_container
from tests.host.harness import (
    SAMPLE_APP,
    Forwarder,
    HostProcess,
    host_environment,
    read_jsonl,
    wait_for,
)


def _delivered(host: SampleHost, name: str) -> list[dict[str, object]]:
    return [entry for entry in read_jsonl(host.out / "on_blob.jsonl") if entry["name"] == name]


def _attempts(host: SampleHost, name: str) -> list[dict[str, object]]:
    return [
        entry for entry in read_jsonl(host.out / "on_blob_attempts.jsonl") if entry["name"] == name
    ]


def _poison_messages(queue: QueueClient, blob: str) -> list[dict[str, Any]]:
    """The messages on the poison queue for ``blob``, decoded as Azure encodes them.

    Each must be Base64 (strictly: raw JSON would not pass) of UTF-8 JSON.
    """
    try:
        peeked = queue.peek_messages(max_messages=32)
    except ResourceNotFoundError:
        return []  # the host creates the queue with its first message
    found = []
    for message in peeked:
        try:
            raw = base64.b64decode(message.content, validate=True)
        except binascii.Error as exc:
            raise AssertionError(f"not Base64: {message.content!r}") from exc
        body = json.loads(raw.decode("utf-8"))
        if body["BlobName"] == blob:
            found.append(body)
    return found


def _status(host: HostProcess) -> dict[str, Any]:
    headers = {"x-functions-key": host.keys()["master"]}
    response = httpx.get(f"{host.url}/admin/host/status", headers=headers)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def _poisoned(status: dict[str, Any], function: str) -> int:
    return int(next(f for f in status["functions"] if f["name"] == function)["poisoned"])


def test_new_and_changed_blobs_arrive_as_sdk_blob_clients(sample_host: SampleHost) -> None:
    name = f"audio/{uuid.uuid4().hex}/take 1.wav"  # sub-folders and a space in {name}
    first = sample_host.blobs.upload_blob(name, b"first version").get_blob_properties()
    seen = wait_for(lambda: _delivered(sample_host, name), what="the first delivery")
    assert seen[0]["container"] == sample_host.blobs.container_name
    assert seen[0]["content"] == "first version"
    assert seen[0]["etag"] == first.etag
    # What the extension's BlobClient.get_sdk_type() builds: the SDK client, keyless.
    assert seen[0]["type"] == "azure.storage.blob._blob_client.BlobClient"
    assert seen[0]["credential"].endswith("ManagedIdentityCredential")

    second = sample_host.blobs.upload_blob(
        name, b"second version", overwrite=True
    ).get_blob_properties()
    seen = wait_for(
        lambda: (d := _delivered(sample_host, name)) and len(d) >= 2 and d,
        what="the changed blob",
    )
    assert seen[1]["content"] == "second version"
    assert seen[1]["etag"] == second.etag
    time.sleep(1)  # several polls: an unchanged blob is not delivered again
    assert len(_delivered(sample_host, name)) == 2


def test_a_failed_invocation_is_retried(sample_host: SampleHost) -> None:
    name = f"flaky/{uuid.uuid4().hex}.wav"
    sample_host.blobs.upload_blob(name, b"x")
    wait_for(lambda: _delivered(sample_host, name), what="delivery after two failures")
    assert [a["retry"] for a in _attempts(sample_host, name)] == [0, 1, 2]
    assert "attempt 2 of 5 for" in sample_host.process.output()


def test_a_blob_that_always_fails_goes_to_the_poison_queue_after_5_attempts(
    sample_host: SampleHost, poison_queue: QueueClient
) -> None:
    name = f"poison/{uuid.uuid4().hex}.wav"
    healthy = f"{uuid.uuid4().hex}.wav"
    etag = sample_host.blobs.upload_blob(name, b"x").get_blob_properties().etag
    sample_host.blobs.upload_blob(healthy, b"fine")

    message = wait_for(
        lambda: _poison_messages(poison_queue, name), timeout=15, what="the poison message"
    )[0]
    # The WebJobs SDK's BlobTriggerMessage, as the Storage extension writes it.
    assert message == {
        "Type": "BlobTrigger",
        "FunctionId": "Host.Functions.on_blob",
        "BlobType": "BlockBlob",
        "ContainerName": sample_host.blobs.container_name,
        "BlobName": name,
        "ETag": etag,  # the ETag header, quotes included
    }
    assert etag.startswith('"0x')
    assert [a["retry"] for a in _attempts(sample_host, name)] == [0, 1, 2, 3, 4]
    output = sample_host.process.output()
    assert f"giving up on {sample_host.blobs.container_name}/{name}" in output
    assert "RuntimeError: cannot process" in output
    # The failures stopped nothing: the healthy blob was delivered meanwhile.
    assert wait_for(lambda: _delivered(sample_host, healthy), what="the healthy blob")
    time.sleep(1)
    assert len(_attempts(sample_host, name)) == 5  # poison is not retried
    assert len(_poison_messages(poison_queue, name)) == 1
    status = _status(sample_host.process)
    assert _poisoned(status, "on_blob") >= 1
    assert status["poisonQueue"]["queue"] == "webjobs-blobtrigger-poison"
    assert status["poisonQueue"]["spooled"] == 0
    spool = sample_host.process.state_dir / "poison-spool.jsonl"
    assert not any(e["message"]["BlobName"] == name for e in read_jsonl(spool))


def test_a_poison_message_waits_in_the_spool_until_the_queue_is_reachable(
    local_stack_no_emulator: StackInfo,
    storage: BlobServiceClient,
    poison_queue: QueueClient,
    tmp_path: Path,
) -> None:
    stack_env = local_stack_no_emulator.env
    queue_url = urlsplit(stack_env["LOCAL_QUEUE_ENDPOINT"])
    # A queue endpoint where nothing listens, until the forwarder opens (to Azurite's queue).
    outage = Forwarder((str(queue_url.hostname), int(queue_url.port or 443)))
    down = queue_url._replace(netloc=f"{queue_url.hostname}:{outage.port}").geturl()
    container = new_container(storage, "outage")
    out = tmp_path / "out"
    out.mkdir()
    env = host_environment(
        stack_env,
        SAMPLE_OUT_DIR=str(out),
        SAMPLE_CONTAINER=container.container_name,
        SAMPLE_TYPED_CONTAINER=container.container_name,
        SAMPLE_TICK_SCHEDULE="0 0 0 1 1 *",
        # The trigger connection's queue service takes its poison messages (the host's
        # own AzureWebJobsStorage only when it has none): both are down here.
        AudioStorage__queueServiceUri=down,
        AzureWebJobsStorage__queueServiceUri=down,
    )
    host = HostProcess(
        app=SAMPLE_APP,
        app_dir=tmp_path,
        state_dir=tmp_path / "state",
        env=env,
        log=tmp_path / "host.log",
    ).start()
    spool = host.state_dir / "poison-spool.jsonl"
    name = f"poison/{uuid.uuid4().hex}.wav"
    try:
        etag = container.upload_blob(name, b"x").get_blob_properties().etag
        # Spooled before the first send; "error" says that send failed.
        entry = wait_for(
            lambda: [e for e in read_jsonl(spool) if "error" in e],
            timeout=15,
            what="the spooled message",
        )[0]
        assert entry["connection"] == "AudioStorage"
        assert entry["queue"] == "webjobs-blobtrigger-poison"
        assert entry["message"] == {
            "Type": "BlobTrigger",
            "FunctionId": "Host.Functions.on_blob",
            "BlobType": "BlockBlob",
            "ContainerName": container.container_name,
            "BlobName": name,
            "ETag": etag,
        }
        assert "ServiceRequestError" in entry["error"]
        assert "message kept in" in host.output()
        status = _status(host)
        assert _poisoned(status, "on_blob") == 1
        assert status["poisonQueue"]["spooled"] == 1
        assert status["poisonQueue"]["lastError"]
        time.sleep(0.5)  # later polls retry it, and fail: nothing reached the queue
        assert _poison_messages(poison_queue, name) == []

        outage.open()  # storage is back
        message = wait_for(
            lambda: _poison_messages(poison_queue, name), what="the delivered spooled message"
        )[0]
        assert message == entry["message"]
        wait_for(lambda: read_jsonl(spool) == [], what="the spool to empty")
        assert "delivered to queue webjobs-blobtrigger-poison" in host.output()
        status = _status(host)
        assert status["poisonQueue"]["spooled"] == 0
        assert status["poisonQueue"]["delivered"] == 1
        assert status["poisonQueue"]["lastError"] is None
        time.sleep(0.5)
        assert len(_poison_messages(poison_queue, name)) == 1  # sent once
        assert len(read_jsonl(out / "on_blob_attempts.jsonl")) == 5  # not redelivered
    finally:
        host.stop()
        outage.close()


def test_input_stream_input_and_output_bindings(sample_host: SampleHost) -> None:
    stem = f"deep/{uuid.uuid4().hex}"
    sample_host.typed.upload_blob(f"meta/{stem}.json", b'{"lang": "en"}')
    sample_host.typed.upload_blob(f"in/{stem}.txt", b"hello typed")
    sample_host.typed.upload_blob(f"in/{stem}.bin", b"not matched: the path wants .txt")

    def seen() -> list[dict[str, object]]:
        return [
            entry
            for entry in read_jsonl(sample_host.out / "on_typed.jsonl")
            if stem in str(entry["name"])
        ]

    entry = wait_for(seen, what="the typed delivery")[0]
    assert entry["name"] == f"{sample_host.typed.container_name}/in/{stem}.txt"
    assert entry["type"] == "azure.functions.blob.InputStream"
    assert entry["length"] == len(b"hello typed")
    assert entry["meta"] == '{"lang": "en"}'
    out = wait_for(
        lambda: sample_host.typed.get_blob_client(f"out/{stem}.txt").exists(),
        what="the output blob",
    )
    assert out
    written = sample_host.typed.download_blob(f"out/{stem}.txt").readall()
    assert written == b"HELLO TYPED"
    time.sleep(0.5)
    assert len(seen()) == 1  # the .bin blob does not match in/{stem}.txt


def test_downloader_trigger_and_container_client_input(sample_host: SampleHost) -> None:
    name = f"{uuid.uuid4().hex}.bin"
    sample_host.typed.upload_blob(f"dl/{name}", b"download me")
    entry = wait_for(
        lambda: [
            e
            for e in read_jsonl(sample_host.out / "on_download.jsonl")
            if e["content"] == "download me"
        ],
        what="the downloader delivery",
    )[0]
    assert entry["type"] == "azure.storage.blob._download.StorageStreamDownloader"
    assert entry["container_type"] == "azure.storage.blob._container_client.ContainerClient"
    assert entry["container"] == sample_host.typed.container_name


def test_a_restart_does_not_redeliver_but_a_lost_receipt_does(
    local_stack_no_emulator: StackInfo, storage: BlobServiceClient, tmp_path: Path
) -> None:
    container = new_container(storage, "restart")
    out = tmp_path / "out"
    out.mkdir()
    env = host_environment(
        local_stack_no_emulator.env,
        SAMPLE_OUT_DIR=str(out),
        SAMPLE_CONTAINER=container.container_name,
        SAMPLE_TYPED_CONTAINER=container.container_name,
        SAMPLE_TICK_SCHEDULE="0 0 0 1 1 *",
    )

    def host() -> HostProcess:
        return HostProcess(
            app=SAMPLE_APP,
            app_dir=tmp_path,
            state_dir=tmp_path / "state",
            env=env,
            log=tmp_path / "host.log",
        )

    def names() -> list[str]:
        return [str(entry["name"]) for entry in read_jsonl(out / "on_blob.jsonl")]

    for name in ("one.wav", "two.wav"):
        container.upload_blob(name, name.encode())
    first = host().start()
    try:
        wait_for(lambda: sorted(names()) == ["one.wav", "two.wav"], what="both blobs")
    finally:
        first.stop()
    # A graceful stop (uvicorn then re-raises SIGTERM, so the exit code says -15).
    assert "Application shutdown complete" in first.output()

    container.upload_blob("three.wav", b"written while the host was down")
    receipts_file = tmp_path / "state" / "blob-receipts.json"
    receipts = json.loads(receipts_file.read_text())
    assert set(receipts["on_blob"]) == {"one.wav", "two.wav"}
    # As if the host had crashed between invoking for two.wav and recording it.
    del receipts["on_blob"]["two.wav"]
    receipts_file.write_text(json.dumps(receipts))

    second = host().start()
    try:
        wait_for(lambda: len(names()) == 4, what="the redelivery and the new blob")
        time.sleep(1)
    finally:
        second.stop()
    assert sorted(names()) == ["one.wav", "three.wav", "two.wav", "two.wav"]
