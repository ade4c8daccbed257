"""Offline latent-motion labelling: a LeRobotDataset in, the same dataset plus StaMo columns out.

For every chosen camera ``observation.images.<cam>`` the labeller encodes each frame once with a frozen
`stamo` policy (``StamoPolicy.encode``: the one place that turns frames into states) and writes a new
LeRobotDataset with the StaMo columns of `lerobot_stamo.columns` (the state s_t of each camera, the latent
motion m_t = s_{t+k} - s_t, and the mask of frames where m_t is defined) and `meta/stamo_labels.json`.

Crash safety: states are written per episode (one safetensors shard, written to a temporary name and
renamed) into a work folder next to the output, ``.<name>.stamo-work/``. A re-run with the same arguments
skips the episodes already encoded, merges the shards into a copy of the source dataset inside the work
folder, computes the stats of the new columns and renames the finished dataset to ``output_dir``. Nothing
half-written is ever visible at ``output_dir``. Under ``accelerate launch`` the episodes are sharded across
processes (episode ``e`` goes to rank ``e % world_size``) and the main process merges.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lerobot.utils.constants import HF_LEROBOT_HOME, OBS_IMAGES
from safetensors.torch import save_file
from tqdm import tqdm

from lerobot_stamo.columns import (
    LABELS_FILE,
    LABELS_FORMAT,
    VALID_KEY,
    camera_name,
    read_json,
    read_labels,
    stamo_columns,
)
from lerobot_stamo.errors import check_dataset
from lerobot_stamo.paths import check_output_path, replace_folder, write_atomically, write_text_atomically
from lerobot_stamo.policies.stamo import checkpoint_identity, load_stamo_config, open_frozen_stamo

from .labelled_dataset import motion_from_states, shard_path, write_labelled_dataset

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------- config
@dataclass
class LabelPolicyArgs:
    # Folder or Hub id of a `stamo` checkpoint (config.json + model.safetensors).
    path: str = ""
    # Hub revision (branch, tag or commit) of the checkpoint.
    revision: str | None = None
    # Device to encode on (default: the checkpoint's `device`, falling back to the CPU if unavailable).
    device: str | None = None


@dataclass
class LabelDatasetArgs:
    # Hub id of the source dataset (also its id when read from --dataset.root).
    repo_id: str = ""
    # Local folder of the source dataset (default: $HF_LEROBOT_HOME/<repo_id>).
    root: str | None = None
    revision: str | None = None
    # Video decoder ("torchcodec" or "pyav"; default: LeRobot's choice).
    video_backend: str | None = None


@dataclass
class LabelConfig:
    """Arguments of `lerobot-stamo-label` (and of `label_dataset`)."""

    policy: LabelPolicyArgs = field(default_factory=LabelPolicyArgs)
    dataset: LabelDatasetArgs = field(default_factory=LabelDatasetArgs)
    # Where the labelled dataset is written (a new folder).
    output_dir: str = ""
    # k in m_t = s_{t+k} - s_t (frames).
    horizon: int = 1
    # Cameras to label, as `front` or `observation.images.front` (default: every camera of the dataset).
    cameras: list[str] | None = None
    # Frames per encoder forward pass (per camera).
    batch_size: int = 32
    # DataLoader workers decoding frames while the encoder runs (0: decode in the main process).
    num_workers: int = 2
    # Id of the new dataset (default: `<source id>_stamo`); required with --push_to_hub=true (the Hub repo).
    repo_id: str | None = None
    push_to_hub: bool = False
    private: bool = False
    # Replace an existing, different labelling at --output_dir (only ever a dataset this command wrote).
    overwrite: bool = False

    def __post_init__(self):
        if self.horizon < 1:
            raise ValueError(f"--horizon must be >= 1 (frames between s_t and s_t+k), got {self.horizon}.")
        if self.batch_size < 1:
            raise ValueError(f"--batch_size must be >= 1, got {self.batch_size}.")
        if self.num_workers < 0:
            raise ValueError(f"--num_workers must be >= 0, got {self.num_workers}.")
        if self.push_to_hub and not self.repo_id:
            raise ValueError(
                "--push_to_hub=true needs --repo_id=<hub user or org>/<name>: the Hub dataset repo to create "
                "(or update) with the labelled dataset."
            )


# --------------------------------------------------------------------------------------------- helpers
def resolve_cameras(meta, cameras: list[str] | None, flag: str = "--cameras") -> list[str]:
    """Maps `--cameras` (short or full names) to the dataset's camera keys and checks their channels.

    Args:
        meta: `LeRobotDatasetMetadata` of the source dataset.
        cameras: Requested cameras, or None for all of them.
        flag: The command's flag that chose the cameras, named in the errors (`--camera` for the probe).

    Returns:
        Full camera keys, in the order requested (or the dataset's order).

    Raises:
        ValueError: Unknown camera (the available ones are listed), no camera at all, or frames that are not
            3-channel RGB.
    """
    available = list(meta.camera_keys)
    if not available:
        raise ValueError(
            f"Dataset {meta.repo_id!r} has no camera feature (features: {list(meta.features)}): "
            "nothing to encode."
        )
    if not cameras:
        keys = available
    else:
        keys = []
        for cam in cameras:
            key = cam if cam in available else f"{OBS_IMAGES}.{cam}"
            if key not in available:
                short = [camera_name(k) for k in available]
                raise ValueError(
                    f"Camera {cam!r} is not in dataset {meta.repo_id!r}. Available cameras: {short}"
                    + (f" (or {available})" if short != list(available) else "")
                    + f". Fix {flag}."
                )
            if key not in keys:
                keys.append(key)
    for key in keys:
        ft = meta.features[key]
        names = list(ft.get("names") or [])
        shape = list(ft["shape"])
        channels = shape[names.index("channels")] if "channels" in names else shape[-1]
        if channels != 3:
            raise ValueError(
                f"Camera {key!r} has {channels} channel(s) (shape {shape}, names {names}); the stamo encoder "
                f"expects 3-channel RGB frames. Choose another camera with {flag} (depth or grayscale streams "
                "cannot be encoded)."
            )
    return keys


def check_horizon(meta, horizon: int) -> None:
    """Raises if no episode is longer than `horizon` frames (no latent motion would be defined)."""
    lengths = [int(n) for n in meta.episodes["length"]]
    if max(lengths) <= horizon:
        raise ValueError(
            f"--horizon={horizon} is not shorter than any episode of {meta.repo_id!r} (longest episode: "
            f"{max(lengths)} frames): no frame has a frame k steps later. Use --horizon < {max(lengths)}."
        )
    short = sum(n <= horizon for n in lengths)
    if short:
        logger.warning(
            f"{short} of {len(lengths)} episode(s) are not longer than --horizon={horizon}: "
            "all their motion labels are marked invalid."
        )


def work_dir_for(output_dir: Path) -> Path:
    """The work folder of a labelling run: `.<name>.stamo-work` next to the output folder."""
    return output_dir.parent / f".{output_dir.name}.stamo-work"


# --------------------------------------------------------------------------------------------- frames
class EpisodeChunks(torch.utils.data.Dataset):
    """Map-style dataset whose items are runs of consecutive frames of one episode, decoded at once.

    Decoding a run with one call (one seek, then sequential decoding) is much faster than frame by frame,
    and DataLoader workers decode the next runs while the encoder runs on the current one.

    Args:
        dataset: The source `LeRobotDataset` (all episodes).
        cameras: Camera keys to decode.
        chunks: `(episode_index, start, stop)` frame ranges inside episodes.
    """

    def __init__(
        self, dataset, cameras: list[str], chunks: list[tuple[int, int, int]], video_backend: str | None
    ):
        from lerobot.utils.import_utils import get_safe_default_video_backend

        self.dataset = dataset
        self.video_backend = video_backend or get_safe_default_video_backend()
        self.cameras = cameras
        self.chunks = chunks

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, i: int) -> dict[str, Any]:
        from lerobot.datasets.video_utils import decode_video_frames

        ep, start, stop = self.chunks[i]
        meta = self.dataset.meta
        first = int(meta.episodes[ep]["dataset_from_index"])
        rows = self.dataset.hf_dataset[first + start : first + stop]
        out: dict[str, Any] = {"episode_index": ep, "start": start, "stop": stop}
        for key in self.cameras:
            if key in meta.video_keys:
                offset = float(meta.episodes[ep][f"videos/{key}/from_timestamp"])
                timestamps = [offset + float(t) for t in rows["timestamp"]]
                frames = decode_video_frames(
                    self.dataset.root / meta.get_video_file_path(ep, key),
                    timestamps,
                    self.dataset.tolerance_s,
                    self.video_backend,
                    return_uint8=True,
                )  # (n, 3, H, W) uint8
            else:
                frames = torch.stack(list(rows[key]))  # (n, 3, H, W) float in [0, 1]
            out[key] = frames
        return out


def check_frames(
    dataset, cameras: list[str], video_backend: str | None = None, flag: str = "--cameras"
) -> None:
    """Decodes the first frame of every camera and checks its value range before any work.

    The encoder takes uint8 frames (0..255) or float frames in [0, 1] (what LeRobot's video decoding and
    image columns give). Float frames outside [0, 1] (e.g. 0..255 stored as float) or with NaN would be
    encoded without any error into meaningless states.

    Raises:
        ValueError: Naming the camera, the values found and the fix.
    """
    first = EpisodeChunks(dataset, cameras, [(0, 0, 1)], video_backend)[0]
    for key in cameras:
        frame = first[key]  # (1, 3, H, W)
        if not frame.is_floating_point():
            continue
        if torch.isnan(frame).any():
            raise ValueError(
                f"Camera {key!r} of dataset {dataset.meta.repo_id!r}: the first frame (episode 0, frame 0) "
                f"holds NaN values. Fix the recording (or choose another camera with {flag})."
            )
        lo, hi = float(frame.min()), float(frame.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"Camera {key!r} of dataset {dataset.meta.repo_id!r}: float frames must be in [0, 1], the first "
                f"frame (episode 0, frame 0) has values in [{lo:.4g}, {hi:.4g}]. Store images as uint8 "
                "(0..255) or as floats divided by 255 (re-record or convert the dataset), or choose another "
                f"camera with {flag}."
            )


def plan_chunks(meta, episodes: list[int], chunk: int) -> list[tuple[int, int, int]]:
    """Splits episodes into `(episode, start, stop)` runs of at most `chunk` frames (fixed boundaries)."""
    out = []
    for ep in episodes:
        length = int(meta.episodes[ep]["length"])
        out += [(ep, a, min(a + chunk, length)) for a in range(0, length, chunk)]
    return out


# --------------------------------------------------------------------------------------------- encoding
def encode_episodes(
    policy,
    dataset,
    cameras: list[str],
    episodes: list[int],
    work: Path,
    batch_size: int = 32,
    num_workers: int = 2,
    progress: bool = True,
    video_backend: str | None = None,
) -> int:
    """Encodes every frame of `episodes` and writes one state shard per episode (atomically).

    Args:
        policy: A `StamoPolicy` in eval mode.
        dataset: Source `LeRobotDataset`.
        cameras: Camera keys to encode.
        episodes: Episode indices to encode (those with a shard already are skipped).
        work: Work folder (`states/episode_XXXXXX.safetensors` are written inside).
        batch_size: Frames per chunk (and per encoder call per camera).
        num_workers: DataLoader workers decoding frames.
        progress: Show a tqdm progress bar with frames/s.
        video_backend: Video decoder (default: LeRobot's safe default).

    Returns:
        The number of frames encoded by this call.
    """
    (work / "states").mkdir(parents=True, exist_ok=True)
    todo = [ep for ep in episodes if not shard_path(work, ep).exists()]
    if len(todo) < len(episodes):
        logger.info(f"Resuming: {len(episodes) - len(todo)} of {len(episodes)} episode(s) already encoded.")
    if not todo:
        return 0
    chunks = plan_chunks(dataset.meta, todo, batch_size)
    total = sum(b - a for _, a, b in chunks)
    loader = torch.utils.data.DataLoader(
        EpisodeChunks(dataset, cameras, chunks, video_backend),
        batch_size=None,
        shuffle=False,
        num_workers=num_workers,
        prefetch_factor=4 if num_workers > 0 else None,
        persistent_workers=False,
    )
    lengths = {ep: int(dataset.meta.episodes[ep]["length"]) for ep in todo}
    buffers: dict[int, dict[str, list[torch.Tensor]]] = {}
    bar = tqdm(total=total, unit="frame", desc="stamo encode", disable=not progress, smoothing=0.1)
    for item in loader:
        ep, stop = item["episode_index"], item["stop"]
        frames = [item[key] for key in cameras]
        n = frames[0].shape[0]
        # One encoder call for all cameras: (n_cams * n, 3, H, W) -> (n_cams * n, N, D).
        same = all(f.shape == frames[0].shape and f.dtype == frames[0].dtype for f in frames)
        if same:
            states = policy.encode(torch.cat(frames)).cpu().split(n)
        else:
            states = [policy.encode(f).cpu() for f in frames]
        buf = buffers.setdefault(ep, {key: [] for key in cameras})
        for key, s in zip(cameras, states, strict=True):
            buf[key].append(s)
        bar.update(n)
        if stop == lengths[ep]:
            tensors = {key: torch.cat(parts).contiguous() for key, parts in buffers.pop(ep).items()}
            write_atomically(
                shard_path(work, ep),
                functools.partial(save_file, tensors, metadata={"episode_index": str(ep)}),
            )
    bar.close()
    return total


# --------------------------------------------------------------------------------------------- main
def _dist_state():
    """(rank, world_size, wait, device) from accelerate when launched by it, else a single process.

    Without a GPU, `accelerate launch --multi_gpu` starts the processes but `PartialState()` would see no
    distributed setup: `cpu=True` is what selects the gloo backend (`DistributedType.MULTI_CPU`).
    """
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1:
        from accelerate import PartialState

        state = PartialState(cpu=not torch.cuda.is_available())
        if state.num_processes != launched:
            raise RuntimeError(
                f"WORLD_SIZE={launched} but accelerate set up {state.num_processes} process(es) "
                f"({state.distributed_type}): every process would label everything. Launch with "
                "`accelerate launch --multi_gpu --num_processes N` (also on CPU-only machines)."
            )
        return state.process_index, state.num_processes, state.wait_for_everyone, str(state.device)
    return 0, 1, lambda: None, None


def labels_fingerprint(
    cfg: LabelConfig, meta, cameras: list[str], identity: dict[str, Any], policy_cfg
) -> dict:
    """What a labelling depends on; two runs with the same fingerprint produce the same dataset."""
    return {
        "format": LABELS_FORMAT,
        "created_by": "lerobot-stamo-label",
        **identity,
        "source_repo_id": meta.repo_id,
        "source_total_frames": int(meta.total_frames),
        "source_total_episodes": int(meta.total_episodes),
        "horizon": cfg.horizon,
        "cameras": cameras,
        "num_tokens": policy_cfg.num_tokens,
        "token_dim": policy_cfg.token_dim,
        "image_size": policy_cfg.image_size,
        "batch_size": cfg.batch_size,
        "columns": {**stamo_columns(cameras), "valid": VALID_KEY},
    }


def check_output_is_ours(output_dir: Path, work: Path) -> None:
    """Refuses to write over anything but an empty folder or a dataset `lerobot-stamo-label` wrote.

    `--overwrite=true` replaces only a folder holding `meta/stamo_labels.json` written by this command; the
    work folder `.<name>.stamo-work` is reused or removed only when it holds this command's
    `fingerprint.json` (or nothing).

    Raises:
        FileExistsError: Naming the folder, what it holds and the fix.
    """
    if output_dir.exists() and not output_dir.is_dir():
        raise FileExistsError(
            f"--output_dir={output_dir} is a file: choose a folder path for the labelled dataset."
        )
    if output_dir.is_dir() and any(output_dir.iterdir()):
        labels = read_labels(output_dir)
        if labels is None or labels.get("created_by") != "lerobot-stamo-label":
            raise FileExistsError(
                f"--output_dir={output_dir} holds files that are not a dataset written by lerobot-stamo-label (no "
                f"{LABELS_FILE}); --overwrite only ever replaces such a dataset. Choose a new or empty folder."
            )
    if work.exists() and any(work.iterdir()):
        info = read_json(work / "fingerprint.json")
        if not work.is_dir() or info is None or info.get("created_by") != "lerobot-stamo-label":
            raise FileExistsError(
                f"{work} (the work folder of --output_dir={output_dir}) holds files lerobot-stamo-label did not "
                "write. Move them away or choose another --output_dir."
            )


def label_dataset(cfg: LabelConfig) -> Path:
    """Labels a dataset with StaMo states and latent motion (see the module docstring).

    All checks (cameras, horizon, checkpoint type, output folder) run before any frame is decoded.

    Args:
        cfg: The labelling arguments.

    Returns:
        The output folder (written only by the main process).

    Raises:
        ValueError / TypeError / FileExistsError: For bad input, each naming the key and the fix.
    """
    from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata

    if not cfg.dataset.repo_id:
        raise ValueError("--dataset.repo_id is required (with --dataset.root for a local dataset).")
    if not cfg.output_dir:
        raise ValueError("--output_dir is required: the folder of the new, labelled dataset.")
    source_root = cfg.dataset.root or HF_LEROBOT_HOME / cfg.dataset.repo_id
    output_dir = check_output_path(
        cfg.output_dir, {"--dataset.root": source_root, "--policy.path": cfg.policy.path}
    )
    work = work_dir_for(output_dir)
    check_output_is_ours(output_dir, work)

    # 1. Checks, before any work.
    check_dataset(cfg.dataset.repo_id, cfg.dataset.root)
    meta = LeRobotDatasetMetadata(cfg.dataset.repo_id, root=cfg.dataset.root, revision=cfg.dataset.revision)
    cameras = resolve_cameras(meta, cfg.cameras)
    check_horizon(meta, cfg.horizon)
    policy_cfg = load_stamo_config(cfg.policy.path, cfg.policy.revision)
    dataset = LeRobotDataset(
        cfg.dataset.repo_id,
        root=cfg.dataset.root,
        revision=cfg.dataset.revision,
        video_backend=cfg.dataset.video_backend,
    )
    check_frames(dataset, cameras, cfg.dataset.video_backend)
    identity = checkpoint_identity(cfg.policy.path, cfg.policy.revision)
    fingerprint = labels_fingerprint(cfg, meta, cameras, identity, policy_cfg)
    rank, world, wait, rank_device = _dist_state()

    existing = read_labels(output_dir) if output_dir.exists() else None
    if output_dir.exists() and existing == fingerprint:
        logger.info(f"{output_dir} already holds this labelling: nothing to do.")
        if rank == 0 and work.exists():
            shutil.rmtree(work, ignore_errors=True)
        if rank == 0 and cfg.push_to_hub:
            push_labelled(output_dir, cfg.repo_id, cfg.private)
        return output_dir
    if existing is not None and not cfg.overwrite:
        raise FileExistsError(
            f"--output_dir={output_dir} already holds a different stamo labelling (source "
            f"{existing.get('source_repo_id')!r}, horizon {existing.get('horizon')}, cameras "
            f"{existing.get('cameras')}). Choose another folder or pass --overwrite=true to replace it."
        )
    if existing is not None and rank == 0:
        logger.warning(
            f"--overwrite=true: replacing the stamo-labelled dataset at {output_dir} (source "
            f"{existing.get('source_repo_id')!r}, checkpoint {existing.get('policy_path')!r}, horizon "
            f"{existing.get('horizon')}, cameras {existing.get('cameras')}) once the new labelling is complete."
        )

    # 2. Work folder: keep shards of an interrupted run with the same fingerprint, else start afresh.
    if rank == 0:
        previous = None
        if (work / "fingerprint.json").is_file():
            previous = json.loads((work / "fingerprint.json").read_text())
        if previous != fingerprint and work.exists():
            logger.info(f"Discarding the work folder {work} of a different labelling run.")
            shutil.rmtree(work)
        work.mkdir(parents=True, exist_ok=True)
        write_text_atomically(work / "fingerprint.json", json.dumps(fingerprint, indent=2, sort_keys=True))
    wait()

    # 3. Encode this rank's episodes.
    if cfg.policy.device is not None:
        policy_cfg.device = cfg.policy.device
    elif rank_device is not None and not rank_device.startswith("cpu"):  # one accelerator per process
        policy_cfg.device = rank_device
    policy = open_frozen_stamo(cfg.policy.path, cfg.policy.revision, config=policy_cfg)
    episodes = [ep for ep in range(meta.total_episodes) if ep % world == rank]
    start = time.perf_counter()
    n = encode_episodes(
        policy,
        dataset,
        cameras,
        episodes,
        work,
        cfg.batch_size,
        cfg.num_workers,
        progress=rank == 0,
        video_backend=cfg.dataset.video_backend,
    )
    elapsed = time.perf_counter() - start
    if n:
        logger.info(
            f"rank {rank}/{world}: encoded {n} frames x {len(cameras)} camera(s) in {elapsed:.1f}s "
            f"({n / max(elapsed, 1e-9):.1f} frames/s)"
        )
    wait()

    # 4. Merge on the main process, then make the result visible with one rename.
    if rank == 0:
        repo_id = cfg.repo_id or f"{meta.repo_id}_stamo"
        finished = write_labelled_dataset(
            dataset,
            cameras,
            cfg.horizon,
            work,
            repo_id,
            fingerprint,
            policy_cfg.num_tokens,
            policy_cfg.token_dim,
        )
        replace_folder(finished, output_dir)
        shutil.rmtree(work, ignore_errors=True)
        logger.info(
            f"Labelled dataset written to {output_dir} ({meta.total_frames} frames, cameras "
            f"{[camera_name(c) for c in cameras]}, horizon {cfg.horizon})."
        )
        if cfg.push_to_hub:
            push_labelled(output_dir, repo_id, cfg.private)
    wait()
    if world > 1 and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()  # a live gloo group can keep the processes from exiting
    return output_dir


def push_labelled(output_dir: Path, repo_id: str, private: bool) -> None:
    """Uploads the labelled dataset at `output_dir` to the Hub dataset repo `repo_id` (LeRobot's push)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    logger.info(f"Pushing {output_dir} to the Hub as dataset {repo_id!r} (private={private}).")
    from lerobot_stamo.cards import dataset_card_kwargs

    LeRobotDataset(repo_id, root=output_dir).push_to_hub(private=private, **dataset_card_kwargs("label"))


__all__ = [
    "LabelConfig",
    "LabelDatasetArgs",
    "LabelPolicyArgs",
    "label_dataset",
    "motion_from_states",
]
