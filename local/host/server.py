"""The local functions host: one process, one event loop, HTTP + timers + blob triggers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from local.host.app import BlobConfig, Discovery, FunctionSpec, HttpConfig, TimerConfig
from local.host.bindings import ParamKind
from local.host.blob_trigger import RECEIPTS_FILE, BlobTriggerRunner, Receipts
from local.host.blobs import BlobValues, Connections
from local.host.invoke import Invoker
from local.host.poison import HOST_STORAGE, SPOOL_FILE, PoisonQueue
from local.host.settings import HostSettings
from local.host.timers import TimerRunner
from local.host.web import HttpFront
from local.keys import HostKeys

log = logging.getLogger("local.host")


class FunctionsHost:
    """Everything the host runs for one discovered app."""

    def __init__(
        self,
        discovery: Discovery,
        *,
        app_spec: str,
        keys: HostKeys,
        settings: HostSettings,
        state_dir: Path,
        env: Mapping[str, str],
        function_directory: Path,
    ) -> None:
        self.discovery = discovery
        self.app_spec = app_spec
        self.settings = settings
        self.connections = Connections(env)
        blobs = BlobValues(self.connections)
        self.invoker = Invoker(
            blobs, threads=settings.sync_threads, function_directory=str(function_directory)
        )
        receipts = Receipts(state_dir / RECEIPTS_FILE)
        self.poison = PoisonQueue(self.connections, state_dir / SPOOL_FILE)
        slots = asyncio.Semaphore(settings.blob_concurrency)
        functions = discovery.functions
        self.timers = [
            TimerRunner(spec, self.invoker)
            for spec in functions
            if isinstance(spec.config, TimerConfig)
        ]
        self.blob_triggers = [
            BlobTriggerRunner(
                spec,
                invoker=self.invoker,
                blobs=blobs,
                receipts=receipts,
                poison=self.poison,
                settings=settings,
                slots=slots,
            )
            for spec in functions
            if isinstance(spec.config, BlobConfig)
        ]
        self.front = HttpFront(
            functions,
            invoker=self.invoker,
            keys=keys,
            route_prefix=settings.route_prefix,
            status=self.status,
            on_startup=self.start,
            on_shutdown=self.stop,
        )
        self._tasks: list[asyncio.Task[None]] = []

    def warnings(self) -> list[str]:
        """Things about the app worth a warning at start-up."""
        found: list[str] = []
        kinds = {
            spec.trigger_param.kind
            for spec in self.discovery.functions
            if isinstance(spec.config, HttpConfig)
        }
        if {ParamKind.HTTP_STREAM, ParamKind.HTTP_CLASSIC} <= kinds:
            found.append(
                "the app mixes HTTP-stream functions (FastAPI Request) with classic "
                "func.HttpRequest ones: this host runs both, but in Azure, once the "
                "azurefunctions-extensions-http-fastapi extension is imported, every HTTP "
                "function must use the stream types"
            )
        for route in self.front.routes:
            for constraint in route.config.route.unenforced:
                found.append(
                    f"{route.spec.name}: route constraint {constraint} is not enforced locally"
                )
        for runner in self.blob_triggers:
            connection = runner.config.connection
            if not any(
                self.connections.has_queue_service(name) for name in (connection, HOST_STORAGE)
            ):
                found.append(
                    f"{runner.spec.name}: no queue service for its poison messages: set "
                    f"{connection}__queueServiceUri (as Azure requires of an identity-based "
                    f"blob trigger connection); until then they wait in {self.poison.spool}"
                )
        return found

    def describe(self, base_url: str) -> list[str]:
        """The start-up listing: one line per function (keys are never printed)."""
        lines: list[str] = []
        for route in self.front.routes:
            methods = ",".join(sorted(route.config.methods)) or "*"
            lines.append(
                f"{route.spec.name}: [{methods}] {self.front.url_of(route, base_url)} "
                f"(auth {route.config.auth_level})"
            )
        for timer in self.timers:
            lines.append(f"{timer.spec.name}: timerTrigger ({timer.config.schedule.expression})")
        for runner in self.blob_triggers:
            config = runner.config
            lines.append(
                f"{runner.spec.name}: blobTrigger ({config.path.container}/{config.path.pattern}, "
                f"source {config.source}, connection {config.connection})"
            )
        return lines

    async def start(self) -> None:
        """Start every timer and blob trigger (the ASGI lifespan's start-up).

        Poison messages an earlier run could not send go to their queue now.
        """
        self.poison.retry_soon()
        runners: list[TimerRunner | BlobTriggerRunner] = [*self.timers, *self.blob_triggers]
        for runner in runners:
            task = asyncio.create_task(runner.run(), name=f"trigger:{runner.spec.name}")
            task.add_done_callback(self._trigger_stopped)
            self._tasks.append(task)

    @staticmethod
    def _trigger_stopped(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s stopped unexpectedly", task.get_name(), exc_info=task.exception())

    async def stop(self) -> None:
        """Stop triggers, then release clients and threads (the ASGI lifespan's shutdown)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.poison.close()
        self.invoker.close()
        await asyncio.to_thread(self.connections.close)

    def status(self) -> dict[str, Any]:
        """The body of ``GET /admin/host/status``."""
        details: dict[str, dict[str, Any]] = {}
        for route in self.front.routes:
            details[route.spec.name] = {
                "route": f"{self.front.prefix}/{route.config.route.template.strip('/')}",
                "methods": sorted(route.config.methods) or ["*"],
                "authLevel": route.config.auth_level,
                "http": "stream"
                if route.spec.trigger_param.kind is ParamKind.HTTP_STREAM
                else "classic",
            }
        for timer in self.timers:
            details[timer.spec.name] = timer.status()
        for runner in self.blob_triggers:
            details[runner.spec.name] = runner.status()

        def entry(spec: FunctionSpec) -> dict[str, Any]:
            return {
                "name": spec.name,
                "trigger": spec.trigger_type,
                **details.get(spec.name, {}),
                **self.invoker.stats_for(spec.name).as_dict(),
            }

        return {
            "state": "Running",
            "app": self.app_spec,
            "routePrefix": self.settings.route_prefix,
            "functions": [entry(spec) for spec in self.discovery.functions],
            "skipped": [
                {"name": s.name, "trigger": s.trigger_type, "reason": s.reason}
                for s in self.discovery.skipped
            ],
            "poisonQueue": self.poison.status(),
        }
