"""Calling user functions: arguments, async or thread pool, outputs, and the record of each call.

Async functions run on the host's event loop; sync ones in a thread pool (the Python
worker's model), with the caller's context so their log lines carry the function name.
Every failure of a user function (``SystemExit`` included) becomes
:class:`InvocationFailed` for the trigger that called it to handle: one failing
invocation never takes the host down.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import functools
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import azure.functions as func
from azure.functions import _abc

from local.host.app import FunctionSpec
from local.host.bindings import Param, ParamKind
from local.host.blobs import BlobValues
from local.host.logs import invocation_scope
from local.host.patterns import fill_expressions
from shared.redact import redact

log = logging.getLogger("local.host")
T = TypeVar("T")


class InvocationFailed(Exception):
    """The user function (or building its arguments or outputs) failed; ``__cause__`` says how."""


class _TraceContext(_abc.TraceContext):
    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RpcException(_abc.RpcException):
    def __init__(self, message: str) -> None:
        self._message = message

    @property
    def source(self) -> str:
        return "local.host"

    @property
    def stack_trace(self) -> str:
        return ""

    @property
    def message(self) -> str:
        return self._message


class _RetryContext(_abc.RetryContext):
    def __init__(self, retry_count: int, max_retry_count: int, previous_error: str) -> None:
        self._retry_count = retry_count
        self._max_retry_count = max_retry_count
        self._exception = _RpcException(previous_error)

    @property
    def retry_count(self) -> int:
        return self._retry_count

    @property
    def max_retry_count(self) -> int:
        return self._max_retry_count

    @property
    def exception(self) -> _abc.RpcException:
        return self._exception


class LocalContext(func.Context):
    """The ``func.Context`` a function parameter receives: ids, names, retry count."""

    def __init__(
        self, invocation_id: str, function_name: str, function_directory: str, retry: _RetryContext
    ) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._retry = retry
        self._thread_local = threading.local

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> type[threading.local]:
        return self._thread_local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> _abc.TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> _abc.RetryContext:
        return self._retry


class LocalOut(func.Out[T], Generic[T]):
    """A ``func.Out`` the function sets; the host writes the value after a successful call."""

    def __init__(self) -> None:
        self._value: T | None = None

    def set(self, val: T) -> None:
        """Set the output value."""
        self._value = val

    def get(self) -> T:
        """The value set (None if the function set nothing)."""
        return self._value  # type: ignore[return-value]


@dataclass
class FunctionStats:
    """What ``/admin/host/status`` reports per function."""

    invocations: int = 0
    failures: int = 0
    running: int = 0
    last: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "invocations": self.invocations,
            "failures": self.failures,
            "running": self.running,
            "last": self.last,
        }


@dataclass(frozen=True)
class Retry:
    """Where an invocation stands in a retry sequence (blob triggers)."""

    count: int = 0
    max_count: int = 0
    previous_error: str = ""


def _split_path(path: str) -> tuple[str, str]:
    container, _, blob = path.strip("/").partition("/")
    if not container or not blob:
        raise ValueError(f"blob binding path {path!r} does not name container/blob")
    return container, blob


class Invoker:
    """Runs functions and keeps their :class:`FunctionStats`."""

    def __init__(self, blobs: BlobValues, *, threads: int, function_directory: str) -> None:
        self._blobs = blobs
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="function")
        self._function_directory = function_directory
        self.stats: dict[str, FunctionStats] = {}

    def stats_for(self, name: str) -> FunctionStats:
        """The stats of ``name`` (created empty on first use)."""
        return self.stats.setdefault(name, FunctionStats())

    async def blocking(self, call: Callable[[], T]) -> T:
        """Run a blocking call in the host's thread pool, in the current context."""
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, context.run, call)

    async def invoke(
        self,
        spec: FunctionSpec,
        trigger: Callable[[], Awaitable[Any]],
        *,
        metadata: Mapping[str, str],
        reason: str,
        retry: Retry | None = None,
    ) -> Any:
        """Call ``spec`` with ``trigger()`` as its trigger value; returns its result.

        ``metadata`` fills ``{expressions}`` in other bindings' paths. Raises
        :class:`InvocationFailed` when anything about the call fails.
        """
        retry = retry or Retry()
        invocation_id = str(uuid.uuid4())
        stats = self.stats_for(spec.name)
        stats.running += 1
        started = time.monotonic()
        started_at = dt.datetime.now(dt.UTC).isoformat()
        with invocation_scope(spec.name, invocation_id):
            log.info(
                "Executing 'Functions.%s' (Reason='%s', Id=%s)", spec.name, reason, invocation_id
            )
            try:
                kwargs, outputs = await self._arguments(
                    spec, trigger, metadata, invocation_id, retry
                )
                if spec.is_async:
                    result = await spec.func(**kwargs)
                else:
                    result = await self.blocking(functools.partial(spec.func, **kwargs))
                await self._write_outputs(outputs, metadata)
            except asyncio.CancelledError:
                self._finish(stats, invocation_id, started, started_at, reason, "Cancelled")
                raise
            except (Exception, SystemExit) as exc:
                error = redact(f"{type(exc).__name__}: {exc}")
                duration = self._finish(stats, invocation_id, started, started_at, reason, error)
                log.error(
                    "Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)",
                    spec.name,
                    invocation_id,
                    duration,
                    exc_info=exc,
                )
                raise InvocationFailed(error) from exc
            duration = self._finish(stats, invocation_id, started, started_at, reason, None)
            log.info(
                "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)",
                spec.name,
                invocation_id,
                duration,
            )
            return result

    @staticmethod
    def _finish(
        stats: FunctionStats,
        invocation_id: str,
        started: float,
        started_at: str,
        reason: str,
        error: str | None,
    ) -> int:
        duration = round((time.monotonic() - started) * 1000)
        stats.running -= 1
        stats.invocations += 1
        if error is not None:
            stats.failures += 1
        stats.last = {
            "id": invocation_id,
            "start": started_at,
            "durationMs": duration,
            "reason": reason,
            "status": "Succeeded" if error is None else "Failed",
            "error": error,
        }
        return duration

    async def _arguments(
        self,
        spec: FunctionSpec,
        trigger: Callable[[], Awaitable[Any]],
        metadata: Mapping[str, str],
        invocation_id: str,
        retry: Retry,
    ) -> tuple[dict[str, Any], list[tuple[Param, LocalOut[Any]]]]:
        kwargs: dict[str, Any] = {}
        outputs: list[tuple[Param, LocalOut[Any]]] = []
        trigger_param = spec.trigger_param
        for param in spec.params:
            if param is trigger_param:
                kwargs[param.name] = await trigger()
            elif param.kind is ParamKind.CONTEXT:
                kwargs[param.name] = LocalContext(
                    invocation_id,
                    spec.name,
                    self._function_directory,
                    _RetryContext(retry.count, retry.max_count, retry.previous_error),
                )
            elif param.kind is ParamKind.BLOB_OUT:
                out: LocalOut[Any] = LocalOut()
                outputs.append((param, out))
                kwargs[param.name] = out
            else:
                container, blob = _split_path(
                    fill_expressions(str(param.binding["path"]), metadata)
                )
                connection = str(param.binding.get("connection") or "AzureWebJobsStorage")
                kwargs[param.name] = await self.blocking(
                    functools.partial(self._blobs.value, param, connection, container, blob)
                )
        return kwargs, outputs

    async def _write_outputs(
        self, outputs: list[tuple[Param, LocalOut[Any]]], metadata: Mapping[str, str]
    ) -> None:
        for param, out in outputs:
            value = out.get()
            if value is None:
                continue
            container, blob = _split_path(fill_expressions(str(param.binding["path"]), metadata))
            connection = str(param.binding.get("connection") or "AzureWebJobsStorage")
            await self.blocking(
                functools.partial(self._blobs.write, connection, container, blob, value)
            )

    def close(self) -> None:
        """Stop taking work; running sync functions finish in their threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)
