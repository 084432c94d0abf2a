"""``Stack``: start, stop and inspect the services of one state dir."""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote

import httpx

from local import azurite
from local.app_settings import (
    LOCAL_SETTINGS_FILE,
    SettingError,
    function_app_settings,
    read_local_settings,
)
from local.certs import CertPaths, ensure_certs, write_atomic
from local.identity import DEFAULT_TOKEN_LIFETIME, TOKEN_PATH, IdentityState, ensure_identity
from local.keys import HostKeys, ensure_keys
from local.stack.errors import StackError
from local.stack.info import ServiceStatus, StackInfo, StackSecrets, format_env
from local.stack.logs import current_run, open_for_run
from local.stack.ports import PORT_ENV_VARS, Ports, port_taken
from local.stack.processes import command_line, group_alive
from local.stack.provision import StorageLayout, provision
from local.stack.services import (
    ALL_SERVICES,
    AZURITE,
    DEFAULT_FUNCTIONS_APP,
    DEFAULT_STATE_DIR,
    DEFAULT_TIMEOUT,
    EMULATOR,
    EMULATOR_APP,
    FUNCTIONS,
    FUNCTIONS_MODULE,
    HOST,
    IDENTITY,
    IDENTITY_APP,
    LOG_TAIL_LINES,
    POLL_SECONDS,
    REPO_ROOT,
    SERVICES,
    STACK_HEADER,
    STOP_GRACE_SECONDS,
    emulator_present,
)


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
        local_settings: Path | None = None,
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
        #: The ``local.settings.json`` whose ``Values`` the app gets (layer 3 of
        #: :mod:`local.app_settings`); default: the one at the repo root, if any.
        self.local_settings = local_settings or REPO_ROOT / LOCAL_SETTINGS_FILE
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
        # Layered as local.app_settings orders them: the stack's values beat the shell's
        # (a shell that loaded another stack's stack.env must not redirect this one).
        env = function_app_settings(
            stack_env,
            environ={**env, **stack_env},
            local_settings=read_local_settings(self.local_settings),
            app_dir=REPO_ROOT,
        )
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
            "LOCAL_WEBHOOK_SECRET": stack_secrets.webhook_secret,
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
        cmdline = command_line(pid)
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
            if port_taken(listener.port):
                raise StackError(
                    f"cannot start {service}: port {listener.port} ({listener.label}) is "
                    f"already in use by {self._holder(listener.port)}, or set "
                    f"{listener.env_var} to a free port"
                )

    def _start(self, service: str, launch: _Launch) -> subprocess.Popen[bytes]:
        for directory in ("logs", "pids", "azurite", "emulator"):
            (self.state_dir / directory).mkdir(parents=True, exist_ok=True)
        with open_for_run(self.log_file(service), service, launch.argv) as log:
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
            lines = current_run(self.log_file(service))
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
            if not group_alive(pgid):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL_SECONDS)

    def _stop(self, service: str, *, kill: bool = False) -> bool:
        """Stop one service's process group; True if it was running."""
        pid = self._owned_pid(service)
        if pid is None:
            self.pid_file(service).unlink(missing_ok=True)
            return False
        # start_new_session made the service a group leader: its pid is the group id, and
        # signalling the group reaches whatever the service started itself.
        signals = (signal.SIGKILL,) if kill else (signal.SIGTERM, signal.SIGKILL)
        for sig in signals:
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

    def stop(self, service: str, *, kill: bool = False) -> bool:
        """Stop one service (``kill``: SIGKILL at once, a crash); ``up`` starts it again.

        For fault tests: an outage of storage, a restart of Speech, a host that dies.
        """
        if service not in ALL_SERVICES:
            raise StackError(f"unknown service {service!r}; known: {list(ALL_SERVICES)}")
        stopped = self._stop(service, kill=kill)
        if stopped:
            self._echo(f"{service}: {'killed' if kill else 'stopped'}")
        return stopped

    def up(self) -> StackInfo:
        """Start every chosen service that is not running yet; wait until all answer.

        Writes ``stack.env`` and returns its contents. On failure it stops what this call
        started and raises :class:`StackError` with the tail of the failing service's log.
        """
        if EMULATOR in self.services and not emulator_present():
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
            cmdline = f"{command_line(pid) or ''} "
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
        except (FileNotFoundError, SettingError) as exc:
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
            if group is backends and AZURITE in self.services:
                self._provision(started)
        env = self.environment()
        write_atomic(self.env_file, format_env(env).encode(), private=True)
        return StackInfo(self.state_dir, env)

    def app_settings(self) -> dict[str, str]:
        """The environment the functions service runs with (see :mod:`local.app_settings`)."""
        return self._functions_launch(dict(os.environ)).env

    def _provision(self, started: Mapping[str, subprocess.Popen[bytes]]) -> None:
        """Create the app's containers and table in Azurite, as ``azd provision`` does."""
        try:
            try:
                layout = StorageLayout.from_settings(self.app_settings())
            except SettingError as exc:
                raise StackError(str(exc)) from None
            created = provision(layout, self.environment())
        except StackError:
            for name in started:
                self._stop(name)
            raise
        if created:
            self._echo(f"{AZURITE}: created {', '.join(created)}")

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
                    time.sleep(POLL_SECONDS)

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
