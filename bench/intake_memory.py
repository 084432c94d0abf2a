"""Memory growth of the audio intake on a 1 GiB blob: it must not read the audio.

Starts a private offline stack (Azurite, identity endpoint, Speech emulator; temp dir, free
ports), uploads a 1 GiB WAV (a valid header, then silence) block by block from one reused
buffer, warms the intake up on a small file (imports, connections, token, delegation key),
then runs ``handle_audio_blob`` on the big blob and prints the process's resident memory
before and after and its peak during the call (``VmHWM``, reset just before through
``/proc/self/clear_refs``). The job is submitted for real; the emulator is told to hold
jobs unstarted so that it does not download the gigabyte either. Stops the stack.

    .venv/bin/python bench/intake_memory.py [--size-mib 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import struct
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local.stack import SERVICES, Ports, Stack, StackInfo  # noqa: E402
from shared.app_context import AppContext, build_context  # noqa: E402
from shared.pipeline.intake import handle_audio_blob  # noqa: E402
from shared.settings import AppSettings  # noqa: E402
from shared.speech import SpeechSettings  # noqa: E402

BLOCK = 8 * 1024 * 1024
SMALL = ROOT / "tests" / "fixtures" / "speech" / "sentence-01.wav"


def wav_header(data_bytes: int) -> bytes:
    """A 16 kHz mono 16-bit PCM WAV header for ``data_bytes`` of samples."""
    rate, channels, bits = 16000, 1, 16
    block_align = channels * bits // 8
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block_align, block_align, bits)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def memory_kib() -> dict[str, int]:
    """VmRSS and VmHWM (peak) of this process, in KiB."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def upload_big(ctx: AppContext, container: str, name: str, size: int) -> None:
    """``size`` bytes of WAV, staged in blocks from one reused buffer (never held whole)."""
    from azure.storage.blob import BlobBlock

    header = wav_header(size - 44)
    zeros = bytes(BLOCK)
    client = ctx.blob_service.get_blob_client(container, name)
    blocks, offset, index = [], 0, 0
    while offset < size:
        length = min(BLOCK, size - offset)
        if offset == 0:
            chunk = header + zeros[: length - len(header)]
        else:
            chunk = zeros if length == BLOCK else zeros[:length]
        block_id = f"{index:08d}"
        client.stage_block(block_id, chunk, length=length)
        blocks.append(BlobBlock(block_id=block_id))
        offset += length
        index += 1
    client.commit_block_list(blocks)


async def measure(info: StackInfo, size: int) -> None:
    tag = uuid.uuid4().hex[:8]
    settings = AppSettings(
        **{
            "AudioStorage__blobServiceUri": info.blob_endpoint,
            "AudioStorage__tableServiceUri": info.table_endpoint,
        },
        input_container=f"bench-in-{tag}",
        output_container=f"bench-out-{tag}",
        ledger_table=f"bench{tag}",
    )
    speech = SpeechSettings(endpoint=info.speech_url, resource_id=info.resource_id)
    ctx = await asyncio.to_thread(build_context, settings, speech_settings=speech)
    admin = httpx.AsyncClient(base_url=info.speech_url, timeout=30)
    try:
        await admin.post("/admin/reset", params={"jobs": "true"})
        await admin.put("/admin/faults", json={"job_start_delay_seconds": 3600})
        container = settings.input_container
        await ctx.storage.ensure_container(container)

        began = time.monotonic()
        await asyncio.to_thread(upload_big, ctx, container, "big.wav", size)
        print(f"uploaded {size / 1024**2:.0f} MiB in {time.monotonic() - began:.1f} s")

        small = ctx.blob_service.get_blob_client(container, "warm-up.wav")
        await asyncio.to_thread(small.upload_blob, SMALL.read_bytes())
        warm = await handle_audio_blob(ctx, container, "warm-up.wav")
        print(f"warm-up intake: {warm.status.value}")

        lifetime_peak = memory_kib()["VmHWM"]
        can_reset = reset_peak()
        before = memory_kib()
        began = time.monotonic()
        outcome = await handle_audio_blob(ctx, container, "big.wav")
        elapsed = time.monotonic() - began
        after = memory_kib()
        blob = await ctx.storage.get_properties(container, "big.wav")
        assert blob is not None

        print(f"intake of {blob.size / 1024**3:.2f} GiB: {outcome.status.value} in {elapsed:.2f} s")
        print(f"  process peak so far (upload, warm-up) {lifetime_peak / 1024:.1f} MiB")
        print(f"  RSS before  {before['VmRSS'] / 1024:8.1f} MiB")
        print(f"  RSS after   {after['VmRSS'] / 1024:8.1f} MiB")
        peak_label = "peak during the call" if can_reset else "peak (process lifetime)"
        print(f"  {peak_label:<22}{after['VmHWM'] / 1024:8.1f} MiB")
        growth = (after["VmHWM"] - before["VmRSS"]) / 1024
        share = growth / (blob.size / 1024**2)
        print(f"  peak growth {growth:8.1f} MiB  ({share:.3%} of the blob)")
        if outcome.status.value != "Submitted":
            raise SystemExit(f"the intake did not submit: {outcome}")
    finally:
        await admin.post("/admin/reset", params={"jobs": "true"})
        await admin.aclose()
        for name in (settings.input_container, settings.output_container):
            with contextlib.suppress(Exception):
                await asyncio.to_thread(ctx.blob_service.delete_container, name)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(ctx.table_service.delete_table, settings.ledger_table)
        await ctx.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="blob size (default 1 GiB)")
    args = parser.parse_args()
    size = args.size_mib * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="intake-memory-") as state:
        stack = Stack(Path(state), ports=Ports.free(), services=SERVICES, speech_engine="fixed")
        try:
            info = stack.up()
            previous = os.environ.get("REQUESTS_CA_BUNDLE")
            os.environ["REQUESTS_CA_BUNDLE"] = info.env["REQUESTS_CA_BUNDLE"]
            try:
                with info.identity_environment():
                    asyncio.run(measure(info, size))
            finally:
                if previous is None:
                    os.environ.pop("REQUESTS_CA_BUNDLE", None)
                else:
                    os.environ["REQUESTS_CA_BUNDLE"] = previous
        finally:
            stack.down()


if __name__ == "__main__":
    main()
