"""The `stamo_vla` policy: a chunked actor with StaMo's world-model head, trained by `lerobot-train`.

    observation (cameras, state, instruction tokens) + chunk_size action queries
        -> trunk (`CompactTrunk` | `VLMTrunk`)             -> query states (B, chunk_size, D)
        -> ActionHead (OFT-style MLP, L1 loss)              -> actions (B, chunk_size, action_dim)
        -> WorldModelHead (training only, pooled queries)   -> StaMo state s(t+k) or motion (B, target_dim)
        -> latent-action head (co-training only)            -> StaMo latent motion (B, latent_dim)

The trunk and its heads are separate modules: acting (`select_action`, `predict_action_chunk`) touches only the
trunk and the action head, so the world-model head costs nothing at inference. Targets come from the StaMo
columns of a dataset labelled by `lerobot-stamo-label`, or from the `stamo_pseudo_action` processor step
(`world_model_targets_from=encoder`), and are normalised by `TargetNormalizer` (dataset stats when the
columns have them, else running stats), both saved in the checkpoint.

On a co-training dataset (`lerobot-stamo-cotrain`: robot episodes plus StaMo-labelled videos), the per-frame
mask `observation.action_valid` restricts the action loss to frames with a real action, and a latent-action
head learns the latent motion of every frame; on video frames the placeholder joint state is replaced by the
real frames' mean (0 after normalisation). Inference runs neither head.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
import torchvision
from huggingface_hub import ModelCard
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.pretrained import PreTrainedPolicy
from lerobot.policies.rtc.modeling_rtc import RTCProcessor
from lerobot.utils.constants import ACTION, OBS_LANGUAGE_ATTENTION_MASK, OBS_LANGUAGE_TOKENS, OBS_STATE
from torch import Tensor, nn
from torchvision.ops.misc import FrozenBatchNorm2d

from lerobot_stamo.policies.pretrained import StrictLoadingMixin, render_model_card
from lerobot_stamo.transforms.cotrain import ACTION_VALID_KEY
from lerobot_stamo.transforms.labelling import STATE_PREFIX, VALID_KEY, load_labels, motion_key, state_key

from .configuration_stamo_vla import StamoVLAConfig

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def current_frame(x: Tensor, ndim: int) -> Tensor:
    """Frame t of a time stack: (B, T, *shape) -> (B, *shape) when `x` has one more dim than `ndim`."""
    return x[:, 0] if x.ndim == ndim + 1 else x


def frame_flag(x: Tensor) -> Tensor:
    """A per-frame flag column, (B,), (B, 1) or (B, T, 1) with frame t first, as a (B,) bool tensor."""
    return x.reshape(x.shape[0], -1)[:, 0].bool()


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
class ResNetVision(nn.Module):
    """A torchvision ResNet18 shared by all cameras: each camera's last feature map becomes tokens.

    (B, 3, H, W) in [0, 1] -> (B, H/32 * W/32, dim) with a 2-D sine position embedding and a learned
    per-camera embedding.
    """

    def __init__(self, num_cameras: int, dim: int, weights: str | None):
        super().__init__()
        # FrozenBatchNorm like ACT: batch statistics of small robot batches are noisy.
        resnet = torchvision.models.resnet18(weights=weights, norm_layer=FrozenBatchNorm2d)
        self.body = nn.Sequential(*list(resnet.children())[:-2])  # drop avgpool and fc
        self.proj = nn.Conv2d(512, dim, kernel_size=1)
        self.camera_embed = nn.Parameter(torch.zeros(num_cameras, dim))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: list[Tensor]) -> Tensor:
        b = images[0].shape[0]
        # All cameras in one batch when they have the same size (one ResNet call instead of n).
        same = all(im.shape == images[0].shape for im in images)
        groups = [torch.cat(images)] if same else images
        maps = [self.proj(self.body((g - self.mean) / self.std)) for g in groups]  # (n*B, D, h, w)
        if same:
            maps = list(maps[0].split(b))
        tokens = []
        for i, m in enumerate(maps):
            _, d, h, w = m.shape
            pos = sinusoidal_2d(h, w, d, m.device)
            tokens.append(m.flatten(2).transpose(1, 2) + pos + self.camera_embed[i])  # (B, h*w, D)
        return torch.cat(tokens, dim=1)


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

    def forward(self, images: list[Tensor]) -> Tensor:
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
        self, images: list[Tensor], state: Tensor | None, tokens: Tensor, token_mask: Tensor
    ) -> Tensor:
        vision = self.vision(images)  # (B, V, D)
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


# --------------------------------------------------------------------------------------------- heads
class ActionHead(nn.Module):
    """OpenVLA-OFT's L1 regression head: per query, LN-Linear-ReLU, residual MLP blocks, LN-Linear."""

    def __init__(self, dim: int, action_dim: int, num_blocks: int):
        super().__init__()
        self.inp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.ReLU())
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.ReLU()) for _ in range(num_blocks)
        )
        self.out = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, action_dim))

    def forward(self, queries: Tensor) -> Tensor:  # (B, Q, D) -> (B, Q, action_dim)
        x = self.inp(queries)
        for block in self.blocks:
            x = x + block(x)
        return self.out(x)


class WorldModelHead(nn.Module):
    """StaMo's world-model head (paper Eq. 3): pooled query states -> the flattened StaMo target."""

    def __init__(self, dim: int, hidden: int, target_dim: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, target_dim)
        )

    def forward(self, queries: Tensor) -> Tensor:  # (B, Q, D) -> (B, target_dim)
        return self.mlp(queries.mean(dim=1))


class TargetNormalizer(nn.Module):
    """Per-dimension mean/std of the world-model target, saved with the weights.

    Initialised from the dataset stats of the StaMo columns when they exist (`fixed`), otherwise updated with
    the running statistics of every training batch (Chan's parallel update).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("fixed", torch.zeros((), dtype=torch.bool))

    def set_stats(self, mean: Tensor, std: Tensor) -> None:
        self.mean.copy_(mean)
        self.var.copy_(std.square())
        self.fixed.fill_(True)

    @torch.no_grad()
    def update(self, x: Tensor) -> None:  # x: (n, dim) valid targets of one batch
        if self.fixed or x.shape[0] == 0:
            return
        n, total = float(x.shape[0]), float(self.count) + x.shape[0]
        mean_b, var_b = x.mean(0), x.var(0, unbiased=False)
        delta = mean_b - self.mean
        self.mean += delta * (n / total)
        self.var.copy_(
            (self.var * float(self.count) + var_b * n + delta.square() * float(self.count) * n / total)
            / total
        )
        self.count += n

    def normalize(self, x: Tensor) -> Tensor:
        return (x - self.mean) / (self.var + 1e-8).sqrt()

    def unnormalize(self, x: Tensor) -> Tensor:
        return x * (self.var + 1e-8).sqrt() + self.mean


# --------------------------------------------------------------------------------------------- model
class StamoVLA(nn.Module):
    """Trunk + action head (+ world-model head): the math of `stamo_vla`, on preprocessed tensors."""

    def __init__(self, config: StamoVLAConfig, target_dim: int, stamo_encoder=None, latent_dim: int = 0):
        super().__init__()
        self.config = config
        action_dim = config.action_feature.shape[0]
        if config.backbone == "vlm":
            from .vlm import VLMTrunk

            self.trunk = VLMTrunk(config, config.state_dim, config.chunk_size)
        else:
            self.trunk = CompactTrunk(config, config.state_dim, config.chunk_size, stamo_encoder)
        dim = self.trunk.hidden_size
        self.action_head = ActionHead(dim, action_dim, config.action_head_layers)
        self.future_head = (
            WorldModelHead(dim, config.world_model_hidden_dim, target_dim) if target_dim else None
        )
        self.target_norm = TargetNormalizer(target_dim) if target_dim else None
        self.latent_head = (
            WorldModelHead(dim, config.world_model_hidden_dim, latent_dim) if latent_dim else None
        )
        self.latent_norm = TargetNormalizer(latent_dim) if latent_dim else None

    def query_states(self, batch: dict[str, Tensor]) -> Tensor:
        """Runs the trunk on frame t of the batch: (B, chunk_size, D)."""
        images = [current_frame(batch[key], 4) for key in self.config.camera_keys]
        state = current_frame(batch[OBS_STATE], 2) if self.config.state_dim else None
        if state is not None and ACTION_VALID_KEY in batch:
            # Video frames of a co-training dataset carry a placeholder state: use the real frames' mean.
            state = state * frame_flag(batch[ACTION_VALID_KEY]).to(state.dtype)[:, None]
        return self.trunk(images, state, batch[OBS_LANGUAGE_TOKENS], batch[OBS_LANGUAGE_ATTENTION_MASK])

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Normalised action chunk (B, chunk_size, action_dim), future prediction and latent action."""
        queries = self.query_states(batch)
        actions = self.action_head(queries)
        future = self.future_head(queries) if self.future_head is not None else None
        latent = self.latent_head(queries) if self.latent_head is not None else None
        return actions, future, latent


class StamoVLAPolicy(StrictLoadingMixin, PreTrainedPolicy):
    """`stamo_vla` as a LeRobot policy: `lerobot-train`, `lerobot-eval`, `lerobot-rollout`, async inference.

    Args:
        config: A `StamoVLAConfig`.
        dataset_stats: Dataset statistics (`make_policy`): initialise the world-model target's normaliser.
        dataset_meta: Dataset metadata (`make_policy`): checks of the labels, horizon and tasks.
    """

    config_class = StamoVLAConfig
    name = "stamo_vla"

    def __init__(
        self,
        config: StamoVLAConfig,
        dataset_stats: dict[str, dict[str, Tensor]] | None = None,
        dataset_meta: Any | None = None,
        **kwargs: Any,
    ):
        if not isinstance(config, StamoVLAConfig):
            raise TypeError(
                f"StamoVLAPolicy needs a StamoVLAConfig, got a {type(config).__name__} "
                f"(policy type {getattr(config, 'type', '?')!r}). Load that checkpoint with its own policy class."
            )
        super().__init__(config)
        config.validate_features()
        self.config = config
        self._stamo: list = []  # the frozen `stamo` policy from `stamo_path`, loaded lazily; a list keeps it
        # out of this module's parameters and state_dict (it is never trained nor saved here)
        self._stamo_config = None
        # The stamo checkpoint is read when training, for `vision=stamo`, and when the online targets' shapes
        # are not yet recorded in the config; a trained policy that uses it only to decode `predict_future`
        # loads without it (e.g. on a robot computer).
        needs_stamo = config.vision == "stamo" or (
            config.targets_from_encoder
            and not any(k.startswith(STATE_PREFIX) for k in config.target_features)
        )
        if config.stamo_path and (dataset_meta is not None or needs_stamo):
            self._check_stamo_checkpoint()
        self.target_cameras = self._resolve_target_cameras()
        self.latent_cameras = self._resolve_latent_cameras()
        if dataset_meta is not None:
            self._check_dataset(dataset_meta)
        target_dim = self._target_dim()
        encoder = self.stamo_policy() if config.vision == "stamo" and config.backbone == "compact" else None
        latent_dim = len(self.latent_cameras) * self._n_tokens(self.latent_cameras)
        self.model = StamoVLA(config, target_dim, encoder, latent_dim)
        if dataset_stats:
            self._init_target_stats(dataset_stats)
        self.reset()

    # ------------------------------------------------------------------ set-up and checks
    def stamo_policy(self):
        """The frozen `stamo` policy of `config.stamo_path` (loaded at the first call, eval, no gradients)."""
        if not self._stamo:
            from lerobot_stamo.policies.stamo import StamoPolicy

            cfg = self._stamo_config or self._load_stamo_config()
            cfg.device = self.config.device or "cpu"
            policy = StamoPolicy.from_pretrained(
                self.config.stamo_path, config=cfg, revision=self.config.stamo_revision
            )
            self._stamo.append(policy.for_inference())
        return self._stamo[0]

    def _load_stamo_config(self):
        from lerobot_stamo.transforms.labelling import load_stamo_config

        # Raises a clear error if `stamo_path` is not a stamo checkpoint.
        self._stamo_config = load_stamo_config(self.config.stamo_path, self.config.stamo_revision)
        return self._stamo_config

    def _check_stamo_checkpoint(self) -> None:
        """Checks the stamo checkpoint against the dataset; records the online targets' shapes in the config."""
        c = self.config
        self._load_stamo_config()
        missing = [k for k in self._stamo_config.camera_keys if k not in c.image_features]
        if (c.vision == "stamo" or c.targets_from_encoder) and missing:
            raise ValueError(
                f"The stamo checkpoint {c.stamo_path} encodes camera(s) {missing}, which the dataset does not "
                f"have (cameras: {list(c.image_features)}). Use a stamo checkpoint trained on these cameras, "
                "or rename the dataset's cameras with `--rename_map`."
            )
        for key in self._stamo_config.camera_keys:
            theirs = (self._stamo_config.input_features or {}).get(key)
            ours = c.image_features.get(key)
            if theirs is not None and ours is not None and tuple(theirs.shape) != tuple(ours.shape):
                raise ValueError(
                    f"Camera {key!r} is {tuple(ours.shape)} in this dataset but the stamo checkpoint "
                    f"{c.stamo_path} was trained on {tuple(theirs.shape)} frames. Use a stamo checkpoint "
                    "trained on frames of this size (or record the dataset at that size)."
                )
        if c.targets_from_encoder:  # the columns the `stamo_pseudo_action` step writes, saved in config.json
            shape = (self._stamo_config.num_tokens, self._stamo_config.token_dim)
            for key in self._stamo_config.camera_keys:
                for column in (state_key(key), motion_key(key)):
                    c.target_features[column] = PolicyFeature(type=FeatureType.STATE, shape=shape)

    def _resolve_target_cameras(self) -> list[str]:
        c = self.config
        if c.world_model_target == "none":
            return []
        available = [k for k in c.camera_keys if state_key(k) in c.target_features]
        if not available:
            raise ValueError(
                f"`policy.world_model_target={c.world_model_target}` needs StaMo targets, but the dataset has "
                "no StaMo columns and no `policy.stamo_path` is set. Label the dataset with "
                "`lerobot-stamo-label`, or set `--policy.stamo_path=<stamo checkpoint>` to encode frames "
                "during training, or train the baseline with `--policy.world_model_target=none`."
            )
        cameras = list(c.world_model_cameras) if c.world_model_cameras is not None else available
        if not cameras or any(k not in available for k in cameras):
            raise ValueError(
                f"`policy.world_model_cameras`={c.world_model_cameras} must be a non-empty subset of the "
                f"cameras with StaMo targets: {available}."
            )
        return cameras

    def _resolve_latent_cameras(self) -> list[str]:
        """Cameras whose latent motion the latent-action head predicts (co-training datasets only)."""
        c = self.config
        if not c.cotrain or c.lambda_latent == 0:
            return []
        cameras = [k for k in c.camera_keys if motion_key(k) in c.target_features]
        if not cameras:
            raise ValueError(
                "The dataset has a co-training mask (`observation.action_valid`) but no StaMo motion columns for "
                "the latent-action head. Build it with `lerobot-stamo-cotrain` from labelled datasets, or set "
                "`--policy.lambda_latent=0`."
            )
        return cameras

    def _target_shape(self) -> tuple[int, int]:
        shape = self.config.target_features[state_key(self.target_cameras[0])].shape
        return int(shape[-2]), int(shape[-1])

    def _n_tokens(self, cameras: list[str]) -> int:
        """Values of one camera's StaMo motion (num_tokens * token_dim)."""
        if not cameras:
            return 0
        shape = self.config.target_features[motion_key(cameras[0])].shape
        return int(shape[-2]) * int(shape[-1])

    def _target_dim(self) -> int:
        if not self.target_cameras:
            return 0
        n, d = self._target_shape()
        return len(self.target_cameras) * n * d

    def _check_dataset(self, meta: Any) -> None:
        """Checks the labels' horizon, the episodes' lengths and the tasks against the config."""
        c = self.config
        if c.world_model_target != "none" and not c.targets_from_encoder:
            labels = load_labels(meta.root)
            k = int(labels["horizon"])
            if c.future_horizon is not None and c.future_horizon != k:
                raise ValueError(
                    f"`policy.future_horizon={c.future_horizon}` but the dataset {meta.root} was labelled with "
                    f"horizon {k}. Use `--policy.future_horizon={k}`, relabel with `lerobot-stamo-label "
                    f"--horizon={c.future_horizon}`, or encode online with `--policy.stamo_path`."
                )
            c.future_horizon = k
            if c.stamo_path:
                self._check_labels_checkpoint(labels)
        if c.world_model_target != "none":
            lengths = meta.episodes["length"] if meta.episodes is not None else []
            shortest = min(lengths) if len(lengths) else None
            if shortest is not None and c.horizon >= shortest:
                raise ValueError(
                    f"`policy.future_horizon={c.horizon}` frames is not shorter than the dataset's shortest "
                    f"episode ({shortest} frames): no frame would have a target. Use a smaller "
                    "`--policy.future_horizon`."
                )
        if c.backbone == "vlm":
            tasks = list(meta.tasks.index) if getattr(meta, "tasks", None) is not None else []
            if not tasks or any(not isinstance(t, str) or not t.strip() for t in tasks):
                raise ValueError(
                    f"`policy.backbone=vlm` reads the instruction, but the dataset {meta.root} has no task "
                    f"strings (tasks: {tasks}). Record it with a task (`--task`/`--dataset.single_task`)."
                )

    def _check_labels_checkpoint(self, labels: dict[str, Any]) -> None:
        """The `stamo_path` that decodes predicted futures must be the checkpoint that labelled the dataset."""
        from lerobot_stamo.transforms.labelling import checkpoint_identity

        c = self.config
        ours = checkpoint_identity(c.stamo_path, c.stamo_revision)["weights_sha256"]
        if labels.get("weights_sha256") not in (None, ours):
            raise ValueError(
                f"The dataset's StaMo columns were written by {labels.get('policy_path')!r}, but "
                f"`policy.stamo_path`={c.stamo_path!r} holds other weights: its states would not match the "
                f"targets. Set `--policy.stamo_path={labels.get('policy_path')}` (the labelling checkpoint), or "
                "relabel the dataset with this one."
            )

    def _init_target_stats(self, stats: dict[str, dict[str, Any]]) -> None:
        """Initialises the target (and latent-action) normalisers from the StaMo columns' dataset stats."""
        column = state_key if self.config.world_model_target == "state" else motion_key
        for norm, keys in (
            (self.model.target_norm, [column(k) for k in self.target_cameras]),
            (self.model.latent_norm, [motion_key(k) for k in self.latent_cameras]),
        ):
            if norm is None or not all(k in stats and "mean" in stats[k] and "std" in stats[k] for k in keys):
                continue
            mean = torch.cat([torch.as_tensor(stats[k]["mean"], dtype=torch.float32).flatten() for k in keys])
            std = torch.cat([torch.as_tensor(stats[k]["std"], dtype=torch.float32).flatten() for k in keys])
            if mean.numel() == norm.mean.numel():
                norm.set_stats(mean, std)

    # ------------------------------------------------------------------ LeRobot interface
    def get_optim_params(self) -> list[dict]:
        """Two groups: pretrained trunk parts (ResNet body; VLM vision tower, connector and language model,
        LoRA adapters excepted) at `optimizer_lr_backbone`, everything else at `optimizer_lr`."""
        pretrained_prefixes = (
            "model.trunk.vision.body.",
            "model.trunk.connector.",
            "model.trunk.language_model.",
        )
        if self.config.backbone == "vlm":
            pretrained_prefixes += ("model.trunk.vision.",)
        backbone, rest = [], []
        for name, p in self.named_parameters():
            if p.requires_grad:
                is_pretrained = name.startswith(pretrained_prefixes) and "lora_" not in name
                (backbone if is_pretrained else rest).append(p)
        groups = [{"params": rest}]
        if backbone:
            groups.append({"params": backbone, "lr": self.config.optimizer_lr_backbone})
        return groups

    def reset(self) -> None:
        self._queue: deque[Tensor] = deque(maxlen=self.config.n_action_steps)

    def _check_batch(self, batch: dict[str, Tensor], training: bool) -> None:
        """Clear errors for missing cameras, a wrong state size and non-finite values."""
        c = self.config
        missing = [k for k in c.camera_keys if k not in batch]
        if c.state_dim and OBS_STATE not in batch:
            missing.append(OBS_STATE)
        if missing:
            raise KeyError(
                f"stamo_vla needs {missing}, missing from the observation (keys: {sorted(batch)}). Add the "
                "cameras the policy was trained on to the robot (`--robot.cameras`) or the env, or map the robot's "
                "names to the policy's with `--rename_map`."
            )
        if OBS_LANGUAGE_TOKENS not in batch:
            raise KeyError(
                "The observation has no instruction tokens: run it through the policy's preprocessor (it "
                "tokenises `task`), e.g. `make_pre_post_processors(policy.config, pretrained_path=...)`."
            )
        if c.state_dim:
            state = batch[OBS_STATE]
            if state.shape[-1] != c.state_dim:
                raise ValueError(
                    f"`{OBS_STATE}` has {state.shape[-1]} values but the policy was trained with {c.state_dim} "
                    f"({c.input_features[OBS_STATE]}). Use a robot with the same joints."
                )
        for key in [*c.camera_keys, OBS_STATE, ACTION] if training else [OBS_STATE]:
            value = batch.get(key)
            if isinstance(value, Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
                raise ValueError(
                    f"`{key}` contains NaN or inf values. Check the dataset / robot readings (e.g. "
                    "`lerobot-dataset-viz`) and drop or repair the frames."
                )

    def supports_rtc(self) -> bool:
        """`lerobot-rollout --inference.type=rtc` may compute chunks in a background thread."""
        return True

    @torch.no_grad()
    def predict_action_chunk(
        self,
        batch: dict[str, Tensor],
        inference_delay: int = 0,
        prev_chunk_left_over: Tensor | None = None,
        **kwargs: Any,
    ) -> Tensor:
        """A normalised action chunk (B, chunk_size, action_dim) in one pass; the world-model head is not run.

        Under real-time chunking (`config.rtc_config` enabled, as `lerobot-rollout --inference.type=rtc` sets
        it), the chunk continues `prev_chunk_left_over`, the normalised actions of the previous chunk not yet
        executed when this observation was taken: see `_continue_chunk`.
        """
        self.eval()
        self._check_batch(batch, training=False)
        chunk = self.model.action_head(self.model.query_states(batch))
        rtc = self.config.rtc_config
        if prev_chunk_left_over is not None and rtc is not None and rtc.enabled:
            chunk = self._continue_chunk(chunk, prev_chunk_left_over, inference_delay)
        return chunk

    def _continue_chunk(self, chunk: Tensor, previous: Tensor, delay: int) -> Tensor:
        """Real-time chunking for a regression head: the new chunk takes over from the previous one smoothly.

        LeRobot's flow-matching policies inpaint the previous chunk's unexecuted prefix by guided denoising; a
        one-pass regression head has nothing to guide, so the prefix is blended in with the same prefix weights
        (`RTCProcessor.get_prefix_weights`, `rtc_config.prefix_attention_schedule`): the `delay` actions that
        run while this chunk is computed are the previous chunk's (weight 1), the following ones move from the
        previous chunk to the new one until `execution_horizon`, the rest are the new chunk's. Without this,
        a chunk switch is a jump between two independent predictions.
        """
        previous = previous.to(chunk).reshape(-1, *previous.shape[-2:])[..., : chunk.shape[-1]]
        # LeRobot pads the leftover with zero rows up to `execution_horizon`: they are not actions.
        rows = previous.ne(0).any(dim=-1).any(dim=0).nonzero()
        horizon = min(
            self.config.rtc_config.execution_horizon, chunk.shape[1], int(rows.max()) + 1 if len(rows) else 0
        )
        if horizon == 0:
            return chunk
        weights = RTCProcessor(self.config.rtc_config).get_prefix_weights(
            min(delay, horizon), horizon, chunk.shape[1]
        )
        weights = weights.to(chunk).view(1, -1, 1)
        prefix = torch.zeros_like(chunk)
        prefix[:, :horizon] = previous[:, :horizon]
        return weights * prefix + (1 - weights) * chunk

    @torch.no_grad()
    def select_action(self, batch: dict[str, Tensor], **kwargs: Any) -> Tensor:
        """The next action (B, action_dim): pops the queue, refilled with `n_action_steps` of a new chunk."""
        if not self._queue:
            chunk = self.predict_action_chunk(batch)[:, : self.config.n_action_steps]
            self._queue.extend(chunk.transpose(0, 1))  # n_action_steps x (B, action_dim)
        return self._queue.popleft()

    def _targets(
        self, batch: dict[str, Tensor], cameras: list[str] | None = None, kind: str | None = None
    ) -> tuple[Tensor, Tensor]:
        """Raw StaMo targets (B, dim) of `cameras` (`kind`: state or motion) and their validity (B,).

        Defaults: the world-model head's cameras and target.
        """
        cameras = self.target_cameras if cameras is None else cameras
        kind = kind or self.config.world_model_target
        parts = []
        for key in cameras:
            if motion_key(key) not in batch:
                raise KeyError(
                    f"The batch has no StaMo motion {motion_key(key)!r} for camera {key!r}: label the dataset "
                    "with `lerobot-stamo-label`, or set `--policy.stamo_path`."
                )
            motion = current_frame(batch[motion_key(key)], 3).float()  # (B, N, D)
            if kind == "state":
                motion = current_frame(batch[state_key(key)], 3).float() + motion  # s(t+k) = s(t) + m
            parts.append(motion.flatten(1))
        target = torch.cat(parts, dim=1)
        valid = batch.get(VALID_KEY)
        if valid is None:
            valid = torch.ones(target.shape[0], dtype=torch.bool, device=target.device)
        return target, frame_flag(valid)

    def forward(self, batch: dict[str, Tensor], reduction: str = "mean") -> tuple[Tensor, dict]:
        """`lambda_action * L1(actions) + lambda_future * (MSE + L1)(StaMo target)`, each term logged.

        On a co-training dataset the action L1 is averaged over the frames with a real action only (a batch of
        video frames adds no action loss), and `lambda_latent * (MSE + L1)(latent motion)` is added over every
        frame whose motion is defined. Each term is a mean over its own valid frames; `reduction="none"`
        spreads them over the batch so that the per-sample losses average to the same scalar.

        Args:
            batch: A preprocessed training batch (frames, state, instruction tokens, action chunk, and the
                StaMo columns when the world-model or latent-action head is on).
            reduction: "mean" (scalar loss) or "none" (per-sample loss (B,)).
        """
        c = self.config
        self._check_batch(batch, training=True)
        actions, future, latent = self.model(batch)  # (B, chunk, A), (B, T) | None, (B, L) | None
        pad = batch.get(f"{ACTION}_is_pad")
        valid_steps = (
            ~pad
            if pad is not None
            else torch.ones(actions.shape[:2], dtype=torch.bool, device=actions.device)
        )
        l1 = (actions - batch[ACTION]).abs().mean(-1) * valid_steps  # (B, chunk)
        action_per_sample = l1.sum(1) / valid_steps.sum(1).clamp_min(1)
        real = batch.get(ACTION_VALID_KEY)
        real = frame_flag(real) if real is not None else torch.ones_like(action_per_sample, dtype=torch.bool)
        action_term, action_loss = self._masked(action_per_sample, real)
        per_sample = c.lambda_action * action_term
        info: dict[str, float] = {"action_loss": action_loss, "real_frames": float(real.sum())}
        for name, pred, norm, cameras, kind, weight in (
            (
                "future",
                future,
                self.model.target_norm,
                self.target_cameras,
                c.world_model_target,
                c.lambda_future,
            ),
            ("latent", latent, self.model.latent_norm, self.latent_cameras, "motion", c.lambda_latent),
        ):
            if pred is None:
                continue
            raw, valid = self._targets(batch, cameras, kind)
            if self.training:
                norm.update(raw[valid])
            err = pred - norm.normalize(raw)
            mse, mae = err.square().mean(-1), err.abs().mean(-1)  # (B,)
            term, value = self._masked(mse + mae, valid)
            per_sample = per_sample + weight * term
            info |= {
                f"{name}_loss": value,
                f"{name}_mse": self._masked(mse, valid)[1],
                f"{name}_l1": self._masked(mae, valid)[1],
            }
        loss = per_sample.mean()
        info["loss"] = loss.item()
        if reduction == "none":
            return per_sample, info
        return loss, info

    @staticmethod
    def _masked(per_sample: Tensor, mask: Tensor) -> tuple[Tensor, float]:
        """Per-sample terms whose batch mean is the mean over `mask`ed samples (0 without any), and that mean."""
        scale = mask.numel() / mask.sum().clamp_min(1)
        term = torch.where(mask, per_sample, torch.zeros_like(per_sample)) * scale
        return term, float(term.detach().mean())

    # ------------------------------------------------------------------ world model at inference
    @torch.no_grad()
    def predict_future(self, batch: dict[str, Tensor], decode: bool = True, **decode_kwargs: Any) -> dict:
        """What the policy expects to see in `future_horizon` frames: predicted StaMo states (and images).

        Args:
            batch: A preprocessed observation batch (single frames).
            decode: Decode the predicted states into images with the `stamo` decoder (needs `stamo_path`).
            **decode_kwargs: Passed to `StamoPolicy.decode` (e.g. `num_inference_steps`, `generator`).

        Returns:
            `{"states": {camera: (B, N, D)}, "images": {camera: (B, 3, S, S)}}` (images only when decoded).
            For `world_model_target=motion` the states are the current states (encoded) plus the motion.
        """
        if self.model.future_head is None:
            raise ValueError(
                "This policy was trained with `world_model_target=none`: it has no world-model head."
            )
        self.eval()
        self._check_batch(batch, training=False)
        pred = self.model.target_norm.unnormalize(self.model.future_head(self.model.query_states(batch)))
        n, d = self._target_shape()
        pred = pred.view(pred.shape[0], len(self.target_cameras), n, d)
        stamo = self.stamo_policy() if self.config.stamo_path else None
        states = {}
        for i, key in enumerate(self.target_cameras):
            states[key] = pred[:, i]
            if self.config.world_model_target == "motion":
                if stamo is None:
                    raise ValueError(
                        "The policy predicts motion; turning it into a future state needs the current state: "
                        "set `policy.config.stamo_path` to the stamo checkpoint that labelled the dataset."
                    )
                states[key] = stamo.encode(current_frame(batch[key], 4)) + pred[:, i]
        out: dict[str, dict[str, Tensor]] = {"states": states}
        if decode and stamo is not None:
            out["images"] = {k: stamo.decode(s, **decode_kwargs) for k, s in states.items()}
        return out

    # ------------------------------------------------------------------ Hub
    def generate_model_card(
        self,
        dataset_repo_id: str,
        model_type: str,
        license: str | None,
        tags: list[str] | None,
        cfg: Any | None = None,
        dataset_meta: Any | None = None,
    ) -> ModelCard:
        """A stamo_vla model card: backbone, world-model target, training data and how to use it."""
        c = self.config
        n_params = sum(p.numel() for p in self.parameters())
        targets_from = (
            "the frozen stamo checkpoint" if c.targets_from_encoder else "the dataset's StaMo columns"
        )
        return render_model_card(
            "lerobot_stamo.policies.stamo_vla",
            c,
            dataset_repo_id,
            model_type,
            license,
            tags,
            {"stamo_vla", "vla", "world-model"},
            cfg,
            dataset_meta,
            repo_id=c.repo_id or "<user>/<stamo_vla-model>",
            backbone=c.backbone,
            vision=c.vision if c.backbone == "compact" else c.vlm_path,
            world_model_target=c.world_model_target,
            future_horizon=c.horizon,
            targets_from=targets_from,
            stamo_path=c.stamo_path or "none",
            target_cameras=", ".join(f"`{k}`" for k in self.target_cameras) or "none",
            cameras=", ".join(f"`{k}`" for k in c.camera_keys),
            chunk_size=c.chunk_size,
            n_action_steps=c.n_action_steps,
            num_params=f"{n_params / 1e6:.1f} M",
            lambdas=f"{c.lambda_action} / {c.lambda_future}",
        )
