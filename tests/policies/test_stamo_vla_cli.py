"""`stamo_vla` through LeRobot's own CLIs on datasets the tests record: lerobot-train (labelled columns, online
encoder targets, `vision=stamo`, a tiny VLM, 2 CPU processes), --resume, --policy.path, lerobot-eval."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cli_helpers import REPO_ROOT, SIM_IMAGE_HW, accelerate_launch
from safetensors.torch import load_file

from lerobot_stamo.stand_ins import write_tiny_smolvlm

BIN = Path(sys.executable).parent
SIM_CONFIG = REPO_ROOT / "configs" / "stamo_vla_compact_sim.json"
# A small compact trunk: the CLI tests check the plumbing, not the learning.
SMALL = ["--policy.dim_model=32", "--policy.n_heads=4", "--policy.n_layers=1", "--policy.dim_feedforward=64",
         "--policy.world_model_hidden_dim=32", "--policy.chunk_size=4", "--policy.n_action_steps=2"]  # fmt: skip


def run_cli(args: list[str], timeout: int = 400, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "WANDB_MODE": "disabled",
        "MUJOCO_GL": "egl",
    }
    proc = subprocess.run(
        [str(BIN / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc


def train_args(repo_id: str, root: Path, out: Path, steps: int = 2, *extra: str) -> list[str]:
    return ["lerobot-train", "--policy.type=stamo_vla", "--policy.device=cpu", "--policy.push_to_hub=false",
            *SMALL, f"--dataset.repo_id={repo_id}", f"--dataset.root={root}", f"--output_dir={out}",
            f"--steps={steps}", f"--save_freq={steps}", "--log_freq=1", "--batch_size=4", "--num_workers=0",
            "--wandb.enable=false", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory, labelled_sim) -> Path:
    """`lerobot-train --config_path=configs/stamo_vla_compact_sim.json` on the labelled dataset, 4 steps."""
    repo_id, root = labelled_sim
    out = tmp_path_factory.mktemp("train") / "run"
    args = train_args(repo_id, root, out, 4, "--save_freq=2")
    args[1] = f"--config_path={SIM_CONFIG}"  # the ready-made config, with the small trunk on top
    run_cli(args)
    return out


def test_plugin_discovery_registers_stamo_vla():
    code = (
        "from lerobot.utils.import_utils import register_third_party_plugins; register_third_party_plugins(); "
        "from lerobot.configs import PreTrainedConfig; from lerobot.processor import ProcessorStepRegistry; "
        "from lerobot.policies.factory import get_policy_class; "
        "assert 'stamo_vla' in PreTrainedConfig.get_known_choices(); "
        "assert get_policy_class('stamo_vla').__name__ == 'StamoVLAPolicy'; "
        "ProcessorStepRegistry.get('stamo_vla_image_processor'); ProcessorStepRegistry.get('stamo_vla_byte_tokenizer'); "
        "print('ok')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


@pytest.mark.slow
def test_train_with_labelled_columns(trained):
    pretrained = trained / "checkpoints" / "last" / "pretrained_model"
    config = json.loads((pretrained / "config.json").read_text())
    assert config["type"] == "stamo_vla" and config["world_model_target"] == "state"
    assert config["future_horizon"] == 2  # taken from the labels
    assert not any(k.startswith("observation.stamo") for k in config["input_features"])
    assert set(config["target_features"]) >= {
        "observation.stamo_state.front",
        "observation.stamo_motion.wrist",
    }
    weights = load_file(pretrained / "model.safetensors")
    assert any(k.startswith("model.world_model_head") for k in weights)
    assert bool(weights["model.target_norm.fixed"])  # normalised with the labelled columns' dataset stats
    train_config = json.loads((pretrained / "train_config.json").read_text())
    assert train_config["batch_size"] == 4


@pytest.mark.slow
def test_resume_and_policy_path(trained, labelled_sim, tmp_path):
    config_path = trained / "checkpoints" / "last" / "pretrained_model" / "train_config.json"
    before = load_file(trained / "checkpoints" / "000004" / "pretrained_model" / "model.safetensors")
    proc = run_cli(["lerobot-train", f"--config_path={config_path}", "--resume=true", "--steps=6"])
    assert "Resuming" in proc.stdout + proc.stderr
    after = load_file(trained / "checkpoints" / "000006" / "pretrained_model" / "model.safetensors")
    assert not torch.equal(before["model.action_head.out.1.weight"], after["model.action_head.out.1.weight"])

    repo_id, root = labelled_sim
    pretrained = trained / "checkpoints" / "000004" / "pretrained_model"
    run_cli(["lerobot-train", f"--policy.path={pretrained}", "--policy.push_to_hub=false",
             f"--dataset.repo_id={repo_id}", f"--dataset.root={root}", f"--output_dir={tmp_path / 'ft'}",
             "--steps=1", "--save_freq=1", "--batch_size=2", "--num_workers=0", "--wandb.enable=false"])  # fmt: skip
    assert (tmp_path / "ft" / "checkpoints" / "000001" / "pretrained_model" / "model.safetensors").is_file()


@pytest.mark.slow
def test_lerobot_eval_on_the_simulated_arm(trained, tmp_path):
    pretrained = trained / "checkpoints" / "last" / "pretrained_model"
    out = tmp_path / "eval"
    run_cli(["lerobot-eval", f"--policy.path={pretrained}", "--env.type=stamo_so101", "--env.task=PickCube",
             f"--env.observation_height={SIM_IMAGE_HW}", f"--env.observation_width={SIM_IMAGE_HW}",
             "--eval.n_episodes=1", "--eval.batch_size=1", "--eval.use_async_envs=false", "--policy.device=cpu",
             f"--output_dir={out}"])  # fmt: skip
    overall = json.loads((out / "eval_info.json").read_text())["overall"]
    assert overall["n_episodes"] == 1 and 0.0 <= overall["pc_success"] <= 100.0


@pytest.mark.slow
def test_efficientnet_vision_trains_reloads_and_evaluates(labelled_sim, tmp_path):
    """`--policy.vision=efficientnet_lite0`: the frozen ImageNet trunk trains through lerobot-train, is saved
    inside the checkpoint unchanged, and the checkpoint drives the simulated arm in lerobot-eval."""
    from lerobot_stamo.policies.efficientnet import imagenet_state_dict

    repo_id, root = labelled_sim
    out = tmp_path / "effnet"
    run_cli(train_args(repo_id, root, out, 2, "--policy.vision=efficientnet_lite0"))
    pretrained = out / "checkpoints" / "last" / "pretrained_model"
    assert json.loads((pretrained / "config.json").read_text())["vision"] == "efficientnet_lite0"
    weights = load_file(pretrained / "model.safetensors")
    imagenet = imagenet_state_dict()
    for key in ("_conv_stem.weight", "_blocks.15._project_conv.weight"):
        assert torch.equal(weights[f"model.trunk.vision.body.net.{key}"], imagenet[key])  # frozen by default

    run_cli(["lerobot-eval", f"--policy.path={pretrained}", "--env.type=stamo_so101", "--env.task=PickCube",
             f"--env.observation_height={SIM_IMAGE_HW}", f"--env.observation_width={SIM_IMAGE_HW}",
             "--eval.n_episodes=1", "--eval.batch_size=1", "--eval.use_async_envs=false", "--policy.device=cpu",
             f"--output_dir={tmp_path / 'eval'}"])  # fmt: skip
    overall = json.loads((tmp_path / "eval" / "eval_info.json").read_text())["overall"]
    assert overall["n_episodes"] == 1 and 0.0 <= overall["pc_success"] <= 100.0


@pytest.mark.slow
def test_train_with_encoder_targets_and_stamo_vision(sim_dataset, stamo_ckpt, tmp_path):
    """No labels: frames t and t+k are encoded by the frozen stamo in the preprocessor; and `vision=stamo`."""
    repo_id, root = sim_dataset
    out = tmp_path / "online"
    run_cli(
        train_args(repo_id, root, out, 2, f"--policy.stamo_path={stamo_ckpt}", "--policy.future_horizon=3")
    )
    pretrained = out / "checkpoints" / "last" / "pretrained_model"
    config = json.loads((pretrained / "config.json").read_text())
    assert config["stamo_path"] == str(stamo_ckpt) and config["world_model_target"] == "state"  # auto: on
    # The online targets' columns are recorded: the checkpoint loads without the stamo checkpoint.
    assert set(config["target_features"]) == {f"observation.stamo_{c}.{cam}" for c in ("state", "motion")
                                              for cam in ("front", "wrist")}  # fmt: skip
    pre = json.loads((pretrained / "policy_preprocessor.json").read_text())
    assert "stamo_pseudo_action" in [s.get("registry_name") for s in pre["steps"]]
    weights = load_file(pretrained / "model.safetensors")
    assert not bool(weights["model.target_norm.fixed"]) and weights["model.target_norm.count"] > 0  # running

    out2 = tmp_path / "stamo_vision"
    run_cli(train_args(repo_id, root, out2, 2, f"--policy.stamo_path={stamo_ckpt}", "--policy.vision=stamo",
                       "--policy.world_model_target=motion"))  # fmt: skip
    weights = load_file(out2 / "checkpoints" / "last" / "pretrained_model" / "model.safetensors")
    assert "model.trunk.vision.proj.weight" in weights
    assert not any(k.startswith("model.trunk.vision._encoder") or "compressor" in k for k in weights)


@pytest.mark.slow
def test_train_tiny_vlm(sim_dataset, tmp_path):
    """On a dataset without StaMo labels and no stamo_path, the default world model (`auto`) is off, said once."""
    repo_id, root = sim_dataset
    vlm = write_tiny_smolvlm(tmp_path / "tiny_smolvlm")
    out = tmp_path / "vlm"
    proc = run_cli(train_args(repo_id, root, out, 2, "--policy.backbone=vlm", f"--policy.vlm_path={vlm}",
                              "--policy.vlm_dtype=float32", "--policy.vlm_num_layers=null"))  # fmt: skip
    log = proc.stdout + proc.stderr
    assert log.count("the world-model head is off") == 1 and "--policy.stamo_path=<stamo checkpoint>" in log
    pretrained = out / "checkpoints" / "last" / "pretrained_model"
    assert json.loads((pretrained / "config.json").read_text())["world_model_target"] == "none"
    pre = json.loads((pretrained / "policy_preprocessor.json").read_text())
    tok = next(s for s in pre["steps"] if s.get("registry_name") == "stamo_vla_tokenizer")
    assert tok["config"]["tokenizer_name"] == str(vlm)
    weights = load_file(pretrained / "model.safetensors")
    assert any("lora_A" in k for k in weights)


@pytest.mark.slow
def test_accelerate_two_cpu_processes(labelled_sim, tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2` on CPU (gloo): two ranks train and exit in time."""
    repo_id, root = labelled_sim
    out = tmp_path / "ddp"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    args = train_args(repo_id, root, out, 2)[1:]
    proc = subprocess.Popen([*accelerate_launch(2), "-m", "lerobot.scripts.lerobot_train", *args], cwd=REPO_ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        log, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        log, _ = proc.communicate()
        pytest.fail(f"accelerate run did not exit within 300 s:\n{log[-4000:]}")
    assert proc.returncode == 0, log[-6000:]
    assert "Effective batch size: 4 x 2 = 8" in log  # world size 2: two ranks ran
    assert (out / "checkpoints" / "000002" / "pretrained_model" / "model.safetensors").is_file()


def test_config_error_is_visible_under_lerobot_train(labelled_sim):
    """draccus swallows config errors ("Couldn't instantiate class"): ours is still printed, with the fix."""
    repo_id, root = labelled_sim
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(BIN / "lerobot-train"), "--policy.type=stamo_vla", "--policy.vision=stamo", "--policy.push_to_hub=false",
         f"--dataset.repo_id={repo_id}", f"--dataset.root={root}"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "`policy.vision=stamo` reads the states of a frozen stamo checkpoint" in proc.stderr
    assert "--policy.stamo_path=" in proc.stderr
