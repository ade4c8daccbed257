"""LeRobot's own `lerobot-record` and `lerobot-rollout`, unchanged, on the emulated SO-101 (`stamo_so100`) and Koch
(`stamo_koch`): teleoperated recordings (one that `lerobot-stamo-label` accepts; one stopped by SIGTERM that keeps
its complete episodes), and rollouts of a tiny `stamo_vla` in which a diverging policy, a camera that stops and a
camera the policy needs but the robot lacks end the run safely (no NaN on the bus, torque off, nothing recorded
lost). The fake camera plug-in is found the way LeRobot finds any plug-in: a `lerobot_camera_*` distribution."""

import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from arm_testing import (
    BIN,
    CAMERAS,
    TASK,
    assert_recorded_what_was_sent,
    robot_args,
    run,
    tiny_stamo_vla,
)
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.utils.constants import ACTION

from lerobot_stamo.robots.emulation import (
    KOCH_LEADER_MODELS,
    KOCH_MODELS,
    DynamixelEmulator,
    FeetechEmulator,
    ServoEmulator,
    sine_motion,
    so_calibration,
    write_calibration,
)


def leader_args(leader: ServoEmulator, calibration_dir: Path, teleop_type: str) -> list[str]:
    write_calibration(so_calibration(), calibration_dir, "leader")
    return [f"--teleop.type={teleop_type}", f"--teleop.port={leader.port}", "--teleop.id=leader",
            f"--teleop.calibration_dir={calibration_dir}"]  # fmt: skip


def record_args(root: Path, num_episodes: int, episode_time_s: float) -> list[str]:
    return [f"--dataset.repo_id=local/{root.name}", f"--dataset.root={root}", f"--dataset.single_task={TASK}",
            f"--dataset.num_episodes={num_episodes}", f"--dataset.episode_time_s={episode_time_s}",
            "--dataset.reset_time_s=0", "--dataset.video=false", "--dataset.push_to_hub=false",
            "--play_sounds=false"]  # fmt: skip


@pytest.fixture
def arm(calibration_dir):
    emulator = FeetechEmulator.with_calibration(so_calibration())
    yield emulator
    emulator.close()


@pytest.mark.slow
def test_rollout_nan_policy_stops_without_touching_the_bus(arm, calibration_dir, plugin_path, tmp_path):
    checkpoint = tiny_stamo_vla(tmp_path / "nan_policy", action_std=float("nan"))
    proc = run(["lerobot-rollout", f"--policy.path={checkpoint}", *robot_args(arm, calibration_dir),
                "--strategy.type=base", "--duration=20", f"--task={TASK}", "--device=cpu",
                "--return_to_initial_position=false"], plugin_path, tmp_path)  # fmt: skip
    assert proc.returncode != 0, proc.stderr[-3000:]
    last_line = proc.stderr.strip().splitlines()[-1]
    assert "actions in a row had non-finite values" in last_line and "normalisation" in last_line, last_line
    assert arm.goal_writes == []  # the arm held its start pose: not one goal written
    assert not any(arm.torque(i) for i in arm.registers)


@pytest.mark.slow
def test_recording_rollout_camera_stops_nothing_lost(arm, calibration_dir, plugin_path, tmp_path):
    checkpoint = tiny_stamo_vla(tmp_path / "policy", action_std=20.0)
    root = tmp_path / "rollout_so"
    proc = run(["lerobot-rollout", f"--policy.path={checkpoint}", *robot_args(arm, calibration_dir, stop_after=45),
                "--strategy.type=episodic", "--dataset.repo_id=local/rollout_so", f"--dataset.root={root}",
                f"--dataset.single_task={TASK}", "--dataset.episode_time_s=1", "--dataset.reset_time_s=0",
                "--dataset.num_episodes=30", "--dataset.video=false", "--dataset.push_to_hub=false",
                f"--task={TASK}", "--device=cpu"], plugin_path, tmp_path)  # fmt: skip
    # Episodes enough to reach the camera's 45th frame on a loaded machine (the run ends there, whatever they are).
    assert proc.returncode != 0, proc.stderr[-3000:]
    last_line = proc.stderr.strip().splitlines()[-1]
    assert "camera 'front' stopped delivering frames" in last_line, last_line
    assert not any(arm.torque(i) for i in arm.registers)
    dataset = assert_recorded_what_was_sent(root)
    assert dataset.meta.total_episodes >= 1 and dataset.meta.total_frames >= 10


@pytest.mark.slow
def test_record_with_so101_leader_then_label(arm, calibration_dir, plugin_path, tmp_path):
    from lerobot_stamo.columns import state_key
    from lerobot_stamo.policies.stamo import StamoConfig, StamoPolicy
    from lerobot_stamo.policies.stamo.tiny import write_tiny_pretrained
    from lerobot_stamo.stand_ins import tiny_policy_fields
    from lerobot_stamo.transforms.labelling import (
        LabelConfig,
        LabelDatasetArgs,
        LabelPolicyArgs,
        label_dataset,
    )

    leader = FeetechEmulator.with_calibration(so_calibration())
    leader.motion = sine_motion(so_calibration())
    root = tmp_path / "so_real"
    try:
        proc = run(["lerobot-record", *robot_args(arm, calibration_dir),
                    *leader_args(leader, calibration_dir, "so101_leader"),
                    "--dataset.repo_id=local/so_real", f"--dataset.root={root}", f"--dataset.single_task={TASK}",
                    "--dataset.num_episodes=2", "--dataset.episode_time_s=1", "--dataset.reset_time_s=0",
                    "--dataset.push_to_hub=false", "--play_sounds=false"], plugin_path, tmp_path)  # fmt: skip
    finally:
        leader.close()
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert not any(arm.torque(i) for i in arm.registers)
    dataset = assert_recorded_what_was_sent(root)
    assert dataset.meta.total_episodes == 2 and set(CAMERAS) <= set(dataset.meta.video_keys)
    assert (
        np.ptp(np.stack([dataset.hf_dataset[i][ACTION] for i in range(len(dataset.hf_dataset))]), 0).max() > 1
    )

    stamo = StamoConfig(
        **tiny_policy_fields(), **write_tiny_pretrained(tmp_path / "pretrained", seed=0), device="cpu",
        push_to_hub=False, reconstruction_on_save=False, output_features={},
        input_features={k: PolicyFeature(FeatureType.VISUAL, (3, 64, 64)) for k in CAMERAS},
    )  # fmt: skip
    StamoPolicy(stamo).save_pretrained(tmp_path / "stamo")
    out = tmp_path / "so_real_stamo"
    label_dataset(
        LabelConfig(
            policy=LabelPolicyArgs(path=str(tmp_path / "stamo")),
            dataset=LabelDatasetArgs(repo_id="local/so_real", root=str(root)),
            output_dir=str(out),
            horizon=2,
            num_workers=0,
        )
    )
    labelled = LeRobotDataset("local/so_real_stamo", root=out)
    assert state_key(CAMERAS[0]) in labelled.meta.features


@pytest.mark.slow
def test_record_koch_with_stamo_koch_leader(calibration_dir, plugin_path, tmp_path):
    """`lerobot-record` on the emulated Koch pair with `stamo_koch_leader`: degrees on both sides, so the follower
    follows the leader instead of taking the stock leader's -100..100 as degrees."""
    follower = DynamixelEmulator.with_calibration(so_calibration(), KOCH_MODELS)
    leader = DynamixelEmulator.with_calibration(so_calibration(), KOCH_LEADER_MODELS)
    leader.motion = sine_motion(so_calibration(), amplitude=40)  # about +-3.5 degrees
    root = tmp_path / "koch_real"
    try:
        proc = run(["lerobot-record", *robot_args(follower, calibration_dir, "stamo_koch"),
                    *leader_args(leader, calibration_dir, "stamo_koch_leader"),
                    *record_args(root, num_episodes=1, episode_time_s=1)], plugin_path, tmp_path)  # fmt: skip
    finally:
        follower.close()
        leader.close()
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert not any(follower.torque(i) for i in follower.registers)
    dataset = assert_recorded_what_was_sent(root)
    assert dataset.meta.robot_type == "koch_follower" and dataset.meta.total_episodes == 1
    actions = torch.stack([dataset.hf_dataset[i][ACTION] for i in range(len(dataset.hf_dataset))])
    assert actions[:, :5].abs().max() < 5.0  # degrees around the middle, not percentages
    assert np.ptp(actions[:, :5].numpy(), 0).max() > 0.5  # and it followed the moving leader


@pytest.mark.slow
def test_record_sigterm_in_second_episode_keeps_the_first(arm, calibration_dir, plugin_path, tmp_path):
    """SIGTERM (`kill`, a job scheduler) while the 2nd episode records: as on Ctrl-C, the dataset is finalised
    with the complete episode, the episode in progress is dropped, and the arm ends with torque off."""
    leader = FeetechEmulator.with_calibration(so_calibration())
    leader.motion = sine_motion(so_calibration())
    root = tmp_path / "so_sigterm"
    args = ["lerobot-record", *robot_args(arm, calibration_dir), *leader_args(leader, calibration_dir, "so101_leader"),
            *record_args(root, num_episodes=2, episode_time_s=5)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": plugin_path, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [str(BIN / args[0]), *args[1:]], cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    watchdog = threading.Timer(300, proc.kill)  # a hung recording fails the test instead of blocking it
    watchdog.start()
    output, torque_on_at_signal = [], None
    try:
        for line in proc.stdout:  # LeRobot logs "Recording episode 1" once episode 0 is saved
            output.append(line)
            if "Recording episode 1" in line:
                torque_on_at_signal = all(arm.torque(i) for i in arm.registers)
                proc.send_signal(signal.SIGTERM)
                break
        output.append(proc.communicate()[0])
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
        leader.close()
    log = "".join(output)
    assert torque_on_at_signal, log[-4000:]  # the signal came while the follower was being driven
    assert proc.returncode not in (None, -signal.SIGTERM, -signal.SIGKILL), log[-4000:]  # it exited by itself
    assert not any(arm.torque(i) for i in arm.registers), log[-4000:]
    dataset = assert_recorded_what_was_sent(root)  # finalised: LeRobotDataset opens it
    assert dataset.meta.total_episodes == 1 and len(dataset.hf_dataset) == dataset.meta.total_frames > 10


@pytest.mark.slow
@pytest.mark.parametrize("required", [None, ["front"]], ids=["config", "policy"])
def test_rollout_missing_policy_camera_fails_before_moving(
    required, arm, calibration_dir, plugin_path, tmp_path
):
    """A policy trained on front + wrist and a robot with only `front`: LeRobot's own check passes (one camera set
    contains the other). With the default `--robot.required_cameras` the robot config refuses it before anything
    connects; told the policy needs only `front`, the policy refuses the first observation. Either way the last
    line names the missing camera and the fix, not one goal reaches the bus, and torque ends off."""
    checkpoint = tiny_stamo_vla(tmp_path / "policy", action_std=20.0)
    required_args = [] if required is None else [f"--robot.required_cameras={json.dumps(required)}"]
    proc = run(["lerobot-rollout", f"--policy.path={checkpoint}", *robot_args(arm, calibration_dir, camera_names=("front",)),
                *required_args, "--strategy.type=base", "--duration=20", f"--task={TASK}", "--device=cpu",
                "--return_to_initial_position=false"], plugin_path, tmp_path)  # fmt: skip
    assert proc.returncode != 0, proc.stderr[-3000:]
    last_line = proc.stderr.strip().splitlines()[-1]
    if required is None:
        assert "camera(s) ['wrist']" in last_line and "Add them to --robot.cameras" in last_line, last_line
    else:
        assert "['observation.images.wrist']" in last_line and "--rename_map" in last_line, last_line
        assert "--robot.cameras" in last_line, last_line
    assert arm.goal_writes == []
    assert not any(arm.torque(i) for i in arm.registers)
