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
