"""How the offline stack runs Azurite (Blob, Queue, Table), pinned at 3.37.0 in local/package.json.

Flags, and why each is there:

* ``--cert`` / ``--key`` — HTTPS. Azurite refuses bearer tokens over plain HTTP, and the
  production path is keyless (managed identity), so storage must speak TLS.
* ``--oauth basic`` — accept bearer tokens. Azurite then checks a token's ``iss`` prefix
  (``https://sts.windows.net/`` among others), its ``aud`` (``https://storage.azure.com``
  or an account URL) and that ``iat``/``nbf``/``exp`` are present and current; it does not
  verify signatures. User-delegation keys are derived from the token's ``oid`` and ``tid``.
* ``--disableTelemetry`` — otherwise it tries to reach an outside telemetry host.
* ``--skipApiVersionCheck`` — the Azure SDKs may send a newer ``x-ms-version`` than the
  pinned Azurite knows.
* ``--silent`` — no access log: its lines carry full request URLs, SAS signatures
  included, and nothing secret may reach a log file. Start-up messages and errors still
  go to ``.local/logs/azurite.log``. Azurite's ``--debug`` log is not enabled for the same
  reason (it records request headers, bearer tokens included).
* Not ``--loose``: the SDK versions pinned here (azure-storage-blob 12.31.1, user-delegation
  SAS included) need no unsupported header or parameter ignored, and strict mode keeps the
  emulator as picky as Azure.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from local.certs import CertPaths

HOST = "127.0.0.1"
#: Azurite's well-known development account (the same in every Azurite install).
ACCOUNT_NAME = "devstoreaccount1"
#: Its well-known key, published in Azurite's documentation; not a secret.
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@dataclass(frozen=True)
class AzuritePorts:
    """Where the three Azurite services listen."""

    blob: int
    queue: int
    table: int


#: Node.js this Azurite is known to run on here. Its package.json asks for >= 22, yet
#: the whole suite passes on Node 20 (verified on 20.20.2); older ones are not tried.
MIN_NODE = "20"
NODE_HINT = f"install Node.js {MIN_NODE} or newer with npm (Debian: apt-get install nodejs npm)"


def executable(repo_root: Path) -> Path:
    """The Azurite launcher ``npm ci --prefix local`` installs; raises if it cannot run.

    The launcher is a ``#!/usr/bin/env node`` script: without Node.js on ``PATH`` it exits
    127 with nothing useful in its log, so that case is named here instead.
    """
    if shutil.which("node") is None:
        raise FileNotFoundError(f"Azurite needs Node.js, and `node` is not on PATH: {NODE_HINT}")
    path = repo_root / "local" / "node_modules" / ".bin" / "azurite"
    if not path.exists():
        raise FileNotFoundError(
            f"Azurite is not installed ({path} is missing): run `make install` "
            "(it runs `npm ci --prefix local`)"
        )
    return path


def command(*, launcher: Path, data_dir: Path, certs: CertPaths, ports: AzuritePorts) -> list[str]:
    """The argv that starts Azurite for the stack; see the module docstring for each flag."""
    return [
        str(launcher),
        "--blobHost",
        HOST,
        "--blobPort",
        str(ports.blob),
        "--queueHost",
        HOST,
        "--queuePort",
        str(ports.queue),
        "--tableHost",
        HOST,
        "--tablePort",
        str(ports.table),
        "--location",
        str(data_dir),
        "--cert",
        str(certs.server_chain),
        "--key",
        str(certs.server_key),
        "--oauth",
        "basic",
        "--disableTelemetry",
        "--skipApiVersionCheck",
        "--silent",
    ]


def endpoints(ports: AzuritePorts) -> dict[str, str]:
    """HTTPS service URLs (path-style: the account is the first path segment)."""
    return {
        "blob": f"https://{HOST}:{ports.blob}/{ACCOUNT_NAME}",
        "queue": f"https://{HOST}:{ports.queue}/{ACCOUNT_NAME}",
        "table": f"https://{HOST}:{ports.table}/{ACCOUNT_NAME}",
    }


def connection_string(ports: AzuritePorts) -> str:
    """A shared-key connection string with HTTPS endpoints, for tools that need one."""
    urls = endpoints(ports)
    return (
        f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={urls['blob']};QueueEndpoint={urls['queue']};"
        f"TableEndpoint={urls['table']};"
    )


def probe_urls(ports: AzuritePorts) -> dict[str, str]:
    """One URL per service that answers (403 without credentials) once it listens."""
    urls = endpoints(ports)
    return {
        "blob": f"{urls['blob']}?comp=list",
        "queue": f"{urls['queue']}?comp=list",
        "table": f"{urls['table']}/Tables",
    }
