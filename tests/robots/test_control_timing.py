"""Control-loop timing on the StaMo arms: late ticks reported once per episode with the measured figures, and
real-time chunking (`lerobot-rollout --inference.type=rtc`) for `stamo_vla`."""

import logging
import re

import pytest
import torch
from arm_testing import TASK, assert_recorded_what_was_sent, robot_args, run, tiny_stamo_vla
from lerobot.policies.rtc.configuration_rtc import RTCConfig
from lerobot.utils.constants import OBS_LANGUAGE_ATTENTION_MASK, OBS_LANGUAGE_TOKENS, OBS_STATE

from lerobot_stamo.policies.stamo_vla import StamoVLAPolicy
from lerobot_stamo.robots.timing import LOOP_LOGGERS, ControlTiming

LATE = (
    "Record loop is running slower ({:.1f} Hz) than the target FPS (30 Hz). Dataset frames might be dropped and "
    "robot control might be unstable."
)


def tick(timing: ControlTiming, policy_s: float) -> None:
    timing.observed(0.0)
    timing._observed_at -= policy_s  # the policy took `policy_s` between the observation and the action
    timing.sent(timing.acting())


def test_late_ticks_reported_once_per_episode(caplog):
    timing = ControlTiming("arm")
    timing.install()
    caplog.set_level(logging.INFO)
    rollout = logging.getLogger("lerobot.rollout.strategies.episodic")
    queue = logging.getLogger("lerobot.policies.rtc.action_queue")
    try:
        for episode, slow in ((0, [12.0, 20.0, 9.5]), (1, [])):
            logging.info(f"Recording episode {episode}")
            for hz in slow:
                tick(timing, policy_s=0.09)
                rollout.warning(LATE.format(hz))
                logging.warning(
                    "Relative goal position magnitude had to be clamped to be safe.\n{'gripper': ...}"
                )
                queue.warning("Indexes diff is not equal to real delay. indexes_diff=3, real_delay=4")
            for _ in range(7):
                tick(timing, policy_s=0.002)
            logging.info("Reset the environment")
    finally:
        timing.close()
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # The first of each kind (late tick, clamp, RTC delay), then one summary; episode 1 had none.
    assert len(lines) == 4, lines
    assert lines[0].startswith("arm: the control loop missed its 30 Hz period (12.0 Hz")
    assert lines[1].startswith("Relative goal position") and lines[2].startswith("Indexes diff")
    summary = lines[3]
    assert summary.startswith("arm (episode 0): max_relative_target limited 3 of 10 actions")
    assert "Real-time chunking: 3 chunks" in summary
    assert "3 of 10 control ticks missed the 30 Hz period (33.3 ms)" in summary
    assert "12.0 Hz (median), 9.5 Hz at the slowest" in summary
    assert re.search(r"90\.0 ms at most", summary) and "--inference.type=rtc" in summary
    assert all(timing not in logging.getLogger(name).filters for name in LOOP_LOGGERS)
    logging.warning(LATE.format(5.0))  # removed at close: LeRobot's own warning again
    assert caplog.records[-1].getMessage().startswith("Record loop is running slower")


def test_late_ticks_of_a_run_without_episodes_reported_at_disconnect(caplog):
    timing = ControlTiming("arm")
    timing.install()
    caplog.set_level(logging.INFO)
    for _ in range(4):
        tick(timing, policy_s=0.001)
        logging.warning(LATE.format(25.0))
    timing.close()
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == 2 and lines[1].startswith("arm (run): 4 of 4 control ticks")
    assert timing.segments[0]["ticks"] == 4 and len(timing.segments[0]["late_hz"]) == 4
    assert "--inference.type=rtc" not in lines[1]  # the policy took 1 ms: not what missed the period


def rtc_policy(tmp_path, horizon: int = 3) -> StamoVLAPolicy:
    policy = StamoVLAPolicy.from_pretrained(tiny_stamo_vla(tmp_path / "policy", action_std=1.0))
    policy.config.rtc_config = RTCConfig(execution_horizon=horizon)
    return policy


def observation() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    batch = {f"observation.images.{c}": torch.rand(1, 3, 32, 32) for c in ("front", "wrist")}
    return batch | {
        OBS_STATE: torch.randn(1, 6),
        OBS_LANGUAGE_TOKENS: torch.randint(1, 255, (1, 32)),
        OBS_LANGUAGE_ATTENTION_MASK: torch.ones(1, 32, dtype=torch.bool),
    }


def test_rtc_chunk_continues_the_previous_one(tmp_path):
    policy, batch = rtc_policy(tmp_path), observation()  # chunk_size 4, execution_horizon 3
    fresh = policy.predict_action_chunk(batch)
    previous = torch.full((3, 6), 5.0)
    chunk = policy.predict_action_chunk(batch, inference_delay=1, prev_chunk_left_over=previous)
    torch.testing.assert_close(chunk[0, 0], previous[0])  # executed while this chunk was computed
    for step, weight in ((1, 2 / 3), (2, 1 / 3)):  # linear hand-over until the execution horizon
        torch.testing.assert_close(chunk[0, step], weight * previous[step] + (1 - weight) * fresh[0, step])
    torch.testing.assert_close(chunk[0, 3], fresh[0, 3])  # past the execution horizon: the new chunk
    # LeRobot pads a short leftover with zero rows: they are not actions to continue.
    padded = torch.cat([previous[:1], torch.zeros(2, 6)])
    chunk = policy.predict_action_chunk(batch, inference_delay=0, prev_chunk_left_over=padded)
    torch.testing.assert_close(chunk[0, 1:], fresh[0, 1:])
    torch.testing.assert_close(chunk[0, 0], 0.5 * previous[0] + 0.5 * fresh[0, 0])
    # Synchronous inference (no rtc_config) and RTC disabled ignore the leftover.
    policy.config.rtc_config.enabled = False
    torch.testing.assert_close(policy.predict_action_chunk(batch, 1, previous), fresh)
    policy.config.rtc_config = None
    torch.testing.assert_close(policy.predict_action_chunk(batch, 1, previous), fresh)


@pytest.mark.slow
def test_recording_rollout_with_rtc_inference(so_emulator, calibration_dir, plugin_path, tmp_path):
    """The rollout configs' setting: episodes recorded while a background thread computes the chunks."""
    checkpoint = tiny_stamo_vla(tmp_path / "policy", action_std=20.0)
    root = tmp_path / "rollout_rtc"
    proc = run(["lerobot-rollout", f"--policy.path={checkpoint}", *robot_args(so_emulator, calibration_dir),
                "--strategy.type=episodic", "--dataset.repo_id=local/rollout_rtc", f"--dataset.root={root}",
                f"--dataset.single_task={TASK}", "--dataset.episode_time_s=2", "--dataset.reset_time_s=0",
                "--dataset.num_episodes=2", "--dataset.video=false", "--dataset.push_to_hub=false",
                "--play_sounds=false", f"--task={TASK}", "--device=cpu", "--inference.type=rtc",
                "--inference.queue_threshold=2", "--inference.rtc.execution_horizon=2"], plugin_path, tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    dataset = assert_recorded_what_was_sent(root)
    assert dataset.meta.total_episodes == 2 and dataset.meta.total_frames >= 20  # the queue kept being filled
    # LeRobot's per-tick warnings are replaced by at most one line each and one summary per episode.
    assert proc.stderr.count("Record loop is running slower") == 0
    assert proc.stderr.count("Relative goal position magnitude") <= 2
    assert proc.stderr.count("StamoSO100 (episode") <= 2
