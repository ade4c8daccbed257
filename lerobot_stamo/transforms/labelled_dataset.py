"""The labelled dataset, written from the encoded states: a copy of the source LeRobotDataset plus the StaMo
columns (`lerobot_stamo.columns`) and their stats, merged from the per-episode shards of `labelling`.

The merge streams: data files are rewritten batch by batch and shards read one episode at a time, so its
peak memory does not grow with the dataset's length.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.torch import load_file
from tqdm import tqdm

from lerobot_stamo.columns import LABELS_FILE, MOTION_PREFIX, VALID_KEY, motion_key, state_key
from lerobot_stamo.paths import write_text_atomically

# Rows per parquet batch (row group) of the streaming merge.
MERGE_ROWS = 1024


def shard_path(work: Path, episode: int) -> Path:
    """The safetensors shard of one episode's states inside the labelling's work folder."""
    return work / "states" / f"episode_{episode:06d}.safetensors"


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
    write_text_atomically(target / LABELS_FILE, json.dumps(labels_info, indent=2, sort_keys=True))
    return target
