"""The pipeline against the offline stack: real Azurite (HTTPS, managed identity), real emulator.

Every test gets its own containers and ledger table (``make_pipeline``), so tests never see
each other's rows or blobs; the emulator's stats and faults are reset before and after each
test. The context is built exactly as in Azure — ``AudioStorage__blobServiceUri`` /
``__tableServiceUri`` with ``DefaultAzureCredential`` — and trusts Azurite's CA only
through ``REQUESTS_CA_BUNDLE``, as the offline stack's ``stack.env`` sets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from local.stack import StackInfo
from shared.app_context import AppContext, build_context
from shared.pipeline.ledger.keys import (
    ACTIVE_PARTITION,
    JOB_PREFIX,
    PENDING_PREFIX,
    QUEUE_PARTITION_PREFIX,
)
from shared.pipeline.poller import PollSummary, poll_once
from shared.pipeline.submitter import SubmitSummary, submit_once
from shared.pipeline.sweep import SweepSummary, sweep_once
from shared.settings import AppSettings
from shared.speech import SpeechSettings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "speech"
SENTENCES: dict[str, str] = json.loads((FIXTURES / "sentences.json").read_text())["sentences"]


class EmulatorAdmin:
    """The Speech emulator's admin API: faults, stats, reset."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=30)

    async def reset(self, *, jobs: bool = False) -> None:
        response = await self.http.post("/admin/reset", params={"jobs": "true"} if jobs else {})
        response.raise_for_status()

    async def forget_jobs(self) -> None:
        """Drop every job, as a restart of the service would."""
        (await self.http.post("/admin/jobs:forget")).raise_for_status()

    async def faults(self, **changes: Any) -> None:
        response = await self.http.put("/admin/faults", json=changes)
        response.raise_for_status()

    async def stats(self) -> dict[str, Any]:
        response = await self.http.get("/admin/stats")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    async def count(self, operation: str) -> int:
        by_operation: dict[str, int] = (await self.stats())["requests"]["byOperation"]
        return by_operation.get(operation, 0)

    async def aclose(self) -> None:
        await self.http.aclose()


@dataclass
class Pipeline:
    """One isolated app context on the stack, with helpers for the tests."""

    ctx: AppContext
    stack: StackInfo
    admin: EmulatorAdmin
    writes: list[str] = field(default_factory=list)

    @property
    def settings(self) -> AppSettings:
        return self.ctx.settings

    async def upload(
        self,
        name: str,
        data: bytes,
        *,
        container: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        client = self.ctx.blob_service.get_blob_client(
            container or self.settings.input_container, name
        )
        await asyncio.to_thread(client.upload_blob, data, overwrite=True, metadata=metadata)

    async def upload_fixture(self, fixture: str, name: str | None = None, **kw: Any) -> str:
        target = name or fixture
        await self.upload(target, (FIXTURES / fixture).read_bytes(), **kw)
        return target

    async def output(self, name: str) -> bytes | None:
        client = self.ctx.blob_service.get_blob_client(self.settings.output_container, name)
        try:
            return await asyncio.to_thread(lambda: client.download_blob().readall())
        except Exception:
            return None

    async def output_json(self, name: str) -> Any:
        data = await self.output(name)
        assert data is not None, f"no output {name}"
        return json.loads(data)

    async def output_names(self) -> list[str]:
        container = self.ctx.blob_service.get_container_client(self.settings.output_container)

        def names() -> list[str]:
            try:
                return sorted(b.name for b in container.list_blobs())
            except Exception:
                return []

        return await asyncio.to_thread(names)

    async def active_jobs(self) -> int:
        rows = await asyncio.to_thread(
            lambda: list(
                self.ctx.ledger_table.query_entities(
                    "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                    parameters={"pk": ACTIVE_PARTITION, "lo": JOB_PREFIX, "hi": "job}"},
                )
            )
        )
        return len(rows)

    async def poll_until_idle(self, *, timeout: float = 60.0) -> list[PollSummary]:
        """Tick the poller until no job is left in the ledger."""
        summaries = []
        deadline = time.monotonic() + timeout
        while await self.active_jobs() or await self.queued_entries():
            if time.monotonic() > deadline:
                raise AssertionError(f"jobs still active after {timeout} s: {summaries[-3:]}")
            await submit_once(self.ctx)
            summaries.append(await poll_once(self.ctx))
            await asyncio.sleep(0.25)
        return summaries

    async def queued_entries(self) -> int:
        """Versions waiting in any queue group for the submitter."""
        rows = await asyncio.to_thread(
            lambda: list(
                self.ctx.ledger_table.query_entities(
                    "PartitionKey ge @lo and PartitionKey lt @hi",
                    parameters={"lo": QUEUE_PARTITION_PREFIX, "hi": "queue}"},
                    select=["RowKey"],
                )
            )
        )
        return len(rows)

    async def submit(self) -> SubmitSummary:
        """One submitter tick."""
        return await submit_once(self.ctx)

    async def job_of(self, name: str, *, container: str | None = None) -> str:
        """The job id the newest version of ``name`` is submitted in."""
        rows = await self.ctx.ledger.sources_for_path(
            container or self.settings.input_container, name
        )
        assert rows, f"no row for {name}"
        assert rows[0].job_id, f"{name} is in no job: {rows[0]}"
        return rows[0].job_id

    async def pending_rows(self) -> int:
        """Index rows of versions someone must still move on (claimed or retrying)."""
        rows = await asyncio.to_thread(
            lambda: list(
                self.ctx.ledger_table.query_entities(
                    "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                    parameters={"pk": ACTIVE_PARTITION, "lo": PENDING_PREFIX, "hi": "pending}"},
                )
            )
        )
        return len(rows)

    async def settle(
        self, *, timeout: float = 60.0
    ) -> tuple[list[PollSummary], list[SweepSummary]]:
        """Tick the poller and the sweep, as their timers do, until nothing is in flight."""
        polls: list[PollSummary] = []
        sweeps: list[SweepSummary] = []
        deadline = time.monotonic() + timeout
        while await self.active_jobs() or await self.pending_rows() or await self.queued_entries():
            if time.monotonic() > deadline:
                raise AssertionError(f"still in flight after {timeout} s: {polls[-2:]}")
            await submit_once(self.ctx)
            polls.append(await poll_once(self.ctx))
            sweeps.append(await sweep_once(self.ctx))
            await asyncio.sleep(0.25)
        return polls, sweeps

    def record_writes(self) -> None:
        """Record the order in which output blobs are written (``self.writes``)."""
        storage = self.ctx.storage
        original = storage.write_output

        async def recording(name: str, data: bytes | str, *, container: str | None = None) -> str:
            url = await original(name, data, container=container)
            self.writes.append(name)
            return url

        storage.write_output = recording  # type: ignore[method-assign]

    async def close(self) -> None:
        service = self.ctx.blob_service
        settings = self.settings
        containers = (
            settings.input_container,
            settings.output_container,
            settings.requests_container,
        )
        for container in containers:
            # A container the test never created is simply not there.
            with contextlib.suppress(Exception):
                await asyncio.to_thread(service.delete_container, container)
        await asyncio.to_thread(self.ctx.table_service.delete_table, settings.ledger_table)
        await self.ctx.aclose()


@pytest.fixture(scope="package")
def stack(local_stack: StackInfo) -> Iterator[StackInfo]:
    """The stack, with ``REQUESTS_CA_BUNDLE`` pointing at its CA bundle (as stack.env sets)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REQUESTS_CA_BUNDLE", local_stack.env["REQUESTS_CA_BUNDLE"])
        yield local_stack


def stack_settings(stack: StackInfo, **overrides: Any) -> AppSettings:
    """AppSettings for ``stack`` with fresh container and table names."""
    tag = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "AudioStorage__blobServiceUri": stack.blob_endpoint,
        "AudioStorage__tableServiceUri": stack.table_endpoint,
        "AudioStorage__queueServiceUri": stack.queue_endpoint,
        "input_container": f"in-{tag}",
        "requests_container": f"req-{tag}",
        "output_container": f"out-{tag}",
        "ledger_table": f"ledger{tag}",
        "poison_queue": f"poison-{tag}",
        # Fast polling for jobs that take seconds; the backoff test sets its own.
        "poll_min_interval_seconds": 0.2,
        "poll_max_interval_seconds": 1.0,
        # Retries at once, a sweep that takes in blobs of any age, and jobs sent at once.
        "retry_backoff_seconds": 0.1,
        "sweep_grace_seconds": 0,
        "batch_window_seconds": 0,
    }
    values.update(overrides)
    return AppSettings(**values)


def speech_settings(stack: StackInfo) -> SpeechSettings:
    return SpeechSettings(endpoint=stack.speech_url, resource_id=stack.resource_id)


@pytest_asyncio.fixture
async def admin(stack: StackInfo) -> AsyncIterator[EmulatorAdmin]:
    client = EmulatorAdmin(stack.speech_url)
    await client.reset(jobs=True)
    try:
        yield client
    finally:
        await client.reset(jobs=True)
        await client.aclose()


@pytest_asyncio.fixture
async def make_pipeline(
    stack: StackInfo, admin: EmulatorAdmin
) -> AsyncIterator[Callable[..., Awaitable[Pipeline]]]:
    created: list[Pipeline] = []

    async def make(**overrides: Any) -> Pipeline:
        settings = stack_settings(stack, **overrides)
        ctx = await asyncio.to_thread(
            build_context, settings, speech_settings=speech_settings(stack)
        )
        pipeline = Pipeline(ctx, stack, admin)
        created.append(pipeline)
        for container in (settings.input_container, settings.requests_container):
            await ctx.storage.ensure_container(container)
        return pipeline

    yield make
    for pipeline in created:
        await pipeline.close()


@pytest_asyncio.fixture
async def pipeline(make_pipeline: Callable[..., Awaitable[Pipeline]]) -> Pipeline:
    return await make_pipeline()
