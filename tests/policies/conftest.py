"""Fixtures of the stamo policy tests: the tiny pretrained parts (written by path), a tiny config and a small
recorded LeRobotDataset v3 (2 episodes of a moving coloured square, two cameras)."""

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lerobot.configs.types import FeatureType, PolicyFeature  # noqa: E402
from lerobot.utils.constants import ACTION, OBS_STATE  # noqa: E402

from lerobot_stamo.policies.stamo import StamoConfig  # noqa: E402
from lerobot_stamo.policies.stamo.tiny import write_tiny_pretrained  # noqa: E402
from lerobot_stamo.stand_ins import (
    CAMERAS,
    DATASET_REPO_ID,
    IMAGE_HW,
    record_square_dataset,
    square_frame,
    tiny_policy_fields,
    tiny_stamo_checkpoint,
)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread: tiny models gain nothing from two, and lose 100x when the 2 cores are busy."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_pretrained(tmp_path_factory) -> dict[str, str]:
    """Tiny random DINOv2 + SD3 folders in the Hub layout: `{"backbone": ..., "decoder_path": ...}`."""
    return write_tiny_pretrained(tmp_path_factory.mktemp("stamo_tiny_pretrained"), seed=0)


@pytest.fixture
def make_tiny_config(tiny_pretrained):
    """Builds a tiny StamoConfig on the CPU with two cameras; keyword arguments override fields."""

    def make(**overrides) -> StamoConfig:
        fields = {
            **tiny_policy_fields(),
            **tiny_pretrained,
            "device": "cpu",
            "push_to_hub": False,
            "input_features": {
                key: PolicyFeature(type=FeatureType.VISUAL, shape=(3, IMAGE_HW, IMAGE_HW)) for key in CAMERAS
            }
            | {OBS_STATE: PolicyFeature(type=FeatureType.STATE, shape=(6,))},
            "output_features": {ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(6,))},
        }
        fields.update(overrides)
        return StamoConfig(**fields)

    return make


@pytest.fixture(scope="session")
def stamo_dataset(tmp_path_factory):
    """(repo_id, root) of a small recorded dataset with cameras observation.images.front / .wrist."""
    root = tmp_path_factory.mktemp("datasets") / "stamo_squares"
    record_square_dataset(root)
    return DATASET_REPO_ID, root


@pytest.fixture
def square_batch() -> dict[str, torch.Tensor]:
    """A fixed batch of 4 frames per camera, float in [0, 1], shape (4, 3, 64, 64)."""
    batch = {}
    for c, key in enumerate(CAMERAS):
        frames = [square_frame(t, (200, 50 + 60 * c, 40)) for t in (0.0, 0.3, 0.6, 1.0)]
        batch[key] = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0
    return batch


@pytest.fixture(scope="session")
def stamo_ckpt(tmp_path_factory):
    """A tiny random `stamo` checkpoint folder for the simulated arm's two 64x64 cameras."""
    return tiny_stamo_checkpoint(tmp_path_factory.mktemp("stamo")).path


@pytest.fixture(scope="session")
def labelled_sim(tmp_path_factory, stamo_ckpt, sim_dataset):
    """(repo_id, root): the recorded PickCube episodes labelled with StaMo states and motion at horizon 2."""
    from lerobot_stamo.transforms.labelling import (
        LabelConfig,
        LabelDatasetArgs,
        LabelPolicyArgs,
        label_dataset,
    )

    repo_id, root = sim_dataset
    out = tmp_path_factory.mktemp("labelled") / "so101_pickcube_stamo"
    label_dataset(
        LabelConfig(
            policy=LabelPolicyArgs(path=str(stamo_ckpt)),
            dataset=LabelDatasetArgs(repo_id=repo_id, root=str(root)),
            output_dir=str(out),
            horizon=2,
            num_workers=0,
        )
    )
    return f"{repo_id}_stamo", out
