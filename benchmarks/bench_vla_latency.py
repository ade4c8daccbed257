"""Inference latency of `stamo_vla` next to LeRobot's ACT and SmolVLA, and what its world-model head costs.

Every figure is a median of `--reps` repetitions after warm-up. The variants of one comparison are timed in
alternating rounds (A B C, then C B A, ...), so drift (CPU clock, background load) cancels out of their
ratios. Inference runs at batch 1 on already-preprocessed tensors (the processor pipelines are not timed),
under `torch.inference_mode()` like `lerobot-rollout`:

1. `compact` stamo_vla with the sizes of configs/stamo_vla_compact_sim.json (dim_model 256, 4 layers, chunk
   20, n_action_steps 10, random ResNet18) on 2 cameras x 224x224 + a 6-d state + a 30-byte instruction:
   `predict_action_chunk` and one full `select_action` queue cycle (a chunk, then pops), with the
   world-model head (`world_model_target=state`, labelled StaMo columns (2, 32) per camera) and without
   (`none`), next to LeRobot's ACT with its default config (chunk 100, random ResNet18) on the same inputs.
2. `vlm` stamo_vla next to LeRobot's SmolVLA (`load_vlm_weights=True`) on the same inputs, both on a
   SmolVLM-family model written to a temporary folder in the Hub layout and loaded by path: the tiny
   test model (`write_tiny_smolvlm`), and a model with the architecture of
   HuggingFaceTB/SmolVLM2-500M-Video-Instruct and random weights (the Hub is not needed). 16 language layers
   for both (SmolVLA's `num_vlm_layers`); `--dtype` sets the VLM's dtype.
3. One training step (forward + backward + gradient clipping + AdamW) of `compact` at batch 8 x 2 cameras x
   96x96, with world-model targets read from labelled columns, or computed online from frames t and t+1
   by a tiny random `stamo` encoder in the preprocessor step `StamoPseudoActionStep` (timed as part of the
   step), each next to `world_model_target=none`.

Writes benchmarks/results/vla_latency.json (every sample) and vla_latency.md (the table)::

    .venv/bin/python benchmarks/bench_vla_latency.py                                  # CPU, everything
    .venv/bin/python benchmarks/bench_vla_latency.py --device cuda
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_vla_latency.py --reps 2 --skip_vlm500m   # smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.processor import TokenizerProcessorStep, TransitionKey
from lerobot.processor.converters import create_transition
from lerobot.utils.constants import (
    ACTION,
    OBS_IMAGES,
    OBS_LANGUAGE_ATTENTION_MASK,
    OBS_LANGUAGE_TOKENS,
    OBS_STATE,
)
from torch import Tensor
from tqdm import tqdm

from lerobot_stamo.columns import VALID_KEY, motion_key, state_key
from lerobot_stamo.policies.stamo_vla import StamoVLAConfig, StamoVLAPolicy
from lerobot_stamo.policies.stamo_vla.processor_stamo_vla import StamoVLAByteTokenizerStep
from lerobot_stamo.stand_ins import tiny_stamo_checkpoint, write_tiny_smolvlm

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
COMPACT_PRESET = REPO / "configs" / "stamo_vla_compact_sim.json"

CAMERAS = (f"{OBS_IMAGES}.front", f"{OBS_IMAGES}.wrist")
STATE_DIM = ACTION_DIM = 6
INSTRUCTION = "pick up the red cube and place"  # 30 bytes
TARGET_SHAPE = (2, 32)  # one camera's StaMo state: num_tokens x token_dim (the tiny stamo preset)
WARMUP_ROUNDS = 2
VLM_NUM_LAYERS = 16  # SmolVLA's default `num_vlm_layers`

# HuggingFaceTB/SmolVLM2-500M-Video-Instruct (config.json): SigLIP-style vision tower, pixel-shuffle
# connector, SmolLM2-360M-style llama language model.
SMOLVLM2_500M_VISION = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "image_size": 512,
    "patch_size": 16,
}
SMOLVLM2_500M_TEXT = {
    "model_type": "llama",
    "vocab_size": 49280,
    "hidden_size": 960,
    "intermediate_size": 2560,
    "num_hidden_layers": 32,
    "num_attention_heads": 15,
    "num_key_value_heads": 5,
    "head_dim": 64,
    "rope_theta": 100000.0,
    "rms_norm_eps": 1e-5,
    "max_position_embeddings": 8192,
    "tie_word_embeddings": False,
}
SMOLVLM2_500M_SCALE_FACTOR = 4


# --------------------------------------------------------------------------------------------- timing
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    """Wall-clock seconds of one call, with the device's queued work finished before and after."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def alternating_rounds(
    fns: dict[str, Callable[[], Any]],
    reps: int,
    device: torch.device,
    warmup: int = WARMUP_ROUNDS,
    desc: str = "",
) -> dict[str, list[float]]:
    """Times every function once per round, in order on even rounds and in reverse on odd ones.

    Returns:
        `{name: [seconds per round]}` (`reps` samples each), after `warmup` untimed rounds.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for r in tqdm(range(reps), desc=desc, unit="round", leave=False):
        for name in list(fns) if r % 2 == 0 else list(reversed(fns)):
            samples[name].append(timed(fns[name], device))
    return samples


def summary(samples: list[float], per: int = 1) -> dict[str, Any]:
    """Median (and spread) of samples, divided by `per` (e.g. actions per chunk)."""
    return {
        "median_s": statistics.median(samples) / per,
        "min_s": min(samples) / per,
        "max_s": max(samples) / per,
        "samples_s": [s / per for s in samples],
    }


def median_ci95(values: list[float]) -> tuple[float, float]:
    """Distribution-free ~95% confidence interval of a median (binomial order statistics)."""
    s, n = sorted(values), len(values)
    k = max(0, math.floor((n - 1.96 * math.sqrt(n)) / 2))
    return s[k], s[n - 1 - k]


def ratio(a: list[float], b: list[float]) -> dict[str, Any]:
    """`a` over `b`: the ratio of the medians, and the median (with its 95% CI) of the per-round ratios."""
    paired = [x / y for x, y in zip(a, b, strict=True)]
    return {
        "of_medians": statistics.median(a) / statistics.median(b),
        "paired_median": statistics.median(paired),
        "paired_ci95": median_ci95(paired),
    }


def fmt_ratio(r: dict[str, Any], digits: int = 3) -> str:
    (lo, hi), d = r["paired_ci95"], digits
    return f"{r['of_medians']:.{d}f}x (paired {r['paired_median']:.{d}f}x, CI {lo:.{d}f}-{hi:.{d}f})"


# --------------------------------------------------------------------------------------------- inputs
def input_features(image_hw: int, labelled: bool) -> dict[str, PolicyFeature]:
    """2 cameras + a 6-d state (+ the StaMo columns of a dataset labelled by `lerobot-stamo-label`)."""
    feats = {k: PolicyFeature(FeatureType.VISUAL, (3, image_hw, image_hw)) for k in CAMERAS}
    feats[OBS_STATE] = PolicyFeature(FeatureType.STATE, (STATE_DIM,))
    if labelled:
        for key in CAMERAS:
            feats[state_key(key)] = PolicyFeature(FeatureType.STATE, TARGET_SHAPE)
            feats[motion_key(key)] = PolicyFeature(FeatureType.STATE, TARGET_SHAPE)
        feats[VALID_KEY] = PolicyFeature(FeatureType.STATE, (1,))
    return feats


def output_features() -> dict[str, PolicyFeature]:
    return {ACTION: PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))}


def tokenize(step: TokenizerProcessorStep, batch_size: int) -> tuple[Tensor, Tensor]:
    """The instruction's tokens and mask (B, L), made by the policy's own tokenizer step."""
    transition = create_transition(observation={}, complementary_data={"task": [INSTRUCTION] * batch_size})
    observation = step(transition)[TransitionKey.OBSERVATION]
    return observation[OBS_LANGUAGE_TOKENS], observation[OBS_LANGUAGE_ATTENTION_MASK]


def observation(
    image_hw: int, tokens: Tensor, mask: Tensor, device: torch.device, frames: int = 1, seed: int = 0
) -> dict[str, Tensor]:
    """A preprocessed observation: frames in [0, 1] ((B, 3, H, W) or (B, T, 3, H, W)), state, tokens."""
    g = torch.Generator().manual_seed(seed)
    b = tokens.shape[0]
    shape = (b, 3, image_hw, image_hw) if frames == 1 else (b, frames, 3, image_hw, image_hw)
    batch = {key: torch.rand(*shape, generator=g) for key in CAMERAS}
    batch[OBS_STATE] = torch.randn(b, STATE_DIM, generator=g)
    batch[OBS_LANGUAGE_TOKENS], batch[OBS_LANGUAGE_ATTENTION_MASK] = tokens, mask
    return {k: v.to(device) for k, v in batch.items()}


def gflops(fn: Callable[[], Any]) -> float:
    """GFLOPs of one call, counted by torch's `FlopCounterMode` (matmuls, convolutions, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


def num_params(policy: torch.nn.Module) -> int:
    return sum(p.numel() for p in policy.parameters())


# --------------------------------------------------------------------------------------------- policies
def compact_policy(
    device: torch.device, image_hw: int, world_model_target: str, dataset_meta: Any = None, **overrides: Any
) -> StamoVLAPolicy:
    """`compact` stamo_vla, sizes of configs/stamo_vla_compact_sim.json (same seed: same trunk weights)."""
    fields = json.loads(COMPACT_PRESET.read_text())["policy"]
    skip = ("type", "device", "push_to_hub", "world_model_target")
    fields = {k: v for k, v in fields.items() if k not in skip} | overrides
    labelled = world_model_target != "none" and not fields.get("stamo_path")
    config = StamoVLAConfig(
        **fields,
        world_model_target=world_model_target,
        device=device.type,
        push_to_hub=False,
        input_features=input_features(image_hw, labelled),
        output_features=output_features(),
    )
    torch.manual_seed(0)
    return StamoVLAPolicy(config, dataset_meta=dataset_meta).to(device)


def act_policy(device: torch.device, image_hw: int):
    """LeRobot's ACT, default config (chunk 100; ResNet18 with random weights: nothing to download)."""
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy

    config = ACTConfig(
        pretrained_backbone_weights=None,
        device=device.type,
        push_to_hub=False,
        input_features=input_features(image_hw, labelled=False),
        output_features=output_features(),
    )
    torch.manual_seed(0)
    return ACTPolicy(config).to(device)


def queue_cycle(policy, batch: dict[str, Tensor]) -> Callable[[], None]:
    """One full `select_action` cycle from an empty queue: `n_action_steps` calls (one chunk, then pops)."""

    def run() -> None:
        policy.reset()
        for _ in range(policy.config.n_action_steps):
            policy.select_action(batch)

    return run


# --------------------------------------------------------------------------------------------- 1. compact
@torch.inference_mode()
def compact_vs_act(device: torch.device, reps: int) -> dict[str, Any]:
    """1a/1b: compact stamo_vla with and without the world-model head, and ACT, at batch 1."""
    hw = 224
    policies = {
        "stamo_vla_world_model": compact_policy(device, hw, "state"),
        "stamo_vla_no_world_model": compact_policy(device, hw, "none"),
        "act": act_policy(device, hw),
    }
    for policy in policies.values():
        policy.eval()
    batch = observation(hw, *tokenize(StamoVLAByteTokenizerStep(max_length=48), 1), device)

    chunk = alternating_rounds(
        {name: (lambda p=p: p.predict_action_chunk(batch)) for name, p in policies.items()},
        reps,
        device,
        desc="compact: predict_action_chunk",
    )
    cycle = alternating_rounds(
        {name: queue_cycle(p, batch) for name, p in policies.items()},
        reps,
        device,
        desc="compact: select_action",
    )
    out: dict[str, Any] = {
        "image_hw": hw,
        "instruction_tokens": batch[OBS_LANGUAGE_TOKENS].shape[1],
        "policies": {},
    }
    for name, policy in policies.items():
        n = policy.config.n_action_steps
        out["policies"][name] = {
            "params": num_params(policy),
            "gflops_per_chunk": gflops(lambda policy=policy: policy.predict_action_chunk(batch)),
            "chunk_size": policy.config.chunk_size,
            "n_action_steps": n,
            "predict_action_chunk": summary(chunk[name]),
            "select_action_cycle": summary(cycle[name]),
            "select_action_per_action": summary(cycle[name], per=n),
        }
    wm, base, act = "stamo_vla_world_model", "stamo_vla_no_world_model", "act"
    per_action = {name: [s / policies[name].config.n_action_steps for s in cycle[name]] for name in policies}
    out["world_model_overhead"] = {
        "predict_action_chunk": ratio(chunk[wm], chunk[base]),
        "select_action_cycle": ratio(cycle[wm], cycle[base]),
    }
    out["vs_act"] = {
        "predict_action_chunk": ratio(chunk[wm], chunk[act]),
        "select_action_cycle": ratio(cycle[wm], cycle[act]),
        "select_action_per_action": ratio(per_action[wm], per_action[act]),
    }
    return out


# --------------------------------------------------------------------------------------------- 2. vlm
def write_smolvlm2_500m(path: Path, tokenizer_dir: Path) -> dict[str, Any]:
    """Writes a random model with the architecture of SmolVLM2-500M-Video-Instruct in the Hub folder layout.

    The tokenizer is the tiny test tokenizer (400 tokens, SmolVLM's special tokens) of `tokenizer_dir`; the
    embedding keeps the real 49,280 rows (only the first 400 are ever looked up). Weights are saved in
    bfloat16, like the Hub repo.
    """
    from transformers import (
        AutoTokenizer,
        SmolVLMConfig,
        SmolVLMForConditionalGeneration,
        SmolVLMImageProcessor,
        SmolVLMProcessor,
        SmolVLMVideoProcessor,
    )

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    image_size, patch = SMOLVLM2_500M_VISION["image_size"], SMOLVLM2_500M_VISION["patch_size"]
    sizes = {"size": {"longest_edge": 4 * image_size}, "max_image_size": {"longest_edge": image_size}}
    SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(**sizes),
        tokenizer=tokenizer,
        video_processor=SmolVLMVideoProcessor(**sizes),
        image_seq_len=(image_size // patch // SMOLVLM2_500M_SCALE_FACTOR) ** 2,
    ).save_pretrained(path)
    config = SmolVLMConfig(
        vision_config=dict(SMOLVLM2_500M_VISION),
        text_config=dict(SMOLVLM2_500M_TEXT),
        scale_factor=SMOLVLM2_500M_SCALE_FACTOR,
        image_token_id=tokenizer.image_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = SmolVLMForConditionalGeneration(config)
    params = num_params(model)
    model.to(torch.bfloat16).save_pretrained(path)
    return {
        "params": params,
        "tokenizer_vocab": len(tokenizer),
        "embedding_rows": SMOLVLM2_500M_TEXT["vocab_size"],
    }


def vlm_policies(device: torch.device, vlm_dir: Path, dtype: str) -> dict[str, Any]:
    """`vlm` stamo_vla (defaults: LoRA, chunk 20 / 10 steps) and SmolVLA (chunk 50 / 50) on one VLM."""
    from lerobot.policies.smolvla.configuration_smolvla import SmolVLAConfig
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy
    from transformers import AutoConfig

    vlm_config = AutoConfig.from_pretrained(vlm_dir)
    num_layers = min(VLM_NUM_LAYERS, vlm_config.text_config.num_hidden_layers)
    image_size = vlm_config.vision_config.image_size
    stamo_config = StamoVLAConfig(
        backbone="vlm",
        vlm_path=str(vlm_dir),
        vlm_dtype=dtype,
        vlm_num_layers=num_layers,
        device=device.type,
        push_to_hub=False,
        input_features=input_features(224, labelled=True),
        output_features=output_features(),
    )
    torch.manual_seed(0)
    stamo = StamoVLAPolicy(stamo_config).to(device)
    smolvla_config = SmolVLAConfig(
        vlm_model_name=str(vlm_dir),
        load_vlm_weights=True,
        num_vlm_layers=num_layers,
        resize_imgs_with_padding=(image_size, image_size),
        device=device.type,
        push_to_hub=False,
        input_features=input_features(224, labelled=False),
        output_features=output_features(),
    )
    torch.manual_seed(0)
    smolvla = SmolVLAPolicy(smolvla_config).to(device)
    if dtype == "float32":
        smolvla.to(torch.float32)  # SmolVLA always loads its VLM in bfloat16
    return {"stamo_vla": stamo.eval(), "smolvla": smolvla.eval(), "vlm_num_layers": num_layers}


@torch.inference_mode()
def vlm_vs_smolvla(device: torch.device, vlm_dir: Path, dtype: str, reps: int, warmup: int) -> dict[str, Any]:
    """2: `predict_action_chunk` of `vlm` stamo_vla and SmolVLA on the same VLM folder and inputs, batch 1."""
    built = vlm_policies(device, vlm_dir, dtype)
    policies = {name: built[name] for name in ("stamo_vla", "smolvla")}
    step = TokenizerProcessorStep(tokenizer_name=str(vlm_dir), max_length=48, padding="longest")
    batch = observation(224, *tokenize(step, 1), device)
    chunk = alternating_rounds(
        {name: (lambda p=p: p.predict_action_chunk(batch)) for name, p in policies.items()},
        reps,
        device,
        warmup=warmup,
        desc=f"vlm {vlm_dir.name}: predict_action_chunk",
    )
    out: dict[str, Any] = {
        "vlm": vlm_dir.name,
        "dtype": dtype,
        "vlm_num_layers": built["vlm_num_layers"],
        "instruction_tokens": batch[OBS_LANGUAGE_TOKENS].shape[1],
        "reps": reps,
        "warmup_rounds": warmup,
        "policies": {},
    }
    for name, policy in policies.items():
        n = policy.config.n_action_steps
        out["policies"][name] = {
            "params": num_params(policy),
            "gflops_per_chunk": gflops(lambda policy=policy: policy.predict_action_chunk(batch)),
            "chunk_size": policy.config.chunk_size,
            "n_action_steps": n,
            "predict_action_chunk": summary(chunk[name]),
            "per_action": summary(chunk[name], per=n),  # the chunk's cost spread over the actions executed
        }
    n_stamo, n_smolvla = (policies[k].config.n_action_steps for k in ("stamo_vla", "smolvla"))
    out["stamo_vla_vs_smolvla"] = {
        "predict_action_chunk": ratio(chunk["stamo_vla"], chunk["smolvla"]),
        "per_action": ratio(
            [s / n_stamo for s in chunk["stamo_vla"]], [s / n_smolvla for s in chunk["smolvla"]]
        ),
    }
    return out


# --------------------------------------------------------------------------------------------- 3. training
def train_step(policy: StamoVLAPolicy, make_batch: Callable[[], dict[str, Tensor]]) -> Callable[[], None]:
    """One `lerobot-train` update: forward, backward, gradient clipping, AdamW (the policy's preset)."""
    preset = policy.config.get_optimizer_preset()
    optimizer = preset.build(policy.get_optim_params())
    policy.train()

    def run() -> None:
        loss, _ = policy.forward(make_batch())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), preset.grad_clip_norm)
        optimizer.step()

    return run


def train_overhead(device: torch.device, reps: int, tmp: Path) -> dict[str, Any]:
    """3: train-step time with the world-model head (labelled / encoder targets) vs `none`."""
    from lerobot_stamo.policies.stamo import StamoPseudoActionStep
    from lerobot_stamo.stand_ins import record_square_dataset

    hw, b = 96, 8
    checkpoint = tiny_stamo_checkpoint(tmp / "stamo", image_hw=hw).path
    # With encoder targets the policy reads the stamo checkpoint only when given a dataset's metadata, as
    # `make_policy` does in `lerobot-train`: a tiny recorded dataset provides it (episode lengths, tasks).
    meta = record_square_dataset(tmp / "squares").meta
    policies = {
        "none": compact_policy(device, hw, "none"),
        "labels": compact_policy(device, hw, "state"),
        "encoder": compact_policy(
            device, hw, "state", meta, stamo_path=str(checkpoint), world_model_targets_from="encoder"
        ),
    }
    chunk = policies["none"].config.chunk_size
    tokens, mask = tokenize(StamoVLAByteTokenizerStep(max_length=48), b)
    g = torch.Generator().manual_seed(1)
    actions = {
        ACTION: torch.randn(b, chunk, ACTION_DIM, generator=g).to(device),
        f"{ACTION}_is_pad": torch.zeros(b, chunk, dtype=torch.bool, device=device),
    }
    single = observation(hw, tokens, mask, device) | actions
    labelled = single | {VALID_KEY: torch.ones(b, dtype=torch.bool, device=device)}
    for key in CAMERAS:
        labelled[state_key(key)] = torch.randn(b, *TARGET_SHAPE, generator=g).to(device)
        labelled[motion_key(key)] = 0.1 * torch.randn(b, *TARGET_SHAPE, generator=g).to(device)
    # Frames t and t+1 of each camera, as LeRobot's dataset gives them for `observation_delta_indices=[0, 1]`.
    stacks = observation(hw, tokens, mask, device, frames=2) | actions
    pseudo_action = StamoPseudoActionStep(policy_path=str(checkpoint), write_states=True)

    def encoded() -> dict[str, Tensor]:
        return pseudo_action(create_transition(observation=stacks))[TransitionKey.OBSERVATION]

    steps = {
        "none": train_step(policies["none"], lambda: single),
        "labels": train_step(policies["labels"], lambda: labelled),
        "encoder": train_step(policies["encoder"], encoded),
    }
    samples = alternating_rounds(steps, reps, device, desc="compact: train step")
    return {
        "batch_size": b,
        "image_hw": hw,
        "stamo_checkpoint_params": num_params(pseudo_action.encoder(device)),  # encoder and decoder
        "params": {name: num_params(p) for name, p in policies.items()},
        "step": {name: summary(s) for name, s in samples.items()},
        "overhead_labels": ratio(samples["labels"], samples["none"]),
        "overhead_encoder": ratio(samples["encoder"], samples["none"]),
    }


# --------------------------------------------------------------------------------------------- report
def ms(figure: dict[str, Any]) -> str:
    return f"{figure['median_s'] * 1e3:.1f}"


def goal(r: dict[str, Any], limit: float) -> str:
    """Whether the ratio of the medians meets `<= limit`; a miss inside the paired ratio's CI is noise."""
    if r["of_medians"] <= limit:
        return f"<= {limit:g}: met"
    if r["paired_ci95"][0] <= limit:
        return f"<= {limit:g}: not resolved (above, but the CI reaches {limit:g})"
    return f"<= {limit:g}: missed"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table."""
    return [f"| {' | '.join(header)} |", "|" + "---|" * len(header), *(f"| {' | '.join(r)} |" for r in rows)]


def markdown(result: dict[str, Any]) -> str:
    env, c, t = result["environment"], result["compact"], result["train"]
    lines = [
        f"# stamo_vla latency ({env['device']}, {env['threads']} thread(s), torch {env['torch']})",
        "",
        f"{env['device_name']}, {env['cpu_count']} CPUs; {result['started_utc']}; run time "
        f"{result['run_time_s']:.0f} s. Medians of {result['reps']} alternating rounds after {WARMUP_ROUNDS} "
        "warm-up rounds. Ratios: of the medians (in brackets: the median of the per-round ratios and its 95% "
        "confidence interval). Batch 1, preprocessed tensors (processors not timed), random weights.",
        "",
        f"## 1. compact stamo_vla vs ACT: 2 cameras x {c['image_hw']}^2, 6-d state, 30-byte instruction "
        f"({c['instruction_tokens']} byte tokens)",
        "",
    ]
    columns = {
        "stamo_vla_world_model": "stamo_vla, world model (state)",
        "stamo_vla_no_world_model": "stamo_vla, no world model",
        "act": "ACT (default)",
    }
    pol = [c["policies"][name] for name in columns]
    lines += table(
        ["", *columns.values()],
        [
            ["parameters (M)", *(f"{q['params'] / 1e6:.1f}" for q in pol)],
            ["GFLOPs per chunk (FlopCounterMode)", *(f"{q['gflops_per_chunk']:.2f}" for q in pol)],
            ["chunk_size / n_action_steps", *(f"{q['chunk_size']} / {q['n_action_steps']}" for q in pol)],
            ["predict_action_chunk (ms)", *(ms(q["predict_action_chunk"]) for q in pol)],
            [
                "select_action, full queue cycle = per chunk (ms)",
                *(ms(q["select_action_cycle"]) for q in pol),
            ],
            ["select_action, per action (ms)", *(ms(q["select_action_per_action"]) for q in pol)],
        ],
    )
    o, v = c["world_model_overhead"], c["vs_act"]
    checks = [
        ("world model / none, predict_action_chunk", o["predict_action_chunk"], 1.005),
        ("world model / none, select_action cycle", o["select_action_cycle"], 1.005),
        ("stamo_vla / ACT, per chunk (predict_action_chunk)", v["predict_action_chunk"], 1.0),
        ("stamo_vla / ACT, per chunk (select_action cycle)", v["select_action_cycle"], 1.0),
        ("stamo_vla / ACT, per action (select_action)", v["select_action_per_action"], 1.0),
    ]
    lines += [
        "",
        *table(["ratio", "value", "goal"], [[n, fmt_ratio(r, 4), goal(r, g)] for n, r, g in checks]),
    ]
    lines += [
        "",
        "The world-model head never runs at inference: both stamo_vla variants execute the same FLOPs, so "
        "their timing ratio shows this machine's noise (see the CI).",
        "",
        "Per action = select_action cycle / n_action_steps: ACT executes all 100 actions of its chunk, "
        "stamo_vla 10 of its 20 (configs/stamo_vla_compact_sim.json), so it pays a chunk every 10 steps.",
        "",
        "## 2. vlm stamo_vla vs SmolVLA (same VLM folder, same 2 x 224^2 cameras, state and instruction)",
        "",
    ]
    rows = []
    for key, label in (("vlm_tiny", "tiny test SmolVLM"), ("vlm_500m", "SmolVLM2-500M architecture")):
        r = result.get(key)
        if r is None:
            rows.append([label, "skipped", *[""] * 9])
            continue
        a, b = r["policies"]["stamo_vla"], r["policies"]["smolvla"]
        vs = r["stamo_vla_vs_smolvla"]
        rows.append(
            [label, r["dtype"], str(r["vlm_num_layers"]), str(r["reps"]), ms(a["predict_action_chunk"]),
             ms(b["predict_action_chunk"]), fmt_ratio(vs["predict_action_chunk"]), ms(a["per_action"]),
             ms(b["per_action"]), f"{vs['per_action']['of_medians']:.3f}x",
             f"{a['gflops_per_chunk']:.3g} / {b['gflops_per_chunk']:.3g}"]
        )  # fmt: skip
    header = ["VLM (random weights)", "dtype", "language layers", "reps", "stamo_vla chunk (ms)",
              "SmolVLA chunk (ms)", "ratio per chunk", "stamo_vla per action (ms)", "SmolVLA per action (ms)",
              "ratio per action", "GFLOPs per chunk"]  # fmt: skip
    lines += table(header, rows)
    lines += [
        "",
        "stamo_vla `vlm`: defaults (LoRA r=16 on q/k/v/o, chunk 20, n_action_steps 10, one forward per "
        "chunk); SmolVLA: defaults (chunk 50, n_action_steps 50, 10 flow-matching steps with a KV cache). "
        "Per action = chunk time / n_action_steps.",
        "",
        f"## 3. Training step, compact, batch {t['batch_size']} x 2 cameras x {t['image_hw']}^2 "
        "(forward + backward + clipping + AdamW)",
        "",
    ]
    none = ms(t["step"]["none"])
    lines += table(
        ["world-model targets", "step (ms)", "none (ms)", "ratio vs none", "goal"],
        [
            ["labelled columns (2 x 32 per camera)", ms(t["step"]["labels"]), none,
             fmt_ratio(t["overhead_labels"]), goal(t["overhead_labels"], 1.05)],
            ["encoder online (tiny random stamo, frames t and t+1)", ms(t["step"]["encoder"]), none,
             fmt_ratio(t["overhead_encoder"]), "(none set)"],
        ],
    )  # fmt: skip
    if result["notes"]:
        lines += ["", "Notes:", *[f"- {n}" for n in result["notes"]]]
    return "\n".join(lines) + "\n"


def environment(device: torch.device) -> dict[str, Any]:
    import lerobot
    import transformers

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        cpuinfo = Path("/proc/cpuinfo")
        models = (
            [
                ln.split(":", 1)[1].strip()
                for ln in cpuinfo.read_text().splitlines()
                if ln.startswith("model name")
            ]
            if cpuinfo.exists()
            else []
        )
        name = models[0] if models else platform.processor() or platform.machine()
    return {
        "device": str(device),
        "device_name": name,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "lerobot": lerobot.__version__,
        "python": platform.python_version(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
    }


def vlm_comparisons(args: argparse.Namespace, device: torch.device, tmp: Path, notes: list[str]) -> dict:
    """2: the tiny test SmolVLM, then (unless skipped) the SmolVLM2-500M architecture with random weights."""
    out: dict[str, Any] = {}
    tiny_dir = write_tiny_smolvlm(tmp / "tiny_smolvlm")
    out["vlm_tiny"] = vlm_vs_smolvla(device, tiny_dir, args.dtype, args.reps, WARMUP_ROUNDS)
    print_ratio(
        "vlm tiny: stamo_vla / SmolVLA per chunk",
        out["vlm_tiny"]["stamo_vla_vs_smolvla"]["predict_action_chunk"],
    )
    if args.skip_vlm500m:
        notes.append("The SmolVLM2-500M-size comparison was skipped (--skip_vlm500m).")
        out["vlm_500m"] = None
        return out
    reps = args.reps_vlm500m or (3 if device.type == "cpu" else args.reps)
    print(f"writing a random SmolVLM2-500M-architecture model; {reps} timed rounds", flush=True)
    big_dir = tmp / "smolvlm2_500m_random"
    written = write_smolvlm2_500m(big_dir, tiny_dir)
    big = vlm_vs_smolvla(device, big_dir, args.dtype, reps, warmup=1) | {"model": written}
    out["vlm_500m"] = big
    print_ratio(
        "vlm 500M: stamo_vla / SmolVLA per chunk", big["stamo_vla_vs_smolvla"]["predict_action_chunk"]
    )
    if reps < args.reps:
        notes.append(
            f"SmolVLM2-500M size: {reps} timed rounds after 1 warm-up round (a chunk takes seconds on this "
            f"{device.type}), not {args.reps}."
        )
    notes.append(
        f"SmolVLM2-500M size: the published architecture ({written['params'] / 1e6:.0f} M parameters) with "
        f"random weights, saved in bfloat16 like the Hub repo. The tokenizer is the tiny test one "
        f"({written['tokenizer_vocab']} tokens; the embedding keeps its {written['embedding_rows']} rows): "
        f"the instruction is {big['instruction_tokens']} tokens here (the real tokenizer splits it differently)."
    )
    return out


def print_ratio(label: str, r: dict[str, float]) -> None:
    print(f"{label}: {fmt_ratio(r, 4)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--reps", type=int, default=50, help="timed rounds of each comparison")
    parser.add_argument(
        "--reps_vlm500m",
        type=int,
        default=None,
        help="timed rounds at the 500M size (default: 3 on CPU, else --reps)",
    )
    parser.add_argument("--skip_vlm500m", action="store_true", help="skip the SmolVLM2-500M-size comparison")
    parser.add_argument(
        "--dtype", default="float32", choices=["float32", "bfloat16"], help="dtype of the VLMs"
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS / "vla_latency.json", help=".json; .md beside it"
    )
    args = parser.parse_args()

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    notes: list[str] = []
    result: dict[str, Any] = {
        "started_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python", *sys.argv]),
        "environment": environment(device),
        "reps": args.reps,
        "warmup_rounds": WARMUP_ROUNDS,
        "dtype_vlm": args.dtype,
        "notes": notes,
    }
    print(f"device {device}, {torch.get_num_threads()} thread(s), torch {torch.__version__}", flush=True)

    result["compact"] = c = compact_vs_act(device, args.reps)
    print_ratio(
        "compact: world model / none, predict_action_chunk", c["world_model_overhead"]["predict_action_chunk"]
    )
    print_ratio(
        "compact: world model / none, select_action cycle", c["world_model_overhead"]["select_action_cycle"]
    )
    print_ratio("compact: stamo_vla / ACT per chunk", c["vs_act"]["predict_action_chunk"])
    print_ratio("compact: stamo_vla / ACT per action", c["vs_act"]["select_action_per_action"])
    with tempfile.TemporaryDirectory(prefix="bench_vla_latency_") as tmp:
        result |= vlm_comparisons(args, device, Path(tmp), notes)
        result["train"] = t = train_overhead(device, args.reps, Path(tmp))
    print_ratio("train step: labelled targets / none", t["overhead_labels"])
    print_ratio("train step: encoder targets / none", t["overhead_encoder"])

    notes.append(
        "Training with encoder targets: a tiny random stamo encoder (2-layer DINOv2 at 64 px) encodes "
        "frames t and t+1 of both cameras inside the step; a real DINOv2-base encoder costs far more "
        "(label offline then)."
    )
    if args.dtype == "float32":
        notes.append(
            "VLMs in float32: SmolVLA loads its VLM in bfloat16 and was cast to float32 after loading."
        )
    result["environment"]["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["run_time_s"] = time.perf_counter() - t0

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    md = markdown(result)
    args.output.with_suffix(".md").write_text(md)
    print(md)
    print(f"wrote {args.output} and {args.output.with_suffix('.md')} ({result['run_time_s']:.0f} s)")


if __name__ == "__main__":
    main()
