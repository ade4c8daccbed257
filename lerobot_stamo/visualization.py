"""Pictures of datasets and rollouts: a contact sheet of recorded episodes, an evaluation video as a GIF."""

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
    video_backend: str | None = None,
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
        video_backend: Video decoder ("torchcodec" or "pyav"; default: ``console.video_backend()``).

    Returns:
        The path of the written PNG.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from lerobot_stamo.console import video_backend as default_video_backend

    dataset = LeRobotDataset(repo_id, root=root, video_backend=video_backend or default_video_backend())
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


def video_to_gif(video_path: str | Path, gif_path: str | Path, max_frames: int = 50) -> Path:
    """Converts a video (e.g. an episode `lerobot-eval` rendered) into a looping GIF.

    The frames are decoded with imageio's pyav plugin and subsampled evenly to at most `max_frames`; each
    GIF frame lasts as long as the video frames it stands for, so the GIF plays in real time.

    Args:
        video_path: The video file (MP4 or anything PyAV decodes).
        gif_path: Where to write the GIF (parent folders are created).
        max_frames: Most frames kept.

    Returns:
        The path of the written GIF.

    Raises:
        FileNotFoundError: If `video_path` does not exist.
        ValueError: If the video has no frames.
    """
    import imageio.v3 as iio

    video_path, gif_path = Path(video_path), Path(gif_path)
    if not video_path.is_file():
        raise FileNotFoundError(f"Video {video_path} not found.")
    fps = float(iio.immeta(video_path, plugin="pyav").get("fps") or 10.0)
    frames = iio.imread(video_path, plugin="pyav")  # (T, H, W, 3) uint8
    if len(frames) == 0:
        raise ValueError(f"Video {video_path} has no frames.")
    step = -(-len(frames) // max(1, max_frames))  # ceil: keep at most max_frames
    kept = frames[::step]
    gif_path.parent.mkdir(parents=True, exist_ok=True)
    # Pillow's GIF writer takes the frame duration in milliseconds.
    iio.imwrite(gif_path, kept, extension=".gif", duration=1000.0 * step / fps, loop=0)
    logger.info("Wrote %s (%d of %d frames of %s)", gif_path, len(kept), len(frames), video_path)
    return gif_path
