"""The plug-in's excepthook and log filter are on in the runs that use it, and nowhere else: a user training
ACT with the plug-in installed sees LeRobot's own output and exit behaviour (`lerobot_stamo.activation`)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import cli

from lerobot_stamo import activation
from lerobot_stamo.console import TORCHCODEC_HELP

CONFIGS = Path(__file__).resolve().parents[1] / "lerobot_stamo" / "configs"


def test_env_evaluated_by_train(tmp_path):
    saved = tmp_path / "train_config.json"
    saved.write_text(json.dumps({"env": {"type": "pusht"}, "env_eval_freq": 100}))
    train = "/venv/bin/lerobot-train"
    assert activation.env_evaluated_by_train([train, "--env.type=stamo_so101"]) == "stamo_so101"
    assert (
        activation.env_evaluated_by_train(
            ["/venv/lib/lerobot/scripts/lerobot_train.py", f"--config_path={saved}"]
        )
        == "pusht"
    )
    assert activation.env_evaluated_by_train([train, f"--config_path={saved}", "--env_eval_freq=0"]) is None
    assert activation.env_evaluated_by_train([train, "--policy.type=stamo"]) is None
    assert activation.env_evaluated_by_train(["lerobot-eval", "--env.type=stamo_so101"]) is None


@pytest.mark.parametrize(
    "argv",
    [
        ["lerobot-train", "--policy.type=stamo_vla", "--dataset.repo_id=a/b"],
        ["lerobot-train", "--policy.type", "stamo"],
        ["lerobot-record", "--robot.type=stamo_so100", "--robot.port=/dev/ttyACM0"],
        ["lerobot-teleoperate", "--robot.type=so100_follower", "--teleop.type=stamo_koch_leader"],
        ["lerobot-eval", "--policy.path=x", "--env.type=stamo_so101"],
        ["lerobot-train", f"--config_path={CONFIGS / 'stamo_vla_compact_sim.json'}"],
        ["lerobot-rollout", f"--config_path={CONFIGS / 'rollout_so101.json'}"],
        ["/venv/bin/lerobot-stamo-label", "--help"],
    ],
)
def test_uses_stamo(argv):
    assert activation.uses_stamo(argv)


def test_checkpoint_of_a_stamo_policy_uses_stamo(tmp_path):
    (tmp_path / "stamo").mkdir()
    (tmp_path / "stamo" / "config.json").write_text(json.dumps({"type": "stamo_vla"}))
    (tmp_path / "act").mkdir()
    (tmp_path / "act" / "config.json").write_text(json.dumps({"type": "act"}))
    assert activation.uses_stamo(["lerobot-eval", f"--policy.path={tmp_path / 'stamo'}"])
    assert not activation.uses_stamo(["lerobot-eval", f"--policy.path={tmp_path / 'act'}"])


@pytest.mark.parametrize(
    "argv",
    [
        ["lerobot-train", "--policy.type=act", "--dataset.repo_id=lerobot/pusht"],
        ["lerobot-record", "--robot.type=so101_follower", "--dataset.single_task=stamo"],
        ["lerobot-eval", "--policy.path=lerobot/diffusion_pusht", "--env.type=pusht"],
        ["lerobot-train", "--config_path=/nowhere/train.json"],
        ["python", "-c", "import lerobot_stamo"],
        [],
    ],
)
def test_does_not_use_stamo(argv):
    assert not activation.uses_stamo(argv)


PROBE = """
import logging, sys
sys.argv = {argv!r}
import lerobot_policy_stamo  # what LeRobot's plug-in discovery does
lerobot_logger = logging.getLogger("lerobot.utils.import_utils")
print(sys.excepthook is sys.__excepthook__, not lerobot_logger.filters)
from lerobot_stamo.policies.stamo import StamoConfig
StamoConfig(device="cpu")  # the plug-in comes into use
print(sys.excepthook is sys.__excepthook__, not lerobot_logger.filters)
"""


def test_import_changes_nothing_until_the_plugin_is_used():
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=["lerobot-train", "--policy.type=act"])],
        capture_output=True, text=True, check=True,
    ).stdout.split("\n")  # fmt: skip
    assert out[:2] == ["True True", "False False"]


@pytest.mark.slow
def test_lerobot_train_act_keeps_lerobots_own_output(tmp_path):
    """The same failing command (a dataset that is not there, offline), with ACT and with stamo: LeRobot's own
    traceback for ACT, and for stamo the plug-in's last line naming the folder."""
    missing = tmp_path / "missing"
    procs = {
        policy: subprocess.Popen(
            [
                cli("lerobot-train"),
                f"--policy.type={policy}",
                "--policy.push_to_hub=false",
                "--policy.device=cpu",
                "--dataset.repo_id=local/nothing",
                f"--dataset.root={missing}",
                f"--output_dir={tmp_path / policy}",
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for policy in ("act", "stamo")
    }
    runs = {policy: (p.communicate(timeout=300), p.returncode) for policy, p in procs.items()}
    (_, act_err), act_rc = runs["act"]
    assert act_rc == 1
    last = act_err.strip().splitlines()[-1]
    assert last.startswith("huggingface_hub.errors.OfflineModeIsEnabled"), act_err[-2000:]
    assert "error: " not in act_err and TORCHCODEC_HELP not in act_err
    (_, stamo_err), stamo_rc = runs["stamo"]
    assert stamo_rc == 1
    assert f"--dataset.root={missing}: no such folder" in stamo_err.strip().splitlines()[-1], stamo_err[
        -2000:
    ]
