"""Session fixtures for the offline stack: real Azurite, identity and emulator processes.

``local_stack`` starts the whole stack (engine ``whisper`` unless ``LOCAL_TEST_ENGINE``
says otherwise); ``local_stack_no_emulator`` only Azurite and the identity endpoint;
``local_stack_with_functions`` the whole stack plus the local functions host serving
``function_app:app`` (skipped while the repo has no ``function_app.py``). They share one
private state dir and free ports (never the defaults, so a developer's ``make up`` does
not clash), start on first use and stop at the end of the session. Every ``StackInfo``
carries ``functions_url`` / ``functions_key``; only the last fixture runs the host.

While the stack is up, ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER`` point at it in
``os.environ`` (MSAL reads them on every token request), and are restored afterwards.
Tests that use these fixtures are marked ``stack`` here (tests that start stacks of their
own carry the mark themselves): ``pytest -m "not stack"`` skips them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from local.stack import (
    ALL_SERVICES,
    AZURITE,
    IDENTITY,
    SERVICES,
    Ports,
    Stack,
    StackInfo,
)
from local.stack.services import FUNCTION_APP_FILE

STACK_FIXTURES = frozenset(
    {
        "local_stack",
        "local_stack_no_emulator",
        "local_stack_with_functions",
        "offline_stack_session",
    }
)


class StackSession:
    """One test stack for the whole session, grown on demand (``up`` is idempotent)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.ports = Ports.free()
        self.engine = os.environ.get("LOCAL_TEST_ENGINE") or "whisper"
        self._cleanup = contextlib.ExitStack()
        self._stacks: list[Stack] = []
        self._environment_set = False

    def ensure(self, services: Iterable[str]) -> StackInfo:
        """Start ``services`` (and keep whatever already runs)."""
        stack = Stack(
            self.state_dir, ports=self.ports, services=services, speech_engine=self.engine
        )
        if not self._stacks:
            self._cleanup.callback(self._down)
        # Kept until the end: a Stack holds the handles of the processes it started.
        self._stacks.append(stack)
        info = stack.up()
        if not self._environment_set:
            self._cleanup.enter_context(info.identity_environment())
            self._environment_set = True
        return info

    def _down(self) -> None:
        # The newest stops everything; the others then collect their own process handles.
        for stack in reversed(self._stacks):
            stack.down()

    def close(self) -> None:
        """Restore the environment, then stop every service."""
        self._cleanup.close()


@pytest.fixture(scope="session")
def offline_stack_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackSession]:
    """The shared, lazily started stack behind ``local_stack*``."""
    session = StackSession(tmp_path_factory.mktemp("offline-stack"))
    try:
        yield session
    finally:
        session.close()


@pytest.fixture(scope="session")
def local_stack(offline_stack_session: StackSession) -> StackInfo:
    """Azurite + identity endpoint + Speech emulator, running for the session."""
    return offline_stack_session.ensure(SERVICES)


@pytest.fixture(scope="session")
def local_stack_no_emulator(offline_stack_session: StackSession) -> StackInfo:
    """Azurite + identity endpoint only (no Speech emulator needed)."""
    return offline_stack_session.ensure((AZURITE, IDENTITY))


@pytest.fixture(scope="session")
def local_stack_with_functions(offline_stack_session: StackSession) -> StackInfo:
    """The whole stack and the local functions host serving ``function_app:app``.

    ``functions_url`` / ``functions_key`` reach the app's HTTP routes
    (``FUNCTIONS_MASTER_KEY`` in ``env`` opens ``/admin/host/status``).
    """
    if not FUNCTION_APP_FILE.is_file():
        pytest.skip(f"no {FUNCTION_APP_FILE.name} at the repo root yet")
    return offline_stack_session.ensure(ALL_SERVICES)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the offline stack ``stack``."""
    for item in items:
        if STACK_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.stack)
