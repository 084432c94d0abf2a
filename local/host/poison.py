"""Poison blobs: the message Azure puts on ``webjobs-blobtrigger-poison``, and a local spool.

What Azure does, from Microsoft's page (https://learn.microsoft.com/azure/azure-functions/
functions-bindings-storage-blob-trigger#poison-blobs) and the Storage extension 5.x source
(``Azure/azure-sdk-for-net``, ``sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Blobs``
and ``...Storage.Common``):

* When a blob has failed host.json's ``maxDequeueCount`` attempts (default 5), a message is
  added to the Storage queue ``webjobs-blobtrigger-poison`` (``HostQueueNames``), creating
  the queue if missing (``QueueProcessor.CopyMessageToPoisonQueueAsync`` →
  ``AddMessageAndCreateIfNotExistsAsync``).
* The message is a ``BlobTriggerMessage`` (``Listeners/BlobTriggerMessage.cs``) as
  Newtonsoft writes it with ``Formatting.Indented`` (``JsonSerialization.cs``)::

      {"Type": "BlobTrigger", "FunctionId": "Host.Functions.<function name>",
       "BlobType": "BlockBlob", "ContainerName": "...", "BlobName": "...", "ETag": "\\"0x8D...\\""}

  ``FunctionId`` is the WebJobs function id, ``Host.Functions.<name>`` under the Functions
  host (``ScriptHost`` generates the type ``Host.Functions``; Microsoft's page writes it
  ``<FUNCTION_APP_NAME>.Functions.<FUNCTION_NAME>``). ``BlobType`` is spelled the track-1
  way (``BlockBlob``, ``PageBlob``, ``AppendBlob``). ``ETag`` is the blob's ETag header,
  quotes included (``BlobTriggerExecutor``: ``blobProperties.ETag.ToString()``).
* The queue text is **Base64** of that JSON (UTF-8): the extension's
  ``QueueServiceClientProvider`` sets ``QueueMessageEncoding.Base64`` on every queue client
  it builds, whatever host.json says, and the poison copy re-sends the decoded body through
  one. A queue trigger on ``webjobs-blobtrigger-poison`` decodes it with the queue
  extension's default ``messageEncoding: base64`` (https://learn.microsoft.com/azure/
  azure-functions/functions-bindings-storage-queue#host-json).
* The queue is in the account of the **trigger's connection**: ``BlobListenerFactory``
  registers that connection's queue client as the function's poison queue, and
  ``SharedBlobQueueListenerFactory`` falls back to the ``AzureWebJobsStorage`` account. So an
  identity-based trigger connection needs ``<CONNECTION>__queueServiceUri``
  (https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-blob#identity-based-connections).

Locally the same message goes to the same queue name: in the trigger connection's queue
service (its connection string, ``__queueServiceUri`` or ``__accountName``), else in
``AzureWebJobsStorage``'s, keyless through :class:`~local.host.blobs.Connections`. For this
app it is the same queue either way: offline both connections name Azurite's one account, and
``infra/app/api.bicep`` gives both the one storage account in Azure.

A blob is poisoned most often while storage is failing, so an unsent message is not lost:
it is written to ``poison-spool.jsonl`` in the state dir *before* it is sent, removed once
the queue has it, and the spool is sent again at start-up and on the blob triggers' later
polls, oldest first, until the queue takes it (at least once: a crash between the send and
the removal sends it twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from local.certs import write_atomic
from local.host.blobs import Connections, ConnectionSettingError

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

log = logging.getLogger("local.host.blob")

POISON_QUEUE = "webjobs-blobtrigger-poison"
#: The host's own storage connection: where the poison queue is when the trigger's
#: connection has no queue service.
HOST_STORAGE = "AzureWebJobsStorage"
SPOOL_FILE = "poison-spool.jsonl"
#: The ``FunctionId`` prefix of every function under the Functions host.
FUNCTION_ID_PREFIX = "Host.Functions."


def quoted_etag(etag: str) -> str:
    """``etag`` as its header carries it, in quotes (listings may drop them)."""
    return etag if etag.startswith(('"', 'W/"')) else f'"{etag}"'


def blob_trigger_message(
    function: str, container: str, blob: str, etag: str, blob_type: str = "BlockBlob"
) -> dict[str, str]:
    """The ``BlobTriggerMessage`` Azure puts on the poison queue for this blob version."""
    return {
        "Type": "BlobTrigger",
        "FunctionId": f"{FUNCTION_ID_PREFIX}{function}",
        "BlobType": blob_type,
        "ContainerName": container,
        "BlobName": blob,
        "ETag": quoted_etag(etag),
    }


def message_text(message: Mapping[str, str]) -> str:
    """The JSON the extension writes (Newtonsoft, indented); the queue client Base64s it."""
    return json.dumps(message, indent=2, ensure_ascii=False)


def queue_for(connections: Connections, connection: str) -> tuple[str, QueueClient]:
    """The connection whose queue service gets ``connection``'s poison messages, and its client.

    Raises :class:`ConnectionSettingError` if neither that connection nor
    ``AzureWebJobsStorage`` names a queue service.
    """
    for name in dict.fromkeys((connection, HOST_STORAGE)):
        client = connections.queue(name, POISON_QUEUE)
        if client is not None:
            return name, client
    raise ConnectionSettingError(
        f"no queue service for the poison queue: set {connection}__queueServiceUri "
        f"(or {HOST_STORAGE}__queueServiceUri)"
    )


def _describe(exc: BaseException) -> str:
    # The SDK's messages append the whole XML error body: the first line says it.
    text = str(exc)
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


class PoisonQueue:
    """Puts poison messages on their queue; keeps what cannot be sent yet in a spool file.

    One per host, shared by every blob trigger. Sends run in threads, one at a time.
    """

    def __init__(self, connections: Connections, spool: Path) -> None:
        self._connections = connections
        self.spool = spool
        self._pending: list[dict[str, Any]] = self._load()
        self._lock = asyncio.Lock()
        self._retry: asyncio.Task[None] | None = None
        self._failing = False
        #: Messages the queue took, since start-up.
        self.delivered = 0
        #: Why the last send failed (None once one succeeds).
        self.last_error: str | None = None

    @property
    def spooled(self) -> int:
        """Messages waiting in the spool."""
        return len(self._pending)

    def status(self) -> dict[str, Any]:
        """For ``/admin/host/status``."""
        return {
            "queue": POISON_QUEUE,
            "delivered": self.delivered,
            "spooled": self.spooled,
            "spool": str(self.spool),
            "lastError": self.last_error,
        }

    async def put(self, connection: str, message: Mapping[str, str]) -> str | None:
        """Queue ``message`` for blob trigger ``connection``; None once sent, else why not.

        An unsent message stays in the spool (older spooled messages are sent first).
        """
        entry = {
            "connection": connection,
            "queue": POISON_QUEUE,
            "message": dict(message),
            "poisonedAt": dt.datetime.now(dt.UTC).isoformat(),
        }
        async with self._lock:
            self._pending.append(entry)
            self._save()
            await self._send_pending()
        if any(pending is entry for pending in self._pending):
            self._failing = True  # the caller logs this failure; retries log only a recovery
            return str(entry.get("error") or self.last_error or "not sent")
        return None

    def retry_soon(self) -> None:
        """Send the spool in the background, unless it is empty or a send is under way."""
        if not self._pending or self._lock.locked():
            return
        if self._retry is None or self._retry.done():
            self._retry = asyncio.create_task(self.flush(), name="poison-spool")

    async def close(self) -> None:
        """Stop a background send (what is unsent stays in the spool for the next start)."""
        if self._retry is not None:
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry

    async def flush(self) -> None:
        """Send the spool now (what still cannot be sent stays)."""
        async with self._lock:
            await self._send_pending()
        if self._pending and not self._failing:
            # Once per streak of failures: the triggers poll every second.
            log.warning(
                "poison queue %s unreachable (%s); %d message(s) kept in %s, retried on "
                "later polls",
                POISON_QUEUE,
                self.last_error,
                self.spooled,
                self.spool,
            )
            self._failing = True

    async def _send_pending(self) -> None:
        """Send the spool oldest first; a connection that fails is not tried again this round."""
        failed: set[str] = set()
        for entry in list(self._pending):
            connection = str(entry["connection"])
            if connection in failed:
                continue
            try:
                used = await asyncio.to_thread(self._send, connection, entry["message"])
            except Exception as exc:
                failed.add(connection)
                self.last_error = entry["error"] = _describe(exc)
                entry["lastAttempt"] = dt.datetime.now(dt.UTC).isoformat()
                continue
            self._pending.remove(entry)
            self.delivered += 1
            self.last_error = None
            if "error" in entry:
                message = entry["message"]
                log.info(
                    "poison message for %s/%s (%s) delivered to queue %s of %s after "
                    "being spooled since %s",
                    message.get("ContainerName"),
                    message.get("BlobName"),
                    message.get("FunctionId"),
                    POISON_QUEUE,
                    used,
                    entry.get("poisonedAt"),
                )
        if not self._pending:
            self._failing = False
        self._save()

    def _send(self, connection: str, message: Mapping[str, str]) -> str:
        """Send one message (creating the queue if missing); the connection whose queue took it."""
        used, client = queue_for(self._connections, connection)
        text = message_text(message)
        try:
            client.send_message(text)
        except ResourceNotFoundError:
            with contextlib.suppress(ResourceExistsError):
                client.create_queue()
            client.send_message(text)
        return used

    def _load(self) -> list[dict[str, Any]]:
        try:
            lines = self.spool.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        entries: list[dict[str, Any]] = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                log.error("%s:%d: not JSON, ignored: %.200s", self.spool, number, line)
                continue
            if isinstance(entry, dict) and isinstance(entry.get("message"), dict):
                entries.append(entry)
            else:
                log.error("%s:%d: not a spooled poison message, ignored", self.spool, number)
        if entries:
            log.warning(
                "%d poison message(s) from an earlier run are waiting in %s; sending them",
                len(entries),
                self.spool,
            )
        return entries

    def _save(self) -> None:
        if not self._pending and not self.spool.exists():
            return
        text = "".join(json.dumps(entry) + "\n" for entry in self._pending)
        write_atomic(self.spool, text.encode())
