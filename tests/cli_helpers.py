"""Helpers shared by the tests (a module with a unique name: every `conftest` shares one module name)."""

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SIM_IMAGE_HW = 64
VENV_BIN = Path(sys.executable).parent


def cli(name: str) -> str:
    """Path of a console script installed next to the running interpreter."""
    return str(VENV_BIN / name)


def accelerate_launch(num_processes: int = 2) -> list[str]:
    """`accelerate launch` of `num_processes` processes on one machine, CPU-only too (gloo), no extras."""
    return [cli("accelerate"), "launch", "--multi_gpu", "--num_processes", str(num_processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]  # fmt: skip


def run_cli(
    args: list[str], cwd: Path, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run a console script (with `env` added to this environment); on failure show its output."""
    env = {**os.environ, **env} if env else None
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    )
    return proc
