"""Offline latent-motion labelling: a LeRobotDataset in, the same dataset plus StaMo columns out.

For every chosen camera ``observation.images.<cam>`` the labeller encodes each frame once with a frozen
`stamo` policy (``StamoPolicy.encode``: the one place that turns frames into states) and writes a new
LeRobotDataset with three more columns:

- ``observation.stamo_state.<cam>``: the state s_t, float32 (num_tokens, token_dim);
- ``observation.stamo_motion.<cam>``: the latent motion m_t = s_{t+k} - s_t (zeros where undefined);
- ``observation.stamo_motion_valid``: bool, false for the last k frames of each episode.

Names start with ``observation.`` because LeRobot's batch-to-transition conversion drops other columns.
``<cam>`` is ``column_suffix(camera)``: the camera's short name (``front``) unless it holds a substring
LeRobot treats specially (``image``...), which is rewritten (``observation.images.wrist_image`` ->
``wrist_img--<hash>``). Every consumer names the columns with ``state_key`` / ``motion_key``, and
``meta/stamo_labels.json`` records the camera -> column mapping.

Crash safety: states are written per episode (one safetensors shard, written to a temporary name and
renamed) into a work folder next to the output, ``.<name>.stamo-work/``. A re-run with the same arguments
skips the episodes already encoded, merges the shards into a copy of the source dataset inside the work
folder, computes the stats of the new columns and renames the finished dataset to ``output_dir``. Nothing
half-written is ever visible at ``output_dir``. Under ``accelerate launch`` the episodes are sharded across
processes (episode ``e`` goes to rank ``e % world_size``) and the main process merges.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lerobot.utils.constants import HF_LEROBOT_HOME, OBS_IMAGES, OBS_STR
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from lerobot_stamo.errors import check_checkpoint, check_dataset
from lerobot_stamo.paths import check_output_path

logger = logging.getLogger(__name__)

STATE_PREFIX = f"{OBS_STR}.stamo_state"
MOTION_PREFIX = f"{OBS_STR}.stamo_motion"
VALID_KEY = f"{OBS_STR}.stamo_motion_valid"
LABELS_FILE = "meta/stamo_labels.json"
LABELS_FORMAT = 1
# Rows per parquet batch (row group) of the streaming merge.
MERGE_ROWS = 1024


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
def camera_name(key: str) -> str:
    """`observation.images.front` -> `front` (the short name users pass to `--cameras`)."""
    prefix = f"{OBS_IMAGES}."
    return key[len(prefix) :] if key.startswith(prefix) else key


# Substrings that LeRobot 0.6.1 tests feature keys for: a key *containing* "image" is validated as an image
# by `compute_stats` and converted as one by `hil_processor`/`policies.utils`; "visual"/"pixels" select
# image normalisation in `migrate_policy_normalization`; "_is_pad" marks padding flags in the batch
# converter; ".images." marks images in `pipeline_features`. A StaMo column must contain none of them.
RESERVED_SUBSTRINGS = {"image": "img", "visual": "vis", "pixels": "pix", "_is_pad": "_ispad"}
# Marks a rewritten camera name; never part of a name used as is, so rewritten and kept names cannot collide.
REWRITE_MARK = "--"


def column_suffix(camera_key: str) -> str:
    """The camera part of a StaMo column name: the one mapping from camera keys to StaMo columns.

    `observation.images.<cam>` -> `<cam>` when `<cam>` holds no substring LeRobot treats specially (see
    `RESERVED_SUBSTRINGS`) and no `--` (a short name `<cam>` stands for `observation.images.<cam>`);
    otherwise (and for cameras outside `observation.images.`) a readable
    rewrite plus `--` and 8 hex digits of the key's sha256, e.g. `observation.image` -> `img--<hash>`,
    `observation.images.wrist_image` -> `wrist_img--<hash>`. Kept names never contain `--`, rewritten ones
    always do, and the hash tells rewritten ones apart, so two cameras never share a column.
    """
    if not camera_key.startswith(f"{OBS_STR}."):  # a short name, as given to --cameras: `front`
        camera_key = f"{OBS_IMAGES}.{camera_key}"
    short = camera_name(camera_key)
    if short == camera_key:  # not under observation.images.: drop `observation.` and always rewrite
        short = short.removeprefix(f"{OBS_STR}.")
    readable = short.replace(REWRITE_MARK, "-")
    while any(token in readable for token in RESERVED_SUBSTRINGS):
        for token, replacement in RESERVED_SUBSTRINGS.items():
            readable = readable.replace(token, replacement)
    if readable == camera_name(camera_key) and camera_key.startswith(f"{OBS_IMAGES}."):
        return readable
    digest = hashlib.sha256(camera_key.encode()).hexdigest()[:8]
    return f"{readable}{REWRITE_MARK}{digest}"


def state_key(camera_key: str) -> str:
    """Column name of the StaMo state of a camera: `observation.stamo_state.<column_suffix(cam)>`."""
    return f"{STATE_PREFIX}.{column_suffix(camera_key)}"


def motion_key(camera_key: str) -> str:
    """Column name of the latent motion of a camera: `observation.stamo_motion.<column_suffix(cam)>`."""
    return f"{MOTION_PREFIX}.{column_suffix(camera_key)}"


def stamo_columns(cameras: list[str]) -> dict[str, dict[str, str]]:
    """Camera key -> StaMo column of each kind (recorded in `meta/stamo_labels.json`).

    Raises:
        ValueError: If two cameras would share a column (a sha256 prefix collision; never seen in practice).
    """
    columns = {"state": {k: state_key(k) for k in cameras}, "motion": {k: motion_key(k) for k in cameras}}
    if len(set(columns["state"].values())) != len(cameras):
        raise ValueError(
            f"Cameras {cameras} map to the same StaMo columns {columns['state']}: rename one of them "
            "(LeRobot's --rename_map) before labelling."
        )
    return columns


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
                    f"Camera {cam!r} is not in dataset {meta.repo_id!r}. Available cameras: {short} "
                    f"(or {available}). Fix {flag}."
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


def load_stamo_config(path: str, revision: str | None = None):
    """Loads a checkpoint's config and checks that it is a `stamo` policy (no weights loaded).

    Raises:
        TypeError: If the checkpoint is another policy type.
    """
    from lerobot.configs import PreTrainedConfig

    from lerobot_stamo.policies.stamo import StamoConfig

    if not path:
        raise ValueError("--policy.path is required: a stamo checkpoint folder or Hub id.")
    check_checkpoint(path, "--policy.path")
    try:
        config = PreTrainedConfig.from_pretrained(path, revision=revision)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"--policy.path={path!r} has no config.json: point it at a `stamo` checkpoint (e.g. "
            f"outputs/train/.../checkpoints/last/pretrained_model) or a Hub id. ({err})"
        ) from err
    if not isinstance(config, StamoConfig):
        raise TypeError(
            f"--policy.path={path!r} is a {getattr(config, 'type', type(config).__name__)!r} checkpoint, not a "
            "'stamo' one: latent motion needs the StaMo encoder. Train one with `lerobot-train "
            "--policy.type=stamo` and pass its pretrained_model folder."
        )
    return config


def checkpoint_identity(path: str, revision: str | None = None) -> dict[str, Any]:
    """Where the weights come from: path or Hub id, resolved commit (Hub) and sha256 of the weights."""
    from huggingface_hub import hf_hub_download

    local = Path(path)
    if local.is_dir():
        weights, commit = local / "model.safetensors", None
        source = str(local.resolve())
    else:
        weights = Path(hf_hub_download(path, "model.safetensors", revision=revision))
        parts = weights.parts
        commit = parts[parts.index("snapshots") + 1] if "snapshots" in parts else None
        source = path
    digest = hashlib.sha256()
    with open(weights, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {
        "policy_path": source,
        "policy_revision": revision,
        "policy_commit": commit,
        "weights_sha256": digest.hexdigest(),
    }


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _atomic_save(
    tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None
) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def work_dir_for(output_dir: Path) -> Path:
    """The work folder of a labelling run: `.<name>.stamo-work` next to the output folder."""
    return output_dir.parent / f".{output_dir.name}.stamo-work"


def shard_path(work: Path, episode: int) -> Path:
    return work / "states" / f"episode_{episode:06d}.safetensors"


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
            _atomic_save(tensors, shard_path(work, ep), metadata={"episode_index": str(ep)})
    bar.close()
    return total


# --------------------------------------------------------------------------------------------- merging
def motion_from_states(states: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Latent motion of one episode: m_t = s_{t+k} - s_t, zero and invalid for the last k frames.

    Args:
        states: (L, N, D) states of consecutive frames.
        horizon: k.

    Returns:
        motion (L, N, D) and valid (L,) bool.
    """
    motion = np.zeros_like(states)
    valid = np.zeros(len(states), dtype=bool)
    if len(states) > horizon:
        motion[:-horizon] = states[horizon:] - states[:-horizon]
        valid[:-horizon] = True
    return motion, valid


def column_features(cameras: list[str], num_tokens: int, token_dim: int) -> dict[str, dict]:
    """LeRobot feature specs of the new columns."""
    token_names = ["tokens", "dim"]
    features: dict[str, dict] = {}
    for key in cameras:
        spec = {"dtype": "float32", "shape": [num_tokens, token_dim], "names": token_names}
        features[state_key(key)] = dict(spec)
        features[motion_key(key)] = dict(spec)
    features[VALID_KEY] = {"dtype": "bool", "shape": [1], "names": None}
    return features


def episode_column_stats(columns: dict[str, np.ndarray], features: dict[str, dict]) -> dict[str, dict]:
    """LeRobot's `compute_episode_stats` of one episode's new columns.

    The motion stats use the valid frames only (the zero padding of the last k frames would bias them); an
    episode without any valid motion contributes no motion stats. The mask's stats are those of the 0/1
    values. Token columns are flattened to (L, N * D): LeRobot's stats code reduces all but the last axis.
    """
    from lerobot.datasets.compute_stats import compute_episode_stats

    valid = columns[VALID_KEY]
    data = {}
    for key, values in columns.items():
        if key == VALID_KEY:
            data[key] = values.astype(np.float32)
        elif key.startswith(MOTION_PREFIX):
            sel = values[valid]
            if len(sel):
                data[key] = sel.reshape(len(sel), -1)  # (L', N * D)
        else:
            data[key] = values.reshape(len(values), -1)  # (L, N * D)
    flat = {k: {**ft, "shape": [int(np.prod(ft["shape"]))]} for k, ft in features.items() if k in data}
    return compute_episode_stats(data, flat)


class EpisodeColumns:
    """The new columns of a dataset, streamed in row order with one episode's shard in memory at a time.

    `rows(a, b)` returns the columns of global rows a..b-1 (ascending, consecutive calls); an episode's shard
    is read when its first row is asked for and dropped once the rows have moved past it, so memory is
    bounded by the longest episode, not the dataset. Per-episode stats are collected on the way.

    Args:
        meta: `LeRobotDatasetMetadata` of the source dataset.
        cameras: Camera keys whose states are in the shards.
        horizon: k of the latent motion.
        work: Work folder holding `states/episode_XXXXXX.safetensors`.
        features: Specs of the new columns (`column_features`).
    """

    def __init__(self, meta, cameras: list[str], horizon: int, work: Path, features: dict[str, dict]):
        self.meta, self.cameras, self.horizon, self.work, self.features = (
            meta,
            cameras,
            horizon,
            work,
            features,
        )
        self.starts = np.asarray(
            [int(meta.episodes[e]["dataset_from_index"]) for e in range(meta.total_episodes)]
        )
        self.ends = np.asarray(
            [int(meta.episodes[e]["dataset_to_index"]) for e in range(meta.total_episodes)]
        )
        self.loaded: dict[int, dict[str, np.ndarray]] = {}
        self.episode_stats: dict[int, dict[str, dict]] = {}
        self.next_row = 0

    def _episode(self, ep: int) -> dict[str, np.ndarray]:
        if ep in self.loaded:
            return self.loaded[ep]
        path = shard_path(self.work, ep)
        if not path.exists():
            raise RuntimeError(f"Missing state shard {path} for episode {ep}: re-run the same command.")
        shard = load_file(str(path))
        length = int(self.ends[ep] - self.starts[ep])
        columns: dict[str, np.ndarray] = {}
        for key in self.cameras:
            states = shard[key].numpy()  # (L, N, D)
            if len(states) != length:
                raise RuntimeError(f"Shard {path} holds {len(states)} frames of {key}, episode has {length}.")
            columns[state_key(key)] = states
            columns[motion_key(key)], columns[VALID_KEY] = motion_from_states(states, self.horizon)
        self.episode_stats[ep] = episode_column_stats(columns, self.features)
        self.loaded[ep] = columns
        return columns

    def rows(self, a: int, b: int) -> dict[str, np.ndarray]:
        """Columns of global rows a..b-1 (the next rows after the previous call)."""
        if a != self.next_row:
            raise RuntimeError(f"Rows asked out of order: {a}..{b - 1} after {self.next_row - 1}.")
        self.next_row = b
        first = int(np.searchsorted(self.ends, a, side="right"))  # episode holding row a
        last = int(np.searchsorted(self.ends, b - 1, side="right"))  # episode holding row b - 1
        for ep in [e for e in self.loaded if e < first]:  # rows have moved past these episodes
            del self.loaded[ep]
        parts: dict[str, list[np.ndarray]] = {k: [] for k in self.features}
        for ep in range(first, last + 1):
            cols = self._episode(ep)
            lo, hi = max(a, self.starts[ep]) - self.starts[ep], min(b, self.ends[ep]) - self.starts[ep]
            for key in self.features:
                parts[key].append(cols[key][lo:hi])
        return {k: np.concatenate(v) for k, v in parts.items()}

    def stats(self) -> dict[str, dict]:
        """Stats of the new columns aggregated over all episodes (call after every row was read)."""
        from lerobot.datasets.compute_stats import aggregate_stats

        missing = [e for e in range(self.meta.total_episodes) if e not in self.episode_stats]
        if missing:
            raise RuntimeError(f"Episodes {missing[:10]} were never merged: the data files miss their rows.")
        per_episode = [self.episode_stats[e] for e in range(self.meta.total_episodes)]
        stats = {}
        for key, ft in self.features.items():
            agg = aggregate_stats([{key: s[key]} for s in per_episode if key in s])[key]
            if len(ft["shape"]) > 1:
                agg = {n: v if n == "count" else np.asarray(v).reshape(ft["shape"]) for n, v in agg.items()}
            stats[key] = agg
        return stats


def _stream_data_files(dataset, new_meta, columns: EpisodeColumns, rows_per_batch: int | None = None) -> None:
    """Copies every data file of `dataset` to `new_meta.root` with the new columns appended, batch by batch.

    Same chunk/file layout as the source; each batch of rows becomes one parquet row group, so memory stays
    bounded by the batch and the longest episode, whatever the dataset's length.
    """
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq
    from lerobot.datasets.feature_utils import get_hf_features_from_features
    from lerobot.datasets.utils import DATA_DIR

    hf_features = get_hf_features_from_features(new_meta.features)
    schema = hf_features.arrow_schema
    new_hf = datasets.Features({k: hf_features[k] for k in columns.features})
    files = sorted((dataset.root / DATA_DIR).glob("*/*.parquet"))
    if not files:
        raise ValueError(f"No parquet files found in {dataset.root / DATA_DIR}")
    row = 0
    bar = tqdm(total=dataset.meta.total_frames, unit="frame", desc="stamo merge")
    for src in files:
        dst = new_meta.root / src.relative_to(dataset.root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        with pq.ParquetWriter(dst, schema=schema, compression="snappy", use_dictionary=True) as writer:
            for batch in pq.ParquetFile(src).iter_batches(batch_size=rows_per_batch or MERGE_ROWS):
                n = batch.num_rows
                index = batch.column("index").to_numpy()
                if not np.array_equal(index, np.arange(row, row + n)):
                    raise RuntimeError(
                        f"Dataset {dataset.meta.repo_id!r}: rows of {src} are not stored in `index` order "
                        f"(expected {row}..{row + n - 1}); cannot append columns."
                    )
                new = columns.rows(row, row + n)
                extra = datasets.Dataset.from_dict(
                    {k: v if v.ndim == 1 else list(v) for k, v in new.items()}, features=new_hf
                ).with_format("arrow")[:]
                table = pa.Table.from_batches([batch])
                for key in columns.features:
                    table = table.append_column(key, extra.column(key))
                writer.write_table(table.select(schema.names).cast(schema))
                row += n
                bar.update(n)
    bar.close()
    if row != dataset.meta.total_frames:
        raise RuntimeError(f"The data files hold {row} rows, the metadata says {dataset.meta.total_frames}.")


def write_labelled_dataset(
    dataset,
    cameras: list[str],
    horizon: int,
    work: Path,
    repo_id: str,
    labels_info: dict[str, Any],
    num_tokens: int,
    token_dim: int,
) -> Path:
    """Merges the shards into a copy of `dataset` with the new columns and stats, inside `work/dataset`.

    Streams: data files are rewritten batch by batch and shards read one episode at a time, so the peak
    memory does not grow with the dataset's length. The rest mirrors LeRobot's `add_features` (metadata,
    tasks, episodes and videos copied).

    Returns:
        The folder of the finished dataset (still inside the work folder).
    """
    from lerobot.datasets.dataset_tools import _copy_episodes_metadata_and_stats, _copy_videos
    from lerobot.datasets.io_utils import write_stats
    from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata

    target = work / "dataset"
    if target.exists():  # a merge interrupted earlier: start it over
        shutil.rmtree(target)
    meta = dataset.meta
    features = column_features(cameras, num_tokens, token_dim)
    clash = [k for k in features if k in meta.features]
    if clash:
        raise ValueError(
            f"Dataset {meta.repo_id!r} already has columns {clash}: label the unlabelled source."
        )
    new_meta = LeRobotDatasetMetadata.create(
        repo_id=repo_id,
        fps=meta.fps,
        features={**meta.features, **features},
        robot_type=meta.robot_type,
        root=target,
        use_videos=len(meta.video_keys) > 0,
    )
    columns = EpisodeColumns(meta, cameras, horizon, work, features)
    _stream_data_files(dataset, new_meta, columns)
    _copy_episodes_metadata_and_stats(dataset, new_meta)  # tasks, episodes, info, the source stats
    if new_meta.video_keys:
        _copy_videos(dataset, new_meta)
    write_stats(dict(meta.stats or {}) | columns.stats(), target)
    _atomic_write_text(target / LABELS_FILE, json.dumps(labels_info, indent=2, sort_keys=True))
    return target


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


def read_labels(folder: Path) -> dict | None:
    """`meta/stamo_labels.json` of a folder, or None if it has none (or an unreadable one)."""
    return _read_json(folder / LABELS_FILE)


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
        info = _read_json(work / "fingerprint.json")
        if not work.is_dir() or info is None or info.get("created_by") != "lerobot-stamo-label":
            raise FileExistsError(
                f"{work} (the work folder of --output_dir={output_dir}) holds files lerobot-stamo-label did not "
                "write. Move them away or choose another --output_dir."
            )


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


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

    from lerobot_stamo.policies.stamo import StamoPolicy

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
        _atomic_write_text(work / "fingerprint.json", json.dumps(fingerprint, indent=2, sort_keys=True))
    wait()

    # 3. Encode this rank's episodes.
    if cfg.policy.device is not None:
        policy_cfg.device = cfg.policy.device
    elif rank_device is not None and not rank_device.startswith("cpu"):  # one accelerator per process
        policy_cfg.device = rank_device
    policy = StamoPolicy.from_pretrained(cfg.policy.path, config=policy_cfg, revision=cfg.policy.revision)
    policy.for_inference()
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
        _publish(finished, output_dir, work)
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
    LeRobotDataset(repo_id, root=output_dir).push_to_hub(private=private)


def _publish(finished: Path, output_dir: Path, work: Path) -> None:
    """Moves the finished dataset to `output_dir` (replacing an old one) and removes the work folder."""
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    if output_dir.exists():
        old = work / "replaced"
        if old.exists():
            shutil.rmtree(old)
        os.replace(output_dir, old)
    os.replace(finished, output_dir)
    shutil.rmtree(work, ignore_errors=True)


def load_labels(root: str | Path) -> dict[str, Any]:
    """Reads `meta/stamo_labels.json` of a labelled dataset (which checkpoint, horizon, cameras, columns).

    Raises:
        FileNotFoundError: If the folder is not a dataset written by `lerobot-stamo-label`.
    """
    info = read_labels(Path(root))
    if info is None:
        raise FileNotFoundError(
            f"{root} has no {LABELS_FILE}: it is not a dataset labelled by `lerobot-stamo-label`."
        )
    return info


__all__ = [
    "LABELS_FILE",
    "MOTION_PREFIX",
    "STATE_PREFIX",
    "VALID_KEY",
    "LabelConfig",
    "LabelDatasetArgs",
    "LabelPolicyArgs",
    "camera_name",
    "column_suffix",
    "label_dataset",
    "load_labels",
    "motion_from_states",
    "motion_key",
    "read_labels",
    "stamo_columns",
    "state_key",
]
