"""Success on the simulated SO-101: `stamo_vla` (compact, world model on the StaMo state) vs LeRobot's ACT.

    .venv/bin/python benchmarks/bench_vla_success.py [--minutes 45] [--episodes 50] [--eval_episodes 50]

Every stage runs the project's and LeRobot's own CLIs and is skipped when its output exists, so an
interrupted run continues where it stopped (`--work_dir`, default outputs/bench_vla):

1. `lerobot-stamo-sim-record`: `--episodes` scripted-expert PickCube episodes, front + wrist cameras at
   `--image_size` px (PNG frames).
2. The tiny `stamo` (pretrained parts written by `lerobot_stamo.policies.stamo.tiny`, then `lerobot-train
   --config_path=configs/stamo_tiny.json`) on those episodes, and `lerobot-stamo-label --horizon=<k>`.
3. `lerobot-train --policy.type=stamo_vla` (labelled dataset, `world_model_target=state`) and
   `lerobot-train --policy.type=act` (the same episodes, `pretrained_backbone_weights=null`, the same chunk
   and image size) side by side, one CPU thread each, for the same wall-clock budget (`--minutes`). Each
   saves a checkpoint every `--save_freq` steps; the newest checkpoint saved within the budget is evaluated.
4. `lerobot-eval --env.type=stamo_so101 --env.task=PickCube` on `--eval_episodes` episodes for each
   (seeds from 1000: cube positions never seen in training).

Writes benchmarks/results/vla_success.json and .md (the stamo tiny training stage is not counted in the
budget: it is shared by every policy that uses StaMo labels).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = REPO / "benchmarks" / "results"
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "MUJOCO_GL": "egl",
    "WANDB_MODE": "disabled",
    "OMP_NUM_THREADS": "1",
}


def run(args: list[str], log: Path) -> None:
    print("$", " ".join(args), f"> {log}", flush=True)
    with open(log, "w") as f:
        subprocess.run(
            [str(BIN / args[0]), *args[1:]], check=True, env=ENV, stdout=f, stderr=subprocess.STDOUT, cwd=REPO
        )


def record(work: Path, args) -> Path:
    root = work / "data" / f"pickcube_{args.image_size}"
    if not (root / "meta" / "info.json").exists():
        run(
            ["lerobot-stamo-sim-record", f"--repo_id=local/so101_pickcube_{args.image_size}", f"--root={root}",
             f"--num_episodes={args.episodes}", f"--observation_height={args.image_size}",
             f"--observation_width={args.image_size}", "--use_videos=false", "--seed=0"],
            work / "record.log",
        )  # fmt: skip
    return root


def stamo_and_labels(work: Path, root: Path, args) -> Path:
    ckpt = work / "train_stamo_tiny" / "checkpoints" / "last" / "pretrained_model"
    if not (ckpt / "model.safetensors").exists():
        from lerobot_stamo.policies.stamo.tiny import write_tiny_pretrained

        parts = write_tiny_pretrained(work / "stamo_tiny_pretrained", seed=0, fit_vae_steps=1500)
        run(
            ["lerobot-train", "--config_path=configs/stamo_tiny.json", f"--policy.backbone={parts['backbone']}",
             f"--policy.decoder_path={parts['decoder_path']}", "--policy.device=cpu",
             f"--dataset.repo_id=local/so101_pickcube_{args.image_size}", f"--dataset.root={root}",
             "--steps=2000", "--save_freq=2000", "--log_freq=200", "--wandb.enable=false",
             f"--output_dir={work / 'train_stamo_tiny'}"],
            work / "train_stamo_tiny.log",
        )  # fmt: skip
    labelled = work / "data" / f"pickcube_{args.image_size}_stamo_k{args.horizon}"
    if not (labelled / "meta" / "stamo_labels.json").exists():
        run(
            ["lerobot-stamo-label", f"--policy.path={ckpt}", f"--dataset.repo_id=local/so101_pickcube_{args.image_size}",
             f"--dataset.root={root}", f"--horizon={args.horizon}", f"--output_dir={labelled}", "--overwrite=true"],
            work / "label.log",
        )  # fmt: skip
    return labelled


def train_side_by_side(work: Path, root: Path, labelled: Path, args) -> dict[str, Path]:
    """Both trainings at once, one thread each, stopped after `--minutes`; returns the evaluated checkpoints."""
    common = [f"--batch_size={args.batch_size}", "--steps=1000000", f"--save_freq={args.save_freq}",
              "--log_freq=50", "--num_workers=0", "--wandb.enable=false", "--seed=1000"]  # fmt: skip
    runs = {
        "stamo_vla": ["lerobot-train", "--config_path=configs/stamo_vla_compact_sim.json",
                      f"--dataset.repo_id=local/so101_pickcube_{args.image_size}_stamo", f"--dataset.root={labelled}",
                      f"--policy.future_horizon={args.horizon}", *common],
        "act": ["lerobot-train", "--policy.type=act", "--policy.pretrained_backbone_weights=null",
                "--policy.push_to_hub=false", "--policy.device=cpu", f"--policy.chunk_size={args.chunk_size}",
                f"--policy.n_action_steps={args.n_action_steps}", f"--policy.optimizer_lr={args.act_lr}",
                f"--policy.optimizer_lr_backbone={args.act_lr}",
                f"--dataset.repo_id=local/so101_pickcube_{args.image_size}", f"--dataset.root={root}", *common],
    }  # fmt: skip
    done = {name: work / f"train_{name}" / "budget.json" for name in runs}
    procs = {}
    for name, cmd in runs.items():
        if done[name].exists():
            continue
        out = work / f"train_{name}"
        if out.exists():
            import shutil

            shutil.rmtree(out)  # an interrupted budgeted run restarts from scratch (the budget is wall-clock)
        cmd = [*cmd, f"--output_dir={out}"]
        print("$", " ".join(cmd), flush=True)
        log = open(work / f"train_{name}.log", "w")  # noqa: SIM115
        procs[name] = (subprocess.Popen([str(BIN / cmd[0]), *cmd[1:]], env=ENV, stdout=log, stderr=subprocess.STDOUT, cwd=REPO), time.time(), out)  # fmt: skip
    deadline = {name: start + args.minutes * 60 for name, (_, start, _) in procs.items()}
    while procs:
        time.sleep(10)
        for name in list(procs):
            proc, start, out = procs[name]
            if time.time() < deadline[name] and proc.poll() is None:
                continue
            proc.terminate()
            proc.wait()
            ckpts = sorted((out / "checkpoints").glob("[0-9]*"), key=lambda p: int(p.name))
            ckpts = [c for c in ckpts if (c / "pretrained_model" / "model.safetensors").exists()]
            if not ckpts:
                raise RuntimeError(f"{name} saved no checkpoint in {args.minutes} min: lower --save_freq.")
            budget = {"minutes": args.minutes, "checkpoint": str(ckpts[-1] / "pretrained_model"),
                      "steps": int(ckpts[-1].name), "wall_s": time.time() - start}  # fmt: skip
            done[name].write_text(json.dumps(budget, indent=2))
            print(
                f"{name}: stopped after {budget['wall_s'] / 60:.1f} min, evaluating step {budget['steps']}",
                flush=True,
            )
            del procs[name]
    return {name: Path(json.loads(p.read_text())["checkpoint"]) for name, p in done.items()}


def evaluate(work: Path, name: str, checkpoint: Path, args) -> dict:
    out = work / f"eval_{name}"
    info = out / "eval_info.json"
    if not info.exists():
        run(
            ["lerobot-eval", f"--policy.path={checkpoint}", "--env.type=stamo_so101", "--env.task=PickCube",
             f"--env.observation_height={args.image_size}", f"--env.observation_width={args.image_size}",
             f"--eval.n_episodes={args.eval_episodes}", "--eval.batch_size=1", "--seed=1000",
             "--policy.device=cpu", f"--output_dir={out}"],
            work / f"eval_{name}.log",
        )  # fmt: skip
    overall = json.loads(info.read_text())["overall"]
    return {"success_rate": overall["pc_success"] / 100, "n_episodes": overall["n_episodes"],
            "avg_sum_reward": overall.get("avg_sum_reward")}  # fmt: skip


def train_log_tail(work: Path, name: str) -> dict:
    """The last logged losses and step time of a training log."""
    text = (work / f"train_{name}.log").read_text(errors="ignore")
    lines = [ln for ln in text.splitlines() if " step:" in ln and "loss:" in ln]
    if not lines:
        return {}
    last = lines[-1]
    return {
        k: float(v)
        for k, v in re.findall(r"([\w/]+):([-0-9.e]+)(?=\s|$)", last.split("ot_train.py")[-1])
        if k != "step"
    }


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work_dir", type=Path, default=REPO / "outputs" / "bench_vla")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--image_size", type=int, default=96)
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--minutes", type=float, default=45)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--save_freq", type=int, default=200)
    parser.add_argument("--chunk_size", type=int, default=20)
    parser.add_argument("--n_action_steps", type=int, default=10)
    parser.add_argument("--act_lr", type=float, default=1e-4)
    parser.add_argument("--eval_episodes", type=int, default=50)
    args = parser.parse_args()
    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)

    root = record(work, args)
    labelled = stamo_and_labels(work, root, args)
    checkpoints = train_side_by_side(work, root, labelled, args)
    results = {}
    for name, ckpt in checkpoints.items():
        budget = json.loads((work / f"train_{name}" / "budget.json").read_text())
        results[name] = {**evaluate(work, name, ckpt, args), "train_steps": budget["steps"],
                         "train_minutes": args.minutes, "last_logged": train_log_tail(work, name)}  # fmt: skip
        print(f"{name:10s} success {results[name]['success_rate']:.0%} over {results[name]['n_episodes']} episodes "
              f"(step {budget['steps']})", flush=True)  # fmt: skip
    payload = {
        "task": "PickCube", "train_episodes": args.episodes, "image_size": args.image_size,
        "chunk_size": args.chunk_size, "n_action_steps": args.n_action_steps, "horizon": args.horizon,
        "batch_size": args.batch_size, "minutes": args.minutes, "act_lr": args.act_lr,
        "results": results, "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                                        "torch": torch.__version__, "threads_per_training": 1},
    }  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "vla_success.json").write_text(json.dumps(payload, indent=2) + "\n")
    rows = "\n".join(
        f"| {n} | {r['success_rate']:.0%} ({round(r['success_rate'] * r['n_episodes'])}/{r['n_episodes']}) | {r['train_steps']} |"
        for n, r in results.items()
    )
    (RESULTS / "vla_success.md").write_text(
        f"PickCube, {args.episodes} expert episodes at {args.image_size} px, {args.minutes:g} min of training each "
        f"(side by side, 1 CPU thread each), {args.eval_episodes} evaluation episodes (seeds from 1000).\n\n"
        "| policy | success | training steps |\n|---|---|---|\n" + rows + "\n"
    )
    print(f"Saved {RESULTS / 'vla_success.json'}")


if __name__ == "__main__":
    main()
