"""Co-training datasets: a few robot episodes plus many StaMo-labelled videos, as one LeRobotDataset v3.

LeRobot 0.6.1 trains on one dataset, and its merge pools statistics (placeholder actions on video frames
would corrupt the `action` / `observation.state` normalisation). `build_cotrain_dataset` therefore:

1. checks that both sources were labelled by `lerobot-stamo-label` with the same `stamo` checkpoint and
   horizon, and that cameras, image sizes, storage and fps line up (nothing is written before that);
2. keeps the chosen episodes of each source (all by default, or N per task, or a list), the robot ones
   `--real_repeat` times over (LeRobot's trainer samples frames uniformly and has no weighted sampler);
3. writes them with LeRobot's own dataset writer (`LeRobotDataset.create` / `add_frame` / `save_episode`):
   robot frames with their actions, video frames with zero `action` / `observation.state` placeholders, and
   the per-frame mask `observation.action_valid` (1.0 on robot frames, 0.0 on video frames) on both
   (LeRobot's `merge_datasets` cannot copy the StaMo columns' 2-D arrays with pandas 2.3);
4. replaces the `action` and `observation.state` statistics with those of the robot frames only;
5. records the sources, the checkpoint and the ratio in `meta/stamo_cotrain.json` (and keeps
   `meta/stamo_labels.json`, which `stamo_vla` reads), and moves the finished dataset to `--output_dir`
   with one rename. The sources are only read.

`lerobot-train --policy.type=stamo_vla` on the result trains the robot-action head where the mask is 1
(masked L1) and the latent-action head on every frame (`--policy.lambda_latent`).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from lerobot.utils.constants import DEFAULT_FEATURES
from tqdm import tqdm

from lerobot_stamo.columns import ACTION_VALID_KEY, LABELS_FILE, MOTION_PREFIX, VALID_KEY, load_labels
from lerobot_stamo.paths import replace_folder

from ..console import quiet_dataset_writer

logger = logging.getLogger(__name__)

COTRAIN_FILE = "meta/stamo_cotrain.json"
_ROBOT_KEYS = ("action", "observation.state")


@dataclass
class CotrainConfig:
    """Arguments of `lerobot-stamo-cotrain` (and of `build_cotrain_dataset`)."""

    # Labelled robot dataset (`lerobot-stamo-label` output): episodes with real actions.
    robot_root: str = ""
    # Labelled video dataset (same stamo checkpoint and horizon): episodes without actions.
    video_root: str = ""
    # Where the co-training dataset is written (a new folder).
    output_dir: str = ""
    # Id of the new dataset (default: `local/<output folder name>`); the Hub repo with --push_to_hub=true.
    repo_id: str | None = None
    # Robot / video episodes kept per task (default: all). The paper's setup is 10 : 40 per task.
    real_per_task: int | None = None
    video_per_task: int | None = None
    # Or explicit episode indices of each source (exclusive with the per-task counts).
    real_episodes: list[int] | None = None
    video_episodes: list[int] | None = None
    # Each robot episode is written this many times. `lerobot-train` samples frames uniformly, so at 10 : 40
    # one frame in 5 carries a real action; --real_repeat=4 makes it one in 2 (the video frames are unchanged).
    real_repeat: int = 1
    push_to_hub: bool = False
    private: bool = False
    # Replace an existing co-training dataset written by this command at --output_dir.
    overwrite: bool = False

    def __post_init__(self):
        for name in ("real_per_task", "video_per_task"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name} must be >= 1 episode, got {value} (leave it unset to keep all).")
        if self.real_repeat < 1:
            raise ValueError(
                f"--real_repeat must be >= 1 (1: each robot episode once), got {self.real_repeat}."
            )
        for kind in ("real", "video"):
            if (
                getattr(self, f"{kind}_per_task") is not None
                and getattr(self, f"{kind}_episodes") is not None
            ):
                raise ValueError(
                    f"--{kind}_per_task and --{kind}_episodes both choose {kind} episodes: give only one."
                )
            chosen = getattr(self, f"{kind}_episodes")
            if chosen is not None and (not chosen or len(set(chosen)) != len(chosen)):
                raise ValueError(f"--{kind}_episodes must be a non-empty list without repeats, got {chosen}.")
        if self.push_to_hub and not self.repo_id:
            raise ValueError("--push_to_hub=true needs --repo_id=<hub user or org>/<name>.")


def _resolve(path: str, flag: str) -> Path:
    if not path:
        raise ValueError(f"{flag} is required.")
    return Path(path).expanduser().resolve()


def _check_paths(robot: Path, video: Path, output: Path) -> None:
    """The output is neither a source, nor inside one, nor contains one."""
    for flag, src in (("--robot_root", robot), ("--video_root", video)):
        if not (src / "meta" / "info.json").is_file():
            raise FileNotFoundError(
                f"{flag}={src} is not a LeRobotDataset (no meta/info.json). Check the path."
            )
        if output == src or src in output.parents or output in src.parents:
            raise ValueError(
                f"--output_dir={output} overlaps the source dataset {flag}={src}: choose a separate folder."
            )
    if robot == video:
        raise ValueError(
            "--robot_root and --video_root are the same dataset: give the video dataset separately."
        )


def _check_output(output: Path, overwrite: bool) -> None:
    if not output.exists():
        return
    if output.is_dir() and not any(output.iterdir()):
        return
    if not overwrite:
        raise FileExistsError(
            f"--output_dir={output} already exists. Choose another folder, or pass --overwrite=true to replace a "
            "co-training dataset written by this command."
        )
    if not (output / COTRAIN_FILE).is_file():
        raise FileExistsError(
            f"--output_dir={output} is not a co-training dataset written by `lerobot-stamo-cotrain` (no "
            f"{COTRAIN_FILE}); --overwrite=true replaces only those. Choose another folder."
        )


def _labels(root: Path, flag: str) -> dict[str, Any]:
    try:
        return load_labels(root)
    except FileNotFoundError:
        raise ValueError(
            f"{flag}={root} has no StaMo labels ({LABELS_FILE}). Label it first: `lerobot-stamo-label "
            f"--policy.path=<stamo checkpoint> --dataset.root={root} --output_dir=<labelled folder>` and pass "
            "the labelled folder."
        ) from None


def _check_compatible(robot_meta, video_meta, robot_labels: dict, video_labels: dict) -> None:
    """Refuses sources whose labels, cameras, frames or schema do not line up."""
    if robot_labels.get("weights_sha256") != video_labels.get("weights_sha256"):
        raise ValueError(
            f"The datasets were labelled by different stamo checkpoints (robot: {robot_labels.get('policy_path')}, "
            f"video: {video_labels.get('policy_path')}): their latent motions are not comparable. Label both with "
            "the same `--policy.path`."
        )
    if robot_labels["horizon"] != video_labels["horizon"]:
        raise ValueError(
            f"The robot dataset was labelled with horizon {robot_labels['horizon']} and the video dataset with "
            f"{video_labels['horizon']}. Label both with the same `lerobot-stamo-label --horizon`."
        )
    if sorted(robot_labels["cameras"]) != sorted(video_labels["cameras"]):
        raise ValueError(
            f"The labelled cameras differ: robot {robot_labels['cameras']}, video {video_labels['cameras']}. Use "
            "the same camera names (LeRobot's `--rename_map`, or record/label them alike)."
        )
    missing = [k for k in _ROBOT_KEYS if k not in robot_meta.features]
    if missing:
        raise ValueError(
            f"--robot_root has no {missing}: the robot dataset must carry real actions and joint state (pass "
            "a recorded robot dataset, and the action-free one as --video_root)."
        )
    if robot_meta.fps != video_meta.fps:
        raise ValueError(
            f"The robot dataset runs at {robot_meta.fps} fps and the video dataset at {video_meta.fps} fps; a "
            "latent motion over k frames must mean the same time. Record (or resample) the video at the robot's fps."
        )
    robot_cams, video_cams = set(robot_meta.camera_keys), set(video_meta.camera_keys)
    if robot_cams != video_cams:
        raise ValueError(
            f"The cameras differ: robot {sorted(robot_cams)}, video {sorted(video_cams)}. The policy sees the same "
            "cameras in both; rename or drop cameras so they match."
        )
    for key in sorted(robot_cams):
        r, v = robot_meta.features[key], video_meta.features[key]
        if tuple(r["shape"]) != tuple(v["shape"]):
            raise ValueError(
                f"Camera {key!r} is {tuple(r['shape'])} in the robot dataset but {tuple(v['shape'])} in the video "
                "dataset. Record both at the same resolution."
            )
        if r["dtype"] != v["dtype"]:
            raise ValueError(
                f"Camera {key!r} is stored as {r['dtype']} in the robot dataset but as {v['dtype']} in the video "
                "dataset. Record both with the same `--use_videos` setting."
            )
    robot_only = set(robot_meta.features) - set(video_meta.features) - set(_ROBOT_KEYS)
    video_only = set(video_meta.features) - set(robot_meta.features)
    if robot_only or video_only:
        raise ValueError(
            f"The datasets' columns differ beyond action/state: only in the robot dataset {sorted(robot_only)}, "
            f"only in the video dataset {sorted(video_only)}. Remove the extra columns "
            "(`lerobot-edit-dataset --operation.type=remove_feature`)."
        )


def _choose(meta, per_task: int | None, chosen: list[int] | None, flag: str) -> list[int]:
    """Episode indices kept from one source: a list, the first `per_task` of every task, or all."""
    total = meta.total_episodes
    if chosen is not None:
        bad = [e for e in chosen if not 0 <= e < total]
        if bad:
            raise ValueError(
                f"--{flag}_episodes {bad} do not exist: the dataset has episodes 0..{total - 1}."
            )
        return sorted(chosen)
    if per_task is None:
        return list(range(total))
    kept: dict[str, list[int]] = {}
    for ep in range(total):
        task = meta.episodes[ep]["tasks"][0]
        kept.setdefault(task, [])
        if len(kept[task]) < per_task:
            kept[task].append(ep)
    short = {t: len(e) for t, e in kept.items() if len(e) < per_task}
    if short:
        logger.warning(f"--{flag}_per_task={per_task}: some tasks have fewer episodes, all kept: {short}")
    return sorted(e for eps in kept.values() for e in eps)


def _copy_episodes(
    source, dataset, features: dict[str, dict], real: bool, repeat: int = 1
) -> dict[str, list[np.ndarray]]:
    """Appends every episode of `source` to `dataset` through LeRobot's writer, each `repeat` times over.

    Robot frames keep their action and state; video frames get zero placeholders; the mask is 1 / 0.
    An episode is decoded once and held in memory while its copies are written.
    Returns the values written of the StaMo columns (and their validity) and, for robot frames, of the
    action and the state.
    """
    cameras = set(source.meta.camera_keys)
    mask = np.array([1.0 if real else 0.0], np.float32)
    kept = [
        key
        for key, spec in features.items()
        if key not in cameras
        and (len(spec["shape"]) > 1 or key == VALID_KEY or (real and key in _ROBOT_KEYS))
    ]
    written: dict[str, list[np.ndarray]] = {key: [] for key in kept}
    episode: list[dict] = []

    def flush():
        for _ in range(repeat):
            for frame in episode:
                dataset.add_frame(dict(frame))  # the writer pops "task" from the dict it is given
                for key in kept:
                    written[key].append(frame[key])
            dataset.save_episode()
        episode.clear()

    current = None
    for i in tqdm(range(len(source)), desc=f"Copying {'robot' if real else 'video'} frames", leave=False):
        row = source[i]
        index = int(row["episode_index"])
        if current is not None and index != current:
            flush()
        current = index
        frame = {"task": row["task"], ACTION_VALID_KEY: mask}
        for key, spec in features.items():
            if key == ACTION_VALID_KEY:
                continue
            if key in cameras:  # (C, H, W) float in [0, 1] -> (H, W, C) uint8, as recorded
                frame[key] = (row[key].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            elif key in row and (real or key not in _ROBOT_KEYS):
                frame[key] = row[key].numpy().astype(spec["dtype"]).reshape(spec["shape"])
            else:
                frame[key] = np.zeros(spec["shape"], dtype=spec["dtype"])
        episode.append(frame)
    if episode:
        flush()
    return written


def _stats(values: dict[str, list[np.ndarray]]) -> dict[str, dict]:
    """Per-dimension statistics of the columns written, as `lerobot-stamo-label` computes them.

    Action and state: the robot frames only. StaMo columns: flattened to (frames, tokens * dim); motion over
    the frames where it is defined.
    """
    from lerobot.datasets.compute_stats import get_feature_stats

    valid = np.stack(values.pop(VALID_KEY)).reshape(-1).astype(bool)
    stats = {}
    for key, column in values.items():
        x = np.stack(column).astype(np.float64)
        x = x.reshape(len(x), -1)
        stats[key] = get_feature_stats(
            x[valid] if key.startswith(MOTION_PREFIX) else x, axis=0, keepdims=False
        )
    return stats


def build_cotrain_dataset(cfg: CotrainConfig) -> Path:
    """Builds the co-training dataset (see the module docstring).

    Returns:
        The output folder.

    Raises:
        ValueError / FileNotFoundError / FileExistsError: For sources or arguments that do not fit, each
            naming the flag and the fix. Nothing is written before every check has passed.
    """
    from lerobot.datasets.io_utils import write_stats
    from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata

    robot_root = _resolve(cfg.robot_root, "--robot_root")
    video_root = _resolve(cfg.video_root, "--video_root")
    output = _resolve(cfg.output_dir, "--output_dir")
    _check_paths(robot_root, video_root, output)
    robot_labels = _labels(robot_root, "--robot_root")
    video_labels = _labels(video_root, "--video_root")
    robot_meta = LeRobotDatasetMetadata(f"local/{robot_root.name}", root=robot_root)
    video_meta = LeRobotDatasetMetadata(f"local/{video_root.name}", root=video_root)
    _check_compatible(robot_meta, video_meta, robot_labels, video_labels)
    real_eps = _choose(robot_meta, cfg.real_per_task, cfg.real_episodes, "real")
    video_eps = _choose(video_meta, cfg.video_per_task, cfg.video_episodes, "video")
    _check_output(output, cfg.overwrite)
    repo_id = cfg.repo_id or f"local/{output.name}"

    # Work next to the output (same file system: the final rename is atomic); a re-run clears a leftover.
    work = output.parent / f".{output.name}.cotrain-tmp"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    try:
        features = {k: dict(v) for k, v in robot_meta.features.items() if k not in DEFAULT_FEATURES}
        features[ACTION_VALID_KEY] = {"dtype": "float32", "shape": [1], "names": None}
        dataset = LeRobotDataset.create(
            repo_id,
            fps=robot_meta.fps,
            root=work / "dataset",
            robot_type=robot_meta.robot_type,
            features=features,
            use_videos=bool(robot_meta.video_keys),
        )
        robot = LeRobotDataset(robot_meta.repo_id, root=robot_root, episodes=real_eps, video_backend="pyav")
        video = LeRobotDataset(video_meta.repo_id, root=video_root, episodes=video_eps, video_backend="pyav")
        with quiet_dataset_writer():
            values: dict[str, list[np.ndarray]] = {}
            for source, real, repeat in [(robot, True, cfg.real_repeat), (video, False, 1)]:
                for key, column in _copy_episodes(source, dataset, features, real, repeat).items():
                    values.setdefault(key, []).extend(column)
        dataset.finalize()
        frames = {"robot": len(robot) * cfg.real_repeat, "video": len(video)}
        share = frames["robot"] / (frames["robot"] + frames["video"])
        # LeRobot pooled the placeholders into the action/state stats, and reduces the StaMo columns'
        # (tokens, dim) arrays to (dim,): replace them with per-dimension stats, action/state from robot frames.
        write_stats({**dataset.meta.stats, **_stats(values)}, dataset.root)
        labels = dict(robot_labels)
        labels["source_repo_id"] = repo_id
        (dataset.root / LABELS_FILE).write_text(json.dumps(labels, indent=2, sort_keys=True))
        record = {
            "created_by": "lerobot-stamo-cotrain",
            "format": 1,
            "config": asdict(cfg),
            "robot": {
                "root": str(robot_root),
                "episodes": real_eps,
                "repeat": cfg.real_repeat,
                "frames": frames["robot"],
            },
            "video": {
                "root": str(video_root),
                "episodes": video_eps,
                "frames": frames["video"],
                "robot_type": video_meta.robot_type,
            },
            "ratio_real_to_video_episodes": f"{len(real_eps)}:{len(video_eps)}",
            "real_frame_share": share,
            "stamo_checkpoint": {
                "policy_path": robot_labels.get("policy_path"),
                "weights_sha256": robot_labels.get("weights_sha256"),
                "horizon": robot_labels["horizon"],
            },
            "mask": ACTION_VALID_KEY,
            "stats_from_real_frames": list(_ROBOT_KEYS),
        }
        (dataset.root / COTRAIN_FILE).write_text(json.dumps(record, indent=2))

        if output.exists():
            logger.info(f"Replacing the co-training dataset at {output}.")
        replace_folder(dataset.root, output)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    times = f" written {cfg.real_repeat} times" if cfg.real_repeat > 1 else ""
    logger.info(
        f"Co-training dataset written to {output}: {len(real_eps)} robot episodes{times} ({frames['robot']} frames "
        f"with actions, {share:.0%} of the frames) + {len(video_eps)} video episodes ({frames['video']} "
        "frames, latent motion only)."
    )
    if cfg.push_to_hub:
        logger.info(f"Pushing {output} to the Hub as dataset {repo_id!r} (private={cfg.private}).")
        from lerobot_stamo.cards import dataset_card_kwargs

        LeRobotDataset(repo_id, root=output).push_to_hub(
            private=cfg.private, **dataset_card_kwargs("cotrain")
        )
    return output


__all__ = ["ACTION_VALID_KEY", "COTRAIN_FILE", "CotrainConfig", "build_cotrain_dataset"]
