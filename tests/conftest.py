"""Shared fixtures: everything offline, tiny, and made by the tests themselves."""

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("WANDB_MODE", "disabled")

import pytest  # noqa: E402

from lerobot_stamo.scripts.lerobot_stamo_sim_record import SimRecordConfig, record  # noqa: E402

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


@pytest.fixture(scope="session")
def sim_dataset(tmp_path_factory) -> tuple[str, Path]:
    """(repo_id, root) of 3 recorded PickCube expert episodes, cameras front + wrist at 64x64."""
    root = tmp_path_factory.mktemp("sim") / "so101_pickcube"
    repo_id = "local/so101_pickcube"
    record(
        SimRecordConfig(
            repo_id=repo_id,
            root=root,
            task="PickCube",
            num_episodes=3,
            observation_height=SIM_IMAGE_HW,
            observation_width=SIM_IMAGE_HW,
        )
    )
    return repo_id, root
