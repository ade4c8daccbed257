"""`stamo_vla` with a real (tiny) `stamo` checkpoint and a recorded dataset: it learns, `predict_future`
decodes what it expects to see, the StaMo encoder stays off the inference path, and clear errors for
mismatched `stamo` checkpoints."""

import json
from pathlib import Path
from unittest import mock

import pytest
import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata
from lerobot.utils.constants import ACTION
from lerobot.utils.feature_utils import dataset_to_policy_features
from safetensors.torch import load_file, save_file

from lerobot_stamo.policies.stamo import StamoPolicy
from lerobot_stamo.policies.stamo_vla import (
    StamoVLAConfig,
    StamoVLAPolicy,
    make_stamo_vla_pre_post_processors,
)

SMALL = dict(dim_model=32, n_heads=4, n_layers=1, dim_feedforward=64, world_model_hidden_dim=64, chunk_size=4,
             n_action_steps=2, device="cpu", push_to_hub=False)  # fmt: skip


LEARNING_STEPS = 300
LEARNING_RATE = 1e-3


def policy_for(root: Path, **overrides) -> tuple[StamoVLAPolicy, LeRobotDatasetMetadata]:
    """A small stamo_vla built from a dataset's metadata the way `make_policy` builds it."""
    meta = LeRobotDatasetMetadata("local/test", root=root)
    feats = dataset_to_policy_features(meta.features)
    config = StamoVLAConfig(
        **(SMALL | overrides),
        input_features={k: v for k, v in feats.items() if k != ACTION},
        output_features={ACTION: feats[ACTION]},
    )
    torch.manual_seed(0)
    return StamoVLAPolicy(config, dataset_stats=meta.stats, dataset_meta=meta), meta


@pytest.mark.longest(minutes=1.5)  # on the 2-core CI machine
def test_learns_actions_and_world_model(labelled_sim):
    """Not a smoke test: on recorded PickCube episodes both losses fall well below where they started."""
    _, root = labelled_sim
    policy, meta = policy_for(root, resize_images=(32, 32))  # 32 px frames: 4x cheaper, still learnable
    pre, _ = make_stamo_vla_pre_post_processors(policy.config, meta.stats)
    delta = {ACTION: [i / meta.fps for i in range(policy.config.chunk_size)]}
    dataset = LeRobotDataset("local/test", root=root, delta_timestamps=delta)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    batches = [
        pre(batch) for batch in loader
    ]  # decoded once: the test times the learning, not the video decoder
    optimizer = torch.optim.AdamW(policy.parameters(), lr=LEARNING_RATE)
    policy.train()
    history = []
    for step in range(LEARNING_STEPS):
        loss, info = policy.forward(batches[step % len(batches)])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(info)
    first = {k: sum(h[k] for h in history[:5]) / 5 for k in ("action_loss", "future_loss")}
    last = {
        k: sum(h[k] for h in history[-len(batches) :]) / len(batches) for k in ("action_loss", "future_loss")
    }
    assert last["action_loss"] < 0.5 * first["action_loss"], (first, last)
    assert last["future_loss"] < 0.7 * first["future_loss"], (first, last)


def observation(root: Path, index: int = 0) -> dict:
    """One dataset frame as an env/robot would give it (no action, no StaMo columns), with its task."""
    item = LeRobotDataset("local/test", root=root)[index]
    return {k: v for k, v in item.items() if k.startswith("observation.") and "stamo" not in k} | {
        "task": item["task"]
    }


@pytest.mark.parametrize("target", ["state", "motion"])
def test_predict_future_decodes_images(labelled_sim, stamo_ckpt, target):
    _, root = labelled_sim
    policy, meta = policy_for(root, world_model_target=target, stamo_path=str(stamo_ckpt),
                              world_model_targets_from="labels")  # fmt: skip
    pre, _ = make_stamo_vla_pre_post_processors(policy.config, meta.stats)
    batch = pre(observation(root))
    out = policy.predict_future(batch, num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    cams = ["observation.images.front", "observation.images.wrist"]
    assert list(out["states"]) == cams and out["states"][cams[0]].shape == (1, 2, 32)
    image = out["images"][cams[1]]
    assert image.shape == (1, 3, 64, 64) and 0 <= image.min() and image.max() <= 1
    assert "images" not in policy.predict_future(batch, decode=False)


def test_encoder_never_runs_at_inference(labelled_sim, stamo_ckpt):
    """With online targets the preprocessor holds the StaMo encoder, but single frames never reach it."""
    _, root = labelled_sim
    policy, meta = policy_for(root, stamo_path=str(stamo_ckpt), world_model_targets_from="encoder")
    pre, _ = make_stamo_vla_pre_post_processors(policy.config, meta.stats)
    with (
        mock.patch.object(StamoPolicy, "encode", side_effect=AssertionError("encoder ran")),
        mock.patch.object(policy.model.world_model_head, "forward", side_effect=AssertionError("head ran")),
    ):
        action = policy.select_action(pre(observation(root)))
    assert action.shape == (1, 6)
    step = next(s for s in pre.steps if type(s).__name__ == "StamoPseudoActionStep")
    assert step._encoder is None  # never even loaded


def test_error_stamo_path_not_a_stamo_checkpoint(labelled_sim, tmp_path):
    from lerobot.policies.act.configuration_act import ACTConfig

    ACTConfig(device="cpu", push_to_hub=False, pretrained_backbone_weights=None)._save_pretrained(tmp_path)
    _, root = labelled_sim
    with pytest.raises(Exception, match="stamo") as err:
        policy_for(root, stamo_path=str(tmp_path))
    assert "act" in str(err.value).lower()


def test_error_stamo_checkpoint_with_other_cameras_or_size(labelled_sim, stamo_ckpt, tmp_path):
    _, root = labelled_sim
    config = json.loads((stamo_ckpt / "config.json").read_text())
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.safetensors").symlink_to(stamo_ckpt / "model.safetensors")
    feats = config["input_features"]
    renamed = dict(config, input_features={k.replace("front", "top"): v for k, v in feats.items()})
    (other / "config.json").write_text(json.dumps(renamed))
    with pytest.raises(ValueError, match="observation.images.top"):
        policy_for(root, stamo_path=str(other), world_model_targets_from="encoder")
    bigger = dict(config, input_features={k: dict(v, shape=[3, 96, 96]) for k, v in feats.items()})
    (other / "config.json").write_text(json.dumps(bigger))
    with pytest.raises(ValueError, match=r"\(3, 96, 96\)"):
        policy_for(root, stamo_path=str(other), world_model_targets_from="encoder")


def test_error_horizon(labelled_sim, stamo_ckpt):
    _, root = labelled_sim
    with pytest.raises(ValueError, match="labelled with horizon 2"):
        policy_for(root, future_horizon=3)
    with pytest.raises(ValueError, match="shortest episode"):
        policy_for(
            root, stamo_path=str(stamo_ckpt), world_model_targets_from="encoder", future_horizon=10_000
        )


def test_error_vlm_without_tasks(labelled_sim):
    _, root = labelled_sim
    meta = LeRobotDatasetMetadata("local/test", root=root)
    meta.tasks = meta.tasks.iloc[0:0]  # a dataset recorded without task strings
    feats = dataset_to_policy_features(meta.features)
    config = StamoVLAConfig(
        **SMALL,
        backbone="vlm",
        vlm_path="not/needed-the-check-comes-first",
        world_model_target="none",
        input_features={k: v for k, v in feats.items() if k != ACTION},
        output_features={ACTION: feats[ACTION]},
    )
    with pytest.raises(ValueError, match="no task strings"):
        StamoVLAPolicy(config, dataset_meta=meta)


def test_error_stamo_path_is_not_the_labelling_checkpoint(labelled_sim, stamo_ckpt, tmp_path):
    _, root = labelled_sim
    other = tmp_path / "other_stamo"
    other.mkdir()
    (other / "config.json").write_text((stamo_ckpt / "config.json").read_text())
    weights = load_file(stamo_ckpt / "model.safetensors")
    save_file(
        {k: v + 1 if v.is_floating_point() else v for k, v in weights.items()}, other / "model.safetensors"
    )
    with pytest.raises(ValueError, match="holds other weights"):
        policy_for(root, stamo_path=str(other), world_model_targets_from="labels")


def test_checkpoint_loads_without_the_stamo_checkpoint(labelled_sim, stamo_ckpt, tmp_path):
    """`stamo_path` only decodes predicted futures: a policy moved to a robot computer loads and acts without it."""
    import shutil

    _, root = labelled_sim
    stamo_copy = tmp_path / "stamo"
    shutil.copytree(stamo_ckpt, stamo_copy)
    for source in ("labels", "encoder"):
        policy, meta = policy_for(root, stamo_path=str(stamo_copy), world_model_targets_from=source)
        pre, _ = make_stamo_vla_pre_post_processors(policy.config, meta.stats)
        policy.save_pretrained(tmp_path / source)
        batch = pre(observation(root))
        expected = policy.predict_action_chunk(batch)
    shutil.rmtree(stamo_copy)
    for source in ("labels", "encoder"):
        loaded = StamoVLAPolicy.from_pretrained(tmp_path / source)
        assert loaded.predict_action_chunk(batch).shape == expected.shape
        with pytest.raises(Exception, match="stamo"):
            loaded.predict_future(batch)  # decoding needs the stamo checkpoint
