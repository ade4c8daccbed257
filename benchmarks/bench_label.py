"""Throughput and memory of `lerobot-stamo-label`, side by side with the encoder's own forward throughput.

    .venv/bin/python benchmarks/bench_label.py [--episodes 4] [--size 64] [--batch_size 32] [--workers 1]
        [--policy_path DIR]   # a stamo checkpoint (default: the tiny preset with random weights)

Measured in one run on the same frames (this machine is shared and noisy):
1. encoder: `StamoPolicy.encode` on frames already decoded in memory (frames/s, per camera frame);
2. labelling: the labeller's decode + encode loop (`encode_episodes`, DataLoader workers decoding video
   while the model runs) and the whole `label_dataset` call; ratio = labelling / encoder (goal >= 0.9);
3. peak RSS of a fresh labelling process on the dataset and on a 4x longer one (goal: flat);
4. wall time of 2 processes (`accelerate launch --multi_gpu --num_processes 2`, one torch thread each) vs
   1 process, with torch's default threads and with one thread (goal >= 1.7x).

`--device cuda --dtype bfloat16` (and `--compile`) run the encoder and the labeller there in that dtype (the
checkpoint is re-saved with those settings in a temporary folder); off the CPU, part 4 (CPU process scaling)
is skipped.

Writes benchmarks/results/label_<name>.json.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

import torch  # noqa: E402

from lerobot_stamo.stand_ins import paper_encoder_checkpoint, tiny_stamo_checkpoint  # noqa: E402

RESULTS = Path(__file__).parent / "results"
CAMERAS = ["observation.images.front", "observation.images.wrist"]


def record(root: Path, episodes: int, size: int, seed: int = 0) -> Path:
    from lerobot_stamo.envs.recording import SimRecordConfig, record

    record(
        SimRecordConfig(
            repo_id="bench/video",
            root=root,
            num_episodes=episodes,
            video_only=True,
            observation_height=size,
            observation_width=size,
            seed=seed,
        )
    )
    return root


def label_cmd(ckpt: Path, root: Path, out: Path, args) -> list[str]:
    return [
        "-m",
        "lerobot_stamo.scripts.lerobot_stamo_label",
        f"--policy.path={ckpt}",
        "--dataset.repo_id=bench/video",
        f"--dataset.root={root}",
        f"--output_dir={out}",
        f"--batch_size={args.batch_size}",
        f"--num_workers={args.workers}",
        f"--policy.device={args.device}",
    ]


def peak_rss_mb(cli_args: list[str], threads: int | None = None) -> tuple[float, float]:
    """Runs the labeller in a fresh process; returns (wall seconds, peak RSS in MB of that process).

    The RSS is VmHWM of the main process (ru_maxrss would carry the parent's peak across exec); DataLoader
    workers are separate processes and not included.
    """
    code = (
        "import runpy, sys, time\n"
        "sys.argv = ['lerobot-stamo-label'] + sys.argv[1:]\n"
        "t = time.perf_counter()\n"
        "runpy.run_module('lerobot_stamo.scripts.lerobot_stamo_label', run_name='__main__')\n"
        "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0].split()[1]\n"
        "print('BENCH', time.perf_counter() - t, int(hwm) / 1024, file=sys.stderr)\n"
    )
    env = os.environ | ({"OMP_NUM_THREADS": str(threads)} if threads else {})
    proc = subprocess.run([sys.executable, "-c", code, *cli_args], capture_output=True, text=True, env=env)
    line = [x for x in proc.stderr.splitlines() if x.startswith("BENCH")]
    if proc.returncode != 0 or not line:
        raise RuntimeError(proc.stderr[-3000:])
    _, wall, rss = line[-1].split()
    return float(wall), float(rss)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--policy_path", default=None)
    parser.add_argument(
        "--encoder",
        choices=["tiny", "base"],
        default="tiny",
        help="without --policy_path: the tiny preset, or the paper's encoder sizes with random weights",
    )
    parser.add_argument("--name", default="tiny")
    parser.add_argument(
        "--device", default="cpu", help="cpu, cuda, cuda:1, ... (not cpu: no process scaling)."
    )
    parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"],
                        help="compute dtype (default: the checkpoint's)")  # fmt: skip
    parser.add_argument("--compile", action="store_true", help="`policy.compile=true` (torch.compile).")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device={args.device}, but torch sees no CUDA GPU here: use --device=cpu.")

    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from lerobot_stamo.policies.stamo import StamoPolicy
    from lerobot_stamo.transforms.labelling import (
        EpisodeChunks,
        LabelConfig,
        LabelDatasetArgs,
        LabelPolicyArgs,
        encode_episodes,
        label_dataset,
        plan_chunks,
    )

    tmp = Path(tempfile.mkdtemp(prefix="bench_label_"))
    if args.policy_path:
        ckpt = Path(args.policy_path)
    else:
        if args.encoder == "base":
            ckpt = paper_encoder_checkpoint(tmp, args.size)
        else:
            ckpt = tiny_stamo_checkpoint(tmp, image_hw=args.size).path
    if args.dtype or args.compile or args.device != "cpu":
        ckpt = with_settings(ckpt, tmp / "ckpt_settings", args)
    data1 = record(tmp / "x1", args.episodes, args.size)
    data4 = record(tmp / "x4", 4 * args.episodes, args.size, seed=1000)
    policy = StamoPolicy.from_pretrained(ckpt).to(args.device).eval()
    ds = LeRobotDataset("bench/video", root=data1)
    episodes = list(range(ds.meta.total_episodes))
    frames_total = ds.meta.total_frames

    # Frames decoded once, in memory, in the labeller's chunks: the encoder's own throughput.
    chunks = EpisodeChunks(ds, CAMERAS, plan_chunks(ds.meta, episodes, args.batch_size), None)
    decoded = [torch.cat([c[k] for k in CAMERAS]) for c in (chunks[i] for i in range(len(chunks)))]
    enc, lab = [], []
    for r in range(args.repeats):  # interleaved, so that load changes hit both alike
        t = time.perf_counter()
        for x in decoded:
            policy.encode(x)
        sync()
        enc.append(frames_total / (time.perf_counter() - t))
        work = tmp / f"work{r}"
        t = time.perf_counter()
        encode_episodes(policy, ds, CAMERAS, episodes, work, args.batch_size, args.workers, progress=False)
        lab.append(frames_total / (time.perf_counter() - t))
    t = time.perf_counter()
    label_dataset(
        LabelConfig(
            policy=LabelPolicyArgs(path=str(ckpt), device=args.device),
            dataset=LabelDatasetArgs(repo_id="bench/video", root=str(data1)),
            output_dir=str(tmp / "full"),
            batch_size=args.batch_size,
            num_workers=args.workers,
        )
    )
    full_wall = time.perf_counter() - t

    wall1, rss1 = peak_rss_mb(label_cmd(ckpt, data1, tmp / "m1", args)[2:])
    wall4, rss4 = peak_rss_mb(label_cmd(ckpt, data4, tmp / "m4", args)[2:])
    if args.device == "cpu":
        processes = process_scaling(ckpt, data4, tmp, args, wall4)
    else:
        processes = {"note": f"skipped: --device={args.device} (a CPU process-scaling measurement)"}

    med = sorted(enc)[len(enc) // 2], sorted(lab)[len(lab) // 2]
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "device": args.device,
            "device_name": torch.cuda.get_device_name(args.device)
            if args.device.startswith("cuda")
            else "CPU",
        },
        "setup": {
            "checkpoint": str(args.policy_path or f"{args.encoder} encoder, random weights"),
            "dtype": policy.config.dtype,
            "compile": policy.config.compile,
            "image_size": args.size,
            "cameras": len(CAMERAS),
            "episodes": args.episodes,
            "frames": frames_total,
            "batch_size": args.batch_size,
            "workers": args.workers,
            "repeats": args.repeats,
        },
        "encoder_frames_per_s": {"median": med[0], "all": enc},
        "labelling_loop_frames_per_s": {"median": med[1], "all": lab},
        "ratio_labelling_over_encoder": med[1] / med[0],
        "ratio_goal": 0.9,
        "label_dataset_wall_s": full_wall,
        "peak_rss_mb": {
            "1x": rss1,
            "4x": rss4,
            "ratio_4x_over_1x": rss4 / rss1,
            "frames_1x": frames_total,
            "frames_4x": LeRobotDataset("bench/video", root=data4).meta.total_frames,
        },
        "process_wall_s": processes,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"label_{args.name}.json"
    path.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"wrote {path}")


def sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def with_settings(ckpt: Path, out: Path, args) -> Path:
    """Re-saves a stamo checkpoint with `--device`/`--dtype`/`--compile` (self-contained: weights and parts)."""
    from lerobot.configs import PreTrainedConfig

    from lerobot_stamo.policies.stamo import StamoPolicy

    config = PreTrainedConfig.from_pretrained(ckpt)
    config.device = args.device
    config.compile = args.compile
    if args.dtype:
        config.dtype = args.dtype
    StamoPolicy.from_pretrained(ckpt, config=config).save_pretrained(out)
    return out


def process_scaling(ckpt: Path, data4: Path, tmp: Path, args, wall4: float) -> dict:
    """Wall time of 2 labelling processes vs 1 (default threads, and one thread) on the 4x dataset."""
    # The same command with one torch thread: what each of the 2 processes below gets (`accelerate launch`
    # sets OMP_NUM_THREADS=1 per process unless given --num_cpu_threads_per_process).
    wall4_1thread, _ = peak_rss_mb(label_cmd(ckpt, data4, tmp / "m4_1thread", args)[2:], threads=1)

    accelerate = str(Path(sys.executable).parent / "accelerate")
    t = time.perf_counter()
    proc = subprocess.run(
        [
            accelerate,
            "launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            *label_cmd(ckpt, data4, tmp / "p2", args),
        ],
        capture_output=True,
        text=True,
    )
    wall_2proc = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return {
        "1_process_4x": wall4,
        "1_process_1_thread_4x": wall4_1thread,
        "2_processes_4x": wall_2proc,
        "speedup": wall4 / wall_2proc,
        "speedup_over_1_thread": wall4_1thread / wall_2proc,
        "note": (
            "whole command incl. interpreter start and merge; goal >= 1.7. `speedup`: against one process "
            "with torch's default threads (all cores); `speedup_over_1_thread`: against one process with "
            "the single thread each of the 2 processes gets"
        ),
    }


if __name__ == "__main__":
    main()
