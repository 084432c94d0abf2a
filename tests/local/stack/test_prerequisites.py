"""Missing prerequisites stop ``make`` and the stack with one line saying what to install."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from local import azurite
from local.stack import AZURITE, REPO_ROOT, Ports, Stack, StackError

NODE_TOOLS = frozenset({"node", "nodejs", "npm", "npx", "corepack"})


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
    # Everything on PATH but Node.js: so only the missing Node.js can speak, whether or not
    # the install stamps are fresh (a stale one runs pip, touch, ...).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        for tool in Path(folder).glob("*") if Path(folder).is_dir() else []:
            target = bin_dir / tool.name
            if tool.name not in NODE_TOOLS and not target.exists() and os.access(tool, os.X_OK):
                target.symlink_to(tool)
    make = shutil.which("make")
    assert make is not None
    result = subprocess.run(  # noqa: S603 - fixed argv
        [make, "-s", "-C", str(REPO_ROOT), "up"],
        env={**os.environ, "PATH": str(bin_dir), "LOCAL_STATE_DIR": str(tmp_path / "state")},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0
    # make's own "*** [up] Error 1" (make[1]: under a make that runs make) aside.
    lines = [line for line in result.stderr.splitlines() if "***" not in line]
    assert lines == [
        "make: Node.js 20 or newer with npm is needed for Azurite; install it "
        "(Debian: apt-get install nodejs npm)"
    ]
