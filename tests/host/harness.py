"""Run the local functions host as a real process and read what the sample app recorded."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

from local.stack import REPO_ROOT

T = TypeVar("T")
SAMPLE_APP = "tests.host.sample_app:app"
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], T | None], *, timeout: float = 10.0, what: str = "") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")
        time.sleep(0.05)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every JSON line of ``path`` (none if it does not exist yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set size (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def reset_peak_rss(pid: int) -> None:
    """Start VmHWM again from the current RSS (Linux ``clear_refs`` 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


class HostProcess:
    """``python -m local.host`` on a free port, its output in ``log``."""

    def __init__(
        self,
        *,
        app: str,
        app_dir: Path,
        state_dir: Path,
        env: Mapping[str, str],
        log: Path,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.app_dir = app_dir
        self.state_dir = state_dir
        self.env = dict(env)
        self.log = log
        self.extra_args = list(extra_args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def keys(self) -> dict[str, str]:
        return json.loads((self.state_dir / "host-keys.json").read_text())

    def start(self) -> HostProcess:
        argv = [sys.executable, "-m", "local.host", "--app", self.app]
        argv += ["--app-dir", str(self.app_dir), "--state-dir", str(self.state_dir)]
        argv += ["--port", str(self.port), *self.extra_args]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv
                argv,
                cwd=REPO_ROOT,
                env={**self.env, "PYTHONUNBUFFERED": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the host exited ({self.process.returncode}):\n{self.output()}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the host did not answer:\n{self.output()}")
            time.sleep(0.1)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 10 s; returns the exit code."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class Forwarder:
    """A TCP port that starts forwarding to ``target`` only when asked: an outage that ends.

    Until :meth:`open`, nothing listens on :attr:`port` (connections are refused); then each
    connection is piped to ``target`` byte for byte (TLS passes through untouched).
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._server: socket.socket | None = None

    def open(self) -> None:
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._server,), daemon=True).start()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.target) as upstream:
            back = threading.Thread(target=self._pipe, args=(upstream, client), daemon=True)
            back.start()
            self._pipe(client, upstream)
            back.join()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the other side went away: its own pipe ends too


def host_environment(stack_env: Mapping[str, str], **extra: str) -> dict[str, str]:
    """What the stack gives the host: the stack's settings and the app settings over them."""
    from local.app_settings import function_app_settings

    return {
        **os.environ,
        **stack_env,
        **function_app_settings(stack_env),
        "LOCAL_BLOB_POLL_SECONDS": "0.2",
        "LOCAL_BLOB_RETRY_SECONDS": "0.05",
        **extra,
    }
