"""The `vlm` trunk of `stamo_vla`: a SmolVLM-family vision-language model with OpenVLA-OFT action queries.

    cameras (B, 3, H, W) in [0, 1] -> resize_with_pad, x*2-1 -> vision tower -> connector -> image tokens
    instruction tokens (B, L)      -> the language model's embed_tokens                    -> language tokens
    state (B, state_dim)           -> Linear                                               -> 1 state token
    num_queries learned embeddings                                                         -> action queries
        [image tokens | language tokens | state token | queries] -> language model, bidirectional attention
        -> last hidden states of the queries (B, num_queries, hidden_size), float32

The prefix is built like LeRobot's SmolVLA (`policies/smolvla/modeling_smolvla.py`, `embed_prefix`); instead of
SmolVLA's flow-matching action expert, `num_queries` learned queries are appended and the whole sequence
attends bidirectionally (OpenVLA-OFT's parallel decoding), so one forward pass yields the whole action chunk.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import torch
from lerobot.policies.common.vla_utils import resize_with_pad
from lerobot.processor import ProcessorStepRegistry, TokenizerProcessorStep
from torch import Tensor, nn

from .configuration_stamo_vla import StamoVLAConfig

logger = logging.getLogger(__name__)


def vlm_config_dict(model: nn.Module) -> dict[str, Any]:
    """The JSON configuration of a loaded VLM (without its local path): enough to rebuild it, weights aside."""
    config = json.loads(model.config.to_json_string(use_diff=False))
    config.pop("_name_or_path", None)
    return config


def build_vlm_from_config(config: dict[str, Any], dtype: torch.dtype) -> nn.Module:
    """Builds a SmolVLM-family model from a saved configuration with random weights (a checkpoint's follow).

    Returns:
        The model's `.model` (vision_model, connector, text_model), as `load_vlm`.
    """
    from transformers import AutoConfig, AutoModelForImageTextToText

    vlm_config = AutoConfig.for_model(**config)
    vlm = AutoModelForImageTextToText.from_config(vlm_config, dtype=dtype, attn_implementation="sdpa")
    return vlm.model


def load_vlm(path: str, dtype: torch.dtype) -> nn.Module:
    """Loads a SmolVLM-family model with `AutoModelForImageTextToText` (a Hub id or a local folder).

    Args:
        path: Hub id (e.g. "HuggingFaceTB/SmolVLM2-500M-Video-Instruct") or folder written by `save_pretrained`.
        dtype: dtype of the loaded weights.

    Returns:
        The model's `.model` (vision_model, connector, text_model): the language-model head is not needed.

    Raises:
        OSError: If the model cannot be found (a missing folder, or a Hub id while offline).
        ValueError: If the model is not of the SmolVLM / Idefics3 family.
    """
    from transformers import AutoModelForImageTextToText

    try:
        # SDPA takes the 4-D boolean attention mask as is (eager would add it, flash-attention ignores it).
        vlm = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype, attn_implementation="sdpa")
    except OSError as err:
        raise OSError(
            f"Cannot load the VLM of `policy.vlm_path`={path!r}: {str(err).splitlines()[0]}\n"
            "Pass a local folder written by `save_pretrained` via `--policy.vlm_path=<folder>`, or go online "
            "(unset HF_HUB_OFFLINE) to download it from the Hub."
        ) from err
    model = vlm.model
    if not all(hasattr(model, name) for name in ("vision_model", "connector", "text_model")):
        raise ValueError(
            f"`policy.vlm_path`={path!r} is a {type(vlm).__name__}; the `vlm` trunk needs a SmolVLM-family model "
            "(vision_model, connector, text_model), e.g. HuggingFaceTB/SmolVLM2-500M-Video-Instruct."
        )
    return model


class VLMTrunk(nn.Module):
    """SmolVLM prefix (cameras, instruction, state) + learned action queries, read bidirectionally.

    The VLM is loaded from `vlm_path`, and its configuration recorded in `config.vlm_config`. A checkpoint
    (`config.pretrained_path` set, as `from_pretrained` and `lerobot-train` do) is rebuilt from `vlm_config`
    instead, its weights coming from the checkpoint: `vlm_path` is then only provenance.

    Args:
        config: The policy config: `vlm_path`, `vlm_dtype`, `vlm_num_layers`, `freeze_vision_encoder`,
            `use_lora` / `lora_rank` / `lora_alpha` / `lora_target_modules`, `gradient_checkpointing`.
        state_dim: Width of the (normalised) robot state; 0 when the robot has none (no state token).
        num_queries: Learned action queries appended after the prefix (one per action of the chunk).

    Attributes:
        hidden_size: Width of the returned query states (the language model's hidden size).
    """

    def __init__(self, config: StamoVLAConfig, state_dim: int, num_queries: int):
        super().__init__()
        self.vlm_dtype = getattr(torch, config.vlm_dtype)
        if config.vlm_config is not None and config.pretrained_path is not None:
            # A checkpoint: its saved VLM configuration, every weight from its safetensors (no `vlm_path`).
            vlm = build_vlm_from_config(config.vlm_config, self.vlm_dtype)
        else:
            logger.info("Loading the VLM %s (%s)", config.vlm_path, config.vlm_dtype)
            vlm = load_vlm(config.vlm_path, self.vlm_dtype)
            config.vlm_config = vlm_config_dict(vlm)

        # Keep the first `vlm_num_layers` language layers, like SmolVLA's `num_vlm_layers`.
        text_model = vlm.text_model
        n_layers = len(text_model.layers)
        num_layers = n_layers if config.vlm_num_layers is None else config.vlm_num_layers
        if not 1 <= num_layers <= n_layers:
            raise ValueError(
                f"`policy.vlm_num_layers`={config.vlm_num_layers} must be between 1 and the {n_layers} language "
                f"layers of {config.vlm_path!r} (or None for all)."
            )
        text_model.layers = text_model.layers[:num_layers]
        text_model.config.num_hidden_layers = num_layers
        if config.gradient_checkpointing:
            # Checkpoints the vision and language layers that train (a frozen vision tower runs in eval mode).
            vlm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

        self.image_size = vlm.config.vision_config.image_size
        self.hidden_size = text_model.config.hidden_size
        self.train_vision = not config.freeze_vision_encoder
        self.vision = vlm.vision_model
        self.connector = vlm.connector
        for param in [*self.vision.parameters(), *self.connector.parameters()]:
            param.requires_grad = self.train_vision
        if config.use_lora:
            from peft import LoraConfig, get_peft_model

            # Freezes the language model and adds trainable low-rank adapters (float32) to the target layers.
            lora = LoraConfig(
                r=config.lora_rank, lora_alpha=config.lora_alpha, target_modules=config.lora_target_modules
            )
            text_model = get_peft_model(text_model, lora)
        self.language_model = text_model

        # The new layers stay float32; their outputs are cast to the VLM's dtype when the sequence is built.
        self.state_proj = nn.Linear(state_dim, self.hidden_size) if state_dim else None
        self.queries = nn.Parameter(torch.randn(num_queries, self.hidden_size) * 0.02)
        self.train()

    def train(self, mode: bool = True) -> VLMTrunk:
        super().train(mode)
        if not self.train_vision:  # a frozen vision tower stays in eval mode (as in SmolVLA)
            self.vision.eval()
            self.connector.eval()
        return self

    def embed_image(self, image: Tensor) -> Tensor:
        """(B, 3, H, W) in [0, 1] -> image tokens (B, N, hidden_size), scaled by sqrt(hidden_size) as in SmolVLA."""
        # Aspect-preserving resize to the vision tower's square input, zero padding on the left/top, to [-1, 1].
        pixels = resize_with_pad(image, self.image_size, self.image_size, pad_value=0) * 2.0 - 1.0
        with torch.set_grad_enabled(self.train_vision and torch.is_grad_enabled()):
            pixels = pixels.to(self.vlm_dtype)
            patches = self.vision(pixel_values=pixels).last_hidden_state  # (B, P, D_vision)
            tokens = self.connector(patches)  # (B, P / scale_factor^2, hidden_size)
        return tokens * math.sqrt(self.hidden_size)

    def forward(
        self, images: list[Tensor], state: Tensor | None, tokens: Tensor, token_mask: Tensor
    ) -> Tensor:
        """Runs the VLM over [image tokens, language tokens, state token, queries] and returns the queries.

        Args:
            images: One (B, 3, H, W) float tensor in [0, 1] per camera.
            state: (B, state_dim) normalised robot state, or None when the trunk has no state token.
            tokens: (B, L) instruction token ids (the VLM's tokenizer).
            token_mask: (B, L) bool, True for real tokens, False for padding.

        Returns:
            (B, num_queries, hidden_size) float32 last hidden states of the action queries.
        """
        b = tokens.shape[0]
        embed_tokens = self.language_model.get_input_embeddings()
        parts = [self.embed_image(image) for image in images]  # each (B, N, D)
        parts.append(embed_tokens(tokens) * math.sqrt(self.hidden_size))  # (B, L, D)
        if self.state_proj is not None:
            parts.append(self.state_proj(state).unsqueeze(1))  # (B, 1, D)
        parts.append(self.queries.expand(b, -1, -1))  # (B, Q, D)
        x = torch.cat([part.to(self.vlm_dtype) for part in parts], dim=1)  # (B, S, D)

        # Padding tokens are hidden as keys; every other token sees every token (no causal mask). Positions skip
        # padding, so how much an instruction is padded does not change the queries.
        keep = torch.ones(b, x.shape[1], dtype=torch.bool, device=x.device)  # (B, S)
        start = sum(part.shape[1] for part in parts[: len(images)])
        keep[:, start : start + tokens.shape[1]] = token_mask.bool()
        attention_mask = keep[:, None, None, :].expand(b, 1, x.shape[1], x.shape[1])  # (B, 1, S, S)
        position_ids = keep.long().cumsum(dim=1) - 1  # (B, S)

        hidden = self.language_model(
            inputs_embeds=x, attention_mask=attention_mask, position_ids=position_ids, use_cache=False
        ).last_hidden_state  # (B, S, D)
        return hidden[:, -self.queries.shape[0] :].float()  # (B, Q, D)


@ProcessorStepRegistry.register(name="stamo_vla_tokenizer")
@dataclass
class StamoVLATokenizerStep(TokenizerProcessorStep):
    """LeRobot's tokenizer step that saves the tokenizer's files with the processor (self-contained).

    Created with `tokenizer_name` (the VLM's folder or Hub id), it loads the tokenizer from there; its state
    (`state_dict`, saved as safetensors next to the processor's JSON) holds the tokenizer's files as bytes, and
    a reloaded step rebuilds the tokenizer from them, so `tokenizer_name` is only provenance.

    Attributes:
        from_saved_files: Set in the saved config: the tokenizer comes from the state, not `tokenizer_name`.
    """

    from_saved_files: bool = False

    def __post_init__(self):
        if self.from_saved_files and self.tokenizer is None:
            self.input_tokenizer = None  # set by `load_state_dict`
            return
        super().__post_init__()

    def get_task(self, transition) -> list[str]:
        from .tasks import checked_tasks

        return checked_tasks(transition, self.task_key)

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {"tokenizer_name": self.tokenizer_name, "from_saved_files": True}

    def save_artifacts(self, save_directory: Any) -> dict[str, str]:
        """None: the state holds the tokenizer. (LeRobot after 0.6.1 would also save it to `tokenizer/` and
        point `tokenizer_name` there; this keeps one copy and the same files under every release.)"""
        return {}

    def state_dict(self) -> dict[str, Tensor]:
        if self.input_tokenizer is None:
            raise RuntimeError(
                "The stamo_vla tokenizer step was created from a saved processor without its tokenizer state "
                "file: reload the checkpoint's processor with its policy_preprocessor_*.safetensors files."
            )
        with TemporaryDirectory() as tmp:
            self.input_tokenizer.save_pretrained(tmp)
            return {
                f.name: torch.frombuffer(bytearray(f.read_bytes()), dtype=torch.uint8).clone()
                for f in sorted(Path(tmp).iterdir())
                if f.is_file()
            }

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        from transformers import AutoTokenizer

        with TemporaryDirectory() as tmp:
            for name, data in state.items():
                (Path(tmp) / name).write_bytes(data.numpy().tobytes())
            self.input_tokenizer = AutoTokenizer.from_pretrained(tmp)

    def __call__(self, transition):
        if self.input_tokenizer is None:
            raise RuntimeError(
                "The stamo_vla tokenizer has no tokenizer: its processor was loaded without the state file "
                "holding the tokenizer's files. Reload the checkpoint with `make_pre_post_processors`."
            )
        return super().__call__(transition)
