"""LeRobot's own CLIs on the simulated arm: lerobot-train on a recorded dataset, then lerobot-eval."""

import json

import pytest
from cli_helpers import SIM_IMAGE_HW, cli, run_cli

TINY_ACT = [
    "--policy.type=act",
    "--policy.pretrained_backbone_weights=null",  # no ImageNet download offline
    "--policy.dim_model=32",
    "--policy.n_heads=2",
    "--policy.dim_feedforward=64",
    "--policy.n_encoder_layers=1",
    "--policy.n_decoder_layers=1",
    "--policy.chunk_size=5",
    "--policy.n_action_steps=5",
    "--policy.use_vae=false",
    "--policy.push_to_hub=false",
    "--policy.device=cpu",
]


@pytest.mark.slow
def test_train_act_then_eval_on_stamo_so101(sim_dataset, tmp_path):
    repo_id, root = sim_dataset
    out = tmp_path / "train"
    run_cli(
        [
            cli("lerobot-train"),
            *TINY_ACT,
            f"--dataset.repo_id={repo_id}",
            f"--dataset.root={root}",
            "--dataset.video_backend=pyav",
            "--steps=3",
            "--batch_size=2",
            "--save_freq=3",
            "--log_freq=1",
            "--num_workers=0",
            "--wandb.enable=false",
            f"--output_dir={out}",
        ],
        cwd=tmp_path,
    )
    policy_dir = out / "checkpoints" / "last" / "pretrained_model"
    assert (policy_dir / "model.safetensors").exists()

    eval_dir = tmp_path / "eval"
    run_cli(
        [
            cli("lerobot-eval"),
            f"--policy.path={policy_dir}",
            "--env.type=stamo_so101",
            "--env.task=PickCube",
            f"--env.observation_height={SIM_IMAGE_HW}",
            f"--env.observation_width={SIM_IMAGE_HW}",
            "--env.episode_length=15",
            "--eval.n_episodes=2",
            "--eval.batch_size=1",
            "--policy.device=cpu",
            f"--output_dir={eval_dir}",
        ],
        cwd=tmp_path,
    )
    info = json.loads((eval_dir / "eval_info.json").read_text())
    overall = info["overall"]
    assert overall["n_episodes"] == 2
    # An untrained policy does not lift the cube: a missing is_success would have reported 100.
    assert overall["pc_success"] < 100
    per_episode = info["per_task"][0]["metrics"]["successes"]
    assert per_episode == [False, False]
