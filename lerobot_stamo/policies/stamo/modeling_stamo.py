"""The `stamo` policy: StaMo's diffusion autoencoder, trained with `lerobot-train --policy.type=stamo`.

`StamoPolicy` adapts LeRobot batches and exposes the public state API used by the rest of the project:

    states = policy.encode(images)                      # (B, 3, H, W) -> (B, N, D)
    images = policy.decode(states, generator=g)         # (B, N, D) -> (B, 3, S, S) in [0, 1]
    motion = policy.motion(s_t, s_tk)                   # latent action s_tk - s_t
    path = policy.interpolate(s_a, s_b, n)              # (B, n, N, D), endpoints included
    moved = policy.transfer(s_c, s_a, s_b)              # s_c + (s_b - s_a)

`StamoAutoencoder` is the plain `nn.Module` doing the math: frozen DINOv2 -> compressor -> state, and the
SD3 decoder (`decoder.py`) trained with the flow-matching loss.
"""

import copy
import json
import logging
import os
import shutil
import sys
from numbers import Integral
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from huggingface_hub import HfApi, ModelCard
from lerobot.policies.pretrained import PreTrainedPolicy
from torch import Tensor, nn
from transformers import AutoConfig, AutoModel

from lerobot_stamo.activation import env_evaluated_by_train
from lerobot_stamo.errors import check_finite_loss
from lerobot_stamo.policies.pretrained import HubCompatMixin, StrictLoadingMixin, render_model_card

from .compressor import StamoCompressor
from .configuration_stamo import StamoConfig
from .decoder import DECODER_PARTS, StamoDecoder, load_pretrained_part, part_config
from .images import grid, on_device, prepare_images, psnr, ssim

logger = logging.getLogger(__name__)

RECONSTRUCTION_PNG = "reconstructions.png"
RECONSTRUCTION_JSON = "reconstruction_metrics.json"
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _log_to_wandb(image_path: Path, metrics: dict[str, float]) -> None:
    """Logs the reconstruction grid and metrics to the active wandb run (LeRobot's `--wandb.enable=true`)."""
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is not None:
        wandb.run.log(
            {"stamo/reconstructions": wandb.Image(str(image_path))}
            | {f"stamo/{k}": v for k, v in metrics.items()},
            commit=False,
        )


TRAIN_BACKBONE_WARNED_ENV = "LEROBOT_STAMO_TRAIN_BACKBONE_WARNED"


def warn_train_backbone() -> None:
    """Warns once per run: a run builds the model several times (training, evaluation, labelling, ...), in
    this process and in the child processes it starts, which inherit the environment variable set here."""
    if os.environ.get(TRAIN_BACKBONE_WARNED_ENV):
        return
    os.environ[TRAIN_BACKBONE_WARNED_ENV] = "1"
    logger.warning(
        "policy.train_backbone=true: the backbone is trained. The paper keeps DINOv2 frozen; this is "
        "meant for the tiny preset's random backbone (and rules out caching backbone features)."
    )


def _check_count(value: Any, name: str, minimum: int, why: str = "") -> None:
    """Raises a clear error unless `value` is an int (not a bool) >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        why = f" {why}" if why else ""
        raise ValueError(f"`{name}` must be an integer >= {minimum}{why}, got {value!r}.")


class StamoAutoencoder(nn.Module):
    """Encoder (frozen DINOv2 or CNN backbone + compressor) and decoder (SD3 DiT + VAE) of StaMo.

    Args:
        config: The policy config. Its `part_configs` are (re)recorded from the built parts.
        from_checkpoint: Build the parts from `config.part_configs` with random weights (a checkpoint's
            weights overwrite them) instead of loading them from `backbone` / `decoder_path`.
    """

    def __init__(self, config: StamoConfig, from_checkpoint: bool = False):
        super().__init__()
        self.config = config
        parts = config.part_configs if from_checkpoint else None
        if parts is not None:
            missing = [name for name in ("backbone", *DECODER_PARTS) if name not in parts]
            if missing:
                raise ValueError(
                    f"The checkpoint's `part_configs` lacks {missing} (it has {sorted(parts)}): config.json was "
                    "edited or truncated. Restore it from the original checkpoint."
                )
        if config.backbone_type == "dinov2":
            in_dim = self._build_dinov2(config, parts, from_checkpoint)
        else:
            in_dim = self._build_cnn(config, parts)
        self.compressor = StamoCompressor(
            in_dim=in_dim,
            num_patches=self.num_patches,
            dim=config.compressor_dim,
            num_layers=config.compressor_layers,
            num_heads=config.compressor_heads,
            context_dim=config.context_dim,
            token_dim=config.token_dim,
            num_tokens=config.num_tokens,
            lengths=list(config.compression_lengths),
            stage_head_dim=config.compression_head_dim,
            dropout=config.compressor_dropout,
        )
        self.decoder = StamoDecoder(config, parts)
        backbone_part = (
            part_config(self.backbone) if config.backbone_type == "dinov2" else dict(self.backbone_part)
        )
        config.part_configs = {"backbone": backbone_part} | self.decoder.part_configs()
        mean = torch.tensor(config.backbone_image_mean).view(1, 3, 1, 1)
        std = torch.tensor(config.backbone_image_std).view(1, 3, 1, 1)
        self.register_buffer("pixel_mean", mean, persistent=False)
        self.register_buffer("pixel_std", std, persistent=False)

        compute_dtype = _DTYPES[config.dtype]
        if config.train_backbone:
            warn_train_backbone()
            if config.gradient_checkpointing and self.backbone.supports_gradient_checkpointing:
                self.backbone.gradient_checkpointing_enable()
        else:
            self.backbone.requires_grad_(False)
            if compute_dtype != torch.float32:
                self.backbone.to(compute_dtype)
        if compute_dtype != torch.float32:
            nn.Module.to(self.decoder.vae, compute_dtype)  # without diffusers' cast warning
        self._freeze_modes()

    def _build_dinov2(self, config: StamoConfig, parts: dict | None, from_checkpoint: bool) -> int:
        """Builds the transformers DINOv2/ViT backbone; returns the width of its patch tokens."""
        if parts is not None:
            self.backbone = AutoModel.from_config(AutoConfig.for_model(**parts["backbone"]))
        else:
            if from_checkpoint:
                logger.warning(
                    "This stamo checkpoint predates self-contained checkpoints (no `part_configs` in its "
                    f"config.json): loading its parts from `backbone`={config.backbone!r} and `decoder_path`="
                    f"{config.decoder_path!r} first. Save it again (`policy.save_pretrained`) to make it "
                    "self-contained."
                )
            self.backbone = load_pretrained_part(AutoModel.from_pretrained, config.backbone, "backbone")
        bcfg = self.backbone.config
        if not hasattr(bcfg, "patch_size") or not hasattr(bcfg, "hidden_size"):
            raise ValueError(
                f"`policy.backbone`={config.backbone!r} is a {type(self.backbone).__name__}, not a DINOv2/ViT "
                "model with `patch_size` and `hidden_size`. Use e.g. facebook/dinov2-with-registers-base."
            )
        size = config.backbone_image_size or config.image_size
        if size % bcfg.patch_size:
            field = "backbone_image_size" if config.backbone_image_size else "image_size"
            raise ValueError(
                f"`policy.{field}`={size} must be a multiple of the backbone patch size {bcfg.patch_size}."
            )
        # CLS + register tokens come first in the backbone output; only patch tokens are kept.
        self.num_prefix_tokens = 1 + getattr(bcfg, "num_register_tokens", 0)
        self.num_patches = (size // bcfg.patch_size) ** 2
        return bcfg.hidden_size

    def _build_cnn(self, config: StamoConfig, parts: dict | None) -> int:
        """Builds the pretrained CNN backbone (`efficientnet_lite0`); returns the width of its tokens.

        From a checkpoint (`parts` given) the network is built without weights: the checkpoint's
        `model.safetensors` holds them, so the weights package is not needed.
        """
        from lerobot_stamo.policies import efficientnet

        if parts is not None and parts["backbone"].get("model_type") != config.backbone_type:
            raise ValueError(
                f"The checkpoint's `part_configs.backbone` is a {parts['backbone'].get('model_type')!r}, but its "
                f"`backbone_type` is {config.backbone_type!r}: config.json was edited. Restore it."
            )
        self.backbone = efficientnet.EfficientNetLite0(weights=None if parts is not None else config.backbone)
        self.backbone_part = {"model_type": config.backbone_type, "feature_dim": efficientnet.FEATURE_DIM,
                              "stride": efficientnet.STRIDE, "weights": config.backbone}  # fmt: skip
        self.num_prefix_tokens = 0
        self.num_patches = efficientnet.feature_grid(config.backbone_image_size or config.image_size) ** 2
        return efficientnet.FEATURE_DIM

    def _freeze_modes(self) -> None:
        if not self.config.train_backbone:
            self.backbone.eval()
        self.decoder.vae.eval()

    def train(self, mode: bool = True) -> "StamoAutoencoder":
        super().train(mode)
        self._freeze_modes()  # frozen parts always run in eval mode
        return self

    def patch_features(self, images: Tensor) -> Tensor:
        """Backbone patch tokens of (B, 3, S, S) frames in [0, 1] -> (B, P, C).

        DINOv2: the patch tokens of the last block (CLS and registers dropped). CNN: each position of the last
        feature map (B, C, h, w) is a token, layer-normalised without affine (like DINOv2's final norm).
        """
        size = self.config.backbone_image_size
        if size is not None and tuple(images.shape[-2:]) != (size, size):
            images = F.interpolate(images, size=(size, size), mode="bicubic", antialias=True).clamp(0, 1)
        pixels = (images - self.pixel_mean) / self.pixel_std
        with torch.set_grad_enabled(self.config.train_backbone and torch.is_grad_enabled()):
            if self.config.backbone_type == "dinov2":
                hidden = self.backbone(pixel_values=pixels.to(self.backbone.dtype)).last_hidden_state
                return hidden[:, self.num_prefix_tokens :].float()  # (B, P, C)
            fmap = self.backbone(pixels.to(self.backbone.dtype))  # (B, C, h, w)
        tokens = fmap.flatten(2).transpose(1, 2).float()  # (B, h*w, C)
        return F.layer_norm(tokens, tokens.shape[-1:])

    def encode(self, images: Tensor) -> Tensor:
        """(B, 3, S, S) frames in [0, 1] -> (B, num_tokens, token_dim) states (with gradients)."""
        patches = self.patch_features(images)  # (B, P, C) float32
        return self.compressor(patches.to(self.compressor.split.weight.dtype))

    def loss(
        self,
        images: Tensor | None,
        patches: Tensor | None = None,
        latent_params: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Per-sample flow-matching loss (B,) and sigmas (B,).

        Args:
            images: (B, 3, S, S) frames in [0, 1]; may be None when both cached inputs are given.
            patches: Optional cached backbone patch features (B, P, C) (frozen backbone only).
            latent_params: Optional cached VAE posterior parameters (B, 2c, h, w).
        """
        if patches is None:
            patches = self.patch_features(images)
        states = self.compressor(patches)  # (B, N, D)
        if latent_params is None:
            latent_params = self.decoder.latent_params(images)
        z0 = self.decoder.latents_from_params(latent_params)  # (B, C, h, w)
        return self.decoder.loss(z0, states)


NOT_AN_ACTOR = (
    "`stamo` is a state encoder (StaMo's diffusion autoencoder), not an actor: it has no actions to predict. "
    "Train an actor on its states with `--policy.type=stamo_vla`, or use its latent motion (`policy.motion(...)`, "
    "`lerobot-stamo-label`, `lerobot-stamo-interpolate`)."
)


class StamoPolicy(StrictLoadingMixin, HubCompatMixin, PreTrainedPolicy):
    """StaMo state encoder/decoder as a LeRobot policy (trained by `lerobot-train`, not an actor).

    Args:
        config: A `StamoConfig`.
        from_checkpoint: Build the pretrained parts from `config.part_configs` (set by `from_pretrained`).
        **kwargs: `dataset_stats` / `dataset_meta` from `make_policy` (unused).
    """

    config_class = StamoConfig
    name = "stamo"

    def __init__(self, config: StamoConfig, from_checkpoint: bool = False, **kwargs: Any):
        if not isinstance(config, StamoConfig):
            raise TypeError(
                f"StamoPolicy needs a StamoConfig, got a {type(config).__name__} "
                f"(policy type {getattr(config, 'type', '?')!r}). Load that checkpoint with its own policy class."
            )
        super().__init__(config)
        config.validate_features()
        env = env_evaluated_by_train(sys.argv) if kwargs.get("dataset_meta") is not None else None
        if env:  # refused now rather than at the first evaluation, after that step's training and checkpoint
            raise ValueError(
                f"lerobot-train would evaluate this policy in --env.type={env} every --env_eval_freq steps, but "
                f"{NOT_AN_ACTOR} To train the encoder, drop --env.type (or pass --env_eval_freq=0)."
            )
        self.config = config
        self.model = StamoAutoencoder(config, from_checkpoint)
        self._train_forwards = 0  # training forward passes in this process (a non-finite loss names it)
        self._reconstruction_images: Tensor | None = None
        self._reconstruction_source: str | None = None  # "training" or "held-out" frames
        self._feature_cache = None  # loaded at the first training step when `config.feature_cache` is set
        self.last_reconstruction_metrics: dict[str, float] | None = None
        self._last_reconstruction: tuple[tuple, Path] | None = None  # (key, folder) of the last written ones
        # The inference copy of the model (see `inference_model`); a list keeps it out of the state_dict.
        self._inference: list = []
        self._inference_only = False  # see `for_inference`

    @classmethod
    def from_pretrained(cls, pretrained_name_or_path: str | Path, **kwargs: Any) -> "StamoPolicy":
        """Loads a checkpoint: the parts are built from its `part_configs`, every weight from its safetensors.

        No pretrained part is loaded (no network, no gated SD3 repository); `backbone` and `decoder_path` are
        only read for checkpoints saved before `part_configs` existed.
        """
        return super().from_pretrained(pretrained_name_or_path, from_checkpoint=True, **kwargs)

    # ------------------------------------------------------------ LeRobot interface
    def get_optim_params(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def reset(self) -> None:
        pass

    def _camera_images(self, batch: dict[str, Tensor]) -> Tensor:
        """Stacks the configured cameras of a batch along the batch axis: (n_cams * B, 3, S, S)."""
        frames = []
        for key in self.config.camera_keys:
            if key not in batch:
                raise KeyError(
                    f"Camera {key!r} is missing from the batch (keys: {sorted(batch)}). Set `policy.cameras` "
                    "to cameras the dataset has, or rename them with `--rename_map`."
                )
            frames.append(prepare_images(batch[key], self.config.image_size, key=key))
        return torch.cat(frames, dim=0)

    def _cached_features(
        self, batch: dict[str, Tensor], flip: Tensor | None
    ) -> tuple[Tensor | None, Tensor | None]:
        """Frozen features from `config.feature_cache` for the batch's dataset indices, or (None, None)."""
        if not self.config.feature_cache or "index" not in batch:
            return None, None
        if self._feature_cache is None:
            from .feature_cache import StamoFeatureCache

            self._feature_cache = StamoFeatureCache(self.config.feature_cache, self)
            logger.info(f"Training from the frozen-feature cache in {self.config.feature_cache}")
        n = batch["index"].shape[0]
        patches, params = [], []
        for i, key in enumerate(self.config.camera_keys):
            cam_flip = flip[i * n : (i + 1) * n] if flip is not None else None
            p, z = self._feature_cache.lookup(batch["index"], key, cam_flip)
            patches.append(p)
            params.append(z)
        device = self.device
        patches_out = torch.cat(patches).to(device) if patches[0] is not None else None
        return patches_out, torch.cat(params).to(device)

    def forward(self, batch: dict[str, Tensor], reduction: str = "mean") -> tuple[Tensor, dict]:
        """Flow-matching loss of the decoder conditioned on the encoder's states.

        Args:
            batch: Preprocessed batch with the camera frames (B, 3, S, S) in [0, 1].
            reduction: "mean" (scalar loss) or "none" (per-sample loss (B,), averaged over cameras).

        Returns:
            The loss and a dict with `loss` and one `loss_t{i}` per sigma bucket (0 = least noise; an empty
            bucket reports the batch mean so that every rank logs the same keys).
        """
        images = self._camera_images(batch)  # (n_cams * B, 3, S, S)
        flip = None
        # Fixed frames for the reconstructions written on save: the first held-out frames when the trainer
        # evaluates (`--dataset.eval_split`, `--eval_steps`: forward runs in eval mode), else the first
        # training frames.
        if self._reconstruction_source != "held-out" and (
            not self.training or self._reconstruction_images is None
        ):
            self._reconstruction_images = images[: self.config.reconstruction_num_images].detach().cpu()
            self._reconstruction_source = "training" if self.training else "held-out"
        if self.training and self.config.random_flip > 0:
            flip = torch.rand(images.shape[0], device=images.device) < self.config.random_flip
        patches, latent_params = self._cached_features(batch, flip)
        if flip is not None and patches is None:  # the backbone (at least) still sees the frames
            images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
        per_sample, sigmas = self.model.loss(images, patches, latent_params)
        loss = per_sample.mean()
        info: dict[str, float] = {"loss": loss.item()}
        nb = self.config.loss_buckets
        bucket = (sigmas * nb).long().clamp(0, nb - 1)
        for i in range(nb):
            mask = bucket == i
            info[f"loss_t{i}"] = per_sample[mask].mean().item() if mask.any() else info["loss"]
        if self.training:
            self._train_forwards += 1
            check_finite_loss("stamo", self._train_forwards, info, "lower --policy.optimizer_lr")
        if reduction == "none":
            n_cams = len(self.config.camera_keys)
            return per_sample.view(n_cams, -1).mean(dim=0), info
        return loss, info

    def predict_action_chunk(self, batch: dict[str, Tensor], **kwargs: Any) -> Tensor:
        raise NotImplementedError(NOT_AN_ACTOR)

    def select_action(self, batch: dict[str, Tensor], **kwargs: Any) -> Tensor:
        return self.predict_action_chunk(batch)

    # ------------------------------------------------------------ public state API
    @property
    def device(self) -> torch.device:
        return self.model.pixel_mean.device

    def train(self, mode: bool = True) -> "StamoPolicy":
        if mode and self._inference_only:
            raise RuntimeError(
                "This stamo policy was prepared for inference only (`for_inference()`: its weights are stored in "
                f"{self.config.dtype}). Load it again with `StamoPolicy.from_pretrained` to train it."
            )
        super().train(mode)
        if mode:
            self._inference.clear()  # training changes the weights: free the inference copy's memory
        return self

    def for_inference(self) -> "StamoPolicy":
        """Prepares a policy that will never train: its own weights are stored in the compute dtype.

        `inference_model()` otherwise keeps a compute-dtype copy beside the float32 weights, so that training
        can go on; commands that only encode or decode (labelling, the probe, interpolation, the
        `stamo_pseudo_action` step, a frozen encoder inside `stamo_vla`) call this instead and keep one set of
        weights: with `dtype=bfloat16`, half the memory of float32 alone, a third of float32 plus the copy.
        With `compile=true` the model itself is compiled. `train()` is refused afterwards. Returns `self`
        (in eval mode, without gradients).
        """
        c = self.config
        self.eval().requires_grad_(False)
        if (c.dtype == "float32" and not c.compile) or self._inference_only:
            return self
        m = self.model
        for module in (
            m.backbone,
            m.compressor,
            m.decoder.transformer,
            m.decoder.state_proj,
            m.decoder.pooled_proj,
        ):
            nn.Module.to(module, _DTYPES[c.dtype])  # nn.Module.to: see `inference_model`
        if c.compile:
            self._compile(m)
        self._inference.clear()
        self._inference_only = True
        return self

    def inference_model(self) -> StamoAutoencoder:
        """The model `encode`, `decode` and `backbone_features` run.

        With `dtype=float32` and `compile=false` it is `self.model`. Otherwise it is a copy whose trained parts
        (compressor, DiT, state projections; the backbone too) are stored in the compute dtype, so no
        float32 weight is cast on every call, and, with `compile=true`, whose backbone, compressor and DiT are
        compiled with `torch.compile` (`compile_mode`, default "reduce-overhead" on CUDA: CUDA graphs for the
        fixed-shape decode loop). The frozen VAE is shared, not copied. The copy follows the weights: it is
        refreshed in place when they change (optimizer steps, loading), rebuilt when the policy moves to
        another device, and dropped by `train()`.
        """
        c = self.config
        if (c.dtype == "float32" and not c.compile) or self._inference_only:
            return self.model
        params = [p for name, p in self.model.named_parameters() if not name.startswith("decoder.vae.")]
        key = tuple(p._version for p in params)
        if not self._inference or self._inference[0][0] != self.device:
            # Share the frozen VAE (already in the compute dtype) and the config; copy everything else.
            memo = {id(self.model.decoder.vae): self.model.decoder.vae, id(c): c}
            twin = copy.deepcopy(self.model, memo)
            for module in (twin.backbone, twin.compressor, twin.decoder.transformer, twin.decoder.state_proj,
                           twin.decoder.pooled_proj):  # fmt: skip
                # nn.Module.to: diffusers' own `to` warns about casting a loaded model (nothing here is
                # kept in float32 by diffusers' rules, and the trained float32 weights stay in self.model).
                nn.Module.to(module.requires_grad_(False), _DTYPES[c.dtype])
            twin.eval()
            if c.compile:
                self._compile(twin)
            twin_params = [p for name, p in twin.named_parameters() if not name.startswith("decoder.vae.")]
            self._inference[:] = [(self.device, twin, list(zip(params, twin_params, strict=True)), key)]
        device, twin, pairs, last_key = self._inference[0]
        if last_key != key:
            with torch.no_grad():
                for source, target in pairs:
                    target.copy_(source)
            self._inference[0] = (device, twin, pairs, key)
        return twin

    def _compile(self, twin: StamoAutoencoder) -> None:
        """Compiles the inference copy's backbone, compressor and DiT in place (`Module.compile`)."""
        c = self.config
        kwargs: dict[str, Any] = {"backend": c.compile_backend, "dynamic": False}
        if c.compile_backend == "inductor":
            kwargs["mode"] = c.compile_mode or (
                "reduce-overhead" if self.device.type == "cuda" else "default"
            )
        logger.info(f"Compiling the stamo backbone, compressor and DiT for inference ({kwargs})")
        for module in (twin.backbone, twin.compressor, twin.decoder.transformer):
            module.compile(**kwargs)

    @torch.inference_mode()
    def encode(self, images: Tensor) -> Tensor:
        """Encodes camera frames into StaMo states.

        Args:
            images: (B, 3, H, W) uint8 in [0, 255] or float in [0, 1]; resized to `config.image_size`.

        Returns:
            (B, num_tokens, token_dim) float32 states.
        """
        images = prepare_images(on_device(images, self.device), self.config.image_size)
        return self.inference_model().encode(images).float().clone()  # a copy: never a CUDA-graph buffer

    @torch.inference_mode()
    def backbone_features(self, images: Tensor) -> Tensor:
        """The backbone's patch features of camera frames (what the compressor reads).

        Args:
            images: (B, 3, H, W) uint8 in [0, 255] or float in [0, 1]; resized to `config.image_size`.

        Returns:
            (B, num_patches, backbone_dim) float32 features (CLS and register tokens dropped).
        """
        images = prepare_images(on_device(images, self.device), self.config.image_size)
        return self.inference_model().patch_features(images).float().clone()

    @torch.inference_mode()
    def decode(
        self,
        states: Tensor,
        num_inference_steps: int | None = None,
        generator: torch.Generator | None = None,
        shared_noise: bool = False,
    ) -> Tensor:
        """Decodes states into images with the flow-matching sampler (no guidance).

        Args:
            states: (B, num_tokens, token_dim) (or (num_tokens, token_dim)).
            num_inference_steps: Euler steps (default `config.num_inference_steps`, 50).
            generator: CPU RNG for the initial noise, for reproducible decodes.
            shared_noise: Use the same initial noise for every state (interpolation strips).

        Returns:
            (B, 3, S, S) float32 images in [0, 1].
        """
        states = self._check_states(states, "states").to(self.device, torch.float32)
        steps = self.config.num_inference_steps if num_inference_steps is None else num_inference_steps
        _check_count(steps, "num_inference_steps", 1)
        noise = None
        dec = self.inference_model().decoder
        if shared_noise:
            shape = (1, dec.transformer.config.in_channels, dec.latent_size, dec.latent_size)
            noise = torch.randn(shape, generator=generator).expand(states.shape[0], -1, -1, -1)
        latents = dec.sample(states, steps, generator=generator, noise=noise)
        return dec.latents_to_images(latents)

    def motion(self, s_t: Tensor, s_tk: Tensor) -> Tensor:
        """Latent motion (StaMo's latent action) from state `s_t` to `s_tk`: `s_tk - s_t`.

        Args:
            s_t / s_tk: (B, N, D) or (N, D) states of the same shape.

        Returns:
            The motion, same shape.
        """
        self._check_same_states(s_t=s_t, s_tk=s_tk)
        return s_tk - s_t

    def interpolate(self, s_a: Tensor, s_b: Tensor, n: int) -> Tensor:
        """Linear interpolation between states, endpoints included.

        The pooled conditioning is a linear function of the state, so interpolating the state interpolates
        the tokens and the pooled vector alike.

        Args:
            s_a: (B, N, D) or (N, D) start states.
            s_b: Goal states, same shape.
            n: Number of states on the path (>= 2).

        Returns:
            (B, n, N, D) (or (n, N, D) for unbatched inputs).
        """
        _check_count(n, "n", 2, "to include both endpoints")
        self._check_same_states(s_a=s_a, s_b=s_b)
        alphas = torch.linspace(0, 1, n, device=s_a.device, dtype=s_a.dtype)
        alphas = alphas.view(*([1] * (s_a.ndim - 2)), n, 1, 1)  # (..., n, 1, 1)
        return torch.lerp(s_a.unsqueeze(-3), s_b.unsqueeze(-3), alphas)

    def transfer(self, s_c: Tensor, s_a: Tensor, s_b: Tensor) -> Tensor:
        """Motion transfer: applies the motion a -> b to the state c (`s_c + (s_b - s_a)`).

        Args:
            s_c / s_a / s_b: (B, N, D) or (N, D) states, all of the same shape (no broadcasting).

        Returns:
            The moved states, same shape.
        """
        self._check_same_states(s_c=s_c, s_a=s_a, s_b=s_b)
        return s_c + (s_b - s_a)

    def _check_states(self, states: Tensor, name: str) -> Tensor:
        """Checks that `states` are finite float (B, N, D) or (N, D) states of this model; returns (B, N, D)."""
        n, d = self.config.num_tokens, self.config.token_dim
        if not isinstance(states, Tensor):
            raise TypeError(
                f"`{name}` must be a torch.Tensor of shape (B, {n}, {d}), got {type(states).__name__}."
            )
        if not states.is_floating_point():
            raise TypeError(
                f"`{name}` must be float states (from `policy.encode`), got dtype {states.dtype}."
            )
        if states.ndim == 2:
            states = states.unsqueeze(0)
        if states.ndim != 3 or tuple(states.shape[1:]) != (n, d) or states.shape[0] == 0:
            raise ValueError(
                f"`{name}` must have shape (B, {n}, {d}) or ({n}, {d}) with B >= 1 (this model's num_tokens x "
                f"token_dim), got {tuple(states.shape)}. Encode the frames with this checkpoint's "
                "`policy.encode`."
            )
        if not torch.isfinite(states).all():
            bad = (~torch.isfinite(states)).flatten(1).any(dim=1).nonzero().flatten().tolist()
            raise ValueError(
                f"`{name}` contains NaN or inf values (batch items {bad[:10]}): pass finite states."
            )
        return states

    def _check_same_states(self, **states: Tensor) -> None:
        """Checks every state tensor (see `_check_states`) and that they all have the same shape."""
        for name, x in states.items():
            self._check_states(x, name)
        shapes = {name: tuple(x.shape) for name, x in states.items()}
        if len(set(shapes.values())) > 1:
            listed = ", ".join(f"`{name}` {shape}" for name, shape in shapes.items())
            raise ValueError(
                f"The states must all have the same shape (no broadcasting), got {listed}. Pass one state per "
                "batch item to each argument (e.g. repeat a single state with `.expand(B, -1, -1)`)."
            )

    # ------------------------------------------------------------ reconstructions and the Hub
    @torch.no_grad()
    def reconstruct(
        self, images: Tensor, num_inference_steps: int | None = None, seed: int = 0
    ) -> tuple[Tensor, Tensor, dict[str, float]]:
        """Encodes and decodes frames.

        Args:
            images: (B, 3, H, W) frames (uint8 or float in [0, 1]).
            num_inference_steps: Euler steps of the decode.
            seed: Seed of the initial noise.

        Returns:
            The reconstructions (B, 3, S, S), the VAE round trips (B, 3, S, S) (the best the decoder can do)
            and mean metrics: `psnr`/`ssim` against the frames, `psnr_vae`/`ssim_vae` against the VAE
            round trips.
        """
        was_training = self.training
        self.eval()
        target = prepare_images(images.to(self.device), self.config.image_size)
        recon = self.decode(
            self.encode(target), num_inference_steps, generator=torch.Generator().manual_seed(seed)
        )
        dec = self.model.decoder
        round_trip = dec.latents_to_images(
            dec.latents_from_params(dec.latent_params(target), torch.Generator(self.device).manual_seed(seed))
        )
        self.train(was_training)
        metrics = {
            "psnr": psnr(recon, target).mean().item(),
            "ssim": ssim(recon, target).mean().item(),
            "psnr_vae": psnr(recon, round_trip).mean().item(),
            "ssim_vae": ssim(recon, round_trip).mean().item(),
        }
        return recon, round_trip, metrics

    def write_reconstructions(self, images: Tensor, directory: str | Path) -> dict[str, float]:
        """Writes `reconstructions.png` (rows: frames, VAE round trips, reconstructions) and the metrics JSON."""
        import imageio.v3 as iio

        directory = Path(directory)
        recon, round_trip, metrics = self.reconstruct(
            images, self.config.reconstruction_num_inference_steps, self.config.reconstruction_seed
        )
        target = prepare_images(images.to(self.device), self.config.image_size)
        iio.imwrite(directory / RECONSTRUCTION_PNG, grid([target, round_trip, recon]).numpy())
        frames = self._reconstruction_source or "given"
        (directory / RECONSTRUCTION_JSON).write_text(json.dumps(metrics | {"frames": frames}, indent=2))
        self.last_reconstruction_metrics = metrics
        _log_to_wandb(directory / RECONSTRUCTION_PNG, metrics)
        logger.info(
            f"stamo reconstructions: PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.3f} "
            f"(vs the VAE round trip: {metrics['psnr_vae']:.2f} dB, {metrics['ssim_vae']:.3f})"
        )
        return metrics

    def _reconstruction_key(self) -> tuple:
        """Changes when the trained weights change in place (optimizer steps, loading) or the frames do."""
        versions = tuple(p._version for p in self.parameters() if p.requires_grad)
        return versions, id(self._reconstruction_images), self._reconstruction_source

    def save_extras(self, save_directory: Path) -> None:
        """`reconstructions.png` and its metrics, of the frames of the last `forward` (`reconstruction_on_save`)."""
        if not self.config.reconstruction_on_save or self._reconstruction_images is None:
            return
        key, last = self._reconstruction_key(), self._last_reconstruction
        names = (RECONSTRUCTION_PNG, RECONSTRUCTION_JSON)
        if last is not None and last[0] == key and all((last[1] / n).is_file() for n in names):
            # Same weights and frames as the last save (e.g. `push_to_hub` right after the final checkpoint):
            # copy its files instead of decoding again (minutes on a CPU with the real SD3).
            if last[1].resolve() != save_directory.resolve():
                for n in names:
                    shutil.copyfile(last[1] / n, save_directory / n)
            return
        try:
            self.write_reconstructions(self._reconstruction_images, save_directory)
            self._last_reconstruction = (key, save_directory)
        except Exception as err:  # a failed preview must never lose a checkpoint
            logger.warning(f"Could not write stamo reconstructions to {save_directory}: {err}")

    def generate_model_card(
        self,
        dataset_repo_id: str,
        model_type: str,
        license: str | None,
        tags: list[str] | None,
        cfg: Any | None = None,
        dataset_meta: Any | None = None,
    ) -> ModelCard:
        """A StaMo model card: what the model is, how it was trained, on what, PSNR/SSIM and how to use it."""
        c = self.config
        sizes = [self.model.num_patches, *c.compression_lengths, c.num_tokens]
        fields = ("num_tokens", "token_dim", "backbone", "image_size", "compressor_layers", "compressor_dim",
                  "decoder_path", "decoder_mode", "decoder_pretrained", "weighting_scheme")  # fmt: skip
        return render_model_card(
            "lerobot_stamo.policies.stamo",
            c,
            dataset_repo_id,
            model_type,
            license,
            tags,
            {"latent-action", "state-representation"},
            cfg,
            dataset_meta,
            repo_id=c.repo_id or "<user>/<stamo-model>",
            metrics=self.last_reconstruction_metrics,
            recon_steps=c.reconstruction_num_inference_steps,
            recon_frames=self._reconstruction_source or "given",
            compression=" -> ".join(str(n) for n in sizes),
            cameras=", ".join(f"`{k}`" for k in c.camera_keys),
            **({k: getattr(c, k) for k in fields} | self._card_backbone()),
        )

    def _card_backbone(self) -> dict[str, Any]:
        """The model card's backbone and its input size (a CNN is named with its weights)."""
        c = self.config
        card = {"image_size": c.backbone_image_size or c.image_size}
        if c.backbone_type != "dinov2":
            card["backbone"] = f"{c.backbone_type} ({c.backbone} weights)"
        return card

    def push_model_to_hub(
        self, cfg: Any, peft_model: Any = None, state_dict: dict | None = None, dataset_meta: Any = None
    ):
        """Uploads weights, config, train config, the StaMo model card and the reconstruction image.

        Same contract as LeRobot's `PreTrainedPolicy.push_model_to_hub` (one commit), plus `*.png`.
        """
        if peft_model is not None:
            return super().push_model_to_hub(cfg, peft_model=peft_model, dataset_meta=dataset_meta)
        api = HfApi()
        repo_id = api.create_repo(
            repo_id=self.config.repo_id, private=self.config.private, exist_ok=True
        ).repo_id
        with TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
            saved_path = Path(tmp) / repo_id
            # + reconstructions.png and metrics; `state_dict` only where LeRobot's save takes one (0.6.1)
            self.save_pretrained(saved_path, **({} if state_dict is None else {"state_dict": state_dict}))
            card = self.generate_model_card(
                cfg.dataset.repo_id,
                self.config.type,
                self.config.license,
                self.config.tags,
                cfg,
                dataset_meta,
            )
            card.save(str(saved_path / "README.md"))
            cfg.save_pretrained(saved_path)
            commit_info = api.upload_folder(
                repo_id=repo_id,
                repo_type="model",
                folder_path=saved_path,
                commit_message="Upload stamo policy weights, train config, model card and reconstructions",
                allow_patterns=["*.safetensors", "*.json", "*.yaml", "*.md", "*.png"],
                ignore_patterns=["*.tmp", "*.log"],
            )
            logging.info(f"Model pushed to {commit_info.repo_url.url}")
