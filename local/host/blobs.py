"""Blob storage as bindings see it: connections from app settings, values per parameter type.

A connection named ``X`` (a binding's ``connection``) is found as the host finds it:

* ``X`` — a connection string (``UseDevelopmentStorage=true`` included);
* ``X__blobServiceUri`` (or ``X__serviceUri``, or ``X__accountName`` for an account in the
  public cloud) — identity-based, the production path: ``DefaultAzureCredential``, with
  ``X__clientId`` as the user-assigned managed identity when set. Offline it finds the
  stack's identity endpoint through ``IDENTITY_ENDPOINT``, as in Azure.

The same connection's queue service (``X``'s connection string, ``X__queueServiceUri`` or
``X__accountName``) takes the blob trigger's poison messages (:mod:`local.host.poison`);
``azure.storage.queue`` is imported only when one is first needed.

SDK-type parameters are built by the binding extension's own converter from the same
``model_binding_data`` the Functions host sends the worker (connection name, container,
blob), so a function receives exactly the object it gets in Azure; the extension reads the
connection from ``os.environ`` itself. ``func.InputStream``, ``bytes`` and ``str`` are read
whole before the call, as the Python worker does (``InputStream`` is not lazy there either):
use an SDK type for anything large.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from local.host.bindings import Param, ParamKind, sdk_converter, strip_optional

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

_IDENTITY_SUFFIXES = ("blobServiceUri", "serviceUri")


class ConnectionSettingError(ValueError):
    """A binding's connection names no usable app setting."""


@dataclass(frozen=True)
class ModelBindingData:
    """The fields of the ``ModelBindingData`` message the host sends for an SDK-type binding."""

    content: str
    version: str = "1.0"
    source: str = "AzureStorageBlobs"
    content_type: str = "application/json"


def _credential(client_id: str | None) -> TokenCredential:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=client_id)


class Connections:
    """One ``BlobServiceClient`` per connection name, shared by every trigger and binding.

    Queue clients (:meth:`queue`) are built on demand too, one per connection and queue.
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self._clients: dict[str, BlobServiceClient] = {}
        self._queues: dict[tuple[str, str], QueueClient] = {}
        self._lock = threading.Lock()

    def service(self, connection: str) -> BlobServiceClient:
        """The client for ``connection``; raises :class:`ConnectionSettingError` if unset."""
        with self._lock:
            client = self._clients.get(connection)
            if client is None:
                client = self._build(connection)
                self._clients[connection] = client
            return client

    def _build(self, connection: str) -> BlobServiceClient:
        env = self._env
        if env.get(connection):
            return BlobServiceClient.from_connection_string(env[connection])
        url = next(
            (
                env[f"{connection}__{s}"]
                for s in _IDENTITY_SUFFIXES
                if env.get(f"{connection}__{s}")
            ),
            None,
        )
        account = env.get(f"{connection}__accountName")
        if url is None and account:
            url = f"https://{account}.blob.core.windows.net"
        if url is None:
            raise ConnectionSettingError(
                f"connection {connection!r}: set {connection} (a connection string) or "
                f"{connection}__blobServiceUri (identity-based)"
            )
        return BlobServiceClient(url, credential=_credential(env.get(f"{connection}__clientId")))

    def queue(self, connection: str, queue: str) -> QueueClient | None:
        """A client for ``queue`` in ``connection``'s queue service, or None if it names none.

        Messages are Base64-encoded (and decoded), as the Functions Storage extension's queue
        clients are. The SDK does not retry: its only caller keeps unsent messages and
        retries them itself, where the storage default would back off for about a minute.
        Raises :class:`ConnectionSettingError` for an unusable connection string.
        """
        with self._lock:
            client = self._queues.get((connection, queue))
            if client is None:
                client = self._build_queue(connection, queue)
                if client is not None:
                    self._queues[(connection, queue)] = client
            return client

    def has_queue_service(self, connection: str) -> bool:
        """Whether ``connection``'s settings name a queue service (no client is built)."""
        return bool(self._env.get(connection)) or self._queue_url(connection) is not None

    def _queue_url(self, connection: str) -> str | None:
        env = self._env
        url = env.get(f"{connection}__queueServiceUri")
        account = env.get(f"{connection}__accountName")
        if not url and account:
            url = f"https://{account}.queue.core.windows.net"
        return url or None

    def _build_queue(self, connection: str, queue: str) -> QueueClient | None:
        from azure.storage.queue import (
            QueueClient,
            TextBase64DecodePolicy,
            TextBase64EncodePolicy,
        )

        env = self._env
        options: dict[str, Any] = {
            "message_encode_policy": TextBase64EncodePolicy(),
            "message_decode_policy": TextBase64DecodePolicy(),
            "retry_total": 0,
        }
        if env.get(connection):
            try:
                return QueueClient.from_connection_string(env[connection], queue, **options)
            except ValueError as exc:
                raise ConnectionSettingError(
                    f"connection {connection!r}: no queue service in its connection string: {exc}"
                ) from None
        url = self._queue_url(connection)
        if url is None:
            return None
        credential = _credential(env.get(f"{connection}__clientId"))
        return QueueClient(url, queue, credential=credential, **options)

    def close(self) -> None:
        """Close every client (and its credential's transport)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
            queues, self._queues = list(self._queues.values()), {}
        for client in clients:
            client.close()
        for queue in queues:
            queue.close()


class BlobValues:
    """Builds the value of a blob parameter; blocking (run it in a thread)."""

    def __init__(self, connections: Connections) -> None:
        self.connections = connections

    def value(self, param: Param, connection: str, container: str, blob: str) -> Any:
        """What ``param`` receives for ``container/blob`` (None for a missing input blob).

        Raises ``ResourceNotFoundError`` for a missing trigger blob.
        """
        annotation = strip_optional(param.annotation)
        binding_type = str(param.binding["type"])
        if param.kind is ParamKind.BLOB_SDK:
            converter = sdk_converter(binding_type, annotation)
            if converter is None:
                raise TypeError(f"{param.name}: {annotation!r} is not an SDK type")
            base = importlib.import_module("azurefunctions.extensions.base")
            content = {"Connection": connection, "ContainerName": container, "BlobName": blob}
            datum = base.Datum(ModelBindingData(json.dumps(content)), "model_binding_data")
            return converter.decode(datum, trigger_metadata={}, pytype=annotation)
        client = self.connections.service(connection).get_blob_client(container, blob)
        try:
            downloader = client.download_blob(encoding=None)
        except ResourceNotFoundError:
            if binding_type == "blob":
                return None
            raise
        data = downloader.readall()
        if param.kind is ParamKind.BYTES:
            return data
        if param.kind is ParamKind.STR:
            return data.decode("utf-8")
        from azure.functions.blob import InputStream

        properties = downloader.properties
        return InputStream(
            data=data,
            name=f"{container}/{blob}",
            uri=client.url,
            length=len(data),
            blob_properties={
                "ContentType": properties.content_settings.content_type,
                "ContentMD5": (properties.content_settings.content_md5 or b"").hex(),
                "ETag": properties.etag,
                "LastModified": properties.last_modified.isoformat(),
                "Length": properties.size,
            },
            metadata=dict(properties.metadata or {}),
        )

    def write(self, connection: str, container: str, blob: str, data: str | bytes) -> None:
        """Upload ``data`` as ``container/blob`` (a blob output binding), replacing it."""
        client = self.connections.service(connection).get_blob_client(container, blob)
        client.upload_blob(data, overwrite=True)
