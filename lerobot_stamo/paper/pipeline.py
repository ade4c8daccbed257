"""The stages of `lerobot-stamo-paper`: each runs the project's or LeRobot's own command and caches its result.

Per task and seed (the whole pipeline is repeated per seed, as the paper's std over seeds asks):

1. `record`: scripted-expert robot episodes (with actions) and action-free video episodes of the task
   (`lerobot-stamo-sim-record`'s `record`, PNG frames).
2. `stamo`: the tiny preset's pretrained parts, then `lerobot-train --config_path=configs/stamo_tiny.json` on
   the training episodes (the last `test_fraction` of the episodes are held out).
3. `reconstruction`: PSNR / SSIM of that `stamo` on frames of the held-out episodes, and their PNG.
4. `interpolation`: `lerobot-stamo-interpolate` (episode 0's start -> goal, transferred onto episode 1).
5. `label`: `lerobot-stamo-label --horizon=<k>` on the robot and the video datasets (labelling throughput).
6. `probe`: `lerobot-stamo-probe` (StaMo vs Delta backbone features vs Pooled Delta Image, goal-conditioned).
7. `cotrain_data`: `lerobot-stamo-cotrain --real_per_task=<real_episodes>` (robot + labelled video).
8. `train_<arm>` / `eval_<arm>`: `lerobot-train` then `lerobot-eval --env.type=stamo_so101` for every arm of
   `ARMS` (world model none / state / motion, ACT, co-training arms).
9. `cost` (once): inference rate with and without the world-model head, 2 predicted tokens vs the decoded
   image, labelling throughput.

A stage is skipped when `<work_dir>/stages/<stage>.json` exists; that file is written last, atomically, so an
interrupted run continues with the stage it was in, and an interrupted training resumes from its last checkpoint
(`lerobot-train --resume=true`; a quarter of its steps at most are lost). `<work_dir>/settings.json` holds the
sizes the cache was made with: another preset or override is refused rather than mixed with it. A pipeline whose
stages have all finished is published to `<results_dir>/runs/` (see `ledger`) and read back from there by later
runs, on this machine or another. `--report_only` publishes an unfinished pipeline in part; a later run, on any
machine, makes its stages before the policy arms again (checked to be the same bytes) and runs only the arms
still missing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tqdm import tqdm

from lerobot_stamo.errors import StamoInputError

from .ledger import (
    ledger_dir,
    publish,
    publish_cost,
    read_cost,
    read_partial,
    read_published,
    settings_differences,
    tree_digest,
    write_json,
)

logger = logging.getLogger(__name__)

CAMERA = "observation.images.front"
EVAL_SEED = 1000  # evaluation episodes use env seeds from here: never seen in training
# Policy arms: (paper table, what it trains on, world-model target). `real50` is the `state` arm's command
# (the same data, config, seed and steps), so its checkpoint is reused rather than trained twice.
ARMS: dict[str, dict[str, str]] = {
    "none": {"table": "world_model", "label": "stamo_vla, no world model"},
    "state": {"table": "world_model", "label": "stamo_vla, world model: state s(t+k)"},
    "motion": {"table": "world_model", "label": "stamo_vla, world model: motion s(t+k) - s(t)"},
    "act": {"table": "world_model", "label": "ACT (LeRobot, same data)"},
    "real10": {"table": "cotrain", "label": "real only (few episodes)"},
    "cotrain": {"table": "cotrain", "label": "real + StaMo-labelled video"},
}
REUSED_ARMS = {"real50": "state"}
FULL_TASKS, FULL_SEEDS = ("PickCube", "PickPlace"), (0, 1, 2)  # what `make paper` runs


@dataclass
class PaperConfig:
    """Settings of `lerobot-stamo-paper`; `None` fields take the `full` or `--quick` preset's value."""

    work_dir: Path = Path("outputs/paper")
    results_dir: Path = Path("docs/results")
    configs_dir: Path = Path("configs")
    quick: bool = False
    # Write the report from finished stages only: no stage runs (safe beside a run in progress).
    report_only: bool = False
    seeds: list[int] = field(default_factory=lambda: list(FULL_SEEDS))
    tasks: list[str] = field(default_factory=lambda: list(FULL_TASKS))
    # Parallel trainings/evaluations (each one CPU thread).
    jobs: int = 2
    episodes: int | None = None  # robot episodes (with actions) per task and seed
    video_episodes: int | None = None  # action-free video episodes, labelled by StaMo for co-training
    real_episodes: int | None = None  # robot episodes of the `real10` and `cotrain` arms
    image_size: int | None = None
    fit_vae_steps: int | None = None
    stamo_steps: int | None = None
    policy_steps: int | None = None
    batch_size: int | None = None
    eval_episodes: int | None = None
    horizon: int = 5  # k of the labels and of the world-model head
    probe_horizons: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    probe_steps: int | None = None  # MLP-probe steps
    cost_reps: int | None = None
    test_fraction: float = 0.2

    def __post_init__(self) -> None:
        preset = QUICK if self.quick else FULL
        for f in fields(Scale):
            if getattr(self, f.name) is None:
                setattr(self, f.name, getattr(preset, f.name))
        from lerobot_stamo.envs.so101_sim import TASKS

        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or not self.tasks:
            raise StamoInputError(
                f"--tasks={','.join(self.tasks)} is not valid: choose from {','.join(TASKS)}."
            )
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise StamoInputError(f"--seeds={self.seeds} must name distinct seeds, e.g. --seeds 0,1,2.")
        if self.episodes < 3:
            raise StamoInputError(
                f"--episodes must be >= 3 (train, held-out, transfer), got {self.episodes}."
            )
        if not 1 <= self.real_episodes <= self.episodes - self.held_out:
            raise StamoInputError(
                f"--real_episodes={self.real_episodes} must be between 1 and the training episodes "
                f"({self.episodes - self.held_out}): pass a smaller --real_episodes or more --episodes."
            )
        for flag in ("video_episodes", "image_size", "stamo_steps", "policy_steps", "batch_size",
                     "eval_episodes", "horizon", "probe_steps", "cost_reps", "jobs"):  # fmt: skip
            if getattr(self, flag) < 1:
                raise StamoInputError(f"--{flag} must be >= 1, got {getattr(self, flag)}.")
        for name in ("stamo_tiny.json", "stamo_vla_compact_sim.json", "stamo_vla_cotrain_sim.json"):
            if not (Path(self.configs_dir) / name).is_file():
                raise StamoInputError(
                    f"{Path(self.configs_dir) / name} not found: run from the repository root or pass "
                    "--configs_dir=<repo>/configs."
                )

    @property
    def held_out(self) -> int:
        return max(1, round(self.episodes * self.test_fraction))

    @property
    def train_episodes(self) -> list[int]:
        return list(range(self.episodes - self.held_out))

    @property
    def test_episodes(self) -> list[int]:
        return list(range(self.episodes - self.held_out, self.episodes))


@dataclass(frozen=True)
class Scale:
    """The sizes a preset fixes (the paper's own scale is far beyond a CPU; see docs/results/report.md)."""

    episodes: int
    video_episodes: int
    real_episodes: int
    image_size: int
    fit_vae_steps: int
    stamo_steps: int
    policy_steps: int
    batch_size: int
    eval_episodes: int
    probe_steps: int
    cost_reps: int


FULL = Scale(episodes=50, video_episodes=40, real_episodes=10, image_size=96, fit_vae_steps=1500,
             stamo_steps=2000, policy_steps=1000, batch_size=16, eval_episodes=50, probe_steps=2000, cost_reps=50)  # fmt: skip
QUICK = Scale(episodes=6, video_episodes=6, real_episodes=2, image_size=64, fit_vae_steps=300,
              stamo_steps=300, policy_steps=60, batch_size=8, eval_episodes=3, probe_steps=300, cost_reps=10)  # fmt: skip


def code_version() -> str:
    """This package's version, with the last commit that changed the code or configs a stage runs when it runs
    from a checkout ("+dirty": uncommitted code). Commits to tests, docs, the report's writing (`report.py`
    reads finished stages, never runs one) or publishing (`ledger.py` copies them) during a long run do not
    change it."""
    from importlib import metadata

    version = metadata.version("lerobot-policy-stamo")
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return version

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True).stdout.strip()

    code = (
        "--",
        "lerobot_stamo",
        "configs",
        ":(exclude)lerobot_stamo/paper/report.py",
        ":(exclude)lerobot_stamo/paper/ledger.py",
    )
    dirty = git("status", "--porcelain", *code)
    return f"{version} ({git('log', '-1', '--format=%h', *code)}{'+dirty' if dirty else ''})"


class StageFailed(RuntimeError):
    """A stage's command failed; the message ends with the log to read and how to resume."""


@dataclass
class Stage:
    """One running stage: its name, log folder and the exact commands it ran."""

    name: str
    logs: Path
    commands: list[str] = field(default_factory=list)
    running: set[subprocess.Popen] = field(default_factory=set)  # shared by the runner's stages

    def cli(self, args: list[str], log: str | None = None) -> None:
        """Runs a console script of this environment, its output to `<logs>/<log>.log`."""
        self.commands.append(" ".join(args))
        log_path = self.logs / f"{log or self.name}.log"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
        env.setdefault("MUJOCO_GL", "egl")
        with open(log_path, "w") as f:
            proc = subprocess.Popen(
                [str(Path(sys.executable).parent / args[0]), *args[1:]],
                env=env,
                stdout=f,
                stderr=subprocess.STDOUT,
            )
            self.running.add(proc)
            try:
                proc.wait()
            finally:
                self.running.discard(proc)
        if proc.returncode != 0:
            tail = "\n".join(log_path.read_text(errors="ignore").splitlines()[-15:])
            raise StageFailed(
                f"{tail}\nStage {self.name!r} failed: `{args[0]}` exited with {proc.returncode} (full log: "
                f"{log_path}). Fix the cause and run the same command again: finished stages are kept."
            )

    def call(self, script: str, config_cls: type, fn: Callable[[Any], Any], args: list[str]) -> Any:
        """Runs a console script's library function in this process (the same draccus arguments)."""
        import draccus

        self.commands.append(" ".join([script, *args]))
        return fn(draccus.parse(config_cls, args=args))


class StageRunner:
    """Runs stages once: a finished stage's result is read back from `<work_dir>/stages/<name>.json`, or taken from
    `adopted` (the stages of a pipeline published in part)."""

    def __init__(self, work_dir: Path, total: int, report_only: bool = False):
        self.work_dir = Path(work_dir)
        self.adopted: dict[str, dict[str, Any]] = {}
        self.report_only = report_only
        self.stages = self.work_dir / "stages"
        self.logs = self.work_dir / "logs"
        self.stages.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.bar = tqdm(total=total, unit="stage", desc="paper", dynamic_ncols=True, disable=total == 0)
        self.lock = threading.Lock()
        self.results: dict[str, dict[str, Any]] = {}
        self.running: set[subprocess.Popen] = set()

    def run(self, name: str, fn: Callable[[Stage], dict[str, Any]]) -> dict[str, Any]:
        path = self.stages / f"{name}.json"
        if name in self.adopted:
            result, note = self.adopted[name], "published"
        elif path.is_file():
            result, note = json.loads(path.read_text()), "cached"
        elif self.report_only:
            raise StamoInputError(
                f"Stage {name!r} has not finished in {self.work_dir}: --report_only writes a report from finished "
                "stages only. Pass the --tasks/--seeds whose stages have all finished, or run without --report_only."
            )
        else:
            stage = Stage(name, self.logs, running=self.running)
            start, code = time.perf_counter(), code_version()
            result = fn(stage)
            result |= {"wall_s": time.perf_counter() - start, "commands": stage.commands, "code": code}
            write_json(path, result)
            note = f"{result['wall_s']:.0f} s"
        with self.lock:
            self.results[name] = result
            self.bar.update(1)
            self.bar.write(f"[{self.bar.n}/{self.bar.total}] {name}: {_summary(result)} ({note})")
        return result

    def stop(self) -> None:
        """Stops the commands still running (after another stage failed); their trainings resume next time."""
        for proc in list(self.running):
            proc.terminate()

    def close(self) -> None:
        self.bar.close()


def _summary(result: dict[str, Any]) -> str:
    keys = ("success_rate", "psnr", "frames_per_s", "episodes", "checkpoint", "files", "probe")
    parts = []
    for key in keys:
        if key in result:
            value = result[key]
            parts.append(f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}")
    return ", ".join(parts[:2]) or "done"


# ------------------------------------------------------------------------------------------------- stages
def _episodes(ids: list[int]) -> str:
    return "[" + ",".join(str(i) for i in ids) + "]"


def record_stage(cfg: PaperConfig, run_dir: Path, task: str, seed: int) -> Callable[[Stage], dict]:
    def fn(stage: Stage) -> dict:
        from lerobot_stamo.scripts.lerobot_stamo_sim_record import SimRecordConfig, record

        out = {}
        for kind, n, offset, video in (
            ("robot", cfg.episodes, 0, False),
            ("video", cfg.video_episodes, 5000, True),
        ):
            root = run_dir / "data" / kind
            args = [f"--repo_id=local/paper_{task.lower()}_{kind}", f"--root={root}", f"--task={task}",
                    f"--num_episodes={n}", f"--seed={seed * 10000 + offset}", f"--video_only={str(video).lower()}",
                    f"--observation_height={cfg.image_size}", f"--observation_width={cfg.image_size}",
                    "--use_videos=false", "--overwrite=true"]  # fmt: skip
            stage.call("lerobot-stamo-sim-record", SimRecordConfig, record, args)
            out[kind] = {"root": str(root), "repo_id": f"local/paper_{task.lower()}_{kind}", "episodes": n}
        return out | {"episodes": cfg.episodes}

    return fn


def stamo_stage(cfg: PaperConfig, run_dir: Path, data: dict, seed: int) -> Callable[[Stage], dict]:
    def fn(stage: Stage) -> dict:
        from lerobot_stamo.policies.stamo.tiny import write_tiny_pretrained

        written = run_dir / "stamo_pretrained" / "parts.json"  # last: the parts are complete
        if written.is_file():  # an interrupted attempt of this stage made them: no second VAE fit
            parts = json.loads(written.read_text())
        else:
            parts = write_tiny_pretrained(written.parent, seed=seed, fit_vae_steps=cfg.fit_vae_steps)
            write_json(written, parts)
        stage.commands.append(
            f"python -c 'from lerobot_stamo.policies.stamo.tiny import write_tiny_pretrained; "
            f'write_tiny_pretrained("{run_dir / "stamo_pretrained"}", seed={seed}, '
            f"fit_vae_steps={cfg.fit_vae_steps})'"
        )
        args = [
            "lerobot-train",
            f"--config_path={cfg.configs_dir / 'stamo_tiny.json'}",
            f"--policy.backbone={parts['backbone']}",
            f"--policy.decoder_path={parts['decoder_path']}",
            "--policy.device=cpu",
            f"--dataset.repo_id={data['robot']['repo_id']}",
            f"--dataset.root={data['robot']['root']}",
            f"--dataset.episodes={_episodes(cfg.train_episodes)}",
            f"--steps={cfg.stamo_steps}",
            f"--save_freq={_save_freq(cfg.stamo_steps)}",
            f"--log_freq={max(1, min(100, cfg.stamo_steps // 10))}",
            f"--seed={seed}",
            "--wandb.enable=false",
        ]  # fmt: skip
        return _train(stage, args, run_dir / "train_stamo") | {"steps": cfg.stamo_steps}

    return fn


def reconstruction_stage(cfg: PaperConfig, run_dir: Path, data: dict, ckpt: str) -> Callable[[Stage], dict]:
    def fn(stage: Stage) -> dict:
        import numpy as np
        import torch
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        from lerobot_stamo.policies.stamo import StamoPolicy

        torch.set_num_threads(1)
        policy = StamoPolicy.from_pretrained(ckpt).for_inference()
        dataset = LeRobotDataset(
            data["robot"]["repo_id"], root=data["robot"]["root"], episodes=cfg.test_episodes
        )
        index = np.linspace(0, len(dataset) - 1, 8).round().astype(int)
        images = torch.stack([dataset[int(i)][CAMERA] for i in index])  # (8, 3, H, W)
        out = run_dir / "reconstruction"
        out.mkdir(parents=True, exist_ok=True)
        metrics = policy.write_reconstructions(images, out)
        stage.commands.append(
            f"StamoPolicy.from_pretrained({ckpt!r}).write_reconstructions(<8 held-out frames>)"
        )
        return metrics | {"png": str(out / "reconstructions.png"), "test_episodes": cfg.test_episodes}

    return fn


def interpolation_stage(run_dir: Path, data: dict, ckpt: str) -> Callable[[Stage], dict]:
    def fn(stage: Stage) -> dict:
        out = run_dir / "interpolation"
        stage.cli(
            [
                "lerobot-stamo-interpolate",
                f"--policy.path={ckpt}",
                f"--dataset.repo_id={data['robot']['repo_id']}",
                f"--dataset.root={data['robot']['root']}",
                "--dataset.episode=0",
                "--dataset.transfer_episode=1",
                "--steps=6",
                f"--output_dir={out}",
            ]  # fmt: skip
        )
        return {"files": sorted(str(p) for p in out.iterdir() if p.suffix in (".png", ".gif"))}

    return fn


def label_stage(cfg: PaperConfig, run_dir: Path, data: dict, ckpt: str) -> Callable[[Stage], dict]:
    def fn(stage: Stage) -> dict:
        from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata

        from lerobot_stamo.transforms.labelling import LabelConfig, label_dataset

        out, frames, seconds = {}, 0, 0.0
        for kind in ("robot", "video"):
            root = run_dir / "data" / f"{kind}_stamo_k{cfg.horizon}"
            repo_id = f"{data[kind]['repo_id']}_stamo"
            args = [f"--policy.path={ckpt}", f"--dataset.repo_id={data[kind]['repo_id']}",
                    f"--dataset.root={data[kind]['root']}", f"--horizon={cfg.horizon}", f"--repo_id={repo_id}",
                    f"--output_dir={root}", "--num_workers=0", "--overwrite=true"]  # fmt: skip
            start = time.perf_counter()
            stage.call("lerobot-stamo-label", LabelConfig, label_dataset, args)
            seconds += time.perf_counter() - start
            frames += LeRobotDatasetMetadata(repo_id, root=root).total_frames
            out[kind] = {"root": str(root), "repo_id": repo_id}
        return out | {"frames": frames, "label_s": seconds, "frames_per_s": frames / seconds}

    return fn


def probe_stage(
    cfg: PaperConfig, run_dir: Path, labels: dict, ckpt: str, seed: int
) -> Callable[[Stage], dict]:
    def fn(stage: Stage) -> dict:
        from lerobot_stamo.transforms.probe import ProbeConfig, run_probe

        out = run_dir / "probe"
        args = [f"--policy.path={ckpt}", f"--dataset.repo_id={labels['robot']['repo_id']}",
                f"--dataset.root={labels['robot']['root']}", f"--output_dir={out}", "--action_mode=relative",
                f"--horizons={_episodes(cfg.probe_horizons)}", f"--seeds=[{seed}]",
                f"--test_episodes={_episodes(cfg.test_episodes)}", f"--steps={cfg.probe_steps}"]  # fmt: skip
        report = stage.call("lerobot-stamo-probe", ProbeConfig, run_probe, args)
        return {"probe": str(out / "probe.json"), "report": report}

    return fn


def cotrain_data_stage(cfg: PaperConfig, run_dir: Path, labels: dict) -> Callable[[Stage], dict]:
    def fn(stage: Stage) -> dict:
        from lerobot_stamo.transforms.cotrain import CotrainConfig, build_cotrain_dataset

        out = run_dir / "data" / "cotrain"
        args = [f"--robot_root={labels['robot']['root']}", f"--video_root={labels['video']['root']}",
                f"--real_per_task={cfg.real_episodes}", f"--output_dir={out}", "--overwrite=true"]  # fmt: skip
        stage.call("lerobot-stamo-cotrain", CotrainConfig, build_cotrain_dataset, args)
        meta = json.loads((out / "meta" / "stamo_cotrain.json").read_text())
        return {
            "root": str(out),
            "repo_id": f"local/{out.name}",
            "frames": {k: meta[k]["frames"] for k in ("robot", "video")},
        }

    return fn


def train_args(cfg: PaperConfig, arm: str, r: dict[str, Any], seed: int) -> list[str]:
    """The `lerobot-train` arguments of one arm (without `--output_dir`) from the run's finished stages `r`.

    ACT reads only `r["record"]`; the stamo_vla arms need the labelled (and co-training) data and the stamo.
    """
    steps = cfg.policy_steps
    common = [f"--batch_size={cfg.batch_size}", f"--steps={steps}", f"--save_freq={_save_freq(steps)}",
              f"--log_freq={max(1, min(50, steps // 10))}", "--num_workers=0", "--wandb.enable=false",
              f"--seed={seed}", "--policy.device=cpu"]  # fmt: skip
    if arm == "act":
        data = r["record"]["robot"]
        return ["lerobot-train", "--policy.type=act", "--policy.pretrained_backbone_weights=null",
                "--policy.push_to_hub=false", "--policy.chunk_size=20", "--policy.n_action_steps=10",
                "--policy.optimizer_lr=1e-4", "--policy.optimizer_lr_backbone=1e-4",
                f"--dataset.repo_id={data['repo_id']}", f"--dataset.root={data['root']}", *common]  # fmt: skip
    labels = r["label"]["robot"]
    robot = [f"--dataset.repo_id={labels['repo_id']}", f"--dataset.root={labels['root']}"]
    world_model = [f"--policy.future_horizon={cfg.horizon}", "--policy.world_model_targets_from=labels",
                   f"--policy.stamo_path={Path(r['stamo']['checkpoint']).resolve()}"]  # fmt: skip
    compact = f"--config_path={cfg.configs_dir / 'stamo_vla_compact_sim.json'}"
    cotrain_cfg = f"--config_path={cfg.configs_dir / 'stamo_vla_cotrain_sim.json'}"
    if arm == "none":
        return ["lerobot-train", compact, "--policy.world_model_target=none", *robot, *common]
    if arm in ("state", "motion"):
        return ["lerobot-train", compact, f"--policy.world_model_target={arm}", *world_model, *robot, *common]
    if arm == "real10":
        few = f"--dataset.episodes={_episodes(list(range(cfg.real_episodes)))}"
        return [
            "lerobot-train",
            cotrain_cfg,
            "--policy.world_model_target=state",
            *world_model,
            *robot,
            few,
            *common,
        ]
    if arm == "cotrain":
        cotrain = r["cotrain_data"]
        data_args = [f"--dataset.repo_id={cotrain['repo_id']}", f"--dataset.root={cotrain['root']}"]
        return [
            "lerobot-train",
            cotrain_cfg,
            "--policy.world_model_target=state",
            *world_model,
            *data_args,
            *common,
        ]
    raise ValueError(f"Unknown arm {arm!r}: choose from {list(ARMS)}.")


def _save_freq(steps: int) -> int:
    """Checkpoints every quarter of a training: what an interruption costs at most."""
    return max(1, steps // 4)


def _train(stage: Stage, args: list[str], out: Path) -> dict:
    """`lerobot-train <args> --output_dir=<out>`, resumed from `out`'s last checkpoint when one was left.

    LeRobot resumes sample-exactly (the data order, optimizer, scheduler and RNG states are in the checkpoint).
    Once finished, only the last checkpoint is kept.
    """
    checkpoints = out / "checkpoints"
    saved_config = checkpoints / "last" / "pretrained_model" / "train_config.json"
    saved_step = checkpoints / "last" / "training_state" / "training_step.json"
    if saved_config.is_file() and saved_step.is_file():
        step = json.loads(saved_step.read_text())["step"]
        if step < json.loads(saved_config.read_text())["steps"]:
            stage.cli(["lerobot-train", f"--config_path={saved_config}", "--resume=true"])
    else:
        if out.exists():
            shutil.rmtree(out)  # interrupted before its first checkpoint (this stage created the folder)
        stage.cli([*args, f"--output_dir={out}"])
    last = (checkpoints / "last").resolve()
    for old in checkpoints.iterdir():
        if old.is_dir() and not old.is_symlink() and old.resolve() != last:
            shutil.rmtree(old)
    return {"checkpoint": str(checkpoints / "last" / "pretrained_model")}


def train_stage(args: list[str], out: Path) -> Callable[[Stage], dict]:
    return lambda stage: _train(stage, args, out)


def eval_stage(cfg: PaperConfig, task: str, ckpt: str, out: Path) -> Callable[[Stage], dict]:
    def fn(stage: Stage) -> dict:
        if out.exists():
            shutil.rmtree(out)  # lerobot-eval refuses an existing folder; this stage created it
        stage.cli(
            [
                "lerobot-eval",
                f"--policy.path={ckpt}",
                "--env.type=stamo_so101",
                f"--env.task={task}",
                f"--env.observation_height={cfg.image_size}",
                f"--env.observation_width={cfg.image_size}",
                f"--eval.n_episodes={cfg.eval_episodes}",
                "--eval.batch_size=1",
                "--eval.use_async_envs=false",
                f"--seed={EVAL_SEED}",
                "--policy.device=cpu",
                f"--output_dir={out}",
            ]  # fmt: skip
        )
        overall = json.loads((out / "eval_info.json").read_text())["overall"]
        return {"success_rate": overall["pc_success"] / 100, "n_episodes": overall["n_episodes"]}

    return fn


def cost_stage(
    cfg: PaperConfig, checkpoints: dict[str, str], labels: dict, label: dict
) -> Callable[[Stage], dict]:
    """Inference rate with/without the world-model head; 2 predicted tokens vs their decoded image."""

    def fn(stage: Stage) -> dict:
        import numpy as np
        import torch
        from lerobot.datasets.lerobot_dataset import LeRobotDataset
        from lerobot.policies.factory import make_pre_post_processors
        from lerobot.utils.constants import OBS_STATE

        from lerobot_stamo.policies.stamo_vla import StamoVLAPolicy

        torch.set_num_threads(1)
        dataset = LeRobotDataset(labels["robot"]["repo_id"], root=labels["robot"]["root"], episodes=[0])
        frame = dataset[0]
        policies, batches = {}, {}
        for arm in ("none", "state"):
            policy = StamoVLAPolicy.from_pretrained(checkpoints[arm]).eval()
            pre, _ = make_pre_post_processors(policy.config, pretrained_path=checkpoints[arm])
            obs = {key: frame[key] for key in policy.config.camera_keys} | {"task": frame["task"]}
            if policy.config.state_dim:
                obs[OBS_STATE] = frame[OBS_STATE]
            policies[arm], batches[arm] = policy, pre(obs)

        def median_s(fn: Callable[[], Any], reps: int) -> float:
            fn()  # warm-up
            samples = []
            for _ in range(reps):
                start = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - start)
            return float(np.median(samples))

        chunk = {}
        with torch.no_grad():
            for _ in range(2):  # alternate the two policies so that machine noise hits both
                for arm in ("none", "state"):
                    t = median_s(lambda a=arm: policies[a].predict_action_chunk(batches[a]), cfg.cost_reps)
                    chunk.setdefault(arm, []).append(t)
            state = policies["state"]
            tokens_s = median_s(lambda: state.predict_future(batches["state"], decode=False), cfg.cost_reps)
            steps = state.stamo_policy().config.num_inference_steps
            image_s = median_s(
                lambda: state.predict_future(batches["state"], num_inference_steps=steps),
                max(2, cfg.cost_reps // 5),
            )
        n_action = policies["state"].config.n_action_steps
        chunk_s = {arm: float(np.median(v)) for arm, v in chunk.items()}
        stage.commands.append(
            "in-process timing: StamoVLAPolicy.predict_action_chunk / predict_future, 1 thread"
        )
        return {
            "chunk_ms": {arm: 1000 * t for arm, t in chunk_s.items()},
            "chunks_per_s": {arm: 1 / t for arm, t in chunk_s.items()},
            "actions_per_s": {arm: n_action / t for arm, t in chunk_s.items()},
            "world_model_over_none": chunk_s["state"] / chunk_s["none"],
            "predict_tokens_ms": 1000 * tokens_s,
            "predict_and_decode_image_ms": 1000 * image_s,
            "decode_steps": steps,
            "label_frames_per_s": label["frames_per_s"],
            "reps": cfg.cost_reps,
        }

    return fn


# ------------------------------------------------------------------------------------------------- runner
# The stages of one task and seed, in the order they finish on one job: those that make what the arms train on,
# then each arm's training and evaluation.
PREFIX_STAGES = ("record", "stamo", "reconstruction", "interpolation", "label", "probe", "cotrain_data")
PIPELINE_STAGES = (*PREFIX_STAGES, *(f"{kind}_{arm}" for arm in ARMS for kind in ("train", "eval")))
# Provenance the datasets carry (absolute paths, times): not part of what an arm trains on.
PROVENANCE = ("meta/stamo_*.json",)


def input_digests(r: dict[str, Any]) -> dict[str, str]:
    """sha256 of what the policy arms train on, from the finished stages in `r`: the recorded episodes (ACT),
    then the labelled and co-training datasets and the stamo's weights."""
    out = {"robot": tree_digest(r["record"]["robot"]["root"], PROVENANCE)}
    if "cotrain_data" in r:
        out |= {
            "robot_labelled": tree_digest(r["label"]["robot"]["root"], PROVENANCE),
            "cotrain": tree_digest(r["cotrain_data"]["root"], PROVENANCE),
            "stamo": tree_digest(Path(r["stamo"]["checkpoint"]) / "model.safetensors"),
        }
    return out


def check_inputs(where: Path, published: dict[str, str], made: dict[str, str]) -> None:
    """Refuses to add arms to a pipeline published in part when what they would train on differs from what its
    published arms trained on."""
    differ = [name for name, digest in made.items() if name in published and published[name] != digest]
    if differ:
        raise StamoInputError(
            f"The {', '.join(differ)} made again here differ from those the stages published in {where} were "
            "made from (another machine or library version can change them), so new arms cannot be added to "
            f"them. Delete {where} to run that pipeline again from the start."
        )


def adoptable_arms(stages: dict[str, dict], cost_known: bool) -> list[str]:
    """The arms of a pipeline published in part that need not run again: trained and evaluated (`none` and
    `state` only once the cost, which times their checkpoints, is published)."""
    return [
        arm
        for arm in ARMS
        if {f"train_{arm}", f"eval_{arm}"} <= set(stages) and (cost_known or arm not in ("none", "state"))
    ]


def stage_count(cfg: PaperConfig) -> int:
    return len(cfg.tasks) * len(cfg.seeds) * len(PIPELINE_STAGES) + 1  # + cost


def finished(work_dir: Path, task: str, seed: int) -> bool:
    """Whether every stage of `task` and `seed` has finished in `work_dir`."""
    return all((work_dir / "stages" / f"{task}_s{seed}_{name}.json").is_file() for name in PIPELINE_STAGES)


def run_task_seed(
    cfg: PaperConfig,
    runner: StageRunner,
    task: str,
    seed: int,
    part: tuple[Path, dict[str, str]] | None = None,
    progress: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Every stage of one task and seed; returns `{stage: result}`. `part`: where the pipeline was published in
    part and its inputs' digests, checked against those made here (its arms are in `runner.adopted`).
    `progress` is called once the stages before the arms have finished and after each arm's evaluation."""
    tag, run_dir = f"{task}_s{seed}", runner.work_dir / f"{task}_s{seed}"
    r: dict[str, Any] = {}

    def check() -> None:
        if part is not None:
            check_inputs(part[0], part[1], input_digests(r))

    def arm_stages(arm: str) -> None:
        trained = runner.run(
            f"{tag}_train_{arm}", train_stage(train_args(cfg, arm, r, seed), run_dir / f"train_{arm}")
        )
        r[f"train_{arm}"] = trained
        eval_dir = run_dir / f"eval_{arm}"
        r[f"eval_{arm}"] = runner.run(
            f"{tag}_eval_{arm}", eval_stage(cfg, task, trained["checkpoint"], eval_dir)
        )
        progress()

    with ThreadPoolExecutor(max_workers=cfg.jobs) as pool:
        try:
            r["record"] = runner.run(f"{tag}_record", record_stage(cfg, run_dir, task, seed))
            check()
            # ACT needs only the recorded episodes: with a second job it trains beside the stamo stages.
            early = ["act"] if cfg.jobs > 1 else []
            futures = [pool.submit(arm_stages, arm) for arm in early]
            r["stamo"] = runner.run(f"{tag}_stamo", stamo_stage(cfg, run_dir, r["record"], seed))
            ckpt = r["stamo"]["checkpoint"]
            r["reconstruction"] = runner.run(
                f"{tag}_reconstruction", reconstruction_stage(cfg, run_dir, r["record"], ckpt)
            )
            r["interpolation"] = runner.run(
                f"{tag}_interpolation", interpolation_stage(run_dir, r["record"], ckpt)
            )
            r["label"] = runner.run(f"{tag}_label", label_stage(cfg, run_dir, r["record"], ckpt))
            r["probe"] = runner.run(f"{tag}_probe", probe_stage(cfg, run_dir, r["label"], ckpt, seed))
            r["cotrain_data"] = runner.run(
                f"{tag}_cotrain_data", cotrain_data_stage(cfg, run_dir, r["label"])
            )
            check()
            progress()
            futures += [pool.submit(arm_stages, arm) for arm in ARMS if arm not in early]
            for future in futures:
                future.result()
        except BaseException:  # a stage failed: stop the running commands rather than wait for them
            runner.stop()
            raise
    return r


def settings_of(cfg: PaperConfig) -> dict[str, Any]:
    """The sizes that make two pipelines comparable (tasks and seeds aside)."""
    keys = [f.name for f in fields(Scale)] + ["horizon", "probe_horizons", "test_fraction"]
    return {key: getattr(cfg, key) for key in keys}


def check_settings(cfg: PaperConfig, work_dir: Path) -> None:
    """Records the sizes the cache in `work_dir` is made with; refuses other ones (cached stages would mix them)."""
    settings = settings_of(cfg)
    path = work_dir / "settings.json"
    if path.is_file():
        changed = settings_differences(settings, json.loads(path.read_text()))
        if changed:
            raise StamoInputError(
                f"{work_dir} caches a run made with other settings: {', '.join(changed)}. Pass the same settings "
                "to continue it, or another --work_dir for a new run."
            )
    else:
        write_json(path, settings)


def lock_work_dir(work_dir: Path) -> Any:
    """Holds `<work_dir>/.lock` while stages run: a second run would train the same stages into the same folders."""
    import fcntl

    work_dir.mkdir(parents=True, exist_ok=True)
    lock = open(work_dir / ".lock", "a+")  # noqa: SIM115 - held until this process exits
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        raise StamoInputError(
            f"Another lerobot-stamo-paper (pid {lock.read().strip() or '?'}) is running stages in {work_dir}: wait "
            "for it, or pass --report_only to write a report from the stages it has finished."
        ) from None
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def publish_part(
    ledger: Path,
    work_dir: Path,
    settings: dict[str, Any],
    task: str,
    seed: int,
    part: tuple[dict, dict] | None,
    known: Sequence[str] = (),
) -> list[str]:
    """Publishes what has finished of an unfinished pipeline in `work_dir`, with the stages published in part
    before (`part`), once its stages before the arms have all finished and what they made is still there;
    returns the stage names published (none: nothing yet). Nothing is written when they are the `known` ones."""
    tag = f"{task}_s{seed}"
    stages = {
        name: json.loads(path.read_text())
        for name in PIPELINE_STAGES
        if (path := work_dir / "stages" / f"{tag}_{name}.json").is_file()
    }
    before = part[1] if part is not None else {}
    if not set(PREFIX_STAGES) <= set(stages):
        return list(before)
    try:
        inputs = input_digests(stages)
    except FileNotFoundError:  # the stage files outlived the data: the part published before stands
        return list(before)
    if part is not None:
        check_inputs(ledger / tag, part[0]["inputs"], inputs)
    merged = {**before, **stages}
    arms = [arm for arm in ARMS if {f"train_{arm}", f"eval_{arm}"} <= set(merged)]
    keep = [*PREFIX_STAGES, *(f"{kind}_{arm}" for arm in arms for kind in ("train", "eval"))]
    names = [name for name in PIPELINE_STAGES if name in keep]
    if names == list(known):
        return names
    complete = len(names) == len(PIPELINE_STAGES)  # the rest was published before: complete from now on
    publish(ledger, task, seed, settings, {name: merged[name] for name in names}, inputs, complete=complete)
    return names


def partial_publisher(
    ledger: Path,
    work_dir: Path,
    settings: dict[str, Any],
    task: str,
    seed: int,
    part: tuple[dict, dict] | None,
) -> Callable[[], None]:
    """What `run_task_seed` calls as its stages finish: publishes the pipeline in part (as `--report_only` would),
    so that a machine taken away mid-run (a session's end) loses at most the trainings in flight, once the
    `runs/` folder is committed. One call at a time: arms finish in parallel threads."""
    lock, known = threading.Lock(), [name for name in PIPELINE_STAGES if part is not None and name in part[1]]

    def progress() -> None:
        with lock:
            names = publish_part(ledger, work_dir, settings, task, seed, part, known)
            if names == known:
                return
            known[:] = names
        if names and len(names) < len(PIPELINE_STAGES):
            tqdm.write(
                f"{task}_s{seed}: {len(names)} of its {len(PIPELINE_STAGES)} stages published in part "
                f"({ledger / f'{task}_s{seed}'})"
            )

    return progress


def run_paper(cfg: PaperConfig) -> dict[str, Any]:
    """Runs (or reads back) every stage of `--tasks` x `--seeds` and reads back every pipeline published in
    `<results_dir>/runs/`; returns `{"runs": {task: {seed: {stage: result}}}, "cost": ..., "missing": [...]}`.

    A pipeline is published there as soon as its last stage finishes (also by `--report_only`, which runs no
    stage: pipelines it finds unfinished in `--work_dir` are left out of the report, listed in `missing`, and
    published in part; `in_part` counts the stages published of each). A pipeline published in part runs only its
    missing arms, after the stages before them are made again and checked to be the same.
    """
    work_dir = Path(cfg.work_dir).resolve()
    check_settings(cfg, work_dir)
    ledger, settings = ledger_dir(cfg.results_dir), settings_of(cfg)
    published, partial = read_published(ledger, settings), read_partial(ledger, settings)
    todo = [(task, seed) for task in cfg.tasks for seed in cfg.seeds if (task, seed) not in published]
    missing = [] if not cfg.report_only else [p for p in todo if not finished(work_dir, *p)]
    todo = [p for p in todo if p not in missing]
    in_part = {}
    for task, seed in missing:
        names = publish_part(ledger, work_dir, settings, task, seed, partial.get((task, seed)))
        if names:
            in_part[f"{task}_s{seed}"] = len(names)
    if not published and not todo and not in_part:
        raise StamoInputError(
            f"No pipeline of --tasks={','.join(cfg.tasks)} --seeds={','.join(map(str, cfg.seeds))} has finished in "
            f"{cfg.work_dir}, and none is published in {ledger}: --report_only writes a report from finished "
            "pipelines only. Run without --report_only first."
        )
    for task, seed in published:
        tqdm.write(f"{task}_s{seed}: published ({ledger / f'{task}_s{seed}'})")
    for task, seed in missing:
        tag = f"{task}_s{seed}"
        done = (
            f", {in_part[tag]} of its {len(PIPELINE_STAGES)} stages published in part"
            if tag in in_part
            else ""
        )
        tqdm.write(f"{tag}: not finished in {cfg.work_dir}, left out of the report{done}")
    cost = read_cost(ledger)
    lock = None if cfg.report_only else lock_work_dir(work_dir)
    total = len(todo) * len(PIPELINE_STAGES) + int(cost is None and bool(todo))
    runner = StageRunner(work_dir, total, report_only=cfg.report_only)
    runs = dict(published)
    try:
        for task, seed in todo:
            tag = f"{task}_s{seed}"
            part = None if cfg.report_only else partial.get((task, seed))  # --report_only: work folder only
            if part is not None:
                arms = adoptable_arms(part[1], cost is not None)
                runner.adopted |= {f"{tag}_{kind}_{arm}": part[1][f"{kind}_{arm}"] for arm in arms
                                   for kind in ("train", "eval")}  # fmt: skip
                tqdm.write(
                    f"{tag}: {len(arms)} of its {len(ARMS)} arms published in part ({ledger / tag}); the stages "
                    "before the arms run again, checked against those published"
                )
            inputs = None if part is None else (ledger / tag, part[0]["inputs"])
            r = runs[(task, seed)] = run_task_seed(
                cfg,
                runner,
                task,
                seed,
                inputs,
                progress=partial_publisher(ledger, work_dir, settings, task, seed, part),
            )
            publish(ledger, task, seed, settings, {name: r[name] for name in PIPELINE_STAGES})
            if cost is None and (not cfg.report_only or (runner.stages / "cost.json").is_file()):
                checkpoints = {arm: r[f"train_{arm}"]["checkpoint"] for arm in ("none", "state")}
                cost = runner.run("cost", cost_stage(cfg, checkpoints, r["label"], r["label"]))
                publish_cost(ledger, cost)
    finally:
        runner.close()
        if lock is not None:
            lock.close()
    nested: dict[str, dict[str, dict[str, Any]]] = {}
    tasks = list(dict.fromkeys([*FULL_TASKS, *cfg.tasks]))
    for task, seed in sorted(runs, key=lambda p: (tasks.index(p[0]) if p[0] in tasks else len(tasks), p)):
        nested.setdefault(task, {})[str(seed)] = runs[(task, seed)]
    return {
        "runs": nested,
        "cost": cost,
        "missing": [f"{task}_s{seed}" for task, seed in missing],
        "in_part": in_part,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
    }
