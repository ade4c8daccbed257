"""What the frozen-feature memo of `stamo_vla --policy.vision=efficientnet_lite0` saves in a training step.

One training step (forward + backward + gradient clipping + AdamW, `bench_vla_latency.train_step`) of the
`compact` trunk with the sizes of configs/stamo_vla_compact_sim.json and the frozen ImageNet EfficientNet-Lite0
(`make paper --pretrained`'s `stamo_vla` arms), at batch `--batch_size` x 2 cameras x `--image_hw`^2, without a
world-model head:

- `memo`: `vision_cache_mb=2048` (the default), after its first epoch: every frame of the batch was seen, so
  the CNN does not run (what every epoch after the first costs);
- `off`: `vision_cache_mb=0`: the frozen CNN runs on every frame of every step (as before the memo).

Both read the same batch with its dataset indices, timed in alternating rounds (`alternating_rounds`); the
figures are medians, the ratio is paired per round with its 95 % interval. Writes
benchmarks/results/vla_train_vision.{json,md}::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_vla_train_vision.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch
from bench_vla_latency import (
    ACTION_DIM,
    RESULTS,
    alternating_rounds,
    compact_policy,
    environment,
    fmt_ratio,
    observation,
    ratio,
    summary,
    tokenize,
    train_step,
)
from lerobot.utils.constants import ACTION

from lerobot_stamo.policies.stamo_vla.processor_stamo_vla import StamoVLAByteTokenizerStep


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=20, help="timed rounds")
    parser.add_argument("--batch_size", type=int, default=16, help="the paper pipeline's batch")
    parser.add_argument("--image_hw", type=int, default=96, help="the paper pipeline's frames")
    parser.add_argument(
        "--output", type=Path, default=RESULTS / "vla_train_vision.json", help=".md beside it"
    )
    args = parser.parse_args()
    device, b, hw = torch.device("cpu"), args.batch_size, args.image_hw
    t0 = time.perf_counter()

    tokens, mask = tokenize(StamoVLAByteTokenizerStep(max_length=48), b)
    g = torch.Generator().manual_seed(1)
    batch = observation(hw, tokens, mask, device) | {
        ACTION: torch.randn(b, 20, ACTION_DIM, generator=g),
        f"{ACTION}_is_pad": torch.zeros(b, 20, dtype=torch.bool),
        "index": torch.arange(b),  # the dataset indices LeRobot's batches carry
    }
    policies = {
        name: compact_policy(device, hw, "none", vision="efficientnet_lite0", vision_cache_mb=mb)
        for name, mb in (("memo", 2048), ("off", 0))
    }
    steps = {name: train_step(p, lambda: batch) for name, p in policies.items()}
    samples = alternating_rounds(steps, args.reps, device, desc="train step")  # warm-up rounds fill the memo
    memo = policies["memo"].model.trunk.vision.memo
    result = {
        "started_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python", *sys.argv]),
        "environment": environment(device),
        "batch_size": b,
        "image_hw": hw,
        "reps": args.reps,
        "step": {name: summary(s) for name, s in samples.items()},
        "memo_over_off": ratio(samples["memo"], samples["off"]),
        "memo_frames_kept": len(memo.rows),
        "memo_mib": memo.used_bytes / 2**20,
    }
    result["run_time_s"] = time.perf_counter() - t0
    md = "\n".join(
        [
            "# stamo_vla training step: the frozen EfficientNet-Lite0's feature memo",
            "",
            f"{result['started_utc']}, {result['environment']['device_name']}, "
            f"{result['environment']['threads']} thread(s); batch {b} x 2 cameras x {hw}^2, compact trunk "
            f"(configs/stamo_vla_compact_sim.json), no world-model head; median of {args.reps} alternating rounds.",
            "",
            "| vision_cache_mb | step (ms) |",
            "|---|---|",
            f"| 2048 (default), frames seen before | {1000 * result['step']['memo']['median_s']:.0f} |",
            f"| 0 (the CNN on every frame) | {1000 * result['step']['off']['median_s']:.0f} |",
            "",
            f"memo / off: {fmt_ratio(result['memo_over_off'])}; {len(memo.rows)} maps kept, "
            f"{result['memo_mib']:.2f} MiB ({result['memo_mib'] * 1024 / max(1, len(memo.rows)):.0f} KiB a frame "
            "and camera).",
            "",
        ]
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(md)
    print(md)
    print(f"wrote {args.output} and {args.output.with_suffix('.md')} ({result['run_time_s']:.0f} s)")


if __name__ == "__main__":
    main()
