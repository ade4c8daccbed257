"""Scripted-expert episodes of the simulated SO-101, recorded as a LeRobotDataset (`lerobot-stamo-sim-record`).

Examples::

    # 20 PickCube demonstrations with actions (a robot dataset)
    lerobot-stamo-sim-record --repo_id=local/so101_pickcube --root=data/so101_pickcube --num_episodes=20

    # the same arm filmed without actions or joint states: "unlabelled video" for pseudo-actions
    lerobot-stamo-sim-record --repo_id=local/so101_video --root=data/so101_video --video_only=true

The dataset is written to a temporary folder next to ``--root`` and renamed into place only once it is
complete, so an interrupted run never leaves a half-written dataset at ``--root`` (the temporary folder of
a killed run is removed by the next run for the same ``--root``). ``--overwrite=true`` replaces only a
dataset this command recorded (marked by ``meta/stamo_sim_record.json``), never another folder. Episode ``k`` is
recorded with ``reset(seed=seed + k)`` (failed attempts are skipped unless ``--keep_failures=true``), so
the same arguments reproduce the same dataset.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from lerobot.utils.constants import ACTION, OBS_IMAGES, OBS_STATE
from tqdm import tqdm

from lerobot_stamo.console import quiet_dataset_writer, quiet_video_encoder, video_backend
from lerobot_stamo.envs.expert import ScriptedExpert
from lerobot_stamo.envs.so101_sim import (
    CAMERA_NAMES,
    MOTOR_FEATURE_NAMES,
    TASKS,
    SO101SimEnv,
    check_image_size,
    check_task,
)
from lerobot_stamo.paths import replace_folder

logger = logging.getLogger(__name__)

ROBOT_TYPE = "so101_follower"
FPS = 10
# Marks a dataset this command recorded: the only kind of folder --overwrite=true replaces.
MARKER = "meta/stamo_sim_record.json"


@dataclass
class SimRecordConfig:
    # Dataset id (stored in the metadata; the Hub repo when --push_to_hub=true).
    repo_id: str = "local/stamo_so101"
    # Where the dataset is written. Default: $HF_LEROBOT_HOME/<repo_id>.
    root: Path | None = None
    # "PickCube" or "PickPlace".
    task: str = "PickCube"
    num_episodes: int = 10
    # Episode k is recorded from reset(seed=seed + k) (k counts attempts, failed ones included).
    seed: int = 0
    # Frames and task only (no action, no joint state): the unlabelled-video variant.
    video_only: bool = False
    # Keep episodes where the expert failed (they are skipped and replaced by the next seed otherwise).
    keep_failures: bool = False
    # Frames recorded after the task first succeeds (the arm settles / retreats).
    steps_after_success: int = 5
    observation_height: int = 224
    observation_width: int = 224
    cameras: list[str] = field(default_factory=lambda: list(CAMERA_NAMES))
    # Store cameras as MP4 videos (LeRobot's default) or as PNG frames.
    use_videos: bool = True
    randomize_lighting: bool = False
    randomize_cube_color: bool = False
    camera_jitter: float = 0.0
    # Replace an existing dataset at --root.
    overwrite: bool = False
    push_to_hub: bool = False
    private: bool = False

    def __post_init__(self):
        check_task(self.task)
        if self.num_episodes < 1:
            raise ValueError(f"--num_episodes must be >= 1, got {self.num_episodes}.")
        if self.steps_after_success < 0:
            raise ValueError(f"--steps_after_success must be >= 0, got {self.steps_after_success}.")
        if not 0 <= self.camera_jitter < float("inf"):  # NaN too
            raise ValueError(f"--camera_jitter must be >= 0 metres, got {self.camera_jitter}.")
        unknown = [c for c in self.cameras if c not in CAMERA_NAMES]
        if unknown or not self.cameras:
            raise ValueError(
                f"--cameras={self.cameras} is not valid: choose one or more of {list(CAMERA_NAMES)}."
            )
        check_image_size(self.observation_height, self.observation_width, video=self.use_videos)

    @property
    def dataset_root(self) -> Path:
        """Where the dataset goes: ``--root``, else ``$HF_LEROBOT_HOME/<repo_id>``."""
        from lerobot.utils.constants import HF_LEROBOT_HOME

        return Path(self.root) if self.root is not None else HF_LEROBOT_HOME / self.repo_id


def recorded_by_us(root: Path) -> dict | None:
    """The marker of a dataset this command recorded at ``root`` (its contents), or None."""
    try:
        return json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return None


def check_root(cfg: SimRecordConfig, flag: str = "--root") -> Path:
    """Refuse a dataset folder that cannot be written, before anything touches the disk.

    Args:
        cfg: The recording.
        flag: How the user chose the folder, for the messages.

    Returns:
        The dataset root.

    Raises:
        FileExistsError: The folder exists and either ``--overwrite`` is off or it is not a dataset this
            command recorded (so replacing it could delete someone's files).
    """
    root = cfg.dataset_root
    if not root.exists() and not root.is_symlink():
        if root.parent.exists() and not root.parent.is_dir():
            raise FileExistsError(f"{root.parent} is a file, not a folder: choose another {flag}.")
        return root
    if not cfg.overwrite:
        raise FileExistsError(
            f"{root} already exists. Choose another {flag}, or pass --overwrite=true to replace it."
        )
    if root.is_symlink() or not root.is_dir() or recorded_by_us(root) is None:
        raise FileExistsError(
            f"{root} is not a dataset recorded by lerobot-stamo-sim-record (it has no {MARKER}), so "
            f"--overwrite=true will not replace it: it may hold someone's files. Move or delete it "
            f"yourself, or choose another {flag}."
        )
    return root


def _temporary_root(root: Path) -> Path:
    """A fresh temporary folder name next to ``root``; removes those of killed runs for the same root."""
    pattern = re.compile(rf"^\.{re.escape(root.name)}\.tmp-(?:(\d+)-)?[0-9a-f]{{8}}$")
    if root.parent.is_dir():
        for stale in root.parent.iterdir():
            match = pattern.match(stale.name)
            if match is None or not stale.is_dir() or stale.is_symlink():
                continue
            pid = int(match.group(1) or 0)
            if pid and _process_alive(pid):
                continue  # another recording into the same root is running
            logger.info("Removing %s, left behind by an interrupted recording", stale)
            shutil.rmtree(stale, ignore_errors=True)
    return root.parent / f".{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dataset_features(cfg: SimRecordConfig) -> dict[str, dict]:
    """LeRobotDataset feature spec: cameras, plus joint state and action unless ``video_only``."""
    image_dtype = "video" if cfg.use_videos else "image"
    features: dict[str, dict] = {
        f"{OBS_IMAGES}.{cam}": {
            "dtype": image_dtype,
            "shape": (cfg.observation_height, cfg.observation_width, 3),
            "names": ["height", "width", "channels"],
        }
        for cam in cfg.cameras
    }
    if not cfg.video_only:
        joint_spec = {"dtype": "float32", "shape": (len(MOTOR_FEATURE_NAMES),), "names": MOTOR_FEATURE_NAMES}
        features[OBS_STATE] = dict(joint_spec)
        features[ACTION] = dict(joint_spec)
    return features


def run_expert_episode(env: SO101SimEnv, expert: ScriptedExpert, seed: int, steps_after_success: int):
    """Run one expert episode; return (frames, success). Each frame is (observation, action)."""
    obs, info = env.reset(seed=seed)
    expert.reset()
    frames: list[tuple[dict, np.ndarray]] = []
    success_at: int | None = None
    for t in range(env.task_spec.max_episode_steps):
        action = expert.act()
        frames.append((obs, action))
        obs, _, terminated, _, info = env.step(action)
        if info["is_success"] and success_at is None:
            success_at = t
        if success_at is not None and t - success_at >= steps_after_success:
            break
        if terminated and not info["is_success"]:
            break  # cube left the workspace
    return frames, success_at is not None


def record(cfg: SimRecordConfig) -> Path:
    """Record ``cfg.num_episodes`` episodes and return the dataset root."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = check_root(cfg)
    replaced = recorded_by_us(root) if root.exists() else None
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp_root = _temporary_root(root)
    quiet_video_encoder()

    env = SO101SimEnv(
        task=cfg.task,
        observation_height=cfg.observation_height,
        observation_width=cfg.observation_width,
        cameras=cfg.cameras,
        randomize_lighting=cfg.randomize_lighting,
        randomize_cube_color=cfg.randomize_cube_color,
        camera_jitter=cfg.camera_jitter,
    )
    expert = ScriptedExpert(env)
    task_text = TASKS[cfg.task].description
    dataset = None
    try:
        dataset = LeRobotDataset.create(
            repo_id=cfg.repo_id,
            fps=FPS,
            features=dataset_features(cfg),
            root=tmp_root,
            robot_type=ROBOT_TYPE,
            use_videos=cfg.use_videos,
            video_backend=video_backend(),
        )
        recorded = attempts = successes = 0
        max_attempts = cfg.num_episodes * 3
        bar = tqdm(total=cfg.num_episodes, desc=f"Recording {cfg.task}", unit="episode")
        with quiet_dataset_writer(), bar:
            while recorded < cfg.num_episodes:
                if attempts >= max_attempts:
                    raise RuntimeError(
                        f"The expert succeeded in only {successes}/{attempts} attempts; stopping. "
                        "Pass --keep_failures=true to record failed episodes too."
                    )
                frames, success = run_expert_episode(
                    env, expert, cfg.seed + attempts, cfg.steps_after_success
                )
                attempts += 1
                successes += success
                if not success and not cfg.keep_failures:
                    continue
                for obs, action in frames:
                    frame = {f"{OBS_IMAGES}.{cam}": obs["pixels"][cam] for cam in cfg.cameras}
                    if not cfg.video_only:
                        frame[OBS_STATE] = obs["agent_pos"]
                        frame[ACTION] = action
                    frame["task"] = task_text
                    dataset.add_frame(frame)
                dataset.save_episode()
                recorded += 1
                bar.update(1)
                bar.set_postfix(expert_success=f"{successes}/{attempts}")
        dataset.finalize()
        for empty in sorted((tmp_root / "images").glob("**/"), reverse=True):  # LeRobot's PNG staging
            if not any(empty.iterdir()):
                empty.rmdir()
        marker = {
            "recorded_by": "lerobot-stamo-sim-record",
            "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "episodes": recorded,
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
        }
        (tmp_root / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    except BaseException:
        if dataset is not None:
            try:  # close LeRobot's open writers, or they flush into the folder after it is removed
                dataset.finalize()
            except Exception:
                logger.debug("finalize() of the interrupted dataset failed", exc_info=True)
        shutil.rmtree(tmp_root, ignore_errors=True)
        raise
    finally:
        env.close()

    if replaced is not None:  # --overwrite: the old dataset goes only once the new one is complete
        logger.info(
            "Replacing the dataset recorded at %s on %s (%s episodes of %s)",
            root,
            replaced.get("recorded_at", "?"),
            replaced.get("episodes", "?"),
            replaced.get("config", {}).get("task", "?"),
        )
    replace_folder(tmp_root, root)
    rate = successes / attempts
    print(f"Recorded {recorded} episodes to {root}; expert success rate {successes}/{attempts} ({rate:.0%}).")

    if cfg.push_to_hub:
        from lerobot_stamo.cards import dataset_card_kwargs

        LeRobotDataset(cfg.repo_id, root=root, video_backend=video_backend()).push_to_hub(
            private=cfg.private, **dataset_card_kwargs("sim_record")
        )
    return root
