"""The blob trigger's poison queue: blobs the Functions host gave up on.

After ``maxDequeueCount`` failed attempts (5) the host puts a ``BlobTriggerMessage``
(``ContainerName``, ``BlobName``, ``ETag``, Base64 JSON) on ``webjobs-blobtrigger-poison``
of the trigger's storage account and never delivers that blob again
(https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-blob-trigger#poison-blobs).
The sweep reads it: each message is a blob whose intake must be run again. A message is
deleted once handled; one that fails stays invisible for a while and comes back, and one
that keeps failing is dropped after :data:`MAX_DEQUEUES` (the container sweep still finds
its blob).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.redact import get_logger
from shared.storage import normalize_etag

if TYPE_CHECKING:
    from shared.app_context import AppContext

_log = get_logger(__name__)

#: Seconds a message being handled stays invisible to other readers.
VISIBILITY_SECONDS = 300
#: A message read this often is dropped (logged); the container sweep is the backstop.
MAX_DEQUEUES = 5


@dataclass(frozen=True)
class PoisonBlob:
    """One poison message: which blob version the host gave up on."""

    container: str
    name: str
    etag: str


def parse_message(text: str) -> PoisonBlob | None:
    """A ``BlobTriggerMessage`` (Base64 JSON, or plain JSON); None if it is not one."""
    candidates = [text]
    with contextlib.suppress(binascii.Error, UnicodeDecodeError, ValueError):
        candidates.insert(0, base64.b64decode(text, validate=True).decode("utf-8"))
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("ContainerName") and data.get("BlobName"):
            return PoisonBlob(
                str(data["ContainerName"]),
                str(data["BlobName"]),
                normalize_etag(str(data.get("ETag") or "")),
            )
    return None


def _queue_client(ctx: AppContext) -> Any | None:
    from shared.app_context import queue_client

    return queue_client(ctx, ctx.settings.poison_queue)


async def drain(
    ctx: AppContext, handle: Callable[[PoisonBlob], Awaitable[None]], *, limit: int
) -> tuple[int, int]:
    """Hand up to ``limit`` poison messages to ``handle``; (handled, failed)."""
    from azure.core.exceptions import ResourceNotFoundError

    client = _queue_client(ctx)
    if client is None:
        return 0, 0
    handled = failed = 0
    try:
        try:
            messages = await asyncio.to_thread(
                lambda: list(
                    client.receive_messages(
                        max_messages=min(32, limit), visibility_timeout=VISIBILITY_SECONDS
                    )
                )
            )
        except ResourceNotFoundError:
            return 0, 0  # no blob was ever poisoned: the host creates the queue on first use
        for message in messages[:limit]:
            blob = parse_message(str(message.content))
            if blob is None:
                _log.warning("poison queue: not a blob trigger message; dropped")
            else:
                try:
                    await handle(blob)
                except Exception:
                    failed += 1
                    if message.dequeue_count < MAX_DEQUEUES:
                        _log.warning("poison blob %s/%s: retried later", blob.container, blob.name)
                        continue
                    _log.exception(
                        "poison blob %s/%s failed %d times; left to the container sweep",
                        blob.container,
                        blob.name,
                        message.dequeue_count,
                    )
                else:
                    handled += 1
            await asyncio.to_thread(client.delete_message, message)
    finally:
        client.close()
    return handled, failed
