"""Create what ``infra/`` creates in the storage account, in Azurite: ``azd provision`` offline.

In Azure, Bicep creates the input, requests and output containers and the ledger table
(``infra/app/storage.bicep``), so the app never has to. Offline, ``make up`` does the same
with the names the app reads from the same settings (``INPUT_CONTAINER`` ...), so a user
can drop audio into ``audio-input`` straight after ``make up``. The deployment-package
container is left out: nothing is deployed offline. Idempotent: what exists is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from local.stack.errors import StackError

#: App setting -> what it names, as infra/app/storage.bicep creates them.
CONTAINER_SETTINGS = ("INPUT_CONTAINER", "REQUESTS_CONTAINER", "OUTPUT_CONTAINER")
TABLE_SETTINGS = ("LEDGER_TABLE",)


@dataclass(frozen=True)
class StorageLayout:
    """The containers and tables a deployment of the app has."""

    containers: tuple[str, ...]
    tables: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> StorageLayout:
        """The names from the app settings the app itself reads; raises if one is unset."""
        missing = [
            name for name in (*CONTAINER_SETTINGS, *TABLE_SETTINGS) if not settings.get(name)
        ]
        if missing:
            raise StackError(
                f"cannot provision storage: {', '.join(missing)} not set (they come from "
                "local.settings.json.example unless the environment or local.settings.json "
                "sets them)"
            )
        return cls(
            containers=tuple(dict.fromkeys(settings[name] for name in CONTAINER_SETTINGS)),
            tables=tuple(dict.fromkeys(settings[name] for name in TABLE_SETTINGS)),
        )


def provision(layout: StorageLayout, stack_env: Mapping[str, str]) -> list[str]:
    """Create every container and table of ``layout`` that does not exist yet.

    Uses Azurite's well-known account key, the way an administrator (``azd provision``,
    with ARM) creates resources the app's identity only uses. Returns what was created,
    as ``container <name>`` / ``table <name>``.
    """
    from azure.core.exceptions import AzureError, ResourceExistsError
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient

    connection = stack_env["LOCAL_STORAGE_CONNECTION_STRING"]
    options: dict[str, Any] = {"connection_verify": stack_env["LOCAL_CA_BUNDLE"], "retry_total": 2}
    created: list[str] = []

    def create_each(kind: str, names: tuple[str, ...], create: Callable[[str], object]) -> None:
        for name in names:
            try:
                create(name)
            except ResourceExistsError:
                continue
            created.append(f"{kind} {name}")

    try:
        with BlobServiceClient.from_connection_string(connection, **options) as blobs:
            create_each("container", layout.containers, blobs.create_container)
        with TableServiceClient.from_connection_string(connection, **options) as tables:
            create_each("table", layout.tables, tables.create_table)
    except AzureError as exc:
        # The SDK's message ends with the service's XML/JSON detail: its first line says it.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StackError(f"cannot provision storage in Azurite: {first}") from None
    return created
