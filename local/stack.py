"""Start, stop and inspect the offline stack: Azurite, identity, Speech emulator, functions host.

``python -m local.stack up|down|status [--state-dir DIR] [--services a,b] [--app M:A]
[--timeout S]``

The ``functions`` service (the local functions host, :mod:`local.host`, serving
``function_app:app`` or ``--app``) starts last, with the app settings of a Function App
wired to this stack (:func:`function_app_settings`). ``Stack`` starts it only when asked
(``services=``); the CLI includes it by default once ``function_app.py`` exists (or with
``--app``).

Everything a stack owns lives in one state dir (default ``<repo>/.local``, or
``LOCAL_STATE_DIR``)::

    certs/      CA, server certificate, CA bundle           (local.certs)
    identity/   ids, IDENTITY_HEADER secret, JWT signing key (local.identity)
    azurite/    Azurite's data
    emulator/   the Speech emulator's data
    functions/  the functions host's keys, blob receipts, poison.jsonl   (local.host)
    logs/       <service>.log: each service's stdout and stderr
    pids/       <service>.pid
    stack.json  per-stack secrets: the emulator key, the fake subscription id
    stack.env   what clients need: endpoints, IDENTITY_*, CA bundle, app settings

Each service runs in its own session (process group), so ``down`` stops its whole tree.
A pid file is trusted only if that process's command line still carries the marker this
stack gave it, so a recycled pid of an unrelated process is never signalled.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import secrets
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote, unquote

import httpx

from local import azurite
from local.certs import CertPaths, ensure_certs, write_atomic
from local.host.keys import HostKeys, ensure_keys
from local.identity import DEFAULT_TOKEN_LIFETIME, TOKEN_PATH, IdentityState, ensure_identity

if TYPE_CHECKING:
    from azure.identity import ManagedIdentityCredential

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = REPO_ROOT / ".local"
HOST = "127.0.0.1"

AZURITE = "azurite"
IDENTITY = "identity"
EMULATOR = "emulator"
FUNCTIONS = "functions"
#: The services ``Stack`` starts by default: the ones every test and script needs.
SERVICES: tuple[str, ...] = (AZURITE, IDENTITY, EMULATOR)
#: Every service, in start order: the functions host last, once storage and identity answer.
ALL_SERVICES: tuple[str, ...] = (*SERVICES, FUNCTIONS)

IDENTITY_APP = "local.identity:create_app"
EMULATOR_APP = "local.emulator.app:create_app"
FUNCTIONS_MODULE = "local.host"
DEFAULT_FUNCTIONS_APP = "function_app:app"
FUNCTION_APP_FILE = REPO_ROOT / "function_app.py"
#: The connection (binding ``connection=``) the app's storage bindings use.
APP_STORAGE_CONNECTION = "AudioStorage"
#: Response header (set with uvicorn ``--header``) naming the service and its state dir. It
#: lets ``up`` say whose server holds a taken port, and marks the command line of our
#: processes so ``down`` recognises them.
STACK_HEADER = "X-Offline-Stack"

DEFAULT_TIMEOUT = 60.0
STOP_GRACE_SECONDS = 5.0
LOG_TAIL_LINES = 40
_POLL_SECONDS = 0.1


#: The environment variable that overrides each port.
PORT_ENV_VARS: Mapping[str, str] = {
    "blob": "LOCAL_BLOB_PORT",
    "queue": "LOCAL_QUEUE_PORT",
    "table": "LOCAL_TABLE_PORT",
    "identity": "LOCAL_IDENTITY_PORT",
    "speech": "LOCAL_SPEECH_PORT",
    "functions": "LOCAL_FUNCTIONS_PORT",
}


class StackError(RuntimeError):
    """The stack could not be started or inspected; the message says what to do."""


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
        names = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT")
        saved = {name: os.environ.get(name) for name in names}
        for name in names:
            os.environ.pop(name, None)
        os.environ["IDENTITY_ENDPOINT"] = self.identity_endpoint
        os.environ["IDENTITY_HEADER"] = self.identity_header
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

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


@dataclass(frozen=True)
class _Listener:
    """One port a service listens on, and a URL that answers once it is up."""

    label: str
    port: int
    env_var: str
    url: str


@dataclass(frozen=True)
class _Launch:
    argv: list[str]
    env: dict[str, str]


def read_env_file(path: Path) -> dict[str, str]:
    """Parse ``stack.env`` (``KEY=value`` lines, values shell-quoted where needed)."""
    env: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}: not a KEY=value line: {key!r}")
        words = shlex.split(value)
        env[key] = words[0] if words else ""
    return env


def _format_env(env: Mapping[str, str]) -> str:
    lines = [
        "# Written by `python -m local.stack up`. Holds secrets: keep it private.",
        "# Load into a shell with: set -a; . .local/stack.env; set +a",
    ]
    lines += [f"{key}={shlex.quote(value)}" for key, value in env.items()]
    return "\n".join(lines) + "\n"


def _command_line(pid: int) -> str | None:
    """The process's command line, or None if it is gone (zombies included)."""
    if Path("/proc/self").is_dir():
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return raw.replace(b"\0", b" ").decode(errors="replace").strip() or None
    # No /proc (macOS, BSD): ps prints nothing for a missing pid.
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["ps", "-o", "command=", "-p", str(pid)],  # noqa: S607 - ps from PATH, as a shell would
        capture_output=True,
        text=True,
        check=False,
    )
    text = result.stdout.strip()
    return None if not text or "<defunct>" in text else text


def _group_alive(pgid: int) -> bool:
    """True while a process of group ``pgid`` still runs (zombies do not count).

    Zombies are left out because reaping an orphan is init's job, and some inits (in
    containers and VMs) reap only every few seconds: waiting for them would make ``down``
    slow for nothing.
    """
    if not Path("/proc/self").is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # exited while we looked
        # The command name may hold spaces and parentheses: fields start after the last ")".
        state, _ppid, pgrp = text[text.rindex(")") + 2 :].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            return True
    return False


def _port_taken(port: int) -> bool:
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


def function_app_settings(env: Mapping[str, str]) -> dict[str, str]:
    """The app settings of a Function App wired to the stack whose ``stack.env`` is ``env``.

    What Azure would configure: the app's documented settings (the non-empty values of
    ``local.settings.json.example``, which the Bicep sets too), identity-based storage
    connections (``AudioStorage`` for the app's bindings, ``AzureWebJobsStorage`` for the
    host's own) and keyless Speech. A developer's ``local.settings.json`` is applied on top
    by the host itself.
    """
    storage = {
        f"{connection}__{key}": value
        for connection in (APP_STORAGE_CONNECTION, "AzureWebJobsStorage")
        for key, value in (
            ("blobServiceUri", env["LOCAL_BLOB_ENDPOINT"]),
            ("queueServiceUri", env["LOCAL_QUEUE_ENDPOINT"]),
            ("tableServiceUri", env["LOCAL_TABLE_ENDPOINT"]),
            ("credential", "managedidentity"),
        )
    }
    example = REPO_ROOT / "local.settings.json.example"
    documented: dict[str, str] = {}
    if example.is_file():
        values = json.loads(example.read_text(encoding="utf-8")).get("Values", {})
        documented = {k: str(v) for k, v in values.items() if str(v) != ""}
    return {
        **documented,
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "PYTHON_ENABLE_INIT_INDEXING": "1",
        **storage,
        "SPEECH_ENDPOINT": env["SPEECH_ENDPOINT"],
        "SPEECH_AUTH_MODE": "entra",
        "SPEECH_RESOURCE_ID": env["SPEECH_RESOURCE_ID"],
        # The emulator finishes jobs in seconds, not the service's minutes: poll to match.
        "POLL_SCHEDULE": "*/2 * * * * *",
        "POLL_MIN_INTERVAL_SECONDS": "2",
        "POLL_MAX_INTERVAL_SECONDS": "10",
    }


def default_services(functions_app: str | None = None) -> tuple[str, ...]:
    """What the CLI starts without ``--services``: the functions host too once there is an app."""
    if functions_app is not None or FUNCTION_APP_FILE.is_file():
        return ALL_SERVICES
    return SERVICES


def _emulator_present() -> bool:
    package = REPO_ROOT / "local" / "emulator"
    return (package / "app.py").is_file() or (package / "app" / "__init__.py").is_file()


class Stack:
    """The offline stack of one state dir.

    ``Stack(tmp_path, ports=Ports.free(), services={"azurite", "identity"}).up()`` starts
    a private stack (tests); ``Stack()`` is the developer's stack on the default ports.
    ``up`` is idempotent, ``down`` stops everything this state dir started, whichever
    ``Stack`` object (or CLI run) started it. Services outlive the object; while it lives
    it holds the handles of the processes it started, to report their exit codes.
    """

    def __init__(
        self,
        state_dir: Path | None = None,
        *,
        ports: Ports | None = None,
        services: Iterable[str] = SERVICES,
        speech_engine: str | None = None,
        token_lifetime: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        functions_app: str = DEFAULT_FUNCTIONS_APP,
        echo: Callable[[str], None] = print,
    ) -> None:
        default_dir = os.environ.get("LOCAL_STATE_DIR") or DEFAULT_STATE_DIR
        self.state_dir = Path(state_dir or default_dir).resolve()
        self.ports = ports or Ports.from_env()
        chosen = set(services)
        unknown = chosen - set(ALL_SERVICES)
        if unknown:
            raise StackError(f"unknown service(s) {sorted(unknown)}; known: {list(ALL_SERVICES)}")
        #: The services ``up`` starts, in start order.
        self.services = tuple(name for name in ALL_SERVICES if name in chosen)
        #: ``module:attribute`` of the FunctionApp the functions service serves.
        self.functions_app = functions_app
        self.speech_engine = speech_engine or os.environ.get("LOCAL_SPEECH_ENGINE") or "whisper"
        if token_lifetime is None:
            raw = os.environ.get("LOCAL_IDENTITY_TOKEN_LIFETIME", "").strip()
            try:
                token_lifetime = int(raw) if raw else DEFAULT_TOKEN_LIFETIME
            except ValueError:
                raise StackError(
                    f"LOCAL_IDENTITY_TOKEN_LIFETIME={raw!r} is not a number of seconds"
                ) from None
        self.token_lifetime = token_lifetime
        self.timeout = timeout
        self._echo = echo
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # Files -------------------------------------------------------------------------------

    @property
    def env_file(self) -> Path:
        """``<state>/stack.env``."""
        return self.state_dir / "stack.env"

    def log_file(self, service: str) -> Path:
        """``<state>/logs/<service>.log``."""
        return self.state_dir / "logs" / f"{service}.log"

    def pid_file(self, service: str) -> Path:
        """``<state>/pids/<service>.pid``."""
        return self.state_dir / "pids" / f"{service}.pid"

    # What each service is ----------------------------------------------------------------

    def _prepare(self) -> tuple[CertPaths, IdentityState, StackSecrets]:
        certs = ensure_certs(self.state_dir)
        identity = ensure_identity(self.state_dir / "identity")
        stack_secrets = StackSecrets.ensure(self.state_dir / "stack.json")
        return certs, identity, stack_secrets

    def _keys(self) -> HostKeys:
        return ensure_keys(self.state_dir / FUNCTIONS)

    def _stack_marker(self, service: str) -> str:
        return f"{STACK_HEADER}:{service}@{quote(str(self.state_dir), safe='/')}"

    def _markers(self, service: str) -> tuple[str, ...]:
        """What the command line of this state dir's ``service`` process contains."""
        if service == AZURITE:
            return ("azurite", f"--location {self.state_dir / 'azurite'}")
        app = {IDENTITY: IDENTITY_APP, EMULATOR: EMULATOR_APP}.get(service, FUNCTIONS_MODULE)
        return (app, self._stack_marker(service))

    def _port_flags(self, service: str) -> tuple[str, ...]:
        """The command-line flags that put ``service`` on the configured ports."""
        if service == AZURITE:
            ports = self.ports
            return (
                f"--blobPort {ports.blob}",
                f"--queuePort {ports.queue}",
                f"--tablePort {ports.table}",
            )
        port = {IDENTITY: self.ports.identity, EMULATOR: self.ports.speech}.get(
            service, self.ports.functions
        )
        return (f"--port {port}",)

    def _listeners(self, service: str) -> tuple[_Listener, ...]:
        if service == AZURITE:
            probes = azurite.probe_urls(self.ports.azurite())
            ports = self.ports.as_dict()
            return tuple(
                _Listener(label, ports[label], PORT_ENV_VARS[label], probes[label])
                for label in ("blob", "queue", "table")
            )
        label, port = {
            IDENTITY: ("identity", self.ports.identity),
            EMULATOR: ("speech", self.ports.speech),
        }.get(service, ("functions", self.ports.functions))
        url = f"http://{HOST}:{port}/health"
        return (_Listener(label, port, PORT_ENV_VARS[label], url),)

    def _launch(
        self,
        service: str,
        certs: CertPaths,
        identity: IdentityState,
        stack_secrets: StackSecrets,
    ) -> _Launch:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if service == AZURITE:
            argv = azurite.command(
                launcher=azurite.executable(REPO_ROOT),
                data_dir=self.state_dir / "azurite",
                certs=certs,
                ports=self.ports.azurite(),
            )
            return _Launch(argv, env)
        uvicorn = [sys.executable, "-m", "uvicorn", "--factory", "--host", HOST]
        uvicorn += ["--app-dir", str(REPO_ROOT), "--header", self._stack_marker(service)]
        if service == IDENTITY:
            env["LOCAL_IDENTITY_DIR"] = str(identity.directory)
            env["LOCAL_IDENTITY_TOKEN_LIFETIME"] = str(self.token_lifetime)
            return _Launch([*uvicorn, "--port", str(self.ports.identity), IDENTITY_APP], env)
        if service == FUNCTIONS:
            return self._functions_launch(env)
        env.update(
            EMULATOR_KEYS=stack_secrets.emulator_key,
            EMULATOR_JWT_PUBLIC_KEY=str(identity.public_key_path),
            EMULATOR_JWT_ISSUER=identity.issuer,
            EMULATOR_RESOURCE_ID=stack_secrets.resource_id,
            EMULATOR_CA_BUNDLE=str(certs.ca),
            EMULATOR_STATE_DIR=str(self.state_dir / "emulator"),
            EMULATOR_ENGINE=self.speech_engine,
            HF_HUB_OFFLINE="1",
        )
        # No uvicorn access log: URLs the emulator serves may carry SAS signatures.
        argv = [*uvicorn, "--port", str(self.ports.speech), "--no-access-log", EMULATOR_APP]
        return _Launch(argv, env)

    def _functions_launch(self, env: dict[str, str]) -> _Launch:
        """The functions host, with the environment a Function App on this stack has."""
        stack_env = self.environment()
        env.update(stack_env)
        env.update(function_app_settings(stack_env))
        # The host reads its keys from its state dir; the app itself never sees them (a
        # developer's shell that loaded stack.env would otherwise pass them on).
        for name in ("FUNCTIONS_BASE_URL", "FUNCTIONS_KEY", "FUNCTIONS_MASTER_KEY"):
            env.pop(name, None)
        argv = [
            sys.executable,
            "-m",
            FUNCTIONS_MODULE,
            "--app",
            self.functions_app,
            "--app-dir",
            str(REPO_ROOT),
            "--state-dir",
            str(self.state_dir / FUNCTIONS),
            "--header",
            self._stack_marker(FUNCTIONS),
            "--port",
            str(self.ports.functions),
        ]
        return _Launch(argv, env)

    def environment(self) -> dict[str, str]:
        """The contents of ``stack.env`` for this stack (creates keys and certs if needed)."""
        certs, identity, stack_secrets = self._prepare()
        keys = self._keys()
        storage = azurite.endpoints(self.ports.azurite())
        speech_url = f"http://{HOST}:{self.ports.speech}"
        return {
            "LOCAL_STATE_DIR": str(self.state_dir),
            "LOCAL_BLOB_ENDPOINT": storage["blob"],
            "LOCAL_QUEUE_ENDPOINT": storage["queue"],
            "LOCAL_TABLE_ENDPOINT": storage["table"],
            "LOCAL_CA_BUNDLE": str(certs.ca),
            "LOCAL_STORAGE_ACCOUNT": azurite.ACCOUNT_NAME,
            "LOCAL_STORAGE_KEY": azurite.ACCOUNT_KEY,
            "LOCAL_STORAGE_CONNECTION_STRING": azurite.connection_string(self.ports.azurite()),
            "LOCAL_TENANT_ID": identity.tenant_id,
            "LOCAL_IDENTITY_CLIENT_ID": identity.client_id,
            "LOCAL_IDENTITY_OBJECT_ID": identity.object_id,
            "LOCAL_JWT_ISSUER": identity.issuer,
            "LOCAL_JWT_PUBLIC_KEY": str(identity.public_key_path),
            "SPEECH_EMULATOR_URL": speech_url,
            "IDENTITY_ENDPOINT": f"http://{HOST}:{self.ports.identity}{TOKEN_PATH}",
            "IDENTITY_HEADER": identity.header_secret,
            "SPEECH_ENDPOINT": speech_url,
            "SPEECH_AUTH_MODE": "entra",
            "SPEECH_RESOURCE_ID": stack_secrets.resource_id,
            "SPEECH_KEY_LOCAL": stack_secrets.emulator_key,
            "REQUESTS_CA_BUNDLE": str(certs.bundle),
            "SSL_CERT_FILE": str(certs.bundle),
            "FUNCTIONS_BASE_URL": f"http://{HOST}:{self.ports.functions}",
            "FUNCTIONS_KEY": keys.function,
            "FUNCTIONS_MASTER_KEY": keys.master,
        }

    # Processes ---------------------------------------------------------------------------

    def _reap(self, pid: int) -> None:
        """Collect ``pid`` if it is our exited child, so it does not linger as a zombie."""
        child = self._children.get(pid)
        if child is not None:
            child.poll()
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)

    def _owned_pid(self, service: str) -> int | None:
        """The pid in the pid file if that process is alive and is the one we started."""
        try:
            pid = int(self.pid_file(service).read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            return None
        child = self._children.get(pid)
        if child is not None:
            # Started by this object: no need for (or race with) reading its command line.
            return pid if child.poll() is None else None
        self._reap(pid)
        cmdline = _command_line(pid)
        if cmdline is None or not all(marker in cmdline for marker in self._markers(service)):
            return None
        return pid

    def _client(self) -> httpx.Client:
        ca = CertPaths(self.state_dir / "certs").ca
        verify = ssl.create_default_context(cafile=ca) if ca.is_file() else True
        return httpx.Client(verify=verify, timeout=2.0)

    def _healthy(self, client: httpx.Client, service: str) -> bool:
        """Every listener answers: Azurite with any status (403 unauthenticated), else 200."""
        for listener in self._listeners(service):
            try:
                response = client.get(listener.url)
            except httpx.HTTPError:
                return False
            if service != AZURITE and response.status_code != 200:
                return False
        return True

    def _holder(self, port: int) -> str:
        """Who holds ``port``, as far as an HTTP request can tell."""
        for scheme in ("http", "https"):
            # Unverified on purpose: this only reads the response headers of a loopback
            # server that is not ours, to name it in an error message.
            try:
                with httpx.Client(verify=False, timeout=0.5) as client:  # noqa: S501
                    response = client.get(f"{scheme}://{HOST}:{port}/health")
            except httpx.HTTPError:
                continue
            marker = response.headers.get(STACK_HEADER)
            if marker and "@" in marker:
                service, _, where = marker.partition("@")
                state_dir = unquote(where)
                if Path(state_dir) == self.state_dir:
                    return (
                        f"the {service} service of this same stack ({state_dir}) that its "
                        "pid file no longer tracks; stop that process"
                    )
                return (
                    f"the {service} service of another offline stack; stop it with "
                    f"`python -m local.stack down --state-dir {state_dir}`"
                )
            server = response.headers.get("server", "")
            if server.lower().startswith("azurite"):
                return f"{server} not started by this stack; stop it"
        return "another program; stop it"

    def _check_ports(self, service: str) -> None:
        for listener in self._listeners(service):
            if _port_taken(listener.port):
                raise StackError(
                    f"cannot start {service}: port {listener.port} ({listener.label}) is "
                    f"already in use by {self._holder(listener.port)}, or set "
                    f"{listener.env_var} to a free port"
                )

    def _start(self, service: str, launch: _Launch) -> subprocess.Popen[bytes]:
        for directory in ("logs", "pids", "azurite", "emulator"):
            (self.state_dir / directory).mkdir(parents=True, exist_ok=True)
        with self.log_file(service).open("wb") as log:
            process = subprocess.Popen(  # noqa: S603 - argv built by this module, no shell
                launch.argv,
                cwd=REPO_ROOT,
                env=launch.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._children[process.pid] = process
        write_atomic(self.pid_file(service), f"{process.pid}\n".encode())
        return process

    def _log_tail(self, service: str) -> str:
        try:
            lines = self.log_file(service).read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-LOG_TAIL_LINES:]) or "(log is empty)"

    def _fail(self, service: str, reason: str, started: Iterable[str]) -> StackError:
        message = (
            f"{service} {reason}\n--- last lines of {self.log_file(service)} ---\n"
            f"{self._log_tail(service)}"
        )
        for name in started:
            self._stop(name)
        return StackError(message)

    def _group_exits(self, pgid: int, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            self._reap(pgid)
            if not _group_alive(pgid):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(_POLL_SECONDS)

    def _stop(self, service: str) -> bool:
        """Stop one service's process group; True if it was running."""
        pid = self._owned_pid(service)
        if pid is None:
            self.pid_file(service).unlink(missing_ok=True)
            return False
        # start_new_session made the service a group leader: its pid is the group id, and
        # signalling the group reaches whatever the service started itself.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, sig)
            if self._group_exits(pid, STOP_GRACE_SECONDS):
                break
        else:
            raise StackError(f"{service} (process group {pid}) survived SIGKILL")
        # The leader may be a zombie still (zombies count as gone): collect it if ours.
        child = self._children.pop(pid, None)
        if child is not None:
            child.wait(timeout=STOP_GRACE_SECONDS)
        else:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.pid_file(service).unlink(missing_ok=True)
        return True

    # Public API --------------------------------------------------------------------------

    def up(self) -> StackInfo:
        """Start every chosen service that is not running yet; wait until all answer.

        Writes ``stack.env`` and returns its contents. On failure it stops what this call
        started and raises :class:`StackError` with the tail of the failing service's log.
        """
        if EMULATOR in self.services and not _emulator_present():
            raise StackError(
                f"the Speech emulator ({EMULATOR_APP}) is not in this checkout yet; "
                "start the rest with --services azurite,identity"
            )
        certs, identity, stack_secrets = self._prepare()
        to_start: list[str] = []
        for name in self.services:
            pid = self._owned_pid(name)
            if pid is None:
                self.pid_file(name).unlink(missing_ok=True)
                to_start.append(name)
                continue
            cmdline = f"{_command_line(pid) or ''} "
            if not all(f"{flag} " in cmdline for flag in self._port_flags(name)):
                raise StackError(
                    f"{name} (pid {pid}) runs on other ports than now configured; "
                    "run `python -m local.stack down` first"
                )
            if name == FUNCTIONS and f"--app {self.functions_app} " not in cmdline:
                raise StackError(
                    f"{name} (pid {pid}) serves another app than {self.functions_app}; "
                    "run `python -m local.stack down` first"
                )
            self._echo(f"{name}: already running (pid {pid})")
        for name in to_start:
            self._check_ports(name)
        try:
            launches = {
                name: self._launch(name, certs, identity, stack_secrets) for name in to_start
            }
        except FileNotFoundError as exc:
            raise StackError(str(exc)) from None
        started: dict[str, subprocess.Popen[bytes]] = {}
        # The functions host lists blobs and tables as soon as it runs: it starts only
        # once the services it depends on answer.
        backends = [name for name in self.services if name != FUNCTIONS]
        for group in (backends, [name for name in self.services if name == FUNCTIONS]):
            for name in group:
                if name not in to_start:
                    continue
                try:
                    started[name] = self._start(name, launches[name])
                except OSError as exc:
                    raise self._fail(name, f"could not be started: {exc}", started) from None
            self._wait(started, group)
        env = self.environment()
        write_atomic(self.env_file, _format_env(env).encode(), private=True)
        return StackInfo(self.state_dir, env)

    def _wait(self, started: Mapping[str, subprocess.Popen[bytes]], names: Iterable[str]) -> None:
        begin = time.monotonic()
        deadline = begin + self.timeout
        waiting = list(names)
        announced: set[str] = set()
        with self._client() as client:
            while waiting:
                for name in list(waiting):
                    child = started.get(name)
                    if child is not None and child.poll() is not None:
                        raise self._fail(name, f"exited with code {child.returncode}", started)
                    if child is None and self._owned_pid(name) is None:
                        raise self._fail(name, "stopped while the stack was starting", started)
                    if self._healthy(client, name):
                        if child is not None:
                            self._echo(f"{name}: ready after {time.monotonic() - begin:.1f} s")
                        waiting.remove(name)
                    elif name not in announced:
                        ports = ", ".join(
                            f"{item.label} :{item.port}" for item in self._listeners(name)
                        )
                        self._echo(f"{name}: waiting for {ports} ...")
                        announced.add(name)
                if waiting and time.monotonic() > deadline:
                    raise self._fail(
                        waiting[0], f"did not answer within {self.timeout:g} s", started
                    )
                if waiting:
                    time.sleep(_POLL_SECONDS)

    def down(self) -> list[str]:
        """Stop every service of this state dir (not only the chosen ones); idempotent.

        Returns the names of the services that were running.
        """
        stopped = [name for name in reversed(ALL_SERVICES) if self._stop(name)]
        # Handles of processes another Stack object stopped: collect them too.
        for pid, child in list(self._children.items()):
            if child.poll() is not None:
                del self._children[pid]
        for name in stopped:
            self._echo(f"{name}: stopped")
        return stopped

    def status(self) -> list[ServiceStatus]:
        """Every service of this state dir: healthy, running (not answering) or stopped.

        The functions host is listed when it was chosen or runs.
        """
        result: list[ServiceStatus] = []
        with self._client() as client:
            for name in ALL_SERVICES:
                pid = self._owned_pid(name)
                if name == FUNCTIONS and pid is None and name not in self.services:
                    continue
                state: Literal["healthy", "running", "stopped"] = "stopped"
                if pid is not None:
                    state = "healthy" if self._healthy(client, name) else "running"
                ports = {item.label: item.port for item in self._listeners(name)}
                result.append(ServiceStatus(name, state, pid, ports))
        return result


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code (``status``: 0 when every service is healthy)."""
    parser = argparse.ArgumentParser(
        prog="python -m local.stack", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--state-dir", type=Path, help="default: LOCAL_STATE_DIR or <repo>/.local")
    parser.add_argument(
        "--services",
        help="comma-separated subset to start (default: all; functions only once "
        "function_app.py exists or --app is given): " + ",".join(ALL_SERVICES),
    )
    parser.add_argument(
        "--app",
        help=f"module:attribute the functions host serves (default {DEFAULT_FUNCTIONS_APP})",
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds for up")
    args = parser.parse_args(argv)
    try:
        if args.services is None:
            services = list(default_services(args.app))
            if args.command == "up" and FUNCTIONS not in services:
                print(
                    f"{FUNCTIONS}: not started: there is no {FUNCTION_APP_FILE.name} at the "
                    "repo root yet (pass --app module:attribute to serve another app)"
                )
        else:
            services = [name.strip() for name in args.services.split(",") if name.strip()]
        stack = Stack(
            args.state_dir,
            services=services,
            timeout=args.timeout,
            functions_app=args.app or DEFAULT_FUNCTIONS_APP,
        )
        if args.command == "up":
            began = time.monotonic()
            stack.up()
            print(f"stack up in {time.monotonic() - began:.1f} s; settings in {stack.env_file}")
            print(f"load them with: set -a; . {stack.env_file}; set +a")
            return 0
        if args.command == "down":
            if not stack.down():
                print("nothing was running")
            return 0
        statuses = stack.status()
        for status in statuses:
            print(status.line())
        wanted = [s for s in statuses if s.name in stack.services]
        return 0 if all(s.state == "healthy" for s in wanted) else 3
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
