"""Blob triggers: watch a container, deliver each new or changed blob at least once.

Event Grid (``source=EventGrid``) and the classic container scan both end up here: every
``LOCAL_BLOB_POLL_SECONDS`` the trigger's container is listed under the path's literal
prefix, and each matching blob whose ETag differs from its receipt is delivered — once per
blob version, as Event Grid's ``BlobCreated`` would announce it. A blob with no receipt is
new, including one written before the host first started (Event Grid would only report
blobs written after its subscription; locally that difference only shows on a fresh state
dir, whose Azurite is usually fresh too).

Receipts (function -> blob -> ETag) live in ``blob-receipts.json`` in the state dir and are
written after an invocation succeeds, so a restart does not redeliver what was delivered,
while a crash between the invocation and the write does: delivery is at least once, as in
Azure. A failed invocation is retried after a backoff (``LOCAL_BLOB_RETRY_SECONDS``,
doubling) until host.json's ``maxDequeueCount`` attempts (default 5) have failed; then the
blob version is poison: logged, its ``BlobTriggerMessage`` put on the Storage queue
``webjobs-blobtrigger-poison`` as Azure does (:mod:`local.host.poison`; kept in
``poison-spool.jsonl`` and sent on later polls while the queue is unreachable), and
receipted, never retried again unless the blob changes. At most ``LOCAL_BLOB_CONCURRENCY``
blob invocations run at a time, across functions.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from local.certs import write_atomic
from local.host.app import BlobConfig, FunctionSpec
from local.host.blobs import BlobValues
from local.host.invoke import InvocationFailed, Invoker, Retry
from local.host.poison import POISON_QUEUE, PoisonQueue, blob_trigger_message
from local.host.settings import HostSettings

log = logging.getLogger("local.host.blob")

RECEIPTS_FILE = "blob-receipts.json"


class Receipts:
    """Which version (ETag) of each blob every function has been given, kept on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = {}
        self._data: dict[str, dict[str, str]] = {
            str(function): {str(blob): str(etag) for blob, etag in blobs.items()}
            for function, blobs in data.items()
        }

    def get(self, function: str, blob: str) -> str | None:
        """The ETag ``function`` was given for ``blob``, if any."""
        return self._data.get(function, {}).get(blob)

    def count(self, function: str) -> int:
        """How many blobs ``function`` holds receipts for."""
        return len(self._data.get(function, {}))

    def record(self, function: str, blob: str, etag: str) -> None:
        """Remember that ``function`` was given ``blob`` at ``etag``; written at once."""
        self._data.setdefault(function, {})[blob] = etag
        self._save()

    def keep_only(self, function: str, blobs: set[str]) -> None:
        """Forget receipts of blobs that are gone (keeps the file as small as the container)."""
        held = self._data.get(function, {})
        gone = held.keys() - blobs
        if gone:
            for blob in gone:
                del held[blob]
            self._save()

    def _save(self) -> None:
        write_atomic(self.path, json.dumps(self._data, indent=1, sort_keys=True).encode())


@dataclass(frozen=True)
class BlobVersion:
    """One listed blob that matches the trigger's path."""

    name: str
    etag: str
    #: The values of the path's ``{expressions}``.
    values: dict[str, str]
    #: ``BlockBlob``, ``PageBlob`` or ``AppendBlob``.
    blob_type: str = "BlockBlob"


class BlobTriggerRunner:
    """Watches one blob trigger's container and delivers to its function."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        invoker: Invoker,
        blobs: BlobValues,
        receipts: Receipts,
        poison: PoisonQueue,
        settings: HostSettings,
        slots: asyncio.Semaphore,
    ) -> None:
        if not isinstance(spec.config, BlobConfig):
            raise TypeError(f"{spec.name} is not a blob trigger function")
        self.spec = spec
        self.config = spec.config
        self._invoker = invoker
        self._blobs = blobs
        self._receipts = receipts
        self._poison_queue = poison
        self._settings = settings
        self._slots = slots
        self._in_flight: dict[str, str] = {}
        self._deliveries: set[asyncio.Task[None]] = set()
        self._listing_error: str | None = None
        self.poisoned = 0

    def status(self) -> dict[str, Any]:
        """Watch details for ``/admin/host/status``."""
        return {
            "container": self.config.path.container,
            "path": self.config.path.pattern,
            "connection": self.config.connection,
            "source": self.config.source,
            "delivered": self._receipts.count(self.spec.name),
            "inFlight": len(self._in_flight),
            "poisoned": self.poisoned,
            "listingError": self._listing_error,
        }

    async def run(self) -> None:
        """Poll and deliver until cancelled (deliveries in progress are cancelled with it)."""
        try:
            while True:
                await self.poll_once()
                await asyncio.sleep(self._settings.blob_poll_seconds)
        finally:
            for task in list(self._deliveries):
                task.cancel()
            await asyncio.gather(*self._deliveries, return_exceptions=True)

    async def poll_once(self) -> None:
        """List the container once and start a delivery for every new or changed blob.

        Also sends poison messages still waiting in the spool, in the background.
        """
        self._poison_queue.retry_soon()
        try:
            listed = await asyncio.to_thread(self._list)
        except Exception as exc:
            error = (
                f"container {self.config.path.container!r} does not exist (yet)"
                if isinstance(exc, ResourceNotFoundError)
                # The SDK's messages append the whole XML error body: the first line says it.
                else f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            )
            # Once per streak of failures: polling every second must not flood the log.
            if self._listing_error is None:
                log.warning("%s: cannot list blobs: %s; retrying", self.spec.name, error)
            self._listing_error = error
            return
        if self._listing_error is not None:
            log.info("%s: listing blobs works again", self.spec.name)
            self._listing_error = None
        present: set[str] = set()
        for version in listed:
            present.add(version.name)
            if version.name in self._in_flight:
                continue  # a change seen meanwhile is picked up by the next poll
            if self._receipts.get(self.spec.name, version.name) == version.etag:
                continue
            self._in_flight[version.name] = version.etag
            task = asyncio.create_task(self._deliver(version))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
        self._receipts.keep_only(self.spec.name, present | self._in_flight.keys())

    def _list(self) -> list[BlobVersion]:
        path = self.config.path
        container = self._blobs.connections.service(self.config.connection).get_container_client(
            path.container
        )
        found: list[BlobVersion] = []
        for item in container.list_blobs(name_starts_with=path.prefix or None):
            values = path.match(item.name)
            if values is not None:
                blob_type = item.blob_type.value if item.blob_type else "BlockBlob"
                found.append(BlobVersion(item.name, str(item.etag), values, str(blob_type)))
        return found

    async def _deliver(self, version: BlobVersion) -> None:
        path = self.config.path
        param = self.spec.trigger_param
        where = f"{path.container}/{version.name}"
        metadata = {**version.values, "BlobTrigger": where}
        attempts = self._settings.blob_max_attempts

        async def trigger() -> Any:
            return await asyncio.to_thread(
                self._blobs.value, param, self.config.connection, path.container, version.name
            )

        error = ""
        try:
            for attempt in range(1, attempts + 1):
                async with self._slots:
                    try:
                        await self._invoker.invoke(
                            self.spec,
                            trigger,
                            metadata=metadata,
                            reason=f"New blob detected({self.config.source}): {where}",
                            retry=Retry(attempt - 1, attempts - 1, error),
                        )
                    except InvocationFailed as exc:
                        error = str(exc)
                    else:
                        self._receipts.record(self.spec.name, version.name, version.etag)
                        return
                if attempt < attempts:
                    delay = min(
                        self._settings.blob_retry_seconds * 2 ** (attempt - 1),
                        self._settings.blob_retry_max_seconds,
                    )
                    log.warning(
                        "%s: attempt %d of %d for %s failed; retrying in %.1f s",
                        self.spec.name,
                        attempt,
                        attempts,
                        where,
                        delay,
                    )
                    await asyncio.sleep(delay)
            await self._poison(version, attempts, error)
        finally:
            self._in_flight.pop(version.name, None)

    async def _poison(self, version: BlobVersion, attempts: int, error: str) -> None:
        container = self.config.path.container
        where = f"{container}/{version.name}"
        message = blob_trigger_message(
            self.spec.name, container, version.name, version.etag, version.blob_type
        )
        failure = await self._poison_queue.put(self.config.connection, message)
        fate = (
            f"message put on queue {POISON_QUEUE}"
            if failure is None
            else f"queue {POISON_QUEUE} unreachable ({failure}): message kept in "
            f"{self._poison_queue.spool}, retried on later polls"
        )
        log.error(
            "%s: giving up on %s (ETag %s) after %d attempts (last: %s); %s",
            self.spec.name,
            where,
            version.etag,
            attempts,
            error,
            fate,
        )
        self.poisoned += 1
        self._receipts.record(self.spec.name, version.name, version.etag)
