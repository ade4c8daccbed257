"""Fixtures of the latent-motion tests: a tiny `stamo` checkpoint saved with `save_pretrained` (loaded by
path, like a real one), a video-only recording, and a checkpoint of another policy type."""

import json
from pathlib import Path

import pytest
import torch
from lerobot.configs.types import FeatureType, PolicyFeature

from lerobot_stamo.policies.stamo import StamoConfig, StamoPolicy
from lerobot_stamo.policies.stamo.tiny import write_tiny_pretrained
from lerobot_stamo.scripts.lerobot_stamo_sim_record import SimRecordConfig, record

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_PRESET = REPO_ROOT / "configs" / "stamo_tiny.json"
CAMERAS = ("observation.images.front", "observation.images.wrist")
IMAGE_HW = 64


def tiny_stamo_config(pretrained: dict[str, str]) -> StamoConfig:
    """The tiny preset of configs/stamo_tiny.json with the given pretrained part folders, on the CPU."""
    fields = json.loads(TINY_PRESET.read_text())["policy"]
    fields = {k: v for k, v in fields.items() if k not in ("type", "backbone", "decoder_path", "push_to_hub")}
    return StamoConfig(
        **fields,
        **pretrained,
        device="cpu",
        push_to_hub=False,
        reconstruction_on_save=False,
        input_features={
            k: PolicyFeature(type=FeatureType.VISUAL, shape=(3, IMAGE_HW, IMAGE_HW)) for k in CAMERAS
        },
        output_features={},
    )


@pytest.fixture(scope="session")
def stamo_checkpoint(tmp_path_factory) -> Path:
    """Folder of a tiny random `stamo` checkpoint (config.json + model.safetensors)."""
    root = tmp_path_factory.mktemp("stamo_ckpt")
    pretrained = write_tiny_pretrained(root / "pretrained", seed=0)
    torch.manual_seed(0)
    policy = StamoPolicy(tiny_stamo_config(pretrained))
    policy.save_pretrained(root / "pretrained_model")
    return root / "pretrained_model"


@pytest.fixture(scope="session")
def video_dataset(tmp_path_factory) -> tuple[str, Path]:
    """(repo_id, root) of 2 unlabelled simulated episodes: camera frames and task only, no action/state."""
    root = tmp_path_factory.mktemp("video") / "so101_video"
    repo_id = "local/so101_video"
    record(
        SimRecordConfig(
            repo_id=repo_id,
            root=root,
            num_episodes=2,
            video_only=True,
            observation_height=IMAGE_HW,
            observation_width=IMAGE_HW,
        )
    )
    return repo_id, root


@pytest.fixture(scope="session")
def act_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint folder of another policy type (only its config.json: the type check reads nothing else)."""
    from lerobot.policies.act.configuration_act import ACTConfig

    path = tmp_path_factory.mktemp("act_ckpt")
    ACTConfig(device="cpu", push_to_hub=False, pretrained_backbone_weights=None)._save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def image_named_dataset(tmp_path_factory) -> tuple[str, Path]:
    """(repo_id, root) of 3 episodes whose cameras are `observation.image` / `observation.images.wrist_image`."""
    from labelling_utils import write_image_named_dataset

    root = tmp_path_factory.mktemp("image_named") / "pusht_like"
    write_image_named_dataset(root, "local/pusht_like")
    return "local/pusht_like", root


@pytest.fixture(scope="session")
def other_stamo_checkpoint(tmp_path_factory) -> Path:
    """A second tiny `stamo` checkpoint with other random weights (checkpoint "B")."""
    root = tmp_path_factory.mktemp("stamo_ckpt_b")
    pretrained = write_tiny_pretrained(root / "pretrained", seed=1)
    torch.manual_seed(1)
    policy = StamoPolicy(tiny_stamo_config(pretrained))
    policy.save_pretrained(root / "pretrained_model")
    return root / "pretrained_model"
