"""Fixtures shared by the client tests: a scripted loopback server and a sleep recorder."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import httpx
import pytest

from tests.support.scripted import Handler, ScriptedApp
from tests.support.server import serve

#: The ``scripted`` fixture: ``with scripted(handler) as (base_url, app):``.
Scripted = Callable[[Handler], AbstractContextManager[tuple[str, ScriptedApp]]]


class SleepRecorder:
    """Stands in for asyncio.sleep so retry tests take no wall time but see every wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def scripted() -> Scripted:
    """``with scripted(handler) as (base_url, app):`` runs a recording server."""

    @contextmanager
    def start(handler: Handler) -> Iterator[tuple[str, ScriptedApp]]:
        app = ScriptedApp(handler)
        with serve(app) as url:
            yield url, app

    return start


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client
