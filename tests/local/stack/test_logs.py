"""Service logs are kept across runs, marked per run, and rotated when large."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.stack import logs
from local.stack.logs import RUN_MARKER, current_run, open_for_run


def test_each_run_appends_after_a_marker_and_the_last_run_is_found(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "emulator.log"
    with open_for_run(path, "emulator", ["/usr/bin/python3", "-m", "x"]) as log:
        log.write(b"first run crashed: Traceback ...\n")
    with open_for_run(path, "emulator", ["/usr/bin/python3"]) as log:
        log.write(b"second run\n")
    text = path.read_text()
    assert "first run crashed" in text  # the log that explains the crash survives
    assert text.count(RUN_MARKER) == 2
    assert "emulator started" in text
    assert current_run(path) == ["second run"]


def test_a_large_log_is_rotated_once_and_kept_as_dot_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "LOG_MAX_BYTES", 100)
    path = tmp_path / "azurite.log"
    path.write_bytes(b"old run\n" + b"x" * 200)
    with open_for_run(path, "azurite", ["azurite"]) as log:
        log.write(b"new run\n")
    assert (tmp_path / "azurite.log.1").read_bytes().startswith(b"old run")
    assert current_run(path) == ["new run"]
    path.write_bytes(b"y" * 200)
    open_for_run(path, "azurite", ["azurite"]).close()
    # Two files at most: the older .1 is replaced, not kept as .2.
    assert (tmp_path / "azurite.log.1").read_bytes() == b"y" * 200
    assert sorted(p.name for p in tmp_path.iterdir()) == ["azurite.log", "azurite.log.1"]
