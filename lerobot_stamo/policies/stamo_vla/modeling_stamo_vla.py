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
columns have them, else running stats), both saved in the checkpoint; the head, its targets and their checks are
in `world_model.py`.

On a co-training dataset (`lerobot-stamo-cotrain`: robot episodes plus StaMo-labelled videos), the per-frame
mask `observation.action_valid` restricts the action loss to frames with a real action, and a latent-action
head learns the latent motion of every frame; on video frames the placeholder joint state is replaced by the
real frames' mean (0 after normalisation). Inference runs neither head.
"""

import json
import logging
from collections import deque
from typing import Any

import torch
from huggingface_hub import ModelCard
from lerobot.policies.pretrained import PreTrainedPolicy
from lerobot.policies.rtc.modeling_rtc import RTCProcessor
from lerobot.utils.constants import ACTION, OBS_LANGUAGE_ATTENTION_MASK, OBS_LANGUAGE_TOKENS, OBS_STATE
from torch import Tensor, nn

from lerobot_stamo.columns import ACTION_VALID_KEY, STATE_PREFIX
from lerobot_stamo.errors import MissingInputError, check_finite_loss, frame_range_hint
from lerobot_stamo.policies.pretrained import HubCompatMixin, StrictLoadingMixin, render_model_card

from .compact import CompactTrunk
from .configuration_stamo_vla import StamoVLAConfig
from .world_model import TargetNormalizer, WorldModelHead, WorldModelTargets, current_frame, frame_flag

logger = logging.getLogger(__name__)


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


# Weights renamed since checkpoints were first published (old prefix -> new): those checkpoints still load.
RENAMED_WEIGHTS = {"future_head.": "world_model_head."}


def _load_renamed_weights(module: nn.Module, state_dict: dict[str, Tensor], prefix: str, *args) -> None:
    """A `load_state_dict` pre-hook of `StamoVLA`: old weight names in `state_dict` become today's."""
    for old, new in RENAMED_WEIGHTS.items():
        for key in [k for k in state_dict if k.startswith(prefix + old)]:
            state_dict[prefix + new + key[len(prefix + old) :]] = state_dict.pop(key)


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
        self.world_model_head = (
            WorldModelHead(dim, config.world_model_hidden_dim, target_dim) if target_dim else None
        )
        self.target_norm = TargetNormalizer(target_dim) if target_dim else None
        self.latent_head = (
            WorldModelHead(dim, config.world_model_hidden_dim, latent_dim) if latent_dim else None
        )
        self.latent_norm = TargetNormalizer(latent_dim) if latent_dim else None
        self.register_load_state_dict_pre_hook(_load_renamed_weights)

    def query_states(self, batch: dict[str, Tensor]) -> Tensor:
        """Runs the trunk on frame t of the batch: (B, chunk_size, D)."""
        images = [current_frame(batch[key], 4) for key in self.config.camera_keys]
        state = current_frame(batch[OBS_STATE], 2) if self.config.state_dim else None
        if state is not None and ACTION_VALID_KEY in batch:
            # Video frames of a co-training dataset carry a placeholder state: use the real frames' mean.
            state = state * frame_flag(batch[ACTION_VALID_KEY]).to(state.dtype)[:, None]
        tokens, mask = batch[OBS_LANGUAGE_TOKENS], batch[OBS_LANGUAGE_ATTENTION_MASK]
        if self.config.backbone == "compact":  # the batch's dataset indices key its frozen-feature memo
            return self.trunk(images, state, tokens, mask, frame_ids=batch.get("index"))
        return self.trunk(images, state, tokens, mask)

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Normalised action chunk (B, chunk_size, action_dim), future prediction and latent action."""
        queries = self.query_states(batch)
        actions = self.action_head(queries)
        future = self.world_model_head(queries) if self.world_model_head is not None else None
        latent = self.latent_head(queries) if self.latent_head is not None else None
        return actions, future, latent


class StamoVLAPolicy(WorldModelTargets, StrictLoadingMixin, HubCompatMixin, PreTrainedPolicy):
    """`stamo_vla` as a LeRobot policy: `lerobot-train`, `lerobot-eval`, `lerobot-rollout`, async inference.

    Args:
        config: A `StamoVLAConfig`.
        dataset_stats: Dataset statistics (`make_policy`): initialise the world-model target's normaliser.
        dataset_meta: Dataset metadata (`make_policy`): checks of the labels, horizon and tasks.
    """

    config_class = StamoVLAConfig
    name = "stamo_vla"
    # What LeRobot's `drop_queued_actions` clears (after 0.6.1; see `drop_queued_actions` below).
    _action_queue_attrs = ("_queue",)

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
        self._train_forwards = 0  # training forward passes in this process (a non-finite loss names it)
        if dataset_stats:
            self._init_target_stats(dataset_stats)
        self.reset()

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

    def drop_queued_actions(self) -> None:
        """Forgets the queued actions: the next `select_action` predicts a new chunk (e.g. after a new task).

        LeRobot after 0.6.1 calls it when the instruction changes mid-episode (its own clears
        `_action_queue_attrs`); defined here, it exists under 0.6.1 too.
        """
        self._queue.clear()

    def _check_batch(self, batch: dict[str, Tensor], training: bool) -> None:
        """Clear errors for missing cameras, a wrong state size and non-finite values."""
        c = self.config
        missing = [k for k in c.camera_keys if k not in batch]
        if c.state_dim and OBS_STATE not in batch:
            missing.append(OBS_STATE)
        if missing and (
            unused := sorted(k for k in batch if k.startswith("observation.image") and k not in c.camera_keys)
        ):
            guess = dict(zip(unused, [k for k in c.camera_keys if k not in batch], strict=False))
            raise MissingInputError(
                f"stamo_vla reads the cameras {c.camera_keys}, but the observation names its cameras {unused}. Map "
                f"them to the policy's names, e.g. `--rename_map='{json.dumps(guess)}'` (lerobot-eval, "
                "lerobot-record, lerobot-rollout), or rename the keys before the preprocessor."
            )
        if missing:
            present = sorted(k for k in batch if k.startswith("observation."))
            raise MissingInputError(
                f"stamo_vla needs {missing}, missing from the observation (its keys: {present}). Add the "
                "cameras the policy was trained on to the robot (`--robot.cameras`) or the env, or map the robot's "
                "names to the policy's with `--rename_map`."
            )
        if OBS_LANGUAGE_TOKENS not in batch:
            raise MissingInputError(
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
        keys = (*c.camera_keys, OBS_STATE, OBS_LANGUAGE_TOKENS)
        sizes = {k: v.shape[0] for k, v in batch.items() if k in keys and isinstance(v, Tensor) and v.ndim}
        if len(set(sizes.values())) > 1:
            raise ValueError(
                f"The observation's batch sizes differ: {sizes}. Give every camera, the state and the task the "
                "same number of batch items (one task string per item)."
            )
        for key in c.camera_keys:
            frames = batch[key]
            if not isinstance(frames, Tensor) or not frames.is_floating_point():
                kind = frames.dtype if isinstance(frames, Tensor) else type(frames).__name__
                raise TypeError(
                    f"`{key}` is {kind}, but the policy reads float frames in [0, 1] (B, 3, H, W), as its "
                    "preprocessor makes them from uint8 camera frames. Run the observation through the policy's "
                    "preprocessor (`make_pre_post_processors(policy.config, pretrained_path=...)`) before "
                    "`select_action`."
                )
            if not training and frames.numel() and frames.amax() > 1 + 1e-3:
                lo, hi = frames.amin().item(), frames.amax().item()
                raise ValueError(
                    f"`{key}` has pixel values in [{lo:.1f}, {hi:.1f}], but the policy reads frames in [0, 1]. Run "
                    "the observation through the policy's preprocessor (it scales uint8 frames)."
                    + frame_range_hint(lo, hi)
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
        if self.training:
            self._train_forwards += 1
            fix = "lower --policy.optimizer_lr or the loss weights (--policy.lambda_future, --policy.lambda_latent)"
            check_finite_loss("stamo_vla", self._train_forwards, info, fix)
        if reduction == "none":
            return per_sample, info
        return loss, info

    @staticmethod
    def _masked(per_sample: Tensor, mask: Tensor) -> tuple[Tensor, float]:
        """Per-sample terms whose batch mean is the mean over `mask`ed samples (0 without any), and that mean."""
        scale = mask.numel() / mask.sum().clamp_min(1)
        term = torch.where(mask, per_sample, torch.zeros_like(per_sample)) * scale
        return term, float(term.detach().mean())

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
