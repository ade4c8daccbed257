"""A cache of the frozen parts' outputs (backbone tokens and SD3-VAE posteriors) for a dataset.

The backbone tokens are DINOv2's patch features, or the frozen EfficientNet-Lite0's layer-normalised
feature-map cells (`backbone_type=efficientnet_lite0`, `configs/stamo_cpu.json`: there the backbone is most
of a CPU training step, 87 % of it at the preset's sizes).

The frozen backbone and VAE give the same outputs every epoch, so they can run once per frame (and once
per flipped frame, since training flips frames horizontally). Training then reads them by dataset index
and only runs the trainable compressor and DiT:

    lerobot-stamo-feature-cache --preset configs/stamo_tiny.json \\
        --set train_backbone=false --repo_id local/so101 --root data/so101 --output outputs/stamo_cache
    lerobot-train --config_path=configs/stamo_tiny.json --policy.train_backbone=false \\
        --policy.feature_cache=outputs/stamo_cache ...

The cache is a folder of `.npy` arrays (one per camera, part and flip) plus `cache_info.json`. It is
written batch by batch into a temporary folder next to the output and renamed when complete, so neither
building nor reading it holds the whole cache in memory: training memory-maps the arrays and reads only
the rows of each batch (the OS page cache keeps the hot ones; processes of a multi-process run share it).
Size on disk: `frames x cameras x flips x (P x C + 2 x c x h x w)` values (patches in fp16, VAE
posteriors in fp32), e.g. about 1 MB per frame and camera for the paper preset with flips. A trained
backbone (`train_backbone=true`) is not cached, only the VAE posteriors. A fingerprint of the frozen
weights, the image size and the cameras is checked when training reads it, and so is the identity of the
dataset it was built from (id, folder, frame count and a fingerprint of its files): a cache of another
dataset is refused, since its rows hold the features of other frames.
"""

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from lerobot_stamo.errors import check_json_file
from lerobot_stamo.paths import replace_folder

from .images import prepare_images

logger = logging.getLogger(__name__)

META_FILE = "cache_info.json"
INDEX_FILE = "index.npy"


def array_file(camera: str, part: str, flip: bool) -> str:
    """File name of one cached array, e.g. `observation.images.front.patches.flip.npy`."""
    return f"{camera}.{part}{'.flip' if flip else ''}.npy"


def frozen_fingerprint(policy) -> dict:
    """What the cached features depend on: frozen weights' checksums, image size, cameras, flips."""
    model = policy.model
    params = list(model.decoder.vae.encoder.parameters())
    if not policy.config.train_backbone:
        params += list(model.backbone.parameters())
    checksum = float(sum(p.detach().double().abs().sum() for p in params))
    info = {
        "checksum": round(checksum, 3),
        "image_size": policy.config.image_size,
        "cameras": list(policy.config.camera_keys),
        "backbone_cached": not policy.config.train_backbone,
        "flips": policy.config.random_flip > 0,
    }
    # Only when set: the caches written before these options existed keep their fingerprint.
    if policy.config.backbone_type != "dinov2":
        info["backbone_type"] = policy.config.backbone_type
    if policy.config.backbone_image_size is not None:
        info["backbone_image_size"] = policy.config.backbone_image_size
    return info


def dataset_identity(meta) -> dict:
    """Which dataset a cache belongs to: id, folder, counts and a sha256 of its metadata and file sizes.

    The fingerprint covers `meta/info.json` (features, fps, counts), every episode's length and the size of
    every data and video file, so a re-recorded dataset under the same id and folder is told apart, while a
    copy of the same dataset in another folder (or from the Hub) matches.

    Args:
        meta: The dataset's `LeRobotDatasetMetadata`.
    """
    root = Path(meta.root)
    files = sorted(p for sub in ("data", "videos") for p in (root / sub).rglob("*") if p.is_file())
    content = {
        "info": meta.info,
        "lengths": [int(n) for n in meta.episodes["length"]],
        "files": [[p.relative_to(root).as_posix(), p.stat().st_size] for p in files],
    }
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()
    return {
        "repo_id": meta.repo_id,
        "root": str(root.resolve()),
        "total_frames": int(meta.total_frames),
        "total_episodes": int(meta.total_episodes),
        "fingerprint": digest,
    }


def check_dataset_identity(path: Path, info: dict, meta) -> None:
    """Refuses a cache built from another dataset than the one `meta` describes.

    Raises:
        ValueError: Naming both datasets and the fix.
    """
    cached = info.get("dataset")
    expected = dataset_identity(meta)
    if cached is not None and cached.get("fingerprint") == expected["fingerprint"]:
        return
    built = (
        f"dataset {cached.get('repo_id')!r} at {cached.get('root')} ({cached.get('total_frames')} frames)"
        if cached
        else "an unknown dataset (the cache records none: it predates dataset checks)"
    )
    raise ValueError(
        f"The feature cache in {path} (`policy.feature_cache`) was built from {built}, not from the training "
        f"dataset {expected['repo_id']!r} at {expected['root']} ({expected['total_frames']} frames): its rows "
        "hold the features of other frames. Rebuild it for this dataset with `lerobot-stamo-feature-cache "
        f"... --repo_id {expected['repo_id']} --root "
        f"{expected['root']} --output <new folder>`, or train without --policy.feature_cache."
    )


@torch.no_grad()
def build_feature_cache(
    policy,
    dataset,
    output_dir: str | Path,
    batch_size: int = 16,
    num_workers: int = 0,
    overwrite: bool = False,
) -> Path:
    """Encodes every frame of `dataset` through the frozen parts of `policy` and writes the cache.

    Args:
        policy: A `StamoPolicy` (only its frozen backbone/VAE are used).
        dataset: A `LeRobotDataset` (or any dataset of dicts with `index` and the camera keys) whose camera
            frames are (3, H, W) floats in [0, 1].
        output_dir: The cache folder (`.npy` arrays and `cache_info.json`).
        batch_size: Frames per forward pass.
        num_workers: DataLoader workers decoding frames while the model runs.
        overwrite: Replace an existing cache at `output_dir`.

    Returns:
        The output folder.

    Raises:
        FileExistsError: If `output_dir` exists and `overwrite` is false, or holds something other than a
            feature cache (`--overwrite` only ever replaces a cache).
        ValueError: If `output_dir` is, lies inside or contains the dataset's folder.
    """
    from lerobot_stamo.paths import check_output_path

    root = getattr(dataset, "root", None)
    output_dir = check_output_path(output_dir, {"--root": root}, flag="--output")
    if output_dir.exists():
        if not (output_dir / META_FILE).is_file():
            raise FileExistsError(
                f"--output={output_dir} exists and is not a stamo feature cache (no {META_FILE}); --overwrite "
                "only replaces a cache. Choose a new folder."
            )
        if not overwrite:
            raise FileExistsError(
                f"--output={output_dir} already holds a feature cache: choose another `--output` or pass "
                "`--overwrite` to replace it."
            )
        logger.warning(
            f"--overwrite: replacing the feature cache in {output_dir} once the new one is complete."
        )
    # One fixed work folder per output: a build interrupted at any point is cleaned up by the next one.
    work = output_dir.with_name(f".{output_dir.name}.stamo-cache-work")
    if work.exists():
        foreign = [p.name for p in work.iterdir() if p.suffix != ".npy" and p.name != META_FILE]
        if foreign or not work.is_dir():
            raise FileExistsError(
                f"{work} (the work folder of --output={output_dir}) holds files a cache build did not write "
                f"({foreign[:5]}). Move them away or choose another --output."
            )
        shutil.rmtree(work)
    work.mkdir(parents=True)
    info = frozen_fingerprint(policy)
    flips = (False, True) if info["flips"] else (False,)
    model, size, n = policy.model, policy.config.image_size, len(dataset)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers
    )
    arrays: dict[str, np.ndarray] = {}

    def write(name: str, start: int, values: Tensor) -> None:
        values = values.numpy()
        if name not in arrays:  # shapes and dtypes are known from the first batch
            arrays[name] = np.lib.format.open_memmap(work / name, "w+", values.dtype, (n, *values.shape[1:]))
        arrays[name][start : start + len(values)] = values

    start = 0
    for batch in tqdm(loader, desc="caching frozen features", unit="batch"):
        write(INDEX_FILE, start, batch["index"].long())
        for cam in policy.config.camera_keys:
            images = prepare_images(batch[cam].to(policy.device), size, key=cam)
            for flip in flips:
                x = images.flip(-1) if flip else images
                if info["backbone_cached"]:
                    write(array_file(cam, "patches", flip), start, model.patch_features(x).half().cpu())
                write(array_file(cam, "latents", flip), start, model.decoder.latent_params(x).cpu())
        start += len(batch["index"])
    for arr in arrays.values():
        arr.flush()
    arrays.clear()
    meta = getattr(dataset, "meta", None)
    info |= {
        "num_frames": start,
        "repo_id": getattr(dataset, "repo_id", None),
        "dataset": dataset_identity(meta) if meta is not None else None,
    }
    (work / META_FILE).write_text(json.dumps(info, indent=2))
    replace_folder(work, output_dir)  # an existing cache (checked above) is removed once this one is in place
    logger.info(f"Cached frozen features of {info['num_frames']} frames in {output_dir}")
    return output_dir


class StamoFeatureCache:
    """Reads a cache written by `build_feature_cache` (memory-mapped: rows are read when looked up).

    Args:
        path: The cache folder.
        policy: The policy that will train from it (its fingerprint must match).
        dataset_meta: Metadata of the training dataset (default: the one `lerobot-train`'s `make_policy`
            records on the policy config); the cache must have been built from it. Without either, only the
            dataset indices are checked, at lookup.

    Raises:
        FileNotFoundError: If the folder has no cache.
        ValueError: If the cache was built for other frozen weights, image size or cameras, or from another
            dataset.
    """

    def __init__(self, path: str | Path, policy, dataset_meta=None):
        path = Path(path)
        if not (path / META_FILE).is_file() or not (path / INDEX_FILE).is_file():
            raise FileNotFoundError(
                f"No stamo feature cache in {path} (`policy.feature_cache`): build it with "
                "`lerobot-stamo-feature-cache ... --output <dir>`."
            )
        info = check_json_file(path / META_FILE, "policy.feature_cache")
        expected = frozen_fingerprint(policy)
        optional = ("backbone_type", "backbone_image_size")  # absent: the default (see `frozen_fingerprint`)
        keys = [*expected, *(k for k in optional if k in info and k not in expected)]
        diff = {k: (info.get(k), expected.get(k)) for k in keys if info.get(k) != expected.get(k)}
        if diff:
            raise ValueError(
                f"The feature cache in {path} does not match this policy (cached, expected): {diff}. "
                "Rebuild it with the same backbone/decoder/image_size/cameras/random_flip."
            )
        meta = (
            dataset_meta
            if dataset_meta is not None
            else getattr(policy.config, "_runtime_dataset_meta", None)
        )
        if meta is not None:
            check_dataset_identity(path, info, meta)
        self.path = path
        self.backbone_cached = info["backbone_cached"]
        index = torch.from_numpy(np.load(path / INDEX_FILE))
        self.row = torch.full((int(index.max()) + 1,), -1, dtype=torch.long)
        self.row[index] = torch.arange(len(index))
        self.arrays: dict[str, np.ndarray] = {}

    def _rows(self, name: str, rows: np.ndarray) -> Tensor:
        if name not in self.arrays:
            self.arrays[name] = np.load(self.path / name, mmap_mode="r")
        return torch.from_numpy(self.arrays[name][rows]).float()

    def lookup(self, indices: Tensor, camera: str, flip: Tensor | None) -> tuple[Tensor | None, Tensor]:
        """Cached (patches (B, P, C) or None, latent params (B, 2c, h, w)) for dataset indices (B,)."""
        idx = indices.long().cpu()
        if (idx >= len(self.row)).any() or (self.row[idx.clamp(max=len(self.row) - 1)] < 0).any():
            raise KeyError(f"Dataset indices {idx.tolist()} are not all in the feature cache: rebuild it.")
        rows = self.row[idx].numpy()

        def pick(part: str) -> Tensor:
            plain = self._rows(array_file(camera, part, False), rows)
            if flip is None or not flip.any():
                return plain
            flipped = self._rows(array_file(camera, part, True), rows)
            return torch.where(flip.cpu().view(-1, *([1] * (plain.ndim - 1))), flipped, plain)

        patches = pick("patches") if self.backbone_cached else None
        return patches, pick("latents")
