"""The ready-made record/rollout files in `configs/` parse with LeRobot's own config classes into this plug-in's
arm types (a user overrides ports and ids on the command line)."""

import sys

import draccus
import pytest
from arm_testing import REPO_ROOT, tiny_stamo_vla
from lerobot.rollout.configs import RolloutConfig
from lerobot.scripts.lerobot_record import RecordConfig
from lerobot.teleoperators.so_leader import SOLeaderTeleopConfig

from lerobot_stamo.robots import StamoKochConfig, StamoKochLeaderConfig, StamoSO100Config

CONFIGS = REPO_ROOT / "configs"


@pytest.mark.parametrize(
    "arm, robot_cls, teleop_cls",
    [("so101", StamoSO100Config, SOLeaderTeleopConfig), ("koch", StamoKochConfig, StamoKochLeaderConfig)],
)
def test_record_config(arm, robot_cls, teleop_cls):
    cfg = draccus.parse(
        RecordConfig, config_path=CONFIGS / f"record_{arm}.json", args=["--robot.port=/dev/ttyUSB7"]
    )
    assert isinstance(cfg.robot, robot_cls) and cfg.robot.port == "/dev/ttyUSB7"
    assert set(cfg.robot.cameras) == {"front", "wrist"} and cfg.robot.max_relative_target == 10.0
    assert isinstance(cfg.teleop, teleop_cls) and cfg.dataset.fps == 30 and cfg.robot.use_degrees


@pytest.mark.parametrize("arm, robot_cls", [("so101", StamoSO100Config), ("koch", StamoKochConfig)])
def test_rollout_config(arm, robot_cls, tmp_path, monkeypatch):
    policy = f"--policy.path={tiny_stamo_vla(tmp_path / 'policy', action_std=1.0)}"
    monkeypatch.setattr(sys, "argv", ["lerobot-rollout", policy])  # LeRobot reads --policy.path from argv
    cfg = draccus.parse(RolloutConfig, config_path=CONFIGS / f"rollout_{arm}.json", args=[])
    assert isinstance(cfg.robot, robot_cls) and cfg.robot.max_relative_target == 5.0
    assert cfg.strategy.type == "episodic" and cfg.dataset.repo_id.split("/")[-1].startswith("rollout_")
    assert cfg.return_to_initial_position and cfg.task == cfg.dataset.single_task
    # Chunks computed in the background (real-time chunking): the loop holds 30 Hz on a CPU.
    assert cfg.inference.type == "rtc" and cfg.inference.queue_threshold == 10
    assert cfg.inference.rtc.execution_horizon == 5
