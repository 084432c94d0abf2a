"""``make demo``: the whole product, offline, in about a minute.

Starts the offline stack with the function app, uploads a spoken sample to the input
container as a user would, waits for the transcript the functions write, prints it and where
its files are, sends a short clip through the fast lane (blob metadata ``mode=fast``),
recognises a clip through ``POST /api/recognize``, stops what it
started, and ends with the status page's URL (``/api/ui?code=<key>``). Exits non-zero on
any failure.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from local.stack import ALL_SERVICES, FUNCTIONS, Stack, StackError, StackInfo

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "tests" / "fixtures" / "speech"
LONG_SAMPLE = SAMPLES / "long-70s.ogg"
SHORT_CLIP = SAMPLES / "sentence-01.wav"
INPUT, OUTPUT = "audio-input", "transcripts"


class DemoFailed(Exception):
    """A step of the demo did not produce what it should."""


def _blob_service(info: StackInfo) -> BlobServiceClient:
    # The demo authenticates exactly like the app: managed identity, no storage key.
    from azure.identity import DefaultAzureCredential
    from azure.storage.blob import BlobServiceClient

    credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    return BlobServiceClient(
        info.blob_endpoint, credential=credential, connection_verify=info.ca_bundle
    )


def transcribe_a_file(info: StackInfo, timeout: float) -> None:
    """Upload the sample and wait for the function app's outputs."""
    # The containers exist: `make up` provisions them as `azd provision` does in Azure.
    service = _blob_service(info)
    path = f"demo/{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}/{LONG_SAMPLE.name}"
    print(f"1. uploading {LONG_SAMPLE.name} (70 s of speech) to {INPUT}/{path}")
    service.get_blob_client(INPUT, path).upload_blob(LONG_SAMPLE.read_bytes())

    print("2. waiting for the functions: intake -> Speech batch job -> poller -> outputs ...")
    marker = service.get_blob_client(OUTPUT, f"{path}.json")
    report = service.get_blob_client(OUTPUT, f"{path}.error.json")
    started = time.monotonic()
    while not marker.exists():
        if report.exists():
            raise DemoFailed(report.download_blob().readall().decode())
        if time.monotonic() - started > timeout:
            raise DemoFailed(f"no transcript after {timeout:.0f} s; see .local/logs/functions.log")
        time.sleep(1)
    print(f"   done in {time.monotonic() - started:.1f} s\n")
    text = service.get_blob_client(OUTPUT, f"{path}.txt").download_blob().readall().decode()
    print("3. transcript:\n")
    print("   " + text.strip().replace("\n", "\n   ") + "\n")
    print(f"   files in the '{OUTPUT}' container:")
    for suffix in (".json", ".txt", ".srt", ".vtt"):
        blob = service.get_blob_client(OUTPUT, f"{path}{suffix}")
        size = blob.get_blob_properties().size
        print(f"   {blob.url}  ({size} bytes)")
    srt = service.get_blob_client(OUTPUT, f"{path}.srt").download_blob().readall().decode()
    print("\n   first subtitles (.srt):\n   " + "\n   ".join(srt.splitlines()[:8]) + "\n")


def fast_lane(info: StackInfo, timeout: float) -> None:
    """A short file with ``mode=fast``: fast transcription in the intake, no batch job."""
    service = _blob_service(info)
    path = f"demo/{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}/{SHORT_CLIP.name}"
    print(f"4. uploading {SHORT_CLIP.name} with metadata mode=fast (the fast lane) ...")
    started = time.monotonic()
    service.get_blob_client(INPUT, path).upload_blob(
        SHORT_CLIP.read_bytes(), metadata={"mode": "fast"}
    )
    marker = service.get_blob_client(OUTPUT, f"{path}.json")
    while not marker.exists():
        if time.monotonic() - started > timeout:
            raise DemoFailed(f"no fast transcript after {timeout:.0f} s")
        time.sleep(0.2)
    text = service.get_blob_client(OUTPUT, f"{path}.txt").download_blob().readall().decode()
    print(f"   transcribed in {time.monotonic() - started:.1f} s: {text.strip()!r}\n")


def recognize_a_clip(info: StackInfo) -> None:
    """Short-audio recognition through the HTTP function, with its function key."""
    print(f"5. POST /api/recognize?language=en-US with {SHORT_CLIP.name} ...")
    response = httpx.post(
        f"{info.functions_url}/api/recognize",
        params={"language": "en-US"},
        headers={
            "x-functions-key": info.functions_key,
            "Content-Type": "audio/wav; codecs=audio/pcm; samplerate=16000",
        },
        content=SHORT_CLIP.read_bytes(),
        timeout=60,
    )
    if response.status_code != 200:
        raise DemoFailed(f"/api/recognize answered {response.status_code}: {response.text}")
    body = response.json()
    print(f"   {body['status']}: {body['text']!r}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for outputs")
    args = parser.parse_args(argv)

    stack = Stack(services=ALL_SERVICES)
    already_running = {s.name for s in stack.status() if s.state == "healthy"}
    kept = args.keep or already_running >= set(ALL_SERVICES)
    try:
        info = stack.up()
        if FUNCTIONS not in stack.services or not info.functions_url:
            raise DemoFailed("the functions host did not start")
        # DefaultAzureCredential finds the stack's managed-identity endpoint through these.
        with info.identity_environment():
            transcribe_a_file(info, args.timeout)
            fast_lane(info, args.timeout)
            recognize_a_clip(info)
    except (DemoFailed, StackError) as exc:
        print(f"\ndemo FAILED: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # any other failure: say which, without a wall of traceback
        print(f"\ndemo FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        if kept:
            print("the stack keeps running (make down stops it)")
        else:
            stack.down()
    print("demo finished: every step worked")
    print_status_page(info, running=kept)
    return 0


def print_status_page(info: StackInfo, *, running: bool) -> None:
    """The status page's URL with the function key, the way a person opens it."""
    from urllib.parse import quote

    # The host keeps its keys and port across restarts (.local/functions/), so the URL also
    # works after a later `make up`.
    url = f"{info.functions_url}/api/ui?code={quote(info.functions_key, safe='')}"
    when = "" if running else " (after `make up`, or run `make demo DEMO_ARGS=--keep`)"
    print(f"Status page{when}: {url}")


if __name__ == "__main__":
    sys.exit(main())
