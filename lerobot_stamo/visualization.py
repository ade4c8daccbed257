"""Pictures of datasets: a contact sheet of recorded episodes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


def contact_sheet(
    repo_id: str,
    root: str | Path,
    output_path: str | Path,
    frames_per_episode: int = 6,
    max_episodes: int = 4,
) -> Path:
    """Write a PNG grid of a LeRobotDataset's frames: one row per (episode, camera), evenly spaced frames.

    The frames are read back through ``LeRobotDataset`` (video decoding included), so the sheet also
    shows that the dataset loads.

    Args:
        repo_id: Dataset id.
        root: Local dataset folder.
        output_path: Where to write the PNG.
        frames_per_episode: Columns: frames sampled evenly from the first to the last of each episode.
        max_episodes: Episodes shown (the first ones).

    Returns:
        The path of the written PNG.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    dataset = LeRobotDataset(repo_id, root=root)
    cameras = dataset.meta.camera_keys
    if not cameras:
        raise ValueError(f"Dataset {repo_id} at {root} has no camera features: nothing to draw.")
    episodes = list(dataset.meta.episodes)[:max_episodes]
    rows = [(ep, cam) for ep in episodes for cam in cameras]
    fig, axes = plt.subplots(
        len(rows), frames_per_episode, figsize=(1.6 * frames_per_episode, 1.7 * len(rows)), squeeze=False
    )
    for r, (ep, cam) in enumerate(rows):
        start, end = int(ep["dataset_from_index"]), int(ep["dataset_to_index"])
        for c, idx in enumerate(np.linspace(start, end - 1, frames_per_episode).round().astype(int)):
            item = dataset[int(idx)]
            ax = axes[r, c]
            ax.imshow(item[cam].permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"t={int(item['frame_index'])}", fontsize=7)
            if c == 0:
                ax.set_ylabel(f"ep {ep['episode_index']}\n{cam.rsplit('.', 1)[-1]}", fontsize=8)
    task = dataset[int(episodes[0]["dataset_from_index"])]["task"]
    fig.suptitle(f"{repo_id}: {task}", fontsize=9)
    fig.tight_layout()
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output_path, dpi=110)
    plt.close(fig)
    logger.info("Wrote %s", output_path)
    return output_path
