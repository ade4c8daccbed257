"""The StaMo decoder: an SD3 MMDiT conditioned on the state, in the latent space of the frozen SD3 VAE.

Training follows the rectified-flow objective of SD3 (paper Eq. 1) with diffusers' training utilities:
`z_t = (1 - sigma) z0 + sigma eps`, the DiT predicts the velocity `eps - z0`, timesteps are sampled with
`compute_density_for_timestep_sampling` and the loss is weighted by `compute_loss_weighting_for_sd3`.
Sampling runs `FlowMatchEulerDiscreteScheduler`'s Euler steps without classifier-free guidance.
"""

import json
import logging
from collections.abc import Callable
from typing import Any

import torch
from diffusers import AutoencoderKL, ConfigMixin, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel
from diffusers.training_utils import compute_density_for_timestep_sampling, compute_loss_weighting_for_sd3
from torch import Tensor, nn

from .configuration_stamo import StamoConfig

logger = logging.getLogger(__name__)
LORA_ADAPTER = "default"  # diffusers' default adapter name: checkpoints' `lora_` keys carry it


def load_pretrained_part(loader: Callable[..., Any], name_or_path: str, field_name: str, **kwargs) -> Any:
    """Calls `loader(name_or_path, **kwargs)` (a `from_pretrained`) and turns failures into clear errors.

    Args:
        loader: A `from_pretrained`-style callable.
        name_or_path: Hub id or local folder.
        field_name: The config field that holds `name_or_path`, for the error message.
        **kwargs: Forwarded to `loader` (e.g. `subfolder`).

    Raises:
        OSError: If the folder or Hub id cannot be loaded, with the fix in the message.
    """
    try:
        return loader(name_or_path, **kwargs)
    except (OSError, ValueError) as err:
        sub = f" (subfolder '{kwargs['subfolder']}')" if "subfolder" in kwargs else ""
        raise OSError(
            f"Could not load `policy.{field_name}`={name_or_path!r}{sub}: it is not a local folder in the Hub "
            "layout and could not be fetched from the Hub (offline, gated or misspelled?). Download it first "
            f"(`hf download {name_or_path}`, after accepting its licence if gated) and pass the local folder, "
            "or use the tiny preset (`python -m lerobot_stamo.policies.stamo.tiny <dir>`). "
            f"Original error: {err}"
        ) from err


DECODER_PARTS = ("transformer", "vae", "scheduler")


def part_config(part: Any) -> dict[str, Any]:
    """The JSON configuration of a transformers model or a diffusers model/scheduler, without its local path.

    `AutoConfig.for_model(**c)` (transformers) or `<class>.from_config(c)` (diffusers) rebuilds the part.
    """
    text = (
        part.to_json_string() if isinstance(part, ConfigMixin) else part.config.to_json_string(use_diff=False)
    )
    config = json.loads(text)
    config.pop("_name_or_path", None)
    return config


class StamoDecoder(nn.Module):
    """SD3 DiT + VAE + flow-matching scheduler, conditioned on `(B, N, token_dim)` states.

    Args:
        config: The policy config (`decoder_path`, `decoder_mode`, `decoder_pretrained`, ...).
        part_configs: The saved configurations of the `transformer`, `vae` and `scheduler` (a checkpoint's
            `part_configs`): the parts are built from them with random weights, to be overwritten by the
            checkpoint's. `None` loads them from `config.decoder_path`.
    """

    def __init__(self, config: StamoConfig, part_configs: dict[str, dict[str, Any]] | None = None):
        super().__init__()
        path = config.decoder_path
        if part_configs is not None:
            self.transformer = SD3Transformer2DModel.from_config(part_configs["transformer"])
            self.vae = AutoencoderKL.from_config(part_configs["vae"])
            self.scheduler = FlowMatchEulerDiscreteScheduler.from_config(part_configs["scheduler"])
        else:
            if config.decoder_pretrained:
                self.transformer = load_pretrained_part(
                    SD3Transformer2DModel.from_pretrained, path, "decoder_path", subfolder="transformer"
                )
            else:
                dit_config = load_pretrained_part(
                    SD3Transformer2DModel.load_config, path, "decoder_path", subfolder="transformer"
                )
                self.transformer = SD3Transformer2DModel.from_config(dit_config)
            self.vae = load_pretrained_part(
                AutoencoderKL.from_pretrained, path, "decoder_path", subfolder="vae"
            )
            self.scheduler = load_pretrained_part(
                FlowMatchEulerDiscreteScheduler.from_pretrained, path, "decoder_path", subfolder="scheduler"
            )
        self.vae.requires_grad_(False)
        self.vae.eval()

        dit = self.transformer.config
        vae = self.vae.config
        self.vae_scale = 2 ** (len(vae.block_out_channels) - 1)
        if vae.latent_channels != dit.in_channels:
            raise ValueError(
                f"The VAE in {path}/vae has {vae.latent_channels} latent channels but the DiT in "
                f"{path}/transformer expects in_channels={dit.in_channels}: use a matching decoder folder."
            )
        if config.image_size % (self.vae_scale * dit.patch_size):
            raise ValueError(
                f"`policy.image_size`={config.image_size} must be a multiple of the VAE downsampling "
                f"({self.vae_scale}) times the DiT patch size ({dit.patch_size})."
            )
        self.latent_size = config.image_size // self.vae_scale
        if dit.pos_embed_max_size is not None and self.latent_size // dit.patch_size > dit.pos_embed_max_size:
            raise ValueError(
                f"`policy.image_size`={config.image_size} gives {self.latent_size // dit.patch_size} latent "
                f"patches per side, above the DiT's pos_embed_max_size={dit.pos_embed_max_size}."
            )
        if not config.project_state and config.token_dim != dit.joint_attention_dim:
            raise ValueError(
                f"`policy.token_dim`={config.token_dim} does not match the decoder's joint_attention_dim="
                f"{dit.joint_attention_dim} ({path}/transformer) and `policy.project_state` is false. Set "
                f"`--policy.token_dim={dit.joint_attention_dim}` or `--policy.project_state=true`."
            )
        cond_dim = dit.joint_attention_dim if config.project_state else config.token_dim
        # state (B, N, token_dim) -> encoder_hidden_states (B, N, joint_attention_dim)
        self.state_proj = nn.Linear(config.token_dim, cond_dim) if config.project_state else nn.Identity()
        # mean over tokens (B, joint_attention_dim) -> pooled_projections (B, pooled_projection_dim)
        self.pooled_proj = nn.Linear(cond_dim, dit.pooled_projection_dim)

        if config.decoder_mode in ("frozen", "lora"):
            self.transformer.requires_grad_(False)
            # Never trained: stored in the compute dtype, like the frozen backbone and VAE (the SD3-medium DiT
            # takes 4.2 GB in bf16 instead of 8.5 GB; LoRA adapters, added next, stay float32 for the optimizer).
            if config.dtype != "float32":
                nn.Module.to(
                    self.transformer, getattr(torch, config.dtype)
                )  # without diffusers' cast warning
        if config.decoder_mode == "lora":
            from peft import LoraConfig
            from peft.tuners.tuners_utils import cast_adapter_dtype

            self.transformer.add_adapter(
                LoraConfig(
                    r=config.lora_rank,
                    lora_alpha=config.lora_alpha,
                    init_lora_weights="gaussian",
                    target_modules=list(config.lora_target_modules),
                ),
                adapter_name=LORA_ADAPTER,
            )
            cast_adapter_dtype(self.transformer, LORA_ADAPTER)  # trained: float32 even on a bf16 base
        if config.gradient_checkpointing:
            self.transformer.enable_gradient_checkpointing()

        # Training timestep grid (the shifted sigmas of the scheduler's own training schedule).
        self.register_buffer("train_timesteps", self.scheduler.timesteps.clone().float(), persistent=False)
        n_train = len(self.scheduler.timesteps)
        self.register_buffer(
            "train_sigmas", self.scheduler.sigmas[:n_train].clone().float(), persistent=False
        )
        self.config = config

    def part_configs(self) -> dict[str, dict[str, Any]]:
        """The configurations of the DiT, VAE and scheduler, enough to rebuild them (weights aside)."""
        return {name: part_config(getattr(self, name)) for name in DECODER_PARTS}

    # ---------------------------------------------------------------- VAE
    @torch.no_grad()
    def latent_params(self, images: Tensor) -> Tensor:
        """Frozen VAE posterior parameters (mean and log-variance) of images in [0, 1].

        Args:
            images: (B, 3, H, W) in [0, 1].

        Returns:
            (B, 2 * C, h, w) raw posterior parameters (`DiagonalGaussianDistribution.parameters`).
        """
        pixels = (images * 2 - 1).to(self.vae.dtype)
        return self.vae.encode(pixels).latent_dist.parameters.float()

    def latents_from_params(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Samples VAE latents from posterior parameters and applies SD3's shift and scaling.

        Args:
            params: (B, 2 * C, h, w) from `latent_params`.
            generator: RNG for the sample.

        Returns:
            (B, C, h, w) normalised latents z0.
        """
        mean, logvar = params.chunk(2, dim=1)
        std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        z = mean + std * noise
        return (z - self.vae.config.shift_factor) * self.vae.config.scaling_factor

    @torch.no_grad()
    def latents_to_images(self, latents: Tensor) -> Tensor:
        """Decodes normalised latents (B, C, h, w) into images (B, 3, H, W) in [0, 1]."""
        z = latents / self.vae.config.scaling_factor + self.vae.config.shift_factor
        pixels = self.vae.decode(z.to(self.vae.dtype)).sample.float()
        return ((pixels + 1) / 2).clamp(0, 1)

    # ---------------------------------------------------------------- DiT
    def conditioning(self, states: Tensor) -> tuple[Tensor, Tensor]:
        """Maps states (B, N, token_dim) to (encoder_hidden_states (B, N, J), pooled_projections (B, P))."""
        hidden = self.state_proj(states.to(self.pooled_proj.weight.dtype))
        return hidden, self.pooled_proj(hidden.mean(dim=1))

    def velocity(self, z_t: Tensor, timesteps: Tensor, states: Tensor) -> Tensor:
        """DiT velocity prediction for noisy latents (B, C, h, w) at timesteps (B,) given states."""
        hidden, pooled = self.conditioning(states)
        dtype = self.transformer.dtype  # a frozen DiT may be stored in a lower precision than the projections
        return self.transformer(
            hidden_states=z_t,
            encoder_hidden_states=hidden.to(dtype),
            pooled_projections=pooled.to(dtype),
            timestep=timesteps,
            return_dict=False,
        )[0]

    def loss(self, z0: Tensor, states: Tensor) -> tuple[Tensor, Tensor]:
        """Per-sample flow-matching loss.

        Args:
            z0: (B, C, h, w) normalised clean latents.
            states: (B, N, token_dim) encoder states.

        Returns:
            The per-sample loss (B,) and the sampled sigmas (B,) in [0, 1].
        """
        cfg = self.config
        b = z0.shape[0]
        u = compute_density_for_timestep_sampling(
            weighting_scheme=cfg.weighting_scheme,
            batch_size=b,
            logit_mean=cfg.logit_mean,
            logit_std=cfg.logit_std,
            mode_scale=cfg.mode_scale,
        )
        idx = (u * len(self.train_timesteps)).long().clamp_(0, len(self.train_timesteps) - 1).to(z0.device)
        timesteps = self.train_timesteps[idx]  # (B,)
        sigmas = self.train_sigmas[idx].view(b, 1, 1, 1)
        # Not randn_like: it follows z0's strides, so the same seed would give layout-dependent noise.
        noise = torch.randn(z0.shape, device=z0.device, dtype=z0.dtype)
        z_t = (1.0 - sigmas) * z0 + sigmas * noise
        pred = self.velocity(z_t.to(self.transformer.dtype), timesteps, states).float()
        target = noise - z0
        weighting = compute_loss_weighting_for_sd3(cfg.weighting_scheme, sigmas)
        per_sample = (weighting.float() * (pred - target) ** 2).flatten(1).mean(dim=1)
        return per_sample, sigmas.flatten()

    @torch.no_grad()
    def sample(
        self,
        states: Tensor,
        num_inference_steps: int,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        """Euler flow sampling from noise to normalised latents.

        Args:
            states: (B, N, token_dim).
            num_inference_steps: Number of Euler steps.
            generator: RNG for the initial noise (ignored when `noise` is given).
            noise: Optional (B, C, h, w) initial noise.

        Returns:
            (B, C, h, w) normalised latents.
        """
        b = states.shape[0]
        shape = (b, self.transformer.config.in_channels, self.latent_size, self.latent_size)
        if noise is None:
            noise = torch.randn(shape, generator=generator, device="cpu").to(states.device)
        latents = noise.to(device=states.device, dtype=torch.float32)
        scheduler = FlowMatchEulerDiscreteScheduler.from_config(self.scheduler.config)
        scheduler.set_timesteps(num_inference_steps, device=states.device)
        for t in scheduler.timesteps:
            if self.transformer.device.type == "cuda":
                torch.compiler.cudagraph_mark_step_begin()  # a new step for compiled (CUDA-graph) DiTs
            pred = self.velocity(latents.to(self.transformer.dtype), t.expand(b), states).float()
            latents = scheduler.step(pred, t, latents, return_dict=False)[0]
        return latents
