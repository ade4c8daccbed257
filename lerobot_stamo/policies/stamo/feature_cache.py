"""A cache of the frozen parts' outputs (DINOv2 patch features and SD3-VAE posteriors) for a dataset.

The frozen backbone and VAE give the same outputs every epoch, so they can run once per frame (and once
per flipped frame, since training flips frames horizontally). Training then reads them by dataset index
and only runs the trainable compressor and DiT:

    python -m lerobot_stamo.policies.stamo.feature_cache --preset configs/stamo_tiny.json \\
        --set train_backbone=false --repo_id local/so101 --root data/so101 --output outputs/stamo_cache
    lerobot-train --config_path=configs/stamo_tiny.json --policy.train_backbone=false \\
        --policy.feature_cache=outputs/stamo_cache ...

The cache is held in memory (safetensors file loaded at the first training step): about
`frames x cameras x 2 (flips) x (P x C + 2 x c x h x w) x 2 bytes` (fp16), e.g. 0.8 MB per frame and camera
for the paper preset. A trained backbone (`train_backbone=true`) is not cached, only the VAE posteriors.
A fingerprint of the frozen weights, the image size and the cameras is checked when training reads it.
"""

import argparse
import json
import logging
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor
from tqdm import tqdm

from .images import prepare_images

logger = logging.getLogger(__name__)

FEATURES_FILE = "features.safetensors"
META_FILE = "cache_info.json"


def frozen_fingerprint(policy) -> dict:
    """What the cached features depend on: frozen weights' checksums, image size, cameras, flips."""
    model = policy.model
    params = list(model.decoder.vae.encoder.parameters())
    if not policy.config.train_backbone:
        params += list(model.backbone.parameters())
    checksum = float(sum(p.detach().double().abs().sum() for p in params))
    return {
        "checksum": round(checksum, 3),
        "image_size": policy.config.image_size,
        "cameras": list(policy.config.camera_keys),
        "backbone_cached": not policy.config.train_backbone,
        "flips": policy.config.random_flip > 0,
    }


@torch.no_grad()
def build_feature_cache(policy, dataset, output_dir: str | Path, batch_size: int = 16) -> Path:
    """Encodes every frame of `dataset` through the frozen parts of `policy` and writes the cache.

    Args:
        policy: A `StamoPolicy` (only its frozen backbone/VAE are used).
        dataset: A `LeRobotDataset` whose camera frames are (3, H, W) floats in [0, 1].
        output_dir: Folder for `features.safetensors` and `cache_info.json`.
        batch_size: Frames per forward pass.

    Returns:
        The output folder.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    info = frozen_fingerprint(policy)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    flips = (False, True) if info["flips"] else (False,)
    parts: dict[str, list[Tensor]] = {"index": []}
    model, size = policy.model, policy.config.image_size
    for batch in tqdm(loader, desc="caching frozen features", unit="batch"):
        parts["index"].append(batch["index"].long())
        for cam in policy.config.camera_keys:
            images = prepare_images(batch[cam].to(policy.device), size, key=cam)
            for flip in flips:
                x = images.flip(-1) if flip else images
                suffix = "/flip" if flip else ""
                if info["backbone_cached"]:
                    parts.setdefault(f"{cam}/patches{suffix}", []).append(
                        model.patch_features(x).half().cpu()
                    )
                parts.setdefault(f"{cam}/latents{suffix}", []).append(model.decoder.latent_params(x).cpu())
    tensors = {k: torch.cat(v).contiguous() for k, v in parts.items()}
    save_file(tensors, output_dir / FEATURES_FILE)
    info |= {"num_frames": len(tensors["index"]), "repo_id": getattr(dataset, "repo_id", None)}
    (output_dir / META_FILE).write_text(json.dumps(info, indent=2))
    logger.info(f"Cached frozen features of {info['num_frames']} frames in {output_dir}")
    return output_dir


class StamoFeatureCache:
    """Reads a cache written by `build_feature_cache`.

    Args:
        path: The cache folder.
        policy: The policy that will train from it (its fingerprint must match).

    Raises:
        FileNotFoundError: If the folder has no cache.
        ValueError: If the cache was built for other frozen weights, image size or cameras.
    """

    def __init__(self, path: str | Path, policy):
        path = Path(path)
        if not (path / FEATURES_FILE).is_file():
            raise FileNotFoundError(
                f"No stamo feature cache in {path} (`policy.feature_cache`): build it with "
                "`python -m lerobot_stamo.policies.stamo.feature_cache ... --output <dir>`."
            )
        info = json.loads((path / META_FILE).read_text())
        expected = frozen_fingerprint(policy)
        diff = {k: (info.get(k), v) for k, v in expected.items() if info.get(k) != v}
        if diff:
            raise ValueError(
                f"The feature cache in {path} does not match this policy (cached, expected): {diff}. "
                "Rebuild it with the same backbone/decoder/image_size/cameras/random_flip."
            )
        self.tensors = load_file(path / FEATURES_FILE)
        index = self.tensors.pop("index")
        self.row = torch.full((int(index.max()) + 1,), -1, dtype=torch.long)
        self.row[index] = torch.arange(len(index))
        self.backbone_cached = info["backbone_cached"]

    def lookup(self, indices: Tensor, camera: str, flip: Tensor | None) -> tuple[Tensor | None, Tensor]:
        """Cached (patches (B, P, C) or None, latent params (B, 2c, h, w)) for dataset indices (B,)."""
        idx = indices.long().cpu()
        if (idx >= len(self.row)).any() or (self.row[idx.clamp(max=len(self.row) - 1)] < 0).any():
            raise KeyError(f"Dataset indices {idx.tolist()} are not all in the feature cache: rebuild it.")
        rows = self.row[idx]

        def pick(name: str) -> Tensor:
            plain = self.tensors[f"{camera}/{name}"][rows].float()
            if flip is None or not flip.any():
                return plain
            flipped = self.tensors[f"{camera}/{name}/flip"][rows].float()
            return torch.where(flip.cpu().view(-1, *([1] * (plain.ndim - 1))), flipped, plain)

        patches = pick("patches") if self.backbone_cached else None
        return patches, pick("latents")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", required=True, help="configs/stamo_*.json (its `policy` section is used)")
    parser.add_argument("--set", nargs="*", default=[], help="policy field overrides, key=json_value")
    parser.add_argument("--repo_id", required=True)
    parser.add_argument("--root", default=None)
    parser.add_argument("--output", required=True)
    parser.add_argument("--batch_size", type=int, default=16)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)

    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.utils.feature_utils import dataset_to_policy_features

    from .configuration_stamo import StamoConfig
    from .modeling_stamo import StamoPolicy

    fields = json.loads(Path(args.preset).read_text())["policy"]
    fields.pop("type", None)
    for item in args.set:
        key, value = item.split("=", 1)
        try:
            fields[key] = json.loads(value)
        except json.JSONDecodeError:
            fields[key] = value
    dataset = LeRobotDataset(args.repo_id, root=args.root)
    features = dataset_to_policy_features(dataset.meta.features)
    config = StamoConfig(**fields, input_features=features)
    policy = StamoPolicy(config).eval()
    build_feature_cache(policy, dataset, args.output, args.batch_size)


if __name__ == "__main__":
    main()
