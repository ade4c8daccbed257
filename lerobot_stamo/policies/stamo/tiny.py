"""Writes the pretrained parts of the `tiny` preset: random small DINOv2, SD3 DiT, VAE and scheduler.

They are saved with `save_pretrained` in the Hub folder layout and then loaded by path through the very
same `from_pretrained` calls as the real `facebook/dinov2-with-registers-base` and
`stabilityai/stable-diffusion-3-medium-diffusers`::

    python -m lerobot_stamo.policies.stamo.tiny outputs/stamo_tiny_pretrained
    lerobot-train --policy.type=stamo --config_path=configs/stamo_tiny.json ...
"""

import argparse
import json
import logging
from pathlib import Path

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel
from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

logger = logging.getLogger(__name__)

TINY_IMAGE_SIZE = 64  # backbone input and decoder output (pixels)
TINY_JOINT_ATTENTION_DIM = 64


def write_tiny_pretrained(root: str | Path, seed: int = 0, latent_channels: int = 4) -> dict[str, str]:
    """Writes a tiny random DINOv2 folder and a tiny SD3 decoder folder under `root` (deterministic in `seed`).

    Args:
        root: Output folder; gets `dinov2/` and `sd3/` (with `transformer/`, `vae/`, `scheduler/`).
        seed: Seed of the random initialisation.
        latent_channels: VAE latent channels (= DiT in/out channels).

    Returns:
        `{"backbone": <dinov2 folder>, "decoder_path": <sd3 folder>}`, ready to use as policy fields.
    """
    root = Path(root)
    backbone_dir, decoder_dir = root / "dinov2", root / "sd3"
    torch.manual_seed(seed)
    backbone = Dinov2WithRegistersModel(
        Dinov2WithRegistersConfig(
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            mlp_ratio=2,
            patch_size=8,
            image_size=TINY_IMAGE_SIZE,
            num_register_tokens=4,
        )
    )
    backbone.save_pretrained(backbone_dir)

    transformer = SD3Transformer2DModel(
        sample_size=TINY_IMAGE_SIZE // 8,
        patch_size=2,
        in_channels=latent_channels,
        out_channels=latent_channels,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=4,
        joint_attention_dim=TINY_JOINT_ATTENTION_DIM,
        caption_projection_dim=64,
        pooled_projection_dim=32,
        pos_embed_max_size=16,
    )
    transformer.save_pretrained(decoder_dir / "transformer")
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=4,
        sample_size=TINY_IMAGE_SIZE,
    )
    # Like a trained VAE: a near-deterministic posterior (small variance), and SD3-style shift/scaling
    # factors that give the latents of natural-ish frames zero mean and unit variance.
    with torch.no_grad():
        vae.quant_conv.weight[latent_channels:] *= 0.01
        vae.quant_conv.bias[latent_channels:] = -12.0
        frames = torch.rand(8, 3, 1, 1) * torch.linspace(0, 1, TINY_IMAGE_SIZE).view(1, 1, 1, -1)
        frames = frames.expand(-1, -1, TINY_IMAGE_SIZE, -1) * 2 - 1
        mean = vae.encode(frames).latent_dist.mean
    vae.register_to_config(
        shift_factor=round(mean.mean().item(), 4), scaling_factor=round(1 / mean.std().item(), 4)
    )
    vae.save_pretrained(decoder_dir / "vae")
    FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0).save_pretrained(
        decoder_dir / "scheduler"
    )
    # Same index file as the Hub's SD3 repos (the text encoders are never loaded by stamo).
    (decoder_dir / "model_index.json").write_text(
        json.dumps(
            {
                "_class_name": "StableDiffusion3Pipeline",
                "transformer": ["diffusers", "SD3Transformer2DModel"],
                "vae": ["diffusers", "AutoencoderKL"],
                "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
            },
            indent=2,
        )
    )
    logger.info(f"Wrote the tiny stamo backbone to {backbone_dir} and decoder to {decoder_dir}")
    return {"backbone": str(backbone_dir), "decoder_path": str(decoder_dir)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("output_dir", nargs="?", default="outputs/stamo_tiny_pretrained")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    paths = write_tiny_pretrained(args.output_dir, seed=args.seed)
    print(json.dumps(paths, indent=2))


if __name__ == "__main__":
    main()
