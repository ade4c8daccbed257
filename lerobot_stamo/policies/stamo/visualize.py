"""Latent-motion visualisations of a trained stamo: interpolation strips, motion transfer, GIFs."""

from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from .images import grid, prepare_images, to_uint8_hwc
from .modeling_stamo import StamoPolicy


def load_png(path: str | Path) -> Tensor:
    """Reads an RGB(A) image file into a (3, H, W) uint8 tensor."""
    import imageio.v3 as iio

    array = iio.imread(path)
    if array.ndim == 2:
        array = array[..., None].repeat(3, axis=-1)
    return torch.from_numpy(array[..., :3].copy()).permute(2, 0, 1)


def decode_path(
    policy: StamoPolicy,
    states: Tensor,
    num_inference_steps: int | None = None,
    seed: int = 0,
    desc: str = "decoding",
) -> Tensor:
    """Decodes (n, N, D) states one by one with the same seed (the same initial noise) for every frame.

    Returns:
        (n, 3, S, S) images in [0, 1].
    """
    frames = [
        policy.decode(state[None], num_inference_steps, generator=torch.Generator().manual_seed(seed))
        for state in tqdm(states, desc=desc, unit="frame")
    ]
    return torch.cat(frames)


def interpolation_frames(
    policy: StamoPolicy,
    image_a: Tensor,
    image_b: Tensor,
    steps: int = 6,
    image_c: Tensor | None = None,
    num_inference_steps: int | None = None,
    seed: int = 0,
) -> dict[str, Tensor]:
    """Decodes the interpolation from frame a to frame b (and the motion a -> b applied to frame c).

    Args:
        policy: A trained stamo policy.
        image_a: (3, H, W) start frame (uint8 or float in [0, 1]).
        image_b: (3, H, W) goal frame.
        steps: Number of decoded states on the path, endpoints included.
        image_c: Optional (3, H, W) frame for motion transfer (`s_c + alpha (s_b - s_a)`).
        num_inference_steps: Euler steps per decode (default: the policy's).
        seed: Seed of the (shared) initial noise.

    Returns:
        `inputs` (2 or 3, 3, S, S) resized inputs, `interpolation` (steps, 3, S, S) and, with `image_c`,
        `transfer` (steps, 3, S, S).
    """
    size = policy.config.image_size
    frames = [image_a, image_b] + ([image_c] if image_c is not None else [])
    inputs = torch.cat([prepare_images(f, size, key=f"image {i}") for i, f in enumerate(frames)])
    states = policy.encode(inputs)  # (2|3, N, D)
    s_a, s_b = states[:1], states[1:2]
    out = {"inputs": inputs}
    path = policy.interpolate(s_a, s_b, steps)[0]  # (steps, N, D)
    out["interpolation"] = decode_path(policy, path, num_inference_steps, seed, desc="interpolation")
    if image_c is not None:
        s_c = states[2:3]
        moved = policy.interpolate(s_c, policy.transfer(s_c, s_a, s_b), steps)[0]
        out["transfer"] = decode_path(policy, moved, num_inference_steps, seed, desc="motion transfer")
    return out


def write_strip_and_gif(frames: dict[str, Tensor], output_dir: str | Path, fps: int = 4) -> dict[str, Path]:
    """Writes `interpolation.png` (rows: a | decoded path | b, then c | transferred path) and a GIF.

    Returns:
        The written paths, keyed `strip` and `gif`.
    """
    import imageio.v2 as iio2
    import imageio.v3 as iio

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    inputs = frames["inputs"]
    rows = [torch.cat([inputs[:1], frames["interpolation"], inputs[1:2]])]
    if "transfer" in frames:
        rows.append(torch.cat([inputs[2:3], frames["transfer"], torch.ones_like(inputs[:1])]))
    strip_path, gif_path = output_dir / "interpolation.png", output_dir / "interpolation.gif"
    iio.imwrite(strip_path, grid(rows).numpy())
    movie = frames["interpolation"]
    if "transfer" in frames:
        movie = torch.cat([movie, frames["transfer"]], dim=-1)  # side by side
    pingpong = torch.cat([movie, movie.flip(0)[1:-1]]) if len(movie) > 2 else movie
    # Pillow takes the frame duration in milliseconds.
    iio2.mimsave(gif_path, list(to_uint8_hwc(pingpong).numpy()), duration=1000.0 / fps, loop=0)
    return {"strip": strip_path, "gif": gif_path}
