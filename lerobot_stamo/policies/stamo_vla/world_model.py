"""StaMo's world model in `stamo_vla`: what the policy predicts besides its actions, and where the targets come from.

`WorldModelHead` maps the pooled query states to the flattened StaMo target of the cameras it predicts (paper
Eq. 3): the state s(t+k) or the motion s(t+k) - s(t), per camera `num_tokens x token_dim` values, normalised by a
`TargetNormalizer` saved with the weights. The co-training latent-action head is the same module on the latent
motion. `WorldModelTargets` is the policy's side of it: which cameras have targets (the StaMo columns of a
labelled dataset, or those the `stamo_pseudo_action` processor step writes from `stamo_path`), the checks of the
labels against the config and the checkpoint, the targets of a batch, and `predict_future` at inference.
"""

from __future__ import annotations

from typing import Any

import torch
from lerobot.configs.types import FeatureType, PolicyFeature
from torch import Tensor, nn

from lerobot_stamo.columns import VALID_KEY, load_labels, motion_key, state_key


def current_frame(x: Tensor, ndim: int) -> Tensor:
    """Frame t of a time stack: (B, T, *shape) -> (B, *shape) when `x` has one more dim than `ndim`."""
    return x[:, 0] if x.ndim == ndim + 1 else x


def frame_flag(x: Tensor) -> Tensor:
    """A per-frame flag column, (B,), (B, 1) or (B, T, 1) with frame t first, as a (B,) bool tensor."""
    return x.reshape(x.shape[0], -1)[:, 0].bool()


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


class WorldModelTargets:
    """The world-model side of `StamoVLAPolicy` (a mixin: it reads `self.config`, `self.model` and the cameras
    resolved at construction, and never holds weights of its own)."""

    def stamo_policy(self):
        """The frozen `stamo` policy of `config.stamo_path` (loaded at the first call, eval, no gradients)."""
        if not self._stamo:
            from lerobot_stamo.policies.stamo import open_frozen_stamo

            cfg = self._stamo_config or self._load_stamo_config()
            device = self.config.device or "cpu"
            self._stamo.append(
                open_frozen_stamo(self.config.stamo_path, self.config.stamo_revision, device, config=cfg)
            )
        return self._stamo[0]

    def _load_stamo_config(self):
        from lerobot_stamo.policies.stamo import load_stamo_config

        # Raises a clear error if `stamo_path` is not a stamo checkpoint.
        self._stamo_config = load_stamo_config(
            self.config.stamo_path, self.config.stamo_revision, flag="--policy.stamo_path"
        )
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
        from lerobot_stamo.policies.stamo import checkpoint_identity

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
        if self.model.world_model_head is None:
            raise ValueError(
                "This policy was trained with `world_model_target=none`: it has no world-model head."
            )
        self.eval()
        self._check_batch(batch, training=False)
        pred = self.model.target_norm.unnormalize(self.model.world_model_head(self.model.query_states(batch)))
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
