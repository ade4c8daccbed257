"""Writes the pretrained parts of the `tiny` preset: small DINOv2, SD3 DiT, VAE and scheduler.

They are saved with `save_pretrained` in the Hub folder layout and then loaded by path through the very
same `from_pretrained` calls as the real `facebook/dinov2-with-registers-base` and
`stabilityai/stable-diffusion-3-medium-diffusers`::

    python -m lerobot_stamo.policies.stamo.tiny outputs/stamo_tiny_pretrained   # ~2-4 min on 2 cores
    lerobot-train --config_path=configs/stamo_tiny.json ...

The DINOv2 and DiT are random (the tiny preset trains them). The VAE is frozen during stamo training, so a
random one would decode latents into noise: the command line fits it first for `--fit_vae_steps` steps
on synthetic frames (coloured rectangles), giving recognisable reconstructions. The tests skip the fit
(`fit_vae_steps=0`): they check shapes and numerics, not pictures.
"""

import argparse
import json
import logging
from pathlib import Path

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel
from tqdm import tqdm
from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

logger = logging.getLogger(__name__)

TINY_IMAGE_SIZE = 64  # backbone input and decoder output (pixels)
TINY_JOINT_ATTENTION_DIM = 64
TINY_VAE_SCALE = 4  # 3 VAE blocks: 64 px frames -> 16 x 16 latents


def synthetic_frames(n: int, generator: torch.Generator, size: int = TINY_IMAGE_SIZE) -> torch.Tensor:
    """(n, 3, size, size) frames in [-1, 1]: a flat background with three coloured rectangles."""
    x = torch.rand(n, 3, 1, 1, generator=generator).expand(n, 3, size, size).clone()
    for i in range(n):
        for _ in range(3):
            h, w = torch.randint(size // 10, size // 2, (2,), generator=generator).tolist()
            y, x0 = (
                torch.randint(0, size - h, (1,), generator=generator).item(),
                torch.randint(0, size - w, (1,), generator=generator).item(),
            )
            x[i, :, y : y + h, x0 : x0 + w] = torch.rand(3, 1, 1, generator=generator)
    return x * 2 - 1


def fit_vae(vae: AutoencoderKL, steps: int, seed: int = 0, batch_size: int = 8, lr: float = 1e-3) -> float:
    """Fits the VAE as a plain autoencoder (posterior mean, MSE) on synthetic frames; returns the last loss.

    The fit runs on one CPU thread (the caller's thread count is restored after): a multi-threaded CPU
    convolution sums in another order, so the fitted bytes would depend on the machine's core count, and a
    pipeline published in part on one machine could not be checked against the same stages made on another.
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(vae.parameters(), lr=lr)
    vae.train()
    loss = torch.tensor(float("nan"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in tqdm(range(steps), desc="fitting the tiny VAE", unit="step"):
            frames = synthetic_frames(batch_size, generator)
            recon = vae.decode(vae.encode(frames).latent_dist.mode()).sample
            loss = torch.nn.functional.mse_loss(recon, frames)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    vae.eval()
    return loss.item()


def write_scheduler_and_index(decoder_dir: Path) -> None:
    """Writes SD3's flow-matching scheduler and the Hub's `model_index.json` into a decoder folder.

    The index is the one of the Hub's SD3 repos, minus the text encoders (stamo never loads them).
    """
    FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0).save_pretrained(
        decoder_dir / "scheduler"
    )
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


def write_tiny_pretrained(
    root: str | Path, seed: int = 0, latent_channels: int = 4, fit_vae_steps: int = 0
) -> dict[str, str]:
    """Writes a tiny DINOv2 folder and a tiny SD3 decoder folder under `root` (deterministic in `seed`).

    Args:
        root: Output folder; gets `dinov2/` and `sd3/` (with `transformer/`, `vae/`, `scheduler/`).
        seed: Seed of the random initialisation (and of the VAE fit).
        latent_channels: VAE latent channels (= DiT in/out channels).
        fit_vae_steps: Steps fitting the VAE on synthetic frames (0: a random VAE).

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
        sample_size=TINY_IMAGE_SIZE // TINY_VAE_SCALE,
        patch_size=4,
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
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 16, 16),
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=4,
        sample_size=TINY_IMAGE_SIZE,
        mid_block_add_attention=False,
    )
    if fit_vae_steps > 0:
        final = fit_vae(vae, fit_vae_steps, seed=seed)
        logger.info(f"Tiny VAE fitted for {fit_vae_steps} steps: reconstruction MSE {final:.4f} (in [-1, 1])")
    # Like a trained VAE: a near-deterministic posterior (small variance), and SD3-style shift/scaling
    # factors that give the latents of synthetic frames zero mean and unit variance.
    with torch.no_grad():
        vae.quant_conv.weight[latent_channels:] *= 0.01
        vae.quant_conv.bias[latent_channels:] = -12.0
        mean = vae.encode(synthetic_frames(16, torch.Generator().manual_seed(seed + 1))).latent_dist.mean
    vae.register_to_config(
        shift_factor=round(mean.mean().item(), 4), scaling_factor=round(1 / mean.std().item(), 4)
    )
    vae.save_pretrained(decoder_dir / "vae")
    write_scheduler_and_index(decoder_dir)
    logger.info(f"Wrote the tiny stamo backbone to {backbone_dir} and decoder to {decoder_dir}")
    return {"backbone": str(backbone_dir), "decoder_path": str(decoder_dir)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("output_dir", nargs="?", default="outputs/stamo_tiny_pretrained")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fit_vae_steps", type=int, default=1500)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(1)  # tiny convolutions: one thread is as fast and immune to a busy second core
    paths = write_tiny_pretrained(args.output_dir, seed=args.seed, fit_vae_steps=args.fit_vae_steps)
    print(json.dumps(paths, indent=2))


if __name__ == "__main__":
    main()
