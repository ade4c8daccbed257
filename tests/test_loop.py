"""`lerobot_stamo.loop`: the StaMo loop's command builders and the runner the demo and the paper share."""

import subprocess
from pathlib import Path

import pytest

from lerobot_stamo import loop


def test_builders_name_the_dataset_and_the_world_model_only_when_it_is_on(tmp_path):
    data = loop.Data("local/robot", tmp_path / "robot", ("--dataset.episodes=[0,1]",))
    none = loop.train_stamo_vla("preset.json", data, 100, 25, "none")
    state = loop.train_stamo_vla("preset.json", data, 100, 25, "state", 5, tmp_path / "stamo")
    assert {
        "--dataset.repo_id=local/robot",
        f"--dataset.root={tmp_path / 'robot'}",
        "--dataset.episodes=[0,1]",
    } <= set(none)
    assert not any(a.startswith(("--policy.stamo_path", "--policy.future_horizon")) for a in none)
    assert {f"--policy.stamo_path={(tmp_path / 'stamo').resolve()}", "--policy.future_horizon=5",
            "--policy.world_model_targets_from=labels"} <= set(state)  # fmt: skip
    label = loop.label("ckpt", data, 5, tmp_path / "out", repo_id="local/robot_stamo")
    assert (
        label[0] == "lerobot-stamo-label"
        and "--repo_id=local/robot_stamo" in label
        and label[-1] == "--overwrite=true"
    )
    assert loop.episodes_flag(range(3)) == "[0,1,2]"


def test_run_logs_the_command_output_and_raises_when_it_fails(tmp_path):
    log = tmp_path / "label.log"
    with pytest.raises(subprocess.CalledProcessError):
        loop.run(
            ["lerobot-stamo-label", "--policy.path=/nonexistent", "--dataset.repo_id=x", "--horizon=0"], log
        )
    assert "--horizon" in Path(log).read_text()  # the script's own error, captured in the log
