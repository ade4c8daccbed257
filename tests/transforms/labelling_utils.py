"""Helpers of the labelling tests: read the written columns back."""

from pathlib import Path

import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset

from lerobot_stamo.transforms import load_labels


def read_labelled(root: Path) -> tuple[LeRobotDataset, dict[str, torch.Tensor]]:
    """Opens a labelled dataset and returns it with every stamo column stacked over all frames."""
    info = load_labels(root)
    ds = LeRobotDataset(f"{info['source_repo_id']}_stamo", root=root)
    keys = [k for k in ds.meta.features if ".stamo_" in k]
    return ds, {k: torch.stack(list(ds.hf_dataset[k])) for k in keys}


# Camera names LeRobot's stats code treats as images by substring ("image"): LeRobot's pusht uses
# `observation.image`, the LIBERO datasets `observation.images.image` / `observation.images.wrist_image`.
IMAGE_NAMED_CAMERAS = ("observation.image", "observation.images.wrist_image")


def write_image_named_dataset(root: Path, repo_id: str, episodes=(14, 12, 5), hw: int = 32) -> None:
    """A tiny robot dataset of moving squares: cameras `IMAGE_NAMED_CAMERAS` (the first stored as video, the
    second as images), 6-d state and action.

    The last episode is short, for horizons longer than some episodes.
    """
    import numpy as np

    features = {
        cam: {
            "dtype": "video" if c == 0 else "image",
            "shape": (hw, hw, 3),
            "names": ["height", "width", "channels"],
        }
        for c, cam in enumerate(IMAGE_NAMED_CAMERAS)
    }
    features |= {
        key: {"dtype": "float32", "shape": (6,), "names": [f"j{i}" for i in range(6)]}
        for key in ("observation.state", "action")
    }
    ds = LeRobotDataset.create(repo_id, fps=10, features=features, root=root, use_videos=True)
    rng = np.random.default_rng(0)
    for length in episodes:
        start = rng.integers(0, hw // 2, size=2)
        for t in range(length):
            frame: dict = {"task": "move the square"}
            for c, cam in enumerate(IMAGE_NAMED_CAMERAS):
                img = np.full((hw, hw, 3), 30 + 80 * c, dtype=np.uint8)
                y, x = (start + t) % (hw - 8)
                img[y : y + 8, x : x + 8] = (220, 60 + 100 * c, 40)
                frame[cam] = img
            q = np.full(6, t / length, dtype=np.float32) + rng.normal(0, 0.01, 6).astype(np.float32)
            frame["observation.state"], frame["action"] = q, q + 0.1
            ds.add_frame(frame)
        ds.save_episode()
    ds.finalize()
