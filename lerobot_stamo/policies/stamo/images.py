"""Frame checks, resizing and image metrics: the one place where stamo turns camera frames into model input."""

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from lerobot_stamo.errors import frame_range_hint


def on_device(images: Any, device: torch.device | str) -> Any:
    """Camera frames moved to `device`: a numpy array (as OpenCV / imageio read it) becomes a tensor; anything
    else but a tensor is returned unchanged, for `prepare_images` to name."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    return images.to(device) if isinstance(images, Tensor) else images


def prepare_images(images: Tensor, size: int | tuple[int, int] | None, key: str = "images") -> Tensor:
    """Checks camera frames and resizes them to the model's input size.

    Args:
        images: (B, 3, H, W) (or (3, H, W)) frames, uint8 in [0, 255] or float in [0, 1].
        size: Output side length in pixels, or (height, width), or None to keep the size (bicubic,
            antialiased).
        key: Name of the frames in error messages (e.g. the camera key).

    Returns:
        (B, 3, height, width) float32 frames in [0, 1].

    Raises:
        TypeError: For an unsupported dtype.
        ValueError: For channel-last frames, a channel count other than 3, NaN/inf pixels or float pixels
            outside [0, 1].
    """
    if not isinstance(images, Tensor):
        raise TypeError(f"`{key}` must be a torch.Tensor of shape (B, 3, H, W), got {type(images).__name__}.")
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4 or 0 in images.shape:
        raise ValueError(
            f"`{key}` must have shape (B, 3, H, W) with B, H, W >= 1, got {tuple(images.shape)}."
        )
    if images.shape[1] != 3:
        if images.shape[-1] == 3:
            raise ValueError(
                f"`{key}` looks channel-last {tuple(images.shape)}: stamo expects channel-first (B, 3, H, W) "
                "RGB frames. Use `images.permute(0, 3, 1, 2)`."
            )
        raise ValueError(f"`{key}` must have 3 (RGB) channels in dim 1, got shape {tuple(images.shape)}.")
    if images.dtype == torch.uint8:
        images = images.float() / 255.0
    elif images.is_floating_point():
        images = images.float()
        if not torch.isfinite(images).all():
            raise ValueError(
                f"`{key}` contains NaN or inf pixels: check the camera / dataset frames (or the transforms)."
            )
        lo, hi = images.min().item(), images.max().item()
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(
                f"`{key}` float pixels must lie in [0, 1], got range [{lo:.3f}, {hi:.3f}].{frame_range_hint(lo, hi)}"
            )
    else:
        raise TypeError(f"`{key}` must be uint8 in [0, 255] or float in [0, 1], got dtype {images.dtype}.")
    if isinstance(size, int):
        size = (size, size)
    if size is not None and tuple(images.shape[-2:]) != tuple(size):
        images = F.interpolate(images, size=tuple(size), mode="bicubic", antialias=True, align_corners=False)
    return images.clamp(0.0, 1.0)


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """Peak signal-to-noise ratio (dB) per image of (B, C, H, W) tensors in [0, 1]."""
    mse = ((pred - target) ** 2).flatten(1).mean(dim=1).clamp_min(1e-10)
    return 10 * torch.log10(1.0 / mse)


def ssim(pred: Tensor, target: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Structural similarity per image of (B, C, H, W) tensors in [0, 1] (Gaussian window, Wang et al. 2004)."""
    window = min(window, pred.shape[-1], pred.shape[-2])
    coords = torch.arange(window, dtype=pred.dtype, device=pred.device) - (window - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(pred.shape[1], 1, window, window)

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(x, kernel, groups=pred.shape[1])

    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = blur(pred), blur(target)
    var_x = blur(pred * pred) - mu_x**2
    var_y = blur(target * target) - mu_y**2
    cov = blur(pred * target) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(dim=1)


def to_uint8_hwc(images: Tensor) -> Tensor:
    """(B, 3, H, W) floats in [0, 1] -> (B, H, W, 3) uint8 on the CPU, for PNG/GIF writers."""
    return (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu()


def grid(rows: list[Tensor]) -> Tensor:
    """Tiles rows of (K, 3, H, W) images into one (H * rows, W * K, 3) uint8 image."""
    return torch.cat([torch.cat(list(to_uint8_hwc(r)), dim=1) for r in rows], dim=0)
