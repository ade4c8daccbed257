"""Benchmarks of the `stamo` policy on this machine's CPU.

Measures encode throughput (batch 1 and 32), decode time per image (50 Euler steps), train-step time with
and without the frozen-feature cache (same seeds, so the two loss curves can be compared), peak memory,
and the size of a state against the DINOv2 patch features it replaces. Writes
`benchmarks/results/bench_stamo_<preset>.json` and `.md`.

    .venv/bin/python benchmarks/bench_stamo.py                       # tiny preset (writes its parts)
    .venv/bin/python benchmarks/bench_stamo.py --preset configs/stamo_small.json  # needs the real weights

The `small`/`paper` presets need `facebook/dinov2-with-registers-base` and the gated
`stabilityai/stable-diffusion-3-medium-diffusers` (local folders or Hub access).
"""

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import torch
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.utils.constants import OBS_IMAGES

from lerobot_stamo.policies.stamo import StamoConfig, StamoPolicy
from lerobot_stamo.policies.stamo.feature_cache import build_feature_cache
from lerobot_stamo.policies.stamo.tiny import write_tiny_pretrained

RESULTS = Path(__file__).parent / "results"
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


def timeit(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def train_curve(policy: StamoPolicy, loader, steps: int) -> tuple[list[float], float]:
    """Trains `steps` steps with fixed seeds; returns the losses and the mean step time (s)."""
    torch.manual_seed(0)
    opt = torch.optim.AdamW(policy.get_optim_params(), lr=policy.config.optimizer_lr)
    policy.train()
    losses, times = [], []
    batches = iter(loader)
    for _ in range(steps):
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        start = time.perf_counter()
        loss, _ = policy.forward(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
        losses.append(loss.item())
    return losses, sum(times[2:]) / max(len(times) - 2, 1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="configs/stamo_tiny.json")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    preset = json.loads(Path(args.preset).read_text())["policy"]
    preset.pop("type")
    name = Path(args.preset).stem
    tmp = Path(tempfile.mkdtemp())
    if name == "stamo_tiny":
        preset |= write_tiny_pretrained(tmp / "tiny")
    size = preset.get("image_size", 224)
    features = {cam: PolicyFeature(FeatureType.VISUAL, (3, size, size)) for cam in CAMERAS}
    # A cache needs frozen parts: the benchmark trains the compressor + DiT in both runs.
    config = StamoConfig(device="cpu", input_features=features, **(preset | {"train_backbone": False}))
    torch.manual_seed(0)
    policy = StamoPolicy(config).eval()
    results: dict = {"preset": args.preset, "threads": args.threads, "torch": torch.__version__}

    for b in (1, 32):
        frames = torch.rand(b, 3, size, size)
        results[f"encode_frames_per_s_batch{b}"] = b / timeit(lambda f=frames: policy.encode(f), 3)
    states = policy.encode(torch.rand(1, 3, size, size))
    results["decode_s_per_image_50_steps"] = timeit(lambda: policy.decode(states, 50), 2)

    data = FramesDataset(64, size)
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch_size, shuffle=False)
    start = time.perf_counter()
    build_feature_cache(policy, data, tmp / "cache", batch_size=32)
    results["cache_build_s"] = time.perf_counter() - start

    initial = {k: v.clone() for k, v in policy.state_dict().items()}
    losses_plain, step_plain = train_curve(policy, loader, args.steps)
    policy.load_state_dict(initial)
    policy.config.feature_cache = str(tmp / "cache")
    losses_cached, step_cached = train_curve(policy, loader, args.steps)
    results |= {
        "train_step_s_no_cache": step_plain,
        "train_step_s_cache": step_cached,
        "cache_speedup": step_plain / step_cached,
        "loss_last10_no_cache": sum(losses_plain[-10:]) / 10,
        "loss_last10_cache": sum(losses_cached[-10:]) / 10,
        "losses_no_cache": losses_plain,
        "losses_cache": losses_cached,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    bb = policy.model.backbone.config
    results["state_bytes_fp32"] = config.num_tokens * config.token_dim * 4
    results["dinov2_patch_bytes_fp32"] = policy.model.num_patches * bb.hidden_size * 4
    results["paper_state_bytes_fp32"] = 2 * 1024 * 4
    results["paper_dinov2_patch_bytes_fp32"] = 256 * 768 * 4

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"bench_{name}.json").write_text(json.dumps(results, indent=2))
    rows = [
        ("encode, batch 1 (frames/s)", f"{results['encode_frames_per_s_batch1']:.1f}"),
        ("encode, batch 32 (frames/s)", f"{results['encode_frames_per_s_batch32']:.1f}"),
        ("decode, 50 steps (s/image)", f"{results['decode_s_per_image_50_steps']:.3f}"),
        (f"train step, batch {args.batch_size} x 2 cameras, no cache (s)", f"{step_plain:.4f}"),
        (f"train step, batch {args.batch_size} x 2 cameras, feature cache (s)", f"{step_cached:.4f}"),
        ("cache speed-up", f"{results['cache_speedup']:.2f}x"),
        (
            "mean loss of the last 10 steps, no cache / cache",
            f"{results['loss_last10_no_cache']:.4f} / {results['loss_last10_cache']:.4f}",
        ),
        ("peak RSS (MiB)", f"{results['peak_rss_mib']:.0f}"),
        (
            "state vs DINOv2 patch features (bytes/frame, this preset)",
            f"{results['state_bytes_fp32']} vs {results['dinov2_patch_bytes_fp32']}",
        ),
        ("state vs DINOv2 patch features (bytes/frame, paper)", "8192 vs 786432 (96x smaller)"),
    ]
    md = [
        f"# stamo benchmark: `{args.preset}` on CPU ({args.threads} thread(s), torch {torch.__version__})",
        "",
        "| measure | value |",
        "|---|---|",
        *[f"| {a} | {b} |" for a, b in rows],
    ]
    (RESULTS / f"bench_{name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
