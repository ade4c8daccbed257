"""Self-contained `stamo` checkpoints: the parts' configurations live in config.json, every weight in
model.safetensors; the folders the parts came from are provenance only (issue 12, part 2)."""

import json
import shutil

import pytest
import torch
from lerobot.configs import PreTrainedConfig

from lerobot_stamo.policies.stamo import StamoPolicy
from lerobot_stamo.stand_ins import CAMERAS, tiny_stamo_checkpoint


def _encode_decode(policy, frames):
    states = policy.encode(frames)
    return states, policy.decode(states, num_inference_steps=2, generator=torch.Generator().manual_seed(0))


def test_loading_prints_nothing_but_what_others_print(tmp_path, capsys):
    """LeRobot prints "Loading weights from local directory" on every local load, between progress bars: dropped."""
    ckpt = tiny_stamo_checkpoint(tmp_path / "train")
    capsys.readouterr()
    StamoPolicy.from_pretrained(ckpt.path)
    assert capsys.readouterr().out == ""


def test_moved_checkpoint_loads_without_its_parts(tmp_path, square_batch, stamo_dataset, monkeypatch):
    from lerobot_stamo.transforms.labelling import (
        LabelConfig,
        LabelDatasetArgs,
        LabelPolicyArgs,
        label_dataset,
    )

    frames = square_batch[CAMERAS[0]]
    ckpt = tiny_stamo_checkpoint(tmp_path / "train", seed=3, train_batch=square_batch)
    states, images = _encode_decode(ckpt.policy, frames)

    saved = json.loads((ckpt.path / "config.json").read_text())
    assert set(saved["part_configs"]) == {"backbone", "transformer", "vae", "scheduler"}
    assert saved["backbone"] == ckpt.parts["backbone"]  # provenance kept
    assert saved["part_configs"]["transformer"]["_class_name"] == "SD3Transformer2DModel"

    moved = tmp_path / "elsewhere" / "stamo_ckpt"
    shutil.move(ckpt.path, moved)
    shutil.rmtree(tmp_path / "train" / "parts")
    monkeypatch.chdir(tmp_path / "elsewhere")

    loaded = StamoPolicy.from_pretrained(moved)
    states2, images2 = _encode_decode(loaded, frames)
    assert torch.equal(states, states2)
    assert torch.equal(images, images2)

    repo_id, root = stamo_dataset
    out = tmp_path / "labelled"
    label_dataset(
        LabelConfig(
            policy=LabelPolicyArgs(path=str(moved)),
            dataset=LabelDatasetArgs(repo_id=repo_id, root=str(root)),
            output_dir=str(out),
            horizon=2,
            num_workers=0,
        )
    )
    assert (out / "meta" / "info.json").is_file()


def test_checkpoint_without_part_configs_loads_the_old_way(tmp_path, square_batch, caplog):
    ckpt = tiny_stamo_checkpoint(tmp_path, seed=3, train_batch=square_batch)
    config_file = ckpt.path / "config.json"
    config = json.loads(config_file.read_text())
    del config["part_configs"]
    config_file.write_text(json.dumps(config))

    frames = square_batch[CAMERAS[1]]
    loaded = StamoPolicy.from_pretrained(ckpt.path)
    assert "predates self-contained checkpoints" in caplog.text
    assert torch.equal(ckpt.policy.encode(frames), loaded.encode(frames))

    shutil.rmtree(tmp_path / "parts")
    with pytest.raises(OSError, match="policy.backbone"):
        StamoPolicy.from_pretrained(ckpt.path)


def test_truncated_part_configs_name_the_missing_part(tmp_path, square_batch):
    ckpt = tiny_stamo_checkpoint(tmp_path, seed=3, train_batch=square_batch)
    config_file = ckpt.path / "config.json"
    config = json.loads(config_file.read_text())
    del config["part_configs"]["vae"]
    config_file.write_text(json.dumps(config))
    assert "vae" not in PreTrainedConfig.from_pretrained(ckpt.path).part_configs
    with pytest.raises(ValueError, match=r"lacks \['vae'\]"):
        StamoPolicy.from_pretrained(ckpt.path)
