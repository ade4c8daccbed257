"""Fixtures of the latent-motion tests: a tiny `stamo` checkpoint saved with `save_pretrained` (loaded by
path, like a real one), a video-only recording, and a checkpoint of another policy type."""

from pathlib import Path

import pytest

from lerobot_stamo.envs.recording import SimRecordConfig, record
from lerobot_stamo.stand_ins import IMAGE_HW, tiny_stamo_checkpoint


@pytest.fixture(scope="session")
def stamo_checkpoint(tmp_path_factory) -> Path:
    """Folder of a tiny random `stamo` checkpoint (config.json + model.safetensors)."""
    return tiny_stamo_checkpoint(tmp_path_factory.mktemp("stamo_ckpt"), seed=0).path


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
    return tiny_stamo_checkpoint(tmp_path_factory.mktemp("stamo_ckpt_b"), seed=1).path
