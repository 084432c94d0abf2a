"""What a stack keeps and offers: its secrets, ``stack.env``, and the service status."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shlex
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from local.certs import write_atomic
from local.stack.errors import StackError

if TYPE_CHECKING:
    from azure.identity import ManagedIdentityCredential


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str | None]) -> Iterator[None]:
    """``os.environ`` with ``values`` set (None: removed) for the duration, then restored."""
    saved = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


@dataclass(frozen=True)
class StackSecrets:
    """Per-stack values generated once and kept in ``stack.json`` (mode 0600)."""

    subscription_id: str
    #: The one subscription key the emulator accepts. Never logged.
    emulator_key: str = field(repr=False)

    @property
    def resource_id(self) -> str:
        """ARM id of the emulated Speech account (``SPEECH_RESOURCE_ID``)."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/local/providers/"
            "Microsoft.CognitiveServices/accounts/speech-emulator"
        )

    @property
    def webhook_secret(self) -> str:
        """The key Speech web hook deliveries are signed with offline (from the emulator key)."""
        return hashlib.sha256(b"speech-webhook:" + self.emulator_key.encode()).hexdigest()

    @classmethod
    def ensure(cls, path: Path) -> StackSecrets:
        """Read ``path``, creating it with fresh values the first time."""
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(str(data["subscription_id"]), str(data["emulator_key"]))
        made = cls(str(uuid.uuid4()), secrets.token_hex(16))
        payload = {"subscription_id": made.subscription_id, "emulator_key": made.emulator_key}
        write_atomic(path, json.dumps(payload, indent=2).encode(), private=True)
        return made


@dataclass(frozen=True)
class StackInfo:
    """What a running stack offers its clients; ``env`` is exactly ``stack.env``."""

    state_dir: Path
    #: Holds IDENTITY_HEADER and the emulator key: kept out of repr (test reports, logs).
    env: dict[str, str] = field(repr=False)

    @property
    def blob_endpoint(self) -> str:
        """``https://127.0.0.1:<port>/devstoreaccount1``."""
        return self.env["LOCAL_BLOB_ENDPOINT"]

    @property
    def queue_endpoint(self) -> str:
        """Azurite queue service URL."""
        return self.env["LOCAL_QUEUE_ENDPOINT"]

    @property
    def table_endpoint(self) -> str:
        """Azurite table service URL."""
        return self.env["LOCAL_TABLE_ENDPOINT"]

    @property
    def speech_url(self) -> str:
        """Base URL of the Speech emulator (plain HTTP on loopback)."""
        return self.env["SPEECH_EMULATOR_URL"]

    @property
    def identity_endpoint(self) -> str:
        """``IDENTITY_ENDPOINT``: the managed-identity token URL."""
        return self.env["IDENTITY_ENDPOINT"]

    @property
    def identity_header(self) -> str:
        """``IDENTITY_HEADER``: the secret the identity endpoint expects."""
        return self.env["IDENTITY_HEADER"]

    @property
    def ca_bundle(self) -> str:
        """Path of the stack's CA certificate (trust it to reach Azurite)."""
        return self.env["LOCAL_CA_BUNDLE"]

    @property
    def emulator_key(self) -> str:
        """The subscription key the emulator accepts (``SPEECH_KEY_LOCAL``)."""
        return self.env["SPEECH_KEY_LOCAL"]

    @property
    def resource_id(self) -> str:
        """ARM id of the emulated Speech account."""
        return self.env["SPEECH_RESOURCE_ID"]

    @property
    def functions_url(self) -> str:
        """``FUNCTIONS_BASE_URL``: the local functions host (routes under ``/api``)."""
        return self.env["FUNCTIONS_BASE_URL"]

    @property
    def functions_key(self) -> str:
        """``FUNCTIONS_KEY``: opens ``FUNCTION``-level routes (``x-functions-key`` or ``code``)."""
        return self.env["FUNCTIONS_KEY"]

    @property
    def functions_master_key(self) -> str:
        """``FUNCTIONS_MASTER_KEY``: opens ``ADMIN`` routes and ``/admin/host/status``."""
        return self.env["FUNCTIONS_MASTER_KEY"]

    @contextlib.contextmanager
    def identity_environment(self) -> Iterator[None]:
        """Point azure-identity at this stack for the duration, then restore ``os.environ``.

        MSAL reads ``IDENTITY_ENDPOINT``/``IDENTITY_HEADER`` from ``os.environ`` on every
        token request, not only when a credential is built, so they must stay set while
        credentials are used. ``IDENTITY_SERVER_THUMBPRINT`` would turn the request into
        Service Fabric's protocol, so it is removed meanwhile.
        """
        with patched_environ(
            {
                "IDENTITY_ENDPOINT": self.identity_endpoint,
                "IDENTITY_HEADER": self.identity_header,
                "IDENTITY_SERVER_THUMBPRINT": None,
            }
        ):
            yield

    def credential(self) -> ManagedIdentityCredential:
        """azure-identity's ``ManagedIdentityCredential`` (App Service flavour) for this stack.

        Use it inside :meth:`identity_environment` (the test fixtures hold it open).
        """
        from azure.identity import ManagedIdentityCredential

        if os.environ.get("IDENTITY_ENDPOINT") != self.identity_endpoint:
            raise StackError(
                "IDENTITY_ENDPOINT does not point at this stack: use the credential inside "
                "StackInfo.identity_environment()"
            )
        return ManagedIdentityCredential()


@dataclass(frozen=True)
class ServiceStatus:
    """One service as ``status`` sees it."""

    name: str
    state: Literal["healthy", "running", "stopped"]
    pid: int | None
    ports: dict[str, int]

    def line(self) -> str:
        """``identity  healthy  pid 1234  identity :7081``."""
        pid = f"pid {self.pid}" if self.pid else ""
        ports = ", ".join(f"{label} :{port}" for label, port in self.ports.items())
        return f"{self.name:<9} {self.state:<8} {pid:<10} {ports}"


def format_env(env: Mapping[str, str]) -> str:
    lines = [
        "# Written by `python -m local.stack up`. Holds secrets: keep it private.",
        "# Load into a shell with: set -a; . .local/stack.env; set +a",
    ]
    lines += [f"{key}={shlex.quote(value)}" for key, value in env.items()]
    return "\n".join(lines) + "\n"
