"""Loopback ports of the stack, each overridable, and whether one is taken."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from local import azurite
from local.stack.errors import StackError
from local.stack.services import HOST

#: The environment variable that overrides each port.
PORT_ENV_VARS: Mapping[str, str] = {
    "blob": "LOCAL_BLOB_PORT",
    "queue": "LOCAL_QUEUE_PORT",
    "table": "LOCAL_TABLE_PORT",
    "identity": "LOCAL_IDENTITY_PORT",
    "speech": "LOCAL_SPEECH_PORT",
    "functions": "LOCAL_FUNCTIONS_PORT",
}


@dataclass(frozen=True)
class Ports:
    """Loopback ports of the stack; each overridable by its ``LOCAL_*_PORT`` variable."""

    blob: int = 10000
    queue: int = 10001
    table: int = 10002
    identity: int = 7081
    speech: int = 7080
    functions: int = 7071

    def __post_init__(self) -> None:
        values = self.as_dict()
        for name, port in values.items():
            if not 1 <= port <= 65535:
                raise StackError(f"{PORT_ENV_VARS[name]}={port} is not a TCP port (1-65535)")
        if len(set(values.values())) != len(values):
            raise StackError(
                "two services share a port: "
                + ", ".join(f"{PORT_ENV_VARS[n]}={p}" for n, p in values.items())
            )

    def as_dict(self) -> dict[str, int]:
        """Port per service: blob, queue, table, identity, speech, functions."""
        return {
            "blob": self.blob,
            "queue": self.queue,
            "table": self.table,
            "identity": self.identity,
            "speech": self.speech,
            "functions": self.functions,
        }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Ports:
        """Defaults, overridden by ``LOCAL_BLOB_PORT`` ... ``LOCAL_FUNCTIONS_PORT``."""
        env = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for name, var in PORT_ENV_VARS.items():
            raw = env.get(var, "").strip()
            if raw:
                try:
                    values[name] = int(raw)
                except ValueError:
                    raise StackError(f"{var}={raw!r} is not a port number") from None
        return cls(**values)

    @classmethod
    def free(cls) -> Ports:
        """Distinct ports nothing listens on now (tests; not the developer's defaults)."""
        sockets = [socket.socket() for _ in PORT_ENV_VARS]
        try:
            for sock in sockets:
                sock.bind((HOST, 0))
            numbers = [int(sock.getsockname()[1]) for sock in sockets]
        finally:
            for sock in sockets:
                sock.close()
        return cls(**dict(zip(PORT_ENV_VARS, numbers, strict=True)))

    def azurite(self) -> azurite.AzuritePorts:
        """The three Azurite ports."""
        return azurite.AzuritePorts(blob=self.blob, queue=self.queue, table=self.table)


def port_taken(port: int) -> bool:
    """True if something listens on (or has bound) ``HOST:port``.

    SO_REUSEADDR mirrors what Node and uvicorn set, so sockets left in TIME_WAIT by earlier
    clients do not count as taken; a live listener still does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False
