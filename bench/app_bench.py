"""The function app's costs, measured on the offline stack with the real host and app.

Prints:
  * Speech REST requests per transcribed file, per-file intake and manifest intake (from the
    emulator's request counters; result downloads go to storage, not the Speech quota);
  * /api/recognize p50/p95 through the functions host vs the emulator's endpoint directly;
  * `import function_app` vs importing its dependencies alone (fresh interpreters).

    .venv/bin/python bench/app_bench.py [--files 10] [--requests 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local.stack import ALL_SERVICES, Ports, Stack, StackInfo  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "speech"
CLIP = FIXTURES / "sentence-08.wav"
WAV = "audio/wav; codecs=audio/pcm; samplerate=16000"
SPEECH_QUOTA_OPS = ("Transcriptions_",)


def speech_requests(client: httpx.Client) -> dict[str, int]:
    by_op: dict[str, int] = client.get("/admin/stats").json()["requests"]["byOperation"]
    return {op: n for op, n in by_op.items() if op.startswith(SPEECH_QUOTA_OPS)}


def requests_per_file(
    info: StackInfo, files: int, *, manifest: bool
) -> tuple[float, dict[str, int]]:
    from azure.identity import DefaultAzureCredential
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient(
        info.blob_endpoint,
        credential=DefaultAzureCredential(exclude_interactive_browser_credential=True),
        connection_verify=info.ca_bundle,
    )
    container = "bench-archive" if manifest else "audio-input"
    # audio-input, transcription-requests and transcripts: `make up` provisions them.
    if not service.get_container_client(container).exists():
        service.create_container(container)
    with httpx.Client(base_url=info.speech_url, timeout=30) as emulator:
        emulator.post("/admin/reset")
        folder = f"bench-{uuid.uuid4().hex[:8]}"
        sentences = sorted(FIXTURES.glob("sentence-*.wav"))
        paths = [f"{folder}/{i:03d}-{sentences[i % len(sentences)].name}" for i in range(files)]
        for i, path in enumerate(paths):
            data = sentences[i % len(sentences)].read_bytes()
            service.get_blob_client(container, path).upload_blob(data)
        if manifest:
            body = {"container": container, "prefix": f"{folder}/"}
            service.get_blob_client("transcription-requests", f"{folder}.json").upload_blob(
                json.dumps(body).encode()
            )
        outputs = service.get_container_client("transcripts")
        deadline = time.monotonic() + 600
        while True:
            done = sum(
                1
                for b in outputs.list_blobs(name_starts_with=f"{folder}/")
                if b.name.endswith(".json")
            )
            if done >= files:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"only {done} of {files} transcripts after 600 s")
            time.sleep(1)
        time.sleep(3)  # let the poller finish deleting the jobs
        counts = speech_requests(emulator)
    return sum(counts.values()) / files, counts


def latency(url: str, headers: dict[str, str], params: dict[str, str], count: int) -> list[float]:
    body = CLIP.read_bytes()
    samples = []
    with httpx.Client(timeout=30) as client:
        for _ in range(count):
            started = time.perf_counter()
            response = client.post(url, params=params, headers=headers, content=body)
            samples.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return samples


def import_ms(statement: str, runs: int = 5) -> float:
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                "import time; t = time.perf_counter(); "
                f"{statement}; print((time.perf_counter() - t) * 1000)",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append(float(out.stdout.strip()))
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()

    deps = (
        "import azure.functions, azurefunctions.extensions.bindings.blob, "
        "azurefunctions.extensions.http.fastapi"
    )
    print(f"import dependencies alone   {import_ms(deps):7.1f} ms (median of 5 fresh interpreters)")
    print(f"import function_app         {import_ms('import function_app'):7.1f} ms")

    with tempfile.TemporaryDirectory() as state:
        stack = Stack(
            Path(state),
            ports=Ports.free(),
            services=ALL_SERVICES,
            speech_engine="fixed",
            echo=lambda _m: None,
        )
        info = stack.up()
        try:
            with info.identity_environment():
                for manifest in (False, True):
                    per_file, counts = requests_per_file(info, args.files, manifest=manifest)
                    mode = "manifest" if manifest else "per-file"
                    detail = ", ".join(
                        f"{op.removeprefix('Transcriptions_')} {n}"
                        for op, n in sorted(counts.items())
                    )
                    print(
                        f"Speech requests per file, {mode:<9} {per_file:5.2f}  "
                        f"({args.files} files: {detail})"
                    )
            params = {"language": "en-US"}
            direct = latency(
                f"{info.speech_url}/stt/speech/recognition/conversation/cognitiveservices/v1",
                {"Content-Type": WAV, "Ocp-Apim-Subscription-Key": info.emulator_key},
                params,
                args.requests,
            )
            via_app = latency(
                f"{info.functions_url}/api/recognize",
                {"Content-Type": WAV, "x-functions-key": info.functions_key},
                params,
                args.requests,
            )
            for label, samples in (
                ("emulator directly", direct),
                ("/api/recognize via host", via_app),
            ):
                p50 = statistics.median(samples)
                p95 = statistics.quantiles(samples, n=20)[18]
                print(
                    f"{label:<26} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  "
                    f"({len(samples)} requests, {CLIP.name})"
                )
            overhead = statistics.median(via_app) - statistics.median(direct)
            print(f"overhead of the app (p50)  {overhead:6.1f} ms")
        finally:
            stack.down()


if __name__ == "__main__":
    main()
