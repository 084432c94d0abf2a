"""Throughput of the Speech emulator's HTTP layer: requests/s and latency per operation.

Starts the emulator with uvicorn in a subprocess (engine ``fixed``, quota off) on a free
loopback port, creates some transcriptions, then lets N concurrent clients (one httpx
connection pool) cycle through ``Transcriptions_Get``, ``Transcriptions_List`` and
``ShortAudio_Recognize`` until the duration or the request budget runs out. Prints
requests/s and p50/p95 latency per operation, and stops the server.

    .venv/bin/python bench/emulator_throughput.py [--clients 8] [--seconds 10] [--only OP]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
AUDIO = ROOT / "tests" / "fixtures" / "speech" / "sentence-08.wav"
KEY = "bench-key"
VERSION = {"api-version": "2024-11-15"}
JOBS = 50


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(port: int, state_dir: str) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        EMULATOR_KEYS=KEY,
        EMULATOR_ENGINE="fixed",
        EMULATOR_QUOTA_ENABLED="false",
        EMULATOR_STATE_DIR=state_dir,
    )
    argv = [sys.executable, "-m", "uvicorn", "--factory", "local.emulator.app:create_app"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    argv += ["--log-level", "warning"]
    # Its own process group, so stopping it also stops anything it started.
    return subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)


def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the emulator exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the emulator did not become healthy within 30 s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def prepare(client: httpx.AsyncClient) -> str:
    """Create JOBS transcriptions (their audio is unreachable, so they fail fast)."""
    body = {
        "displayName": "bench",
        "locale": "en-US",
        "contentUrls": ["http://127.0.0.1:1/audio.wav"],
        "properties": {"timeToLiveHours": 6},
    }
    ids = []
    for _ in range(JOBS):
        response = await client.post(
            "/speechtotext/transcriptions:submit", params=VERSION, json=body
        )
        response.raise_for_status()
        ids.append(response.json()["self"].partition("?")[0].rsplit("/", 1)[1])
    return ids[0]


async def run(url: str, clients: int, seconds: float, budget: int, only: list[str]) -> None:
    audio = AUDIO.read_bytes()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Ocp-Apim-Subscription-Key": KEY}
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=30
    ) as client:
        job = await prepare(client)
        operations = {
            "Transcriptions_Get": lambda: client.get(
                f"/speechtotext/transcriptions/{job}", params=VERSION
            ),
            "Transcriptions_List": lambda: client.get(
                "/speechtotext/transcriptions", params={**VERSION, "top": 100}
            ),
            "ShortAudio_Recognize": lambda: client.post(
                "/speech/recognition/conversation/cognitiveservices/v1",
                params={"language": "en-US"},
                headers={"Content-Type": "audio/wav; codecs=audio/pcm; samplerate=16000"},
                content=audio,
            ),
        }
        names = [name for name in operations if not only or name in only]
        latencies: dict[str, list[float]] = defaultdict(list)
        errors: dict[str, int] = defaultdict(int)
        sent = 0
        deadline = time.monotonic() + seconds

        async def worker(offset: int) -> None:
            nonlocal sent
            turn = offset
            while time.monotonic() < deadline and sent < budget:
                sent += 1
                name = names[turn % len(names)]
                turn += 1
                started = time.perf_counter()
                response = await operations[name]()
                latencies[name].append(time.perf_counter() - started)
                if response.status_code >= 400:
                    errors[name] += 1

        began = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        elapsed = time.monotonic() - began

    total = sum(len(v) for v in latencies.values())
    print(f"{clients} clients, {elapsed:.1f} s, {total} requests, {total / elapsed:.0f} req/s")
    print(
        f"{'operation':<22} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>7}"
    )
    for name in names:
        samples = sorted(latencies[name])
        if not samples:
            continue
        p50 = statistics.median(samples) * 1000
        p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))] * 1000
        rate = len(samples) / elapsed
        print(
            f"{name:<22} {len(samples):>8} {rate:>8.0f} {p50:>8.1f} {p95:>8.1f} {errors[name]:>7}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run")
    parser.add_argument("--max-requests", type=int, default=50_000, help="request budget")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="run only this operation (Transcriptions_Get, Transcriptions_List, "
        "ShortAudio_Recognize); repeatable",
    )
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="speech-emulator-bench-") as state_dir:
        process = start_server(port, state_dir)
        try:
            wait_healthy(url, process)
            asyncio.run(run(url, args.clients, args.seconds, args.max_requests, args.only))
        finally:
            stop_server(process)


if __name__ == "__main__":
    main()
