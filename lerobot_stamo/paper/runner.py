"""How the paper's stages run: each stage's commands with their logs (`Stage`), and the runner that caches
stage results and runs independent stages side by side (`StageRunner`)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from lerobot_stamo import loop
from lerobot_stamo.errors import StamoInputError

from .config import (
    code_version,
)
from .ledger import (
    write_json,
)

logger = logging.getLogger(__name__)


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
        env = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
        env["MUJOCO_GL"] = os.environ.get("MUJOCO_GL", "egl")
        with open(log_path, "w") as f:
            proc = loop.start(args, f, env)
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
