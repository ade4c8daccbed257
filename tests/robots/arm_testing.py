"""Helpers of the real-arm tests (a module with a unique name: every `conftest` shares one module name)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.utils.constants import ACTION, OBS_STATE

from lerobot_stamo.robots.emulation import StamoTestCameraConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
ROBOTS_DIR = Path(__file__).parent
BIN = Path(sys.executable).parent
CAMERAS = ("observation.images.front", "observation.images.wrist")
TASK = "pick up the cube"
MAX_STEP = 5.0  # stamo_so100's default max_relative_target


def fake_cameras(**overrides) -> dict[str, StamoTestCameraConfig]:
    return {
        "front": StamoTestCameraConfig(**overrides),
        "wrist": StamoTestCameraConfig(colour=(40, 200, 60), **overrides),
    }


def tiny_stamo_vla(path: Path, action_std: float) -> Path:
    """A tiny `compact` stamo_vla for the arm's two 64x64 cameras (resized to 32); NaN std -> NaN actions."""
    from lerobot_stamo.policies.stamo_vla import (
        StamoVLAConfig,
        StamoVLAPolicy,
        make_stamo_vla_pre_post_processors,
    )

    features = {k: PolicyFeature(FeatureType.VISUAL, (3, 64, 64)) for k in CAMERAS}
    config = StamoVLAConfig(
        device="cpu", push_to_hub=False, chunk_size=4, n_action_steps=2, dim_model=32, n_heads=4, n_layers=1,
        dim_feedforward=64, tokenizer_max_length=32, world_model_target="none", resize_images=(32, 32),
        input_features=features | {OBS_STATE: PolicyFeature(FeatureType.STATE, (6,))},
        output_features={ACTION: PolicyFeature(FeatureType.ACTION, (6,))},
    )  # fmt: skip
    torch.manual_seed(0)
    policy = StamoVLAPolicy(config)
    stats = {
        OBS_STATE: {"mean": torch.zeros(6), "std": torch.full((6,), 30.0)},
        ACTION: {"mean": torch.zeros(6), "std": torch.full((6,), action_std)},
    }
    pre, post = make_stamo_vla_pre_post_processors(config, stats)
    for part in (policy, pre, post):
        part.save_pretrained(path)
    return path


def run(args: list[str], plugin_path: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": plugin_path, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def robot_args(
    emulator,  # a servo emulator (its `port`)
    calibration_dir: Path,
    robot_type: str = "stamo_so100",
    camera_names: tuple[str, ...] = ("front", "wrist"),
    **camera_fields,
) -> list[str]:
    cameras = {name: {"type": "stamo_test", **camera_fields} for name in camera_names}
    return [f"--robot.type={robot_type}", f"--robot.port={emulator.port}", "--robot.id=arm",
            f"--robot.calibration_dir={calibration_dir}", f"--robot.cameras={json.dumps(cameras)}"]  # fmt: skip


def assert_recorded_what_was_sent(root: Path):
    """The recorded dataset opens, and its actions are what the arm was sent (finite, within MAX_STEP)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    dataset = LeRobotDataset("local/any", root=root)
    actions = torch.stack([dataset.hf_dataset[i][ACTION] for i in range(len(dataset.hf_dataset))])
    states = torch.stack([dataset.hf_dataset[i][OBS_STATE] for i in range(len(dataset.hf_dataset))])
    assert torch.isfinite(actions).all()
    # What the arm was sent: at most max_relative_target from the state read in the same step.
    assert (actions - states).abs().max() <= MAX_STEP + 1e-3
    return dataset
