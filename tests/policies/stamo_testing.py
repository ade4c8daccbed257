"""Helpers shared by the stamo policy tests (constants, a frame generator, a tiny dataset recorder)."""

import json
from pathlib import Path

import numpy as np
from lerobot.utils.constants import ACTION, OBS_IMAGES, OBS_STATE

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
