"""Self-contained `stamo` checkpoints: the parts' configurations live in config.json, every weight in
model.safetensors; the folders the parts came from are provenance only (issue 12, part 2)."""

import json
import shutil

import pytest
import torch
from lerobot.configs import PreTrainedConfig
from lerobot.configs.types import FeatureType, PolicyFeature
from stamo_testing import CAMERAS, IMAGE_HW, tiny_policy_fields

from lerobot_stamo.policies.stamo import StamoConfig, StamoPolicy
from lerobot_stamo.policies.stamo.tiny import write_tiny_pretrained


def _trained_checkpoint(root, square_batch):
    """Writes fresh tiny parts under `root/parts`, trains 2 steps from them and saves `root/ckpt`."""
    parts = write_tiny_pretrained(root / "parts", seed=3)
    config = StamoConfig(
        **tiny_policy_fields(),
        **parts,
        device="cpu",
        push_to_hub=False,
        reconstruction_on_save=False,
        input_features={k: PolicyFeature(FeatureType.VISUAL, (3, IMAGE_HW, IMAGE_HW)) for k in CAMERAS},
        output_features={},
    )
    torch.manual_seed(0)
    policy = StamoPolicy(config)
    optimizer = torch.optim.AdamW(policy.get_optim_params(), lr=1e-3)
    for _ in range(2):
        loss, _ = policy.forward(square_batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    policy.eval().save_pretrained(root / "ckpt")
    return policy, parts


def _encode_decode(policy, frames):
    states = policy.encode(frames)
    return states, policy.decode(states, num_inference_steps=2, generator=torch.Generator().manual_seed(0))


def test_moved_checkpoint_loads_without_its_parts(tmp_path, square_batch, stamo_dataset, monkeypatch):
    from lerobot_stamo.transforms.labelling import (
        LabelConfig,
        LabelDatasetArgs,
        LabelPolicyArgs,
        label_dataset,
    )

    frames = square_batch[CAMERAS[0]]
    policy, parts = _trained_checkpoint(tmp_path / "train", square_batch)
    states, images = _encode_decode(policy, frames)

    saved = json.loads((tmp_path / "train" / "ckpt" / "config.json").read_text())
    assert set(saved["part_configs"]) == {"backbone", "transformer", "vae", "scheduler"}
    assert saved["backbone"] == parts["backbone"]  # provenance kept
    assert saved["part_configs"]["transformer"]["_class_name"] == "SD3Transformer2DModel"

    moved = tmp_path / "elsewhere" / "stamo_ckpt"
    shutil.move(tmp_path / "train" / "ckpt", moved)
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
    policy, _ = _trained_checkpoint(tmp_path, square_batch)
    config_file = tmp_path / "ckpt" / "config.json"
    config = json.loads(config_file.read_text())
    del config["part_configs"]
    config_file.write_text(json.dumps(config))

    frames = square_batch[CAMERAS[1]]
    loaded = StamoPolicy.from_pretrained(tmp_path / "ckpt")
    assert "predates self-contained checkpoints" in caplog.text
    assert torch.equal(policy.encode(frames), loaded.encode(frames))

    shutil.rmtree(tmp_path / "parts")
    with pytest.raises(OSError, match="policy.backbone"):
        StamoPolicy.from_pretrained(tmp_path / "ckpt")


def test_truncated_part_configs_name_the_missing_part(tmp_path, square_batch):
    _trained_checkpoint(tmp_path, square_batch)
    config_file = tmp_path / "ckpt" / "config.json"
    config = json.loads(config_file.read_text())
    del config["part_configs"]["vae"]
    config_file.write_text(json.dumps(config))
    assert "vae" not in PreTrainedConfig.from_pretrained(tmp_path / "ckpt").part_configs
    with pytest.raises(ValueError, match=r"lacks \['vae'\]"):
        StamoPolicy.from_pretrained(tmp_path / "ckpt")
