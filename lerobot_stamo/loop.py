"""The StaMo loop's commands, written once: train a `stamo`, interpolate, label, probe, train a `stamo_vla`, evaluate.

Each builder returns the argv of one console script (this project's or LeRobot's, never imported here), so that
`lerobot-stamo-demo` and `lerobot-stamo-paper` run the same commands and print the same lines a user would type.
`run` runs one from this environment's `bin/`. Changing how the loop trains the tiny `stamo`, labels or
evaluates means editing one builder here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Data:
    """A local LeRobot dataset as the commands name it; `extra`: more `--dataset.*` flags (e.g. episodes)."""

    repo_id: str
    root: Path
    extra: tuple[str, ...] = ()

    def args(self) -> list[str]:
        return [f"--dataset.repo_id={self.repo_id}", f"--dataset.root={self.root}", *self.extra]


def episodes_flag(ids: Sequence[int]) -> str:
    """`[0,1,2]`: a list of ints as draccus reads it."""
    return "[" + ",".join(str(i) for i in ids) + "]"


def log_freq(steps: int, most: int) -> int:
    return max(1, min(most, steps // 10))


def train_stamo(
    preset: Path | str,
    parts: dict[str, str],
    data: Data,
    steps: int,
    save_freq: int,
    feature_cache: Path | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """`lerobot-train` of a `stamo` preset on `parts` (`write_tiny_pretrained`'s backbone and decoder); with a
    `feature_cache` (a frozen backbone's cached tokens) the backbone comes from the preset instead."""
    backbone = [f"--policy.feature_cache={feature_cache}"] if feature_cache else [f"--policy.backbone={parts['backbone']}"]  # fmt: skip
    return ["lerobot-train", f"--config_path={preset}", *backbone, f"--policy.decoder_path={parts['decoder_path']}",
            "--policy.device=cpu", *data.args(), f"--steps={steps}", f"--save_freq={save_freq}",
            f"--log_freq={log_freq(steps, 100)}", "--wandb.enable=false", *extra]  # fmt: skip


def interpolate(checkpoint: Path | str, data: Data, output_dir: Path) -> list[str]:
    """`lerobot-stamo-interpolate` from episode 0's start to its goal, transferred onto episode 1, in 6 steps."""
    return ["lerobot-stamo-interpolate", f"--policy.path={checkpoint}", *data.args(), "--dataset.episode=0",
            "--dataset.transfer_episode=1", "--steps=6", f"--output_dir={output_dir}"]  # fmt: skip


def label(
    checkpoint: Path | str, data: Data, horizon: int, output_dir: Path, repo_id: str | None = None,
    extra: Sequence[str] = (),
) -> list[str]:  # fmt: skip
    """`lerobot-stamo-label`: StaMo states and latent motions at `horizon` into a new dataset (replaced)."""
    named = [f"--repo_id={repo_id}"] if repo_id else []
    return ["lerobot-stamo-label", f"--policy.path={checkpoint}", *data.args(), f"--horizon={horizon}", *named,
            f"--output_dir={output_dir}", *extra, "--overwrite=true"]  # fmt: skip


def probe(checkpoint: Path | str, data: Data, output_dir: Path, extra: Sequence[str] = ()) -> list[str]:
    """`lerobot-stamo-probe` on relative actions (the simulated arm's actions are absolute joint targets)."""
    return ["lerobot-stamo-probe", f"--policy.path={checkpoint}", *data.args(), f"--output_dir={output_dir}",
            "--action_mode=relative", *extra]  # fmt: skip


def train_stamo_vla(
    preset: Path | str, data: Data, steps: int, save_freq: int, world_model_target: str = "state",
    horizon: int | None = None, stamo_path: Path | str | None = None, extra: Sequence[str] = (),
) -> list[str]:  # fmt: skip
    """`lerobot-train` of a `stamo_vla` preset; with `world_model_target` other than none, the targets come from
    the dataset's StaMo columns and `stamo_path` (the labelling checkpoint) only decodes predicted futures."""
    world_model = [f"--policy.world_model_target={world_model_target}"]
    if world_model_target != "none":
        world_model += [f"--policy.future_horizon={horizon}", "--policy.world_model_targets_from=labels",
                        f"--policy.stamo_path={Path(stamo_path).resolve()}"]  # fmt: skip
    return ["lerobot-train", f"--config_path={preset}", *world_model, *data.args(), f"--steps={steps}",
            f"--save_freq={save_freq}", f"--log_freq={log_freq(steps, 50)}", "--policy.device=cpu",
            "--wandb.enable=false", *extra]  # fmt: skip


def evaluate(
    checkpoint: Path | str, task: str, height: int, width: int, episodes: int, output_dir: Path,
    extra: Sequence[str] = (),
) -> list[str]:  # fmt: skip
    """`lerobot-eval` on the simulated SO-101 (`stamo_so101`), one environment, CPU."""
    return ["lerobot-eval", f"--policy.path={checkpoint}", "--env.type=stamo_so101", f"--env.task={task}",
            f"--env.observation_height={height}", f"--env.observation_width={width}",
            f"--eval.n_episodes={episodes}", "--eval.batch_size=1", "--eval.use_async_envs=false", *extra,
            "--policy.device=cpu", f"--output_dir={output_dir}"]  # fmt: skip


def eval_successes(output_dir: Path) -> list[bool]:
    """Each evaluated episode's success, from `lerobot-eval`'s `eval_info.json`."""
    info = json.loads((Path(output_dir) / "eval_info.json").read_text())
    return [bool(s) for task in info["per_task"] for s in task["metrics"]["successes"]]


def start(
    argv: Sequence[str], stdout: IO | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Starts a console script of this environment (one CPU thread unless `OMP_NUM_THREADS` says otherwise), with
    `env` added to this process's environment, its output to the terminal or to `stdout`."""
    exe = Path(sys.executable).parent / argv[0]
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), **os.environ, **(env or {})}
    stderr = subprocess.STDOUT if stdout is not None else None
    return subprocess.Popen([str(exe), *argv[1:]], env=env, stdout=stdout, stderr=stderr)


def run(argv: Sequence[str], log: Path | None = None) -> None:
    """Runs a console script of this environment (see `start`), its output to the terminal or to `log`; raises
    `CalledProcessError` when it fails."""
    logger.info("$ %s%s", " ".join(argv), f" > {log}" if log else "")
    with open(log, "w") if log else contextlib.nullcontext() as f:
        if (code := start(argv, f).wait()) != 0:
            raise subprocess.CalledProcessError(code, list(argv))
