"""Co-training on the simulated SO-101 (paper Table 5 in miniature): 10 real; 10 real + 40 video; 50 real.

    .venv/bin/python benchmarks/bench_cotrain.py [--steps 1000] [--eval_episodes 50]

Every stage runs the project's and LeRobot's own CLIs and is skipped when its output exists, so an
interrupted run continues where it stopped (`--work_dir`, default outputs/bench_cotrain):

1. The robot data of `bench_vla_success.py` (50 PickCube expert episodes at 96 px, labelled at horizon 5 by
   the tiny `stamo` trained on them; its stages run here when `--vla_work_dir` lacks them).
2. `lerobot-stamo-sim-record --video_only=true`: 40 more expert episodes (seeds from 5000) as action-free
   video, labelled by the same `stamo` checkpoint with `lerobot-stamo-label`.
3. `lerobot-stamo-cotrain --real_per_task=10`: the first 10 robot episodes + the 40 video episodes.
4. `lerobot-train --config_path=configs/stamo_vla_cotrain_sim.json` (compact `stamo_vla`, world model on the
   StaMo state) on: `real10` (the labelled robot dataset, `--dataset.episodes=[0..9]`), `cotrain` (step 3)
   and `real50` (all 50 robot episodes), the same flags and seed, stopped after `--steps` optimizer steps
   (the same training budget; runs side by side, one CPU thread each).
5. `lerobot-eval --env.type=stamo_so101 --env.task=PickCube` on `--eval_episodes` episodes (seeds from 1000).

Writes benchmarks/results/cotrain_success.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vla_success import BIN, ENV, REPO, RESULTS, evaluate, record, run, stamo_and_labels  # noqa: E402

ARMS = ("real10", "cotrain", "real50")


def video_and_cotrain(work: Path, vla_work: Path, args) -> Path:
    video = work / "data" / f"video_{args.image_size}"
    if not (video / "meta" / "info.json").exists():
        run(
            ["lerobot-stamo-sim-record", f"--repo_id=local/so101_pickcube_video_{args.image_size}", f"--root={video}",
             f"--num_episodes={args.video_episodes}", f"--observation_height={args.image_size}",
             f"--observation_width={args.image_size}", "--use_videos=false", "--seed=5000", "--video_only=true"],
            work / "record_video.log",
        )  # fmt: skip
    labelled = work / "data" / f"video_{args.image_size}_stamo_k{args.horizon}"
    if not (labelled / "meta" / "stamo_labels.json").exists():
        ckpt = vla_work / "train_stamo_tiny" / "checkpoints" / "last" / "pretrained_model"
        run(
            ["lerobot-stamo-label", f"--policy.path={ckpt}", f"--dataset.repo_id=local/so101_pickcube_video_{args.image_size}",
             f"--dataset.root={video}", f"--horizon={args.horizon}", f"--output_dir={labelled}"],
            work / "label_video.log",
        )  # fmt: skip
    cotrain = work / "data" / f"cotrain_{args.real_episodes}_{args.video_episodes}"
    if not (cotrain / "meta" / "stamo_cotrain.json").exists():
        robot = vla_work / "data" / f"pickcube_{args.image_size}_stamo_k{args.horizon}"
        run(
            ["lerobot-stamo-cotrain", f"--robot_root={robot}", f"--video_root={labelled}",
             f"--real_per_task={args.real_episodes}", f"--output_dir={cotrain}"],
            work / "cotrain.log",
        )  # fmt: skip
    return cotrain


def train(work: Path, robot: Path, cotrain: Path, args) -> dict[str, Path]:
    """The three trainings side by side, each stopped once its `--steps` checkpoint is saved."""
    common = [f"--batch_size={args.batch_size}", "--steps=1000000", f"--save_freq={args.save_freq}",
              "--log_freq=50", "--num_workers=0", "--wandb.enable=false", "--seed=1000",
              "--config_path=configs/stamo_vla_cotrain_sim.json", f"--policy.future_horizon={args.horizon}"]  # fmt: skip
    real10 = "[" + ",".join(str(i) for i in range(args.real_episodes)) + "]"
    data = {
        "real10": [f"--dataset.repo_id=local/{robot.name}", f"--dataset.root={robot}", f"--dataset.episodes={real10}"],
        "cotrain": [f"--dataset.repo_id=local/{cotrain.name}", f"--dataset.root={cotrain}"],
        "real50": [f"--dataset.repo_id=local/{robot.name}", f"--dataset.root={robot}"],
    }  # fmt: skip
    final = {
        name: work / f"train_{name}" / "checkpoints" / f"{args.steps:07d}" / "pretrained_model"
        for name in ARMS
    }
    if (
        args.real50_from is not None
    ):  # the same command's checkpoint, trained earlier (e.g. bench_vla_success)
        final["real50"] = (
            args.real50_from.resolve() / "checkpoints" / f"{args.steps:07d}" / "pretrained_model"
        )
        if not (final["real50"] / "model.safetensors").is_file():
            raise FileNotFoundError(f"--real50_from has no step-{args.steps} checkpoint: {final['real50']}")
    procs = {}
    for name in ARMS:
        if (final[name] / "model.safetensors").exists():
            continue
        out = work / f"train_{name}"
        if out.exists():
            shutil.rmtree(
                out
            )  # an interrupted training restarts (LeRobot resumes only from saved checkpoints)
        cmd = ["lerobot-train", *common, *data[name], f"--output_dir={out}"]
        print("$", " ".join(cmd), flush=True)
        log = open(work / f"train_{name}.log", "w")  # noqa: SIM115
        procs[name] = (subprocess.Popen([str(BIN / cmd[0]), *cmd[1:]], env=ENV, stdout=log, stderr=subprocess.STDOUT, cwd=REPO), time.time())  # fmt: skip
    while procs:
        time.sleep(10)
        for name in list(procs):
            proc, start = procs[name]
            if not (final[name] / "model.safetensors").exists() and proc.poll() is None:
                continue
            time.sleep(5)  # let LeRobot finish writing the checkpoint folder
            proc.terminate()
            proc.wait()
            if not (final[name] / "model.safetensors").exists():
                raise RuntimeError(
                    f"{name} stopped before step {args.steps}: see {work / f'train_{name}.log'}."
                )
            (work / f"train_{name}" / "budget.json").write_text(
                json.dumps({"steps": args.steps, "wall_s": time.time() - start}, indent=2)
            )
            print(f"{name}: step {args.steps} after {(time.time() - start) / 60:.1f} min", flush=True)
            del procs[name]
    return final


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work_dir", type=Path, default=REPO / "outputs" / "bench_cotrain")
    parser.add_argument("--vla_work_dir", type=Path, default=REPO / "outputs" / "bench_vla")
    parser.add_argument("--episodes", type=int, default=50, help="robot episodes recorded (the real50 arm)")
    parser.add_argument("--real_episodes", type=int, default=10)
    parser.add_argument("--video_episodes", type=int, default=40)
    parser.add_argument("--image_size", type=int, default=96)
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument(
        "--save_freq", type=int, default=200, help="a lower --steps can reuse these checkpoints"
    )
    parser.add_argument("--eval_episodes", type=int, default=50)
    parser.add_argument(
        "--real50_from",
        type=Path,
        default=None,
        help="training folder of the same real50 command run earlier (its checkpoints are reused)",
    )
    args = parser.parse_args()
    work, vla_work = args.work_dir.resolve(), args.vla_work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    vla_work.mkdir(parents=True, exist_ok=True)

    robot = stamo_and_labels(vla_work, record(vla_work, args), args)
    cotrain = video_and_cotrain(work, vla_work, args)
    checkpoints = train(work, robot, cotrain, args)
    results = {}
    for name, ckpt in checkpoints.items():
        budget = ckpt.parents[2] / "budget.json"
        wall_s = json.loads(budget.read_text())["wall_s"] if budget.exists() else None
        results[name] = {**evaluate(work, name, ckpt, args), "train_steps": args.steps, "checkpoint": str(ckpt),
                         "train_wall_s": wall_s}  # fmt: skip
        print(f"{name:8s} success {results[name]['success_rate']:.0%} over {results[name]['n_episodes']} episodes",
              flush=True)  # fmt: skip
    cotrain_meta = json.loads((cotrain / "meta" / "stamo_cotrain.json").read_text())
    payload = {
        "task": "PickCube", "image_size": args.image_size, "horizon": args.horizon, "steps": args.steps,
        "batch_size": args.batch_size, "config": "configs/stamo_vla_cotrain_sim.json",
        "real_episodes": args.real_episodes, "video_episodes": args.video_episodes,
        "cotrain_frames": {"real": cotrain_meta["robot"]["frames"], "video": cotrain_meta["video"]["frames"]},
        "eval_seeds_from": 1000, "results": results,
        "real50_from": str(args.real50_from) if args.real50_from else None,
        "paper_libero": {"real10": 62.9, "cotrain_stamo": 84.6, "real50": 86.2},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                    "threads_per_training": 1},
    }  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cotrain_success.json").write_text(json.dumps(payload, indent=2) + "\n")
    label = {"real10": f"{args.real_episodes} real", "cotrain": f"{args.real_episodes} real + {args.video_episodes} video (StaMo-labelled)",
             "real50": f"{args.episodes} real"}  # fmt: skip
    rows = "\n".join(
        f"| {label[n]} | {r['success_rate']:.0%} ({round(r['success_rate'] * r['n_episodes'])}/{r['n_episodes']}) |"
        for n, r in results.items()
    )
    (RESULTS / "cotrain_success.md").write_text(
        f"PickCube at {args.image_size} px, compact `stamo_vla` (world model on the StaMo state, k={args.horizon}), "
        f"{args.steps} steps of batch {args.batch_size} each, {args.eval_episodes} evaluation episodes (seeds from "
        "1000). Paper (LIBERO): 62.9 / 84.6 / 86.2.\n\n| training data | success |\n|---|---|\n"
        + rows
        + "\n"
        + (
            f"\nThe {args.episodes}-real arm reuses an earlier training with the same flags and seed "
            f"({args.real50_from}, e.g. `bench_vla_success.py`'s stamo_vla run), evaluated at the same step.\n"
            if args.real50_from
            else ""
        )
    )
    print(f"Saved {RESULTS / 'cotrain_success.json'}")


if __name__ == "__main__":
    main()
