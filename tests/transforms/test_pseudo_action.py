"""The `stamo_pseudo_action` processor step: through the pipeline API and inside a real `lerobot-train`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lerobot.processor import PolicyProcessorPipeline, ProcessorStepRegistry, TransitionKey
from lerobot.processor.converters import batch_to_transition, transition_to_batch

from lerobot_stamo.columns import VALID_KEY, motion_key
from lerobot_stamo.policies.stamo import StamoPolicy, StamoPseudoActionStep

FRONT, WRIST = "observation.images.front", "observation.images.wrist"
HERE = Path(__file__).resolve().parent


def frames(b: int, t: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, t, 3, 64, 64, generator=torch.Generator().manual_seed(seed))  # (B, T, 3, H, W)


def pipeline(step) -> PolicyProcessorPipeline:
    return PolicyProcessorPipeline(
        steps=[step],
        name="policy_preprocessor",
        to_transition=batch_to_transition,
        to_output=transition_to_batch,
    )


def test_step_is_registered():
    assert ProcessorStepRegistry.get("stamo_pseudo_action") is StamoPseudoActionStep


def test_step_adds_motion_of_the_frame_pair(stamo_checkpoint):
    step = StamoPseudoActionStep(policy_path=str(stamo_checkpoint), cameras=[FRONT, WRIST])
    front, wrist = frames(3, 2, 0), frames(3, 2, 1)
    pad = torch.tensor([[False, False], [False, True], [False, False]])
    batch = {FRONT: front, WRIST: wrist, "observation.state": torch.zeros(3, 2, 6), f"{FRONT}_is_pad": pad}
    out = pipeline(step)(batch)

    policy = StamoPolicy.from_pretrained(stamo_checkpoint).eval()
    for key, x in ((FRONT, front), (WRIST, wrist)):
        expected = policy.motion(policy.encode(x[:, 0]), policy.encode(x[:, 1]))  # (B, N, D)
        assert out[motion_key(key)].shape == (3, 2, 32)
        torch.testing.assert_close(out[motion_key(key)], expected, atol=1e-5, rtol=1e-5)
    assert out[VALID_KEY].tolist() == [True, False, True]  # the padded future frame is masked
    torch.testing.assert_close(out[FRONT], front)  # frames pass through unchanged


def test_step_is_a_no_op_on_single_frames(stamo_checkpoint):
    step = StamoPseudoActionStep(policy_path=str(stamo_checkpoint))
    batch = {FRONT: frames(2, 1)[:, 0], WRIST: frames(2, 1)[:, 0], "observation.state": torch.zeros(2, 6)}
    out = pipeline(step)(batch)
    assert not any("stamo" in k for k in out)
    assert step._encoder is None  # the encoder is not even loaded at eval / rollout


def test_step_config_is_json_safe_and_reloads(stamo_checkpoint, tmp_path):
    step = StamoPseudoActionStep(policy_path=str(stamo_checkpoint), cameras=[FRONT], end_index=1)
    json.dumps(step.get_config())
    pipe = pipeline(step)
    pipe.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "policy_preprocessor.json").read_text())
    assert config["steps"][0]["registry_name"] == "stamo_pseudo_action"
    reloaded = PolicyProcessorPipeline.from_pretrained(
        tmp_path,
        config_filename="policy_preprocessor.json",
        to_transition=batch_to_transition,
        to_output=transition_to_batch,
    )
    assert reloaded.steps[0].get_config() == step.get_config()
    batch = {FRONT: frames(2, 3)}
    torch.testing.assert_close(reloaded(batch)[motion_key(FRONT)], pipe(batch)[motion_key(FRONT)])


def test_step_refuses_a_non_stamo_checkpoint(act_checkpoint):
    step = StamoPseudoActionStep(policy_path=str(act_checkpoint), cameras=[FRONT])
    with pytest.raises(TypeError, match="not a 'stamo' one"):
        pipeline(step)({FRONT: frames(1, 2)})
    _ = TransitionKey  # (imported for readers: the step reads COMPLEMENTARY_DATA pad flags)


def run_train(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`lerobot-train` in a subprocess that first imports the throw-away `motion_test` policy."""
    code = "import motion_test_policy; from lerobot.scripts.lerobot_train import main; main()"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"lerobot-train failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc


@pytest.mark.slow
def test_step_inside_lerobot_train_reaches_forward_and_reloads(stamo_checkpoint, sim_dataset, tmp_path):
    repo_id, root = sim_dataset
    common = [
        f"--dataset.repo_id={repo_id}",
        f"--dataset.root={root}",
        "--dataset.video_backend=pyav",
        "--batch_size=4",
        "--num_workers=0",
        "--log_freq=1",
        "--wandb.enable=false",
        "--policy.device=cpu",
        "--policy.push_to_hub=false",
    ]
    out = tmp_path / "train"
    proc = run_train(
        [
            "--policy.type=motion_test",
            f"--policy.stamo_path={stamo_checkpoint}",
            "--policy.horizon=2",
            "--steps=3",
            "--save_freq=3",
            f"--output_dir={out}",
            *common,
        ],
        tmp_path,
    )
    # forward raises without the motion key, so three logged steps prove it reached forward.
    assert "motion_abs" in proc.stdout + proc.stderr
    ckpt = out / "checkpoints" / "last" / "pretrained_model"
    pre = json.loads((ckpt / "policy_preprocessor.json").read_text())
    names = [s.get("registry_name") for s in pre["steps"]]
    assert "stamo_pseudo_action" in names and names.index("stamo_pseudo_action") < names.index(
        "normalizer_processor"
    )

    # Reload through --policy.path (the step is rebuilt from the saved processor JSON) and train on.
    run_train(
        [
            f"--policy.path={ckpt}",
            "--steps=1",
            "--save_freq=1",
            f"--output_dir={tmp_path / 'again'}",
            *common,
        ],
        tmp_path,
    )

    # Evaluation-style single frames through the saved preprocessor: no label, no encoder.
    import motion_test_policy  # noqa: F401  (tests/transforms is on pytest's path)
    from lerobot.configs import PreTrainedConfig
    from lerobot.policies.factory import make_pre_post_processors

    cfg = PreTrainedConfig.from_pretrained(ckpt)
    preprocessor, _ = make_pre_post_processors(cfg, pretrained_path=str(ckpt))
    obs = {FRONT: torch.rand(3, 64, 64), WRIST: torch.rand(3, 64, 64), "observation.state": torch.zeros(6)}
    out_batch = preprocessor(obs)
    assert motion_key(FRONT) not in out_batch and out_batch[FRONT].shape == (1, 3, 64, 64)
