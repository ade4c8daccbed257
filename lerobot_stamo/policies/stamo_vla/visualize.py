"""What a trained `stamo_vla` expects to see: its world-model head's predicted futures, decoded into images."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lerobot.utils.constants import OBS_STATE
from tqdm import tqdm

from lerobot_stamo.policies.stamo.images import grid, prepare_images

from .modeling_stamo_vla import StamoVLAPolicy

logger = logging.getLogger(__name__)

GAP = 4  # white pixels between column groups and between rows


def write_future_strip(
    policy: StamoVLAPolicy,
    preprocessor: Any,
    dataset: Any,
    episode: int,
    out_png: Path,
    num_frames: int = 4,
    num_inference_steps: int = 10,
) -> Path:
    """Writes a PNG comparing the policy's decoded predicted futures with what actually happened.

    For `num_frames` evenly spaced frames t of one episode (from its first frame to the last one that still
    has a frame t+k, k = `policy.config.horizon`), the policy reads the single-frame observation (cameras,
    joint state and task, through `preprocessor`) and `policy.predict_future` decodes its predicted StaMo
    states s(t+k) with the `stamo` checkpoint of `policy.config.stamo_path`.

    Layout (every image at the stamo's `image_size`, white gaps between groups and rows)::

        row per camera the world-model head predicts (`policy.target_cameras`, e.g. front, then wrist):
        | frame t0 | predicted t0+k | actual t0+k |  | frame t1 | predicted t1+k | actual t1+k |  ...

    Args:
        policy: A trained `stamo_vla` policy with a world-model head and a `stamo_path`.
        preprocessor: The policy's preprocessor (`make_pre_post_processors(policy.config, pretrained_path=...)`).
        dataset: A `LeRobotDataset` with the policy's cameras (and joint state), e.g. its training dataset.
        episode: Index of the episode to draw.
        out_png: Where to write the PNG (parent folders are created).
        num_frames: Frames t sampled from the episode (column groups).
        num_inference_steps: Euler steps of each decode.

    Returns:
        `out_png`.

    Raises:
        ValueError: If the policy cannot decode its predictions, the episode is not in the dataset, or it is
            not longer than the horizon k.
    """
    config = policy.config
    if policy.model.world_model_head is None or not config.stamo_path:
        raise ValueError(
            "write_future_strip decodes the world-model head's predictions: it needs a stamo_vla trained with "
            f"a world-model head (got `world_model_target={config.world_model_target}`) and "
            f"`policy.config.stamo_path` set to the stamo checkpoint (got {config.stamo_path!r})."
        )
    if num_frames < 1:
        raise ValueError(f"`num_frames` must be >= 1, got {num_frames}.")
    if episode not in range(dataset.meta.total_episodes):
        raise ValueError(
            f"Episode {episode} is not in the dataset (episodes 0..{dataset.meta.total_episodes - 1})."
        )
    ep = dataset.meta.episodes[episode]
    start, end = int(ep["dataset_from_index"]), int(ep["dataset_to_index"])  # absolute frame indices
    k = config.horizon
    if end - start <= k:
        raise ValueError(
            f"Episode {episode} has {end - start} frames: no frame t has a frame t+{k}. Choose a longer episode."
        )
    rows_of = dataset.absolute_to_relative_idx  # None unless the dataset was loaded with `episodes=[...]`
    if rows_of is not None and start not in rows_of:
        raise ValueError(f"Episode {episode} was not loaded: create the dataset with it in `episodes`.")

    def frame(index: int) -> dict[str, Any]:
        return dataset[index if rows_of is None else rows_of[index]]

    size = policy.stamo_policy().config.image_size
    cameras = policy.target_cameras
    times = np.linspace(start, end - 1 - k, num_frames).round().astype(int)
    columns: dict[str, list[np.ndarray]] = {key: [] for key in cameras}
    policy.eval()
    for t in tqdm(times, desc="predicted futures", unit="frame"):
        now, later = frame(int(t)), frame(int(t) + k)
        observation = {key: now[key] for key in config.camera_keys} | {"task": now["task"]}
        if config.state_dim:
            observation[OBS_STATE] = now[OBS_STATE]
        generator = torch.Generator().manual_seed(0)  # the same initial noise for every decode
        future = policy.predict_future(
            preprocessor(observation), num_inference_steps=num_inference_steps, generator=generator
        )
        for key in cameras:
            triplet = torch.cat(
                [
                    prepare_images(now[key], size, key=key),  # (1, 3, S, S)
                    prepare_images(future["images"][key].cpu(), size, key=f"predicted {key}"),
                    prepare_images(later[key], size, key=key),
                ]
            )  # (3, 3, S, S)
            columns[key].append(grid([triplet]).numpy())  # (S, 3S, 3) uint8
    rows = [_join(columns[key], axis=1) for key in cameras]
    image = _join(rows, axis=0)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    import imageio.v3 as iio

    iio.imwrite(out_png, image)
    logger.info(
        "Wrote %s: rows %s; per frame t: [t | predicted t+%d | actual t+%d], t = %s",
        out_png,
        [key.rsplit(".", 1)[-1] for key in cameras],
        k,
        k,
        [int(t - start) for t in times],
    )
    return out_png


def _join(images: list[np.ndarray], axis: int) -> np.ndarray:
    """Concatenates (H, W, 3) uint8 images along `axis` (1: side by side, 0: stacked) with white gaps."""
    shape = list(images[0].shape)
    shape[axis] = GAP
    gap = np.full(shape, 255, dtype=np.uint8)
    parts = [part for image in images for part in (gap, image)][1:]
    return np.concatenate(parts, axis=axis)
