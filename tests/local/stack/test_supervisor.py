"""Stack orchestration: certificates, ports, stack.env, idempotent up/down, the CLI."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import certifi
import httpx
import pytest
import requests
from azure.storage.blob import BlobServiceClient
from cryptography import x509

from local.app_settings import read_env_file
from local.certs import RENEW_BEFORE, ensure_certs
from local.identity import MAX_TOKEN_LIFETIME
from local.stack import (
    AZURITE,
    IDENTITY,
    PORT_ENV_VARS,
    REPO_ROOT,
    Ports,
    Stack,
    StackError,
    StackInfo,
    supervisor,
)
from shared.speech.config import SpeechSettings
from tests.conftest import StackSession

REQUIRED_KEYS = {
    "LOCAL_BLOB_ENDPOINT",
    "LOCAL_QUEUE_ENDPOINT",
    "LOCAL_TABLE_ENDPOINT",
    "LOCAL_CA_BUNDLE",
    "SPEECH_EMULATOR_URL",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "SPEECH_ENDPOINT",
    "SPEECH_AUTH_MODE",
    "SPEECH_RESOURCE_ID",
    "SPEECH_KEY_LOCAL",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "LOCAL_STORAGE_ACCOUNT",
    "LOCAL_STORAGE_KEY",
    "LOCAL_STORAGE_CONNECTION_STRING",
}


def quiet(_line: str) -> None:
    """Swallow the stack's progress lines."""


def pids(state_dir: Path) -> dict[str, str]:
    return {p.stem: p.read_text().strip() for p in (state_dir / "pids").glob("*.pid")}


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/cmdline").read_bytes() != b""


@pytest.fixture
def private_stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack of its own (identity only: fast), always stopped afterwards."""
    stack = Stack(tmp_path / "state", ports=Ports.free(), services={IDENTITY}, echo=quiet)
    try:
        yield stack
    finally:
        stack.down()


# Certificates -----------------------------------------------------------------------------


def test_certificates_are_made_once_and_reused(tmp_path: Path) -> None:
    paths = ensure_certs(tmp_path)
    files = [paths.ca, paths.ca_key, paths.server_chain, paths.server_key, paths.bundle]
    before = {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files}
    assert ensure_certs(tmp_path) == paths
    assert {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files} == before
    assert paths.ca_key.stat().st_mode & 0o777 == 0o600
    assert paths.server_key.stat().st_mode & 0o777 == 0o600

    leaf = x509.load_pem_x509_certificate(paths.server_chain.read_bytes())
    ca = x509.load_pem_x509_certificate(paths.ca.read_bytes())
    leaf.verify_directly_issued_by(ca)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)

    bundle = paths.bundle.read_bytes()
    assert bundle.startswith(Path(certifi.where()).read_bytes().rstrip(b"\n"))
    assert bundle.endswith(paths.ca.read_bytes())


def test_server_certificate_is_reissued_near_expiry_and_the_ca_kept(tmp_path: Path) -> None:
    paths = ensure_certs(tmp_path)
    ca_pem = paths.ca.read_bytes()
    old = x509.load_pem_x509_certificate(paths.server_chain.read_bytes())
    later = old.not_valid_after_utc - RENEW_BEFORE + dt.timedelta(hours=1)
    ensure_certs(tmp_path, now=later)
    new = x509.load_pem_x509_certificate(paths.server_chain.read_bytes())
    assert new.not_valid_after_utc > old.not_valid_after_utc
    assert paths.ca.read_bytes() == ca_pem


def test_missing_files_are_regenerated(tmp_path: Path) -> None:
    paths = ensure_certs(tmp_path)
    ca_pem = paths.ca.read_bytes()
    paths.server_key.unlink()
    ensure_certs(tmp_path)
    assert paths.server_key.is_file()
    assert paths.ca.read_bytes() == ca_pem
    paths.ca_key.unlink()
    ensure_certs(tmp_path)
    assert paths.ca.read_bytes() != ca_pem
    leaf = x509.load_pem_x509_certificate(paths.server_chain.read_bytes())
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(paths.ca.read_bytes()))


# Ports ------------------------------------------------------------------------------------


def test_ports_default_and_follow_their_variables() -> None:
    assert Ports.from_env({}) == Ports(10000, 10001, 10002, 7081, 7080)
    assert Ports.from_env({"LOCAL_IDENTITY_PORT": "9001"}).identity == 9001
    with pytest.raises(StackError, match="LOCAL_BLOB_PORT"):
        Ports.from_env({"LOCAL_BLOB_PORT": "blob"})
    with pytest.raises(StackError, match="LOCAL_SPEECH_PORT=70000"):
        Ports.from_env({"LOCAL_SPEECH_PORT": "70000"})
    with pytest.raises(StackError, match="share a port"):
        Ports.from_env({"LOCAL_SPEECH_PORT": "7081"})


def test_a_taken_port_fails_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        ports = Ports(**{**Ports.free().as_dict(), "identity": port})
        stack = Stack(tmp_path, ports=ports, services={IDENTITY}, echo=quiet)
        with pytest.raises(StackError) as caught:
            stack.up()
    message = str(caught.value)
    assert f"port {port}" in message
    assert PORT_ENV_VARS["identity"] in message
    assert "another program" in message
    assert not pids(tmp_path)


def test_a_port_held_by_another_stack_names_that_stack(
    tmp_path: Path, local_stack_no_emulator: StackInfo, offline_stack_session: StackSession
) -> None:
    ports = Ports(**{**Ports.free().as_dict(), "identity": offline_stack_session.ports.identity})
    with pytest.raises(StackError) as caught:
        Stack(tmp_path, ports=ports, services={IDENTITY}, echo=quiet).up()
    message = str(caught.value)
    assert "another offline stack" in message
    assert str(local_stack_no_emulator.state_dir) in message
    assert "LOCAL_IDENTITY_PORT" in message


@pytest.mark.stack
def test_a_port_held_by_our_own_untracked_service_says_so(private_stack: Stack) -> None:
    private_stack.up()
    pid_file = private_stack.pid_file(IDENTITY)
    kept = pid_file.read_text()
    pid_file.unlink()
    try:
        with pytest.raises(StackError, match="this same stack"):
            private_stack.up()
    finally:
        pid_file.write_text(kept)


# stack.env ---------------------------------------------------------------------------------


def test_stack_env_has_every_setting_and_they_work(local_stack_no_emulator: StackInfo) -> None:
    info = local_stack_no_emulator
    env_file = info.state_dir / "stack.env"
    env = read_env_file(env_file)
    assert env == info.env
    assert set(env) >= REQUIRED_KEYS
    assert env_file.stat().st_mode & 0o777 == 0o600

    ca = ssl.create_default_context(cafile=env["LOCAL_CA_BUNDLE"])
    for name in ("LOCAL_BLOB_ENDPOINT", "LOCAL_QUEUE_ENDPOINT"):
        response = httpx.get(f"{env[name]}?comp=list", verify=ca)
        assert response.status_code == 403  # TLS verified; Azurite wants credentials
    assert httpx.get(f"{env['LOCAL_TABLE_ENDPOINT']}/Tables", verify=ca).status_code == 403
    assert env["LOCAL_BLOB_ENDPOINT"].startswith("https://127.0.0.1:")

    bundle = env["REQUESTS_CA_BUNDLE"]
    assert env["SSL_CERT_FILE"] == bundle
    blob = f"{env['LOCAL_BLOB_ENDPOINT']}?comp=list"
    assert requests.get(blob, verify=bundle, timeout=10).status_code == 403
    assert httpx.get(blob, verify=ssl.create_default_context(cafile=bundle)).status_code == 403

    token = httpx.get(
        env["IDENTITY_ENDPOINT"],
        params={"api-version": "2019-08-01", "resource": "https://storage.azure.com"},
        headers={"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]},
    )
    assert token.status_code == 200

    shared_key = BlobServiceClient.from_connection_string(
        env["LOCAL_STORAGE_CONNECTION_STRING"], connection_verify=env["LOCAL_CA_BUNDLE"]
    )
    assert shared_key.account_name == env["LOCAL_STORAGE_ACCOUNT"] == "devstoreaccount1"
    shared_key.get_service_properties()

    assert env["SPEECH_ENDPOINT"] == env["SPEECH_EMULATOR_URL"]
    assert env["SPEECH_EMULATOR_URL"] == f"http://127.0.0.1:{info.speech_url.rsplit(':', 1)[1]}"
    assert re.fullmatch(r"[0-9a-f]{32}", env["SPEECH_KEY_LOCAL"])
    assert re.fullmatch(
        r"/subscriptions/[0-9a-f-]{36}/resourceGroups/local/providers/"
        r"Microsoft\.CognitiveServices/accounts/speech-emulator",
        env["SPEECH_RESOURCE_ID"],
    )


def test_stack_env_is_what_a_shell_sees(local_stack_no_emulator: StackInfo) -> None:
    env_file = local_stack_no_emulator.state_dir / "stack.env"
    script = f'set -a; . "{env_file}"; set +a; env -0'
    shell = subprocess.run(  # noqa: S603 - fixed argv
        ["bash", "-c", script],  # noqa: S607 - the developer's shell
        capture_output=True,
        check=True,
        env={"PATH": os.environ["PATH"]},
    )
    seen = dict(item.split("=", 1) for item in shell.stdout.decode().split("\0") if "=" in item)
    for key, value in local_stack_no_emulator.env.items():
        assert seen[key] == value, key


def test_app_settings_in_stack_env_satisfy_the_speech_client(
    local_stack_no_emulator: StackInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in local_stack_no_emulator.env.items():
        if key.startswith("SPEECH_"):
            monkeypatch.setenv(key, value)
    settings = SpeechSettings()
    assert settings.resource_id == local_stack_no_emulator.resource_id
    assert settings.endpoints()


# up / down / status ----------------------------------------------------------------------


def test_up_again_starts_nothing_new(
    local_stack_no_emulator: StackInfo, offline_stack_session: StackSession
) -> None:
    state_dir = local_stack_no_emulator.state_dir
    before = pids(state_dir)
    lines: list[str] = []
    again = Stack(
        state_dir,
        ports=offline_stack_session.ports,
        services={AZURITE, IDENTITY},
        echo=lines.append,
    )
    info = again.up()
    assert pids(state_dir) == before
    assert sorted(lines) == sorted(
        f"{name}: already running (pid {before[name]})" for name in (AZURITE, IDENTITY)
    )
    assert info.env == local_stack_no_emulator.env
    states = {s.name: s.state for s in again.status()}
    assert states[AZURITE] == states[IDENTITY] == "healthy"


@pytest.mark.stack
def test_lifecycle_up_status_down_twice(tmp_path: Path) -> None:
    ports = Ports.free()
    stack = Stack(tmp_path, ports=ports, services={AZURITE, IDENTITY}, echo=quiet)
    try:
        stack.up()
        started = {name: int(pid) for name, pid in pids(tmp_path).items()}
        assert set(started) == {AZURITE, IDENTITY}
        status = {s.name: s for s in stack.status()}
        assert status[AZURITE].state == "healthy"
        assert status[AZURITE].ports == {
            "blob": ports.blob,
            "queue": ports.queue,
            "table": ports.table,
        }
        assert status[IDENTITY].pid == started[IDENTITY]
        assert status["emulator"].state == "stopped"
        assert f"pid {started[IDENTITY]}" in status[IDENTITY].line()

        moved = Stack(tmp_path, ports=Ports.free(), services={IDENTITY}, echo=quiet)
        with pytest.raises(StackError, match="other ports"):
            moved.up()
    finally:
        stopped = stack.down()
    assert sorted(stopped) == [AZURITE, IDENTITY]
    assert not any(alive(pid) for pid in started.values())
    assert not pids(tmp_path)
    assert stack.down() == []
    assert {s.state for s in stack.status()} == {"stopped"}


def test_down_never_signals_a_process_it_did_not_start(tmp_path: Path) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "pids").mkdir()
        (tmp_path / "pids" / "identity.pid").write_text(f"{stranger.pid}\n")
        assert Stack(tmp_path, ports=Ports.free(), echo=quiet).down() == []
        assert stranger.poll() is None
        assert not (tmp_path / "pids" / "identity.pid").exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_a_service_that_ignores_sigterm_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervisor, "STOP_GRACE_SECONDS", 0.3)
    stack = Stack(tmp_path, ports=Ports.free(), echo=quiet)
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    # Carries the command-line markers of this stack's identity service, as uvicorn would.
    markers = list(Stack._markers(stack, IDENTITY))
    with subprocess.Popen(  # noqa: S603 - fixed argv
        [sys.executable, "-c", stubborn, *markers],
        stdout=subprocess.PIPE,
        start_new_session=True,
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline() == b"ready\n"
            (tmp_path / "pids").mkdir()
            stack.pid_file(IDENTITY).write_text(f"{process.pid}\n")
            assert stack.down() == [IDENTITY]
            assert not alive(process.pid)
        finally:
            process.kill()


@pytest.mark.stack
def test_a_service_that_does_not_answer_in_time_fails_up(tmp_path: Path) -> None:
    stack = Stack(tmp_path, ports=Ports.free(), services={IDENTITY}, timeout=0.05, echo=quiet)
    with pytest.raises(StackError, match=r"identity did not answer within 0\.05 s"):
        stack.up()
    assert not pids(tmp_path)
    assert {s.state for s in stack.status()} == {"stopped"}


@pytest.mark.stack
def test_a_service_that_dies_fails_up_with_its_log(tmp_path: Path) -> None:
    stack = Stack(
        tmp_path,
        ports=Ports.free(),
        services={IDENTITY},
        token_lifetime=MAX_TOKEN_LIFETIME + 1,
        echo=quiet,
    )
    with pytest.raises(StackError) as caught:
        stack.up()
    message = str(caught.value)
    assert "identity exited with code" in message
    assert "token lifetime must be" in message  # from the log tail
    assert not pids(tmp_path)


def test_the_emulator_is_required_only_when_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervisor, "emulator_present", lambda: False)
    with pytest.raises(StackError, match="--services azurite,identity"):
        Stack(tmp_path, ports=Ports.free(), echo=quiet).up()


@pytest.mark.stack
def test_cli_up_status_down(tmp_path: Path) -> None:
    ports = Ports.free()
    env = dict(os.environ, **{PORT_ENV_VARS[k]: str(v) for k, v in ports.as_dict().items()})

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - fixed argv
            [sys.executable, "-m", "local.stack", *args, "--state-dir", str(tmp_path)],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    try:
        up = cli("up", "--services", "identity")
        assert up.returncode == 0, up.stderr
        assert "identity: ready" in up.stdout
        assert "already running" in cli("up", "--services", "identity").stdout
        status = cli("status", "--services", "identity")
        assert status.returncode == 0
        assert re.search(
            rf"identity\s+healthy\s+pid \d+\s+identity :{ports.identity}", status.stdout
        )
        assert cli("status").returncode == 3  # azurite and emulator are not running
    finally:
        down = cli("down")
    assert down.returncode == 0
    assert "identity: stopped" in down.stdout
    assert "nothing was running" in cli("down").stdout


def test_emulator_trusts_this_stacks_key_and_tokens(
    local_stack: StackInfo, offline_stack_session: StackSession
) -> None:
    """The settings the stack hands the emulator (keys, JWT key, issuer) fit together."""
    url = f"{local_stack.speech_url}/speechtotext/models/base"
    params = {"api-version": "2024-11-15", "top": "1"}

    def status(headers: dict[str, str]) -> int:
        return httpx.get(url, params=params, headers=headers).status_code

    assert status({"Ocp-Apim-Subscription-Key": local_stack.emulator_key}) == 200
    assert status({"Ocp-Apim-Subscription-Key": "0" * 32}) == 401
    credential = local_stack.credential()
    speech = credential.get_token("https://cognitiveservices.azure.com/.default").token
    assert status({"Authorization": f"Bearer {speech}"}) == 200
    storage = credential.get_token("https://storage.azure.com/.default").token
    assert status({"Authorization": f"Bearer {storage}"}) == 401
    stack = Stack(local_stack.state_dir, ports=offline_stack_session.ports, echo=quiet)
    assert {s.state for s in stack.status()} == {"healthy"}
