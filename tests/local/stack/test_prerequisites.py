"""Missing prerequisites stop ``make`` and the stack with one line saying what to install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from local import azurite
from local.stack import AZURITE, REPO_ROOT, Ports, Stack, StackError


def quiet(_line: str) -> None:
    """Swallow the stack's progress lines."""


def test_azurite_without_node_says_to_install_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no node here
    with pytest.raises(StackError, match=r"`node` is not on PATH: install Node\.js 20"):
        Stack(tmp_path / "state", ports=Ports.free(), services={AZURITE}, echo=quiet).up()
    with pytest.raises(FileNotFoundError) as caught:
        azurite.executable(REPO_ROOT)
    assert azurite.NODE_HINT in str(caught.value)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_up_without_npm_stops_with_one_line(tmp_path: Path) -> None:
    """The stamps are fresh under `make test`, so only the Node.js check can speak."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # Python stays reachable (as python3) so only the missing Node.js is reported.
    (bin_dir / "python3").symlink_to(sys.executable)
    make = shutil.which("make")
    assert make is not None
    result = subprocess.run(  # noqa: S603 - fixed argv
        [make, "-s", "-C", str(REPO_ROOT), "up", f"PYTHON={bin_dir / 'python3'}"],
        env={**os.environ, "PATH": str(bin_dir), "LOCAL_STATE_DIR": str(tmp_path / "state")},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if not line.startswith("make: ***")]
    assert lines == [
        "make: Node.js 20 or newer with npm is needed for Azurite; install it "
        "(Debian: apt-get install nodejs npm)"
    ]
