"""The real CLIs end to end: plug-in discovery, lerobot-train (fresh, resumed, from --policy.path) and
lerobot-stamo-interpolate, each in a subprocess on the tiny preset and a recorded dataset."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cli_helpers import REPO_ROOT, accelerate_launch, cli
from safetensors.torch import load_file

from lerobot_stamo.stand_ins import CAMERAS, TINY_PRESET

BIN = Path(sys.executable).parent


def run_cli(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    proc = subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc


def test_plugin_discovery_registers_stamo():
    code = (
        "from lerobot.utils.import_utils import register_third_party_plugins; register_third_party_plugins(); "
        "from lerobot.configs import PreTrainedConfig; from lerobot.processor import ProcessorStepRegistry; "
        "from lerobot.policies.factory import get_policy_class, make_pre_post_processors; "
        "assert 'stamo' in PreTrainedConfig.get_known_choices(); "
        "assert get_policy_class('stamo').__name__ == 'StamoPolicy'; "
        "ProcessorStepRegistry.get('stamo_image_processor'); print('ok')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_pretrained, sim_dataset):
    """A 4-step lerobot-train run of the tiny preset, checkpointing every 2 steps.

    It trains from a copy of the tiny pretrained parts that is deleted afterwards: resuming, fine-tuning and
    interpolating below must rebuild the model from the checkpoint alone (self-contained checkpoints).
    """
    repo_id, root = sim_dataset
    out = tmp_path_factory.mktemp("train") / "run"
    parts = tmp_path_factory.mktemp("parts_deleted_after_training")
    backbone, decoder = parts / "dinov2", parts / "sd3"
    shutil.copytree(tiny_pretrained["backbone"], backbone)
    shutil.copytree(tiny_pretrained["decoder_path"], decoder)
    run_cli(
        [
            "lerobot-train",
            f"--config_path={TINY_PRESET}",
            "--policy.type=stamo",
            f"--policy.backbone={backbone}",
            f"--policy.decoder_path={decoder}",
            "--policy.push_to_hub=false",
            "--policy.device=cpu",
            f"--dataset.repo_id={repo_id}",
            f"--dataset.root={root}",
            f"--output_dir={out}",
            "--steps=4",
            "--save_freq=2",
            "--log_freq=1",
            "--batch_size=4",
            "--wandb.enable=false",
        ]
    )
    shutil.rmtree(parts)
    return out


@pytest.mark.slow
def test_train_writes_checkpoints_and_reconstructions(trained_run):
    pretrained = trained_run / "checkpoints" / "last" / "pretrained_model"
    for name in (
        "config.json",
        "model.safetensors",
        "train_config.json",
        "policy_preprocessor.json",
        "policy_postprocessor.json",
        "reconstructions.png",
        "reconstruction_metrics.json",
    ):
        assert (pretrained / name).is_file(), name
    config = json.loads((pretrained / "config.json").read_text())
    assert config["type"] == "stamo" and config["image_size"] == 64
    assert set(config["input_features"]) >= set(CAMERAS)
    assert (trained_run / "checkpoints" / "000002").is_dir() and (
        trained_run / "checkpoints" / "000004"
    ).is_dir()


@pytest.mark.slow
def test_resume_continues_training(trained_run):
    config_path = trained_run / "checkpoints" / "last" / "pretrained_model" / "train_config.json"
    before = load_file(trained_run / "checkpoints" / "000004" / "pretrained_model" / "model.safetensors")
    proc = run_cli(["lerobot-train", f"--config_path={config_path}", "--resume=true", "--steps=6"])
    assert "Resuming" in proc.stdout + proc.stderr
    after = load_file(trained_run / "checkpoints" / "000006" / "pretrained_model" / "model.safetensors")
    key = "model.compressor.split.weight"
    assert not torch.equal(before[key], after[key])  # it trained further
    frozen = "model.decoder.vae.decoder.conv_out.weight"
    assert torch.equal(before[frozen], after[frozen])  # the VAE stayed frozen


@pytest.mark.slow
def test_train_from_policy_path(trained_run, sim_dataset, tmp_path):
    repo_id, root = sim_dataset
    pretrained = trained_run / "checkpoints" / "000004" / "pretrained_model"
    run_cli(
        [
            "lerobot-train",
            f"--policy.path={pretrained}",
            "--policy.push_to_hub=false",
            f"--dataset.repo_id={repo_id}",
            f"--dataset.root={root}",
            f"--output_dir={tmp_path / 'finetune'}",
            "--steps=1",
            "--save_freq=1",
            "--batch_size=2",
            "--wandb.enable=false",
        ]
    )
    assert (
        tmp_path / "finetune" / "checkpoints" / "000001" / "pretrained_model" / "model.safetensors"
    ).is_file()


@pytest.mark.slow
def test_interpolate_cli_dataset_and_images(trained_run, sim_dataset, tmp_path):
    import imageio.v3 as iio
    import numpy as np

    repo_id, root = sim_dataset
    pretrained = trained_run / "checkpoints" / "last" / "pretrained_model"
    out = tmp_path / "from_dataset"
    run_cli(
        [
            "lerobot-stamo-interpolate",
            f"--policy.path={pretrained}",
            f"--dataset.repo_id={repo_id}",
            f"--dataset.root={root}",
            "--dataset.episode=1",
            "--dataset.frames=[0,-1]",
            "--dataset.transfer_episode=0",
            "--steps=4",
            "--num_inference_steps=2",
            f"--output_dir={out}",
        ]
    )
    strip = iio.imread(out / "interpolation.png")
    assert strip.shape == (2 * 64, (4 + 2) * 64, 3)  # two rows: a | path | b and c | transfer | blank
    assert len(iio.imread(out / "interpolation.gif", index=None)) == 4 + 2  # ping-pong

    images = []
    for i, value in enumerate((20, 200)):
        path = tmp_path / f"{i}.png"
        iio.imwrite(path, np.full((48, 48, 3), value, dtype=np.uint8))
        images.append(str(path))
    out2 = tmp_path / "from_images"
    proc = run_cli(
        [
            "lerobot-stamo-interpolate",
            f"--policy.path={pretrained}",
            "--images",
            *images,
            "--steps=3",
            "--num_inference_steps=2",
            f"--output_dir={out2}",
        ]
    )
    assert (out2 / "interpolation.gif").is_file()
    assert iio.imread(out2 / "interpolation.png").shape == (64, 5 * 64, 3)
    assert "interpolation" in proc.stderr  # the tqdm progress bar


@pytest.mark.slow
def test_accelerate_two_cpu_processes(tiny_pretrained, sim_dataset, tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2` on CPU (gloo): two ranks train and exit in time."""
    repo_id, root = sim_dataset
    out = tmp_path / "ddp"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    cmd = [
        *accelerate_launch(2), "-m", "lerobot.scripts.lerobot_train",
        f"--config_path={TINY_PRESET}", f"--policy.backbone={tiny_pretrained['backbone']}",
        f"--policy.decoder_path={tiny_pretrained['decoder_path']}", "--policy.device=cpu",
        f"--dataset.repo_id={repo_id}", f"--dataset.root={root}", f"--output_dir={out}",
        "--steps=3", "--save_freq=3", "--log_freq=1", "--batch_size=2", "--wandb.enable=false",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)  # fmt: skip
    try:
        log, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the whole launcher group, both ranks included
        log, _ = proc.communicate()
        pytest.fail(f"accelerate run did not exit within 300 s:\n{log[-4000:]}")
    assert proc.returncode == 0, log[-6000:]
    assert "Effective batch size: 2 x 2 = 4" in log  # world size 2: two ranks ran
    assert "End of training" in log
    assert (out / "checkpoints" / "000003" / "pretrained_model" / "model.safetensors").is_file()


@pytest.mark.slow
def test_train_from_feature_cache(tiny_pretrained, stamo_dataset, tmp_path):
    repo_id, root = stamo_dataset
    cache = tmp_path / "cache"
    run_cli(
        [cli("lerobot-stamo-feature-cache"), "--preset", str(TINY_PRESET), "--set",
         "train_backbone=false", "device=cpu", f"backbone={tiny_pretrained['backbone']}",
         f"decoder_path={tiny_pretrained['decoder_path']}", "--repo_id", repo_id, "--root", str(root),
         "--output", str(cache)]
    )  # fmt: skip
    assert json.loads((cache / "cache_info.json").read_text())["num_frames"] == 20
    proc = run_cli(
        ["lerobot-train", f"--config_path={TINY_PRESET}", "--policy.train_backbone=false",
         f"--policy.feature_cache={cache}", f"--policy.backbone={tiny_pretrained['backbone']}",
         f"--policy.decoder_path={tiny_pretrained['decoder_path']}", "--policy.device=cpu",
         f"--dataset.repo_id={repo_id}", f"--dataset.root={root}", f"--output_dir={tmp_path / 'run'}",
         "--steps=2", "--save_freq=2", "--batch_size=4", "--wandb.enable=false"]
    )  # fmt: skip
    assert "Training from the frozen-feature cache" in proc.stdout + proc.stderr


def test_train_lora_in_bfloat16(tiny_pretrained, stamo_dataset, tmp_path):
    """The `small` preset's setting at tiny size: LoRA on a DiT stored in bf16, accelerate's bf16 mixed precision."""
    from safetensors import safe_open

    from lerobot_stamo.policies.stamo import StamoPolicy

    repo_id, root = stamo_dataset
    run_cli(
        ["lerobot-train", f"--config_path={TINY_PRESET}", "--policy.decoder_mode=lora", "--policy.dtype=bfloat16",
         "--policy.train_backbone=false", f"--policy.backbone={tiny_pretrained['backbone']}",
         f"--policy.decoder_path={tiny_pretrained['decoder_path']}", "--policy.device=cpu",
         f"--dataset.repo_id={repo_id}", f"--dataset.root={root}", f"--output_dir={tmp_path / 'run'}",
         "--steps=2", "--save_freq=2", "--batch_size=4", "--wandb.enable=false"]
    )  # fmt: skip
    ckpt = tmp_path / "run" / "checkpoints" / "last" / "pretrained_model"
    with safe_open(ckpt / "model.safetensors", "pt") as f:
        dtypes = {
            k: f.get_slice(k).get_dtype() for k in f.keys() if k.startswith("model.decoder.transformer.")
        }
    assert {d for k, d in dtypes.items() if "lora_" in k} == {"F32"}  # trained adapters
    assert {d for k, d in dtypes.items() if "lora_" not in k} == {"BF16"}  # the frozen DiT: half the size
    policy = StamoPolicy.from_pretrained(ckpt).for_inference()
    frames = torch.rand(2, 3, 32, 32)
    assert torch.isfinite(policy.encode(frames)).all()
