"""Latency of ``POST /api/recognize`` against calling the short-audio endpoint directly.

Starts two uvicorn servers in subprocesses on free loopback ports: the Speech emulator
(engine ``fixed``, so recognition itself costs nothing and what is measured is HTTP and the
handler), and a Starlette app that mounts ``shared.http.recognize`` in front of it with one
shared ``ShortAudioClient`` (one connection pool, as the function app holds it). Then it sends
the same clip, one request at a time, alternately to the handler and straight to the
emulator, and prints p50/p95/mean latency of both and the handler's overhead. The request
count is bounded (``--requests`` each, after ``--warmup`` untimed ones).

    .venv/bin/python bench/recognize_latency.py [--requests 300] [--warmup 20] [--clip NAME]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "speech"
KEY = "bench-recognize-key-0123456789"
WAV = "audio/wav; codecs=audio/pcm; samplerate=16000"
SHORT_AUDIO = "/speech/recognition/conversation/cognitiveservices/v1"


def front_app() -> Any:
    """The handler in a Starlette app (``uvicorn --factory bench.recognize_latency:front_app``).

    Reads the emulator's URL from ``BENCH_SPEECH_URL``.
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from shared.http import recognize
    from shared.settings import AppSettings
    from shared.speech.auth import KeyAuth
    from shared.speech.config import SpeechSettings
    from shared.speech.endpoints import SpeechEndpoints
    from shared.speech.short_audio import ShortAudioClient

    speech_url = os.environ["BENCH_SPEECH_URL"]
    settings = AppSettings(AudioStorage="UseDevelopmentStorage=true")
    settings.speech = SpeechSettings(endpoint=speech_url, auth_mode="key", key=KEY)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        endpoints = SpeechEndpoints.from_endpoint(speech_url)
        async with ShortAudioClient(endpoints, KeyAuth(KEY)) as client:
            app.state.client = client
            yield

    async def route(request: Request) -> Response:
        return await recognize(request, request.app.state.client, settings)

    return Starlette(routes=[Route("/api/recognize", route, methods=["POST"])], lifespan=lifespan)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(app: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "uvicorn", "--factory", app, "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
    # Its own process group, so stopping it also stops anything it started.
    return subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **env}, start_new_session=True)


def wait_until(check: Any, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if check():
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer within 30 s")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def measure(requests: int, warmup: int, clip: bytes, speech_url: str, front_url: str) -> None:
    direct = httpx.Client(
        base_url=speech_url,
        headers={"Ocp-Apim-Subscription-Key": KEY, "Content-Type": WAV},
        params={"language": "en-US"},
        timeout=30,
    )
    front = httpx.Client(
        base_url=front_url,
        headers={"Content-Type": "audio/wav"},
        params={"language": "en-US"},
        timeout=30,
    )
    timings: dict[str, list[float]] = {"direct": [], "handler": []}
    calls = {
        "direct": lambda: direct.post(SHORT_AUDIO, content=clip),
        "handler": lambda: front.post("/api/recognize", content=clip),
    }
    with direct, front:
        # Alternating the two spreads any drift (CPU frequency, GC) over both equally.
        for turn in range(warmup + requests):
            for name, call in calls.items():
                started = time.perf_counter()
                response = call()
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise RuntimeError(f"{name}: HTTP {response.status_code}: {response.text}")
                if turn >= warmup:
                    timings[name].append(elapsed * 1000)
    print(f"{requests} sequential requests each after {warmup} warm-up, clip {len(clip)} bytes")
    print(f"{'path':<32} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8}")
    rows = {
        "direct (emulator short audio)": timings["direct"],
        "/api/recognize (handler)": timings["handler"],
    }
    for label, samples in rows.items():
        print(
            f"{label:<32} {statistics.median(samples):>8.2f} {percentile(samples, 0.95):>8.2f} "
            f"{statistics.fmean(samples):>8.2f}"
        )
    p50 = statistics.median(timings["handler"]) - statistics.median(timings["direct"])
    p95 = percentile(timings["handler"], 0.95) - percentile(timings["direct"], 0.95)
    print(f"{'overhead (handler - direct)':<32} {p50:>8.2f} {p95:>8.2f}")


def main() -> None:
    # Run as a script (bench/ on sys.path); the module itself is also uvicorn's factory.
    from emulator_throughput import stop_server as stop

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="timed requests per path")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per path")
    parser.add_argument("--clip", default="sentence-08.wav", help="a WAV in tests/fixtures/speech")
    args = parser.parse_args()
    clip = (FIXTURES / args.clip).read_bytes()
    speech_port, front_port = free_port(), free_port()
    speech_url = f"http://127.0.0.1:{speech_port}"
    front_url = f"http://127.0.0.1:{front_port}"
    with tempfile.TemporaryDirectory(prefix="recognize-bench-") as state_dir:
        emulator = start(
            "local.emulator.app:create_app",
            speech_port,
            {
                "EMULATOR_KEYS": KEY,
                "EMULATOR_ENGINE": "fixed",
                "EMULATOR_QUOTA_ENABLED": "false",
                "EMULATOR_STATE_DIR": state_dir,
            },
        )
        try:
            wait_until(
                lambda: httpx.get(f"{speech_url}/health", timeout=1).status_code == 200,
                emulator,
                "the emulator",
            )
            handler = start(
                "bench.recognize_latency:front_app", front_port, {"BENCH_SPEECH_URL": speech_url}
            )
            try:
                wait_until(
                    lambda: (
                        httpx.post(
                            f"{front_url}/api/recognize",
                            params={"language": "en-US"},
                            headers={"Content-Type": "audio/wav"},
                            content=clip,
                            timeout=5,
                        ).status_code
                        == 200
                    ),
                    handler,
                    "the handler app",
                )
                measure(args.requests, args.warmup, clip, speech_url, front_url)
            finally:
                stop(handler)
        finally:
            stop(emulator)


if __name__ == "__main__":
    main()
