"""The settings of `lerobot-stamo-paper`: the policy arms, the presets it runs, the full and quick scales,
and `PaperConfig` (what a run is asked to do, checked before anything runs)."""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass, field, fields
from pathlib import Path

from lerobot_stamo.errors import StamoInputError
from lerobot_stamo.paths import PRESETS_DIR

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
PAPER_PRESETS = ("stamo_tiny.json", "stamo_vla_compact_sim.json", "stamo_vla_cotrain_sim.json")
FULL_TASKS, FULL_SEEDS = ("PickCube", "PickPlace"), (0, 1, 2)  # what `make paper` runs


@dataclass
class PaperConfig:
    """Settings of `lerobot-stamo-paper`; `None` fields take the `full` or `--quick` preset's value."""

    work_dir: Path = Path("outputs/paper")
    results_dir: Path = Path("docs/results")
    configs_dir: Path = PRESETS_DIR  # the presets shipped in the package
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
    # Pretrained encoders: `stamo` from configs/stamo_cpu.json (frozen ImageNet EfficientNet-Lite0), the
    # `stamo_vla` arms with `--policy.vision=efficientnet_lite0` (frozen). False: the tiny preset, as published.
    pretrained: bool = False
    # Share of the co-training dataset's frames that carry a real action (robot episodes repeated
    # `real_repeat` times); None: each robot episode once.
    real_share: float | None = None
    # The results.json of another report (e.g. the random-encoder one): its headline figures (probe, success
    # and the claims) are set beside this run's in the report, labelled `compare_label`.
    compare_with: Path | None = None
    compare_label: str = "random encoder"

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
        if self.real_share is not None and not 0 < self.real_share < 1:
            raise StamoInputError(f"--real_share must lie strictly between 0 and 1, got {self.real_share}.")
        if self.compare_with is not None:
            self.compared()  # refused now, not after hours of stages
        for name in PAPER_PRESETS + (("stamo_cpu.json",) if self.pretrained else ()):
            if not (Path(self.configs_dir) / name).is_file():
                raise StamoInputError(
                    f"--configs_dir={self.configs_dir} lacks {name}: pass a folder holding the presets "
                    f"{', '.join(PAPER_PRESETS)}, or leave --configs_dir out to use the plug-in's own ({PRESETS_DIR})."
                )

    def compared(self) -> dict | None:
        """The path, label and `summary` of `compare_with` (None without one)."""
        if self.compare_with is None:
            return None
        import json

        path = Path(self.compare_with)
        try:
            other = json.loads(path.read_text())
            return {"path": str(path), "label": self.compare_label, "summary": other["summary"]}
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise StamoInputError(
                f"--compare_with={path} is not the results.json of a report ({type(err).__name__}: {err}): pass "
                "the results.json that lerobot-stamo-paper wrote beside a report, e.g. docs/results/results.json."
            ) from None

    @property
    def real_repeat(self) -> int:
        """`lerobot-stamo-cotrain --real_repeat` giving about `real_share` real frames (episodes of similar
        lengths); 1 without `real_share`."""
        if self.real_share is None:
            return 1
        ratio = self.real_share / (1 - self.real_share) * self.video_episodes / self.real_episodes
        return max(1, round(ratio))

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
