"""Helpers shared by the stamo policy tests (constants, a frame generator, a tiny dataset recorder, a tiny
checkpoint writer)."""

import json
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from lerobot.utils.constants import ACTION, OBS_IMAGES, OBS_STATE

if TYPE_CHECKING:
    from lerobot_stamo.policies.stamo import StamoPolicy

REPO_ROOT = Path(__file__).resolve().parents[2]
CAMERAS = (f"{OBS_IMAGES}.front", f"{OBS_IMAGES}.wrist")
DATASET_REPO_ID = "local/stamo_squares"
IMAGE_HW = 64
TINY_PRESET = REPO_ROOT / "configs" / "stamo_tiny.json"


def tiny_policy_fields() -> dict:
    """The model sizes of the `policy` section of configs/stamo_tiny.json (without the pretrained paths)."""
    fields = json.loads(TINY_PRESET.read_text())["policy"]
    return {k: v for k, v in fields.items() if k not in ("type", "backbone", "decoder_path", "push_to_hub")}


def square_frame(t: float, color: tuple[int, int, int], size: int = IMAGE_HW) -> np.ndarray:
    """A (H, W, 3) uint8 frame with a coloured square at a position moving with `t` in [0, 1]."""
    frame = np.full((size, size, 3), 30, dtype=np.uint8)
    side = size // 4
    x = int(t * (size - side))
    y = int((1 - t) * (size - side) * 0.5 + size * 0.2)
    frame[y : y + side, x : x + side] = color
    return frame


def record_square_dataset(root: Path, episodes: int = 2, frames: int = 10):
    """Records a LeRobotDataset v3 (images stored as PNG, not video) and returns it."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    features = {
        CAMERAS[0]: {
            "dtype": "image",
            "shape": (IMAGE_HW, IMAGE_HW, 3),
            "names": ["height", "width", "channels"],
        },
        CAMERAS[1]: {
            "dtype": "image",
            "shape": (IMAGE_HW, IMAGE_HW, 3),
            "names": ["height", "width", "channels"],
        },
        OBS_STATE: {"dtype": "float32", "shape": (6,), "names": [f"j{i}" for i in range(6)]},
        ACTION: {"dtype": "float32", "shape": (6,), "names": [f"j{i}" for i in range(6)]},
    }
    ds = LeRobotDataset.create(DATASET_REPO_ID, fps=10, features=features, root=root, use_videos=False)
    colors = [(220, 40, 40), (40, 200, 60)]
    for ep in range(episodes):
        for i in range(frames):
            t = i / (frames - 1)
            joints = np.full(6, t, dtype=np.float32) + ep
            ds.add_frame(
                {
                    CAMERAS[0]: square_frame(t, colors[ep % 2]),
                    CAMERAS[1]: square_frame(1 - t, colors[(ep + 1) % 2]),
                    OBS_STATE: joints,
                    ACTION: joints + 0.1,
                    "task": "move the square",
                }
            )
        ds.save_episode()
    ds.finalize()
    return ds


class TinyCheckpoint(NamedTuple):
    """What `tiny_stamo_checkpoint` wrote: the checkpoint folder, the policy it holds and its part folders."""

    path: Path
    policy: "StamoPolicy"
    parts: dict[str, str]


def tiny_stamo_checkpoint(root: Path, seed: int = 0, train_batch: dict | None = None) -> TinyCheckpoint:
    """Writes a tiny `stamo` checkpoint for two 64x64 cameras (`CAMERAS`) with `save_pretrained`.

    Args:
        root: Output folder; gets `parts/` (tiny DINOv2 + SD3 folders) and `pretrained_model/`.
        seed: Seed of the parts and of the policy's random initialisation.
        train_batch: If given, the policy takes 2 AdamW steps on it before it is saved, so its weights
            differ from any fresh initialisation.

    Returns:
        The checkpoint folder, the (eval-mode) policy saved there and `{"backbone": ..., "decoder_path": ...}`.
    """
    import torch
    from lerobot.configs.types import FeatureType, PolicyFeature

    from lerobot_stamo.policies.stamo import StamoConfig, StamoPolicy
    from lerobot_stamo.policies.stamo.tiny import write_tiny_pretrained

    root = Path(root)
    parts = write_tiny_pretrained(root / "parts", seed=seed)
    config = StamoConfig(
        **tiny_policy_fields(),
        **parts,
        device="cpu",
        push_to_hub=False,
        reconstruction_on_save=False,
        input_features={k: PolicyFeature(FeatureType.VISUAL, (3, IMAGE_HW, IMAGE_HW)) for k in CAMERAS},
        output_features={},
    )
    torch.manual_seed(seed)
    policy = StamoPolicy(config)
    if train_batch is not None:
        optimizer = torch.optim.AdamW(policy.get_optim_params(), lr=1e-3)
        for _ in range(2):
            loss, _ = policy.forward(train_batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    path = root / "pretrained_model"
    policy.eval().save_pretrained(path)
    return TinyCheckpoint(path, policy, parts)
