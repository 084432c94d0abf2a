"""The poison queue's message, its encoding, and the spool, without a stack."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError, ServiceRequestError
from azure.storage.queue import TextBase64EncodePolicy

from local.host.blobs import Connections, ConnectionSettingError
from local.host.poison import (
    POISON_QUEUE,
    PoisonQueue,
    blob_trigger_message,
    message_text,
    queue_for,
)
from tests.host.harness import read_jsonl


class FakeQueue:
    """Stands in for a ``QueueClient``: records what it was sent; can be down or missing."""

    def __init__(self, *, exists: bool = True) -> None:
        self.exists = exists
        self.down = False
        self.sent: list[str] = []

    def send_message(self, content: str) -> None:
        if self.down:
            raise ServiceRequestError("Connection refused")
        if not self.exists:
            raise ResourceNotFoundError("The specified queue does not exist.")
        self.sent.append(content)

    def create_queue(self) -> None:
        self.exists = True

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(text) for text in self.sent]


class FakeConnections(Connections):
    """Connections whose queue services are :class:`FakeQueue` objects (None: no queue)."""

    def __init__(self, queues: dict[str, FakeQueue | None]) -> None:
        super().__init__({})
        self.queues = queues

    def queue(self, connection: str, queue: str) -> Any:
        assert queue == POISON_QUEUE
        return self.queues.get(connection)


def _message(blob: str = "a/b.wav") -> dict[str, str]:
    return blob_trigger_message("on_audio", "audio-input", blob, '"0x8DC0FFEE"')


def test_the_message_is_the_blob_trigger_message_of_the_webjobs_sdk() -> None:
    assert blob_trigger_message("on_audio", "audio-input", "in/x y.wav", "0x8DC0FFEE") == {
        "Type": "BlobTrigger",
        "FunctionId": "Host.Functions.on_audio",
        "BlobType": "BlockBlob",
        "ContainerName": "audio-input",
        "BlobName": "in/x y.wav",
        "ETag": '"0x8DC0FFEE"',  # quoted as the header carries it, whatever the listing said
    }
    assert blob_trigger_message("f", "c", "b", '"0x1"', "PageBlob")["BlobType"] == "PageBlob"
    assert blob_trigger_message("f", "c", "b", 'W/"0x1"')["ETag"] == 'W/"0x1"'


def test_the_queue_text_is_base64_of_indented_utf8_json() -> None:
    message = _message("in/café.wav")
    text = message_text(message)
    assert text.startswith('{\n  "Type": "BlobTrigger",\n  "FunctionId"')  # Newtonsoft, indented
    assert "café" in text  # not \\u-escaped, as Newtonsoft writes it
    # What the host's queue client puts on the wire (TextBase64EncodePolicy).
    wire = TextBase64EncodePolicy().encode(text)
    assert json.loads(base64.b64decode(wire, validate=True).decode("utf-8")) == message


def test_the_queue_is_the_trigger_connections_else_the_hosts() -> None:
    audio, host = FakeQueue(), FakeQueue()
    assert queue_for(FakeConnections({"AudioStorage": audio}), "AudioStorage")[0] == (
        "AudioStorage"
    )
    used, client = queue_for(FakeConnections({"AzureWebJobsStorage": host}), "AudioStorage")
    assert (used, client) == ("AzureWebJobsStorage", host)
    with pytest.raises(ConnectionSettingError, match="AudioStorage__queueServiceUri"):
        queue_for(FakeConnections({}), "AudioStorage")


def test_connections_build_base64_queue_clients_from_the_connection_settings() -> None:
    connections = Connections(
        {
            "Identity__blobServiceUri": "https://acct.blob.core.windows.net",
            "Identity__queueServiceUri": "https://acct.queue.core.windows.net",
            "Named__accountName": "named",
            "BlobOnly__blobServiceUri": "https://acct.blob.core.windows.net",
            "Keyed": "DefaultEndpointsProtocol=https;AccountName=k;AccountKey=a2V5;"
            "EndpointSuffix=core.windows.net",
        }
    )
    try:
        identity = connections.queue("Identity", POISON_QUEUE)
        assert identity is not None
        assert identity.url == f"https://acct.queue.core.windows.net/{POISON_QUEUE}"
        assert type(identity.credential).__name__ == "DefaultAzureCredential"  # keyless
        assert connections.queue("Identity", POISON_QUEUE) is identity  # one per queue
        named = connections.queue("Named", POISON_QUEUE)
        assert named is not None
        assert named.url == f"https://named.queue.core.windows.net/{POISON_QUEUE}"
        keyed = connections.queue("Keyed", POISON_QUEUE)
        assert keyed is not None
        assert keyed.url == f"https://k.queue.core.windows.net/{POISON_QUEUE}"
        assert connections.queue("BlobOnly", POISON_QUEUE) is None
        assert connections.queue("Unset", POISON_QUEUE) is None
        assert [
            connections.has_queue_service(name)
            for name in ("Identity", "Named", "Keyed", "BlobOnly", "Unset")
        ] == [True, True, True, False, False]
    finally:
        connections.close()


async def test_a_message_is_sent_and_the_queue_created_if_missing(tmp_path: Path) -> None:
    queue = FakeQueue(exists=False)
    poison = PoisonQueue(FakeConnections({"AudioStorage": queue}), tmp_path / "spool.jsonl")
    assert await poison.put("AudioStorage", _message()) is None
    assert queue.exists
    assert queue.messages() == [_message()]
    assert poison.spooled == 0
    assert poison.delivered == 1
    assert read_jsonl(tmp_path / "spool.jsonl") == []


async def test_an_unsent_message_is_spooled_and_sent_on_a_later_retry(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "local.host.blob")
    queue = FakeQueue()
    queue.down = True
    spool = tmp_path / "spool.jsonl"
    poison = PoisonQueue(FakeConnections({"AudioStorage": queue}), spool)
    failure = await poison.put("AudioStorage", _message("one.wav"))
    assert failure is not None
    assert "ServiceRequestError" in failure
    assert await poison.put("AudioStorage", _message("two.wav")) is not None
    entries = read_jsonl(spool)
    assert [e["message"]["BlobName"] for e in entries] == ["one.wav", "two.wav"]
    assert all(e["connection"] == "AudioStorage" and e["queue"] == POISON_QUEUE for e in entries)
    assert poison.status()["spooled"] == 2
    assert poison.status()["lastError"]

    await poison.flush()  # still down: nothing changes, and no second warning
    assert poison.spooled == 2
    assert queue.sent == []
    assert "unreachable" not in caplog.text  # the caller logged the first failure

    queue.down = False
    await poison.flush()
    assert [m["BlobName"] for m in queue.messages()] == ["one.wav", "two.wav"]  # oldest first
    assert read_jsonl(spool) == []
    assert poison.status() | {"spool": ""} == {
        "queue": POISON_QUEUE,
        "delivered": 2,
        "spooled": 0,
        "spool": "",
        "lastError": None,
    }
    assert "one.wav (Host.Functions.on_audio) delivered to queue" in caplog.text


async def test_the_spool_survives_a_restart_and_is_sent_in_the_background(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = tmp_path / "spool.jsonl"
    queue = FakeQueue()
    queue.down = True
    assert await PoisonQueue(FakeConnections({"AudioStorage": queue}), spool).put(
        "AudioStorage", _message()
    )
    spool.write_text(spool.read_text() + "not json\n")  # a damaged line is skipped, not fatal

    restarted = PoisonQueue(FakeConnections({"AudioStorage": queue}), spool)
    assert restarted.spooled == 1
    assert "waiting in" in caplog.text
    for _ in range(3):  # polls while storage is still down: one warning for the streak
        restarted.retry_soon()
        await asyncio.sleep(0.01)
        await restarted.flush()
    assert caplog.text.count("unreachable") == 1

    queue.down = False
    restarted.retry_soon()
    for _ in range(100):
        if queue.sent:
            break
        await asyncio.sleep(0.01)
    await restarted.close()
    assert queue.messages() == [_message()]
    assert read_jsonl(spool) == []


async def test_one_unreachable_account_does_not_hold_up_another(tmp_path: Path) -> None:
    down, up = FakeQueue(), FakeQueue()
    down.down = True
    poison = PoisonQueue(FakeConnections({"Down": down, "Up": up}), tmp_path / "spool.jsonl")
    assert await poison.put("Down", _message("stuck.wav")) is not None
    assert await poison.put("Up", _message("sent.wav")) is None
    assert [m["BlobName"] for m in up.messages()] == ["sent.wav"]
    assert [e["message"]["BlobName"] for e in read_jsonl(tmp_path / "spool.jsonl")] == ["stuck.wav"]
