"""Helpers shared by the tests (a module with a unique name: every `conftest` shares one module name)."""

import subprocess
import sys
from pathlib import Path

SIM_IMAGE_HW = 64
VENV_BIN = Path(sys.executable).parent


def cli(name: str) -> str:
    """Path of a console script installed next to the running interpreter."""
    return str(VENV_BIN / name)


def run_cli(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a console script; on failure show its output in the assertion message."""
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    )
    return proc
