"""Linear probing of latent actions (StaMo paper, section 5) and the goal-conditioned head (section 6).

From a robot dataset (with `action`), tuples (I_n, I_{n+k}, a_n .. a_{n+k-1}) are built for every horizon k;
each representation's difference is mapped to the action chunk by the same small probe (linear, and a
2-layer MLP) trained on the training episodes and scored by MSE on held-out episodes, over several seeds:

- `stamo`: s(I_{n+k}) - s(I_n), the StaMo state difference (read from `observation.stamo_state.<cam>` of
  a labelled dataset when present, else encoded with `StamoPolicy.encode`);
- `backbone`: the difference of mean-pooled patch features of the stamo checkpoint's own (DINOv2) backbone;
- `pixels`: the Pooled Delta Image, the pixel difference average-pooled to `pool x pool`.

Inputs and actions are standardised with training-set statistics, so the MSE is in action-std units.
The goal-conditioned variant maps (s_n, s_{n+k}) to the chunk a_n .. a_{n+k-1} with a linear head.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from lerobot.utils.constants import ACTION
from torch import Tensor, nn
from tqdm import tqdm

from .labelling import (
    EpisodeChunks,
    LabelDatasetArgs,
    LabelPolicyArgs,
    load_stamo_config,
    plan_chunks,
    resolve_cameras,
    state_key,
)

logger = logging.getLogger(__name__)

REPRESENTATIONS = ("stamo", "backbone", "pixels")
PROBES = ("linear", "mlp")
LABELS = {
    "stamo": "StaMo state difference",
    "backbone": "Delta backbone features",
    "pixels": "Pooled Delta Image",
}


@dataclass
class ProbeConfig:
    """Arguments of `lerobot-stamo-probe` (and of `run_probe`)."""

    policy: LabelPolicyArgs = field(default_factory=LabelPolicyArgs)
    dataset: LabelDatasetArgs = field(default_factory=LabelDatasetArgs)
    # Folder for probe.json, probe.md and probe.png.
    output_dir: str = ""
    # Camera whose frames are probed (`front` or `observation.images.front`; default: the first one).
    camera: str | None = None
    horizons: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    # Held-out episodes (default: the last `test_fraction` of the episodes, at least one).
    test_episodes: list[int] | None = None
    test_fraction: float = 0.2
    # Probe training: full-batch AdamW steps, learning rate, weight decay, MLP width.
    steps: int = 300
    lr: float = 1e-2
    weight_decay: float = 1e-4
    hidden_dim: int = 256
    # Side of the average-pooled image of the Pooled Delta Image baseline.
    pool: int = 8
    batch_size: int = 32
    num_workers: int = 0

    def __post_init__(self):
        if not self.horizons or min(self.horizons) < 1:
            raise ValueError(f"--horizons must be positive integers, got {self.horizons}.")
        if not self.seeds:
            raise ValueError("--seeds must name at least one seed.")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"--test_fraction must be in (0, 1), got {self.test_fraction}.")


# --------------------------------------------------------------------------------------------- features
@torch.inference_mode()
def frame_features(policy, dataset, camera: str, cfg: ProbeConfig) -> dict[str, np.ndarray]:
    """Per-frame features of every representation, in dataset row order.

    Returns:
        `{"stamo": (F, N*D), "backbone": (F, C), "pixels": (F, 3*pool*pool)}` float32 arrays.
    """

    meta = dataset.meta
    stored = state_key(camera) in meta.features
    chunks = plan_chunks(meta, list(range(meta.total_episodes)), cfg.batch_size)
    loader = torch.utils.data.DataLoader(
        EpisodeChunks(dataset, [camera], chunks, cfg.dataset.video_backend),
        batch_size=None,
        num_workers=cfg.num_workers,
    )
    parts: dict[str, list[Tensor]] = {name: [] for name in REPRESENTATIONS}
    for item in tqdm(loader, desc="probe features", unit="chunk", total=len(chunks)):
        frames = item[camera]  # (n, 3, H, W)
        if not stored:
            parts["stamo"].append(policy.encode(frames).flatten(1).cpu())  # (n, N*D)
        parts["backbone"].append(policy.backbone_features(frames).mean(1).cpu())  # (n, C)
        small = frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()
        parts["pixels"].append(F.adaptive_avg_pool2d(small, cfg.pool).flatten(1))  # (n, 3*pool*pool)
    out = {name: torch.cat(p).numpy() for name, p in parts.items() if p}
    if stored:
        out["stamo"] = (
            np.stack(dataset.hf_dataset.with_format("numpy")[state_key(camera)])
            .reshape(meta.total_frames, -1)
            .astype(np.float32)
        )
    return out


def probe_tuples(
    meta, actions: np.ndarray, k: int, episodes: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices n, n+k and action chunks a_n .. a_{n+k-1} of all tuples inside `episodes`.

    Returns:
        start (M,), end (M,) global row indices and chunks (M, k * A).
    """
    starts, chunks = [], []
    for ep in episodes:
        a = int(meta.episodes[ep]["dataset_from_index"])
        b = int(meta.episodes[ep]["dataset_to_index"])
        for n in range(a, b - k):
            starts.append(n)
            chunks.append(actions[n : n + k].reshape(-1))
    start = np.asarray(starts, dtype=np.int64)
    return start, start + k, np.asarray(chunks, dtype=np.float32).reshape(len(starts), -1)


# --------------------------------------------------------------------------------------------- probes
def make_probe(kind: str, in_dim: int, out_dim: int, hidden: int) -> nn.Module:
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))
    raise ValueError(f"Unknown probe {kind!r}: use one of {PROBES}.")


def fit_probe(
    kind: str, x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor, seed: int, cfg: ProbeConfig
) -> float:
    """Trains a probe (full batch, AdamW) on standardised data and returns its held-out MSE."""
    mx, sx = x_train.mean(0), x_train.std(0).clamp_min(1e-6)
    my, sy = y_train.mean(0), y_train.std(0).clamp_min(1e-6)
    xt, yt = (x_train - mx) / sx, (y_train - my) / sy
    xs, ys = (x_test - mx) / sx, (y_test - my) / sy
    torch.manual_seed(seed)
    model = make_probe(kind, xt.shape[1], yt.shape[1], cfg.hidden_dim)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    with torch.enable_grad():
        for _ in range(cfg.steps):
            opt.zero_grad()
            loss = F.mse_loss(model(xt), yt)
            loss.backward()
            opt.step()
    with torch.no_grad():
        return F.mse_loss(model(xs), ys).item()


def split_episodes(total: int, cfg: ProbeConfig) -> tuple[list[int], list[int]]:
    """(train, test) episode indices; raises if either side would be empty."""
    if cfg.test_episodes is not None:
        test = sorted(set(cfg.test_episodes))
        bad = [e for e in test if not 0 <= e < total]
        if bad:
            raise ValueError(f"--test_episodes {bad} do not exist (the dataset has episodes 0..{total - 1}).")
    else:
        n_test = max(1, round(total * cfg.test_fraction))
        test = list(range(total - n_test, total))
    train = [e for e in range(total) if e not in test]
    if not train or not test:
        raise ValueError(
            f"The probe needs training and held-out episodes; the dataset has {total} episode(s) "
            f"(held out: {test}). Record more episodes or change --test_episodes."
        )
    return train, test


def run_probe(cfg: ProbeConfig) -> dict[str, Any]:
    """Runs the probes for every horizon, representation and seed, and writes probe.json/.md/.png.

    Returns:
        The results written to probe.json.
    """
    from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata

    from lerobot_stamo.policies.stamo import StamoPolicy

    if not cfg.output_dir:
        raise ValueError("--output_dir is required (probe.json, probe.md and probe.png are written there).")
    meta = LeRobotDatasetMetadata(cfg.dataset.repo_id, root=cfg.dataset.root, revision=cfg.dataset.revision)
    if ACTION not in meta.features:
        raise ValueError(
            f"Dataset {meta.repo_id!r} has no {ACTION!r} column: the probe regresses robot actions. Use a robot "
            "dataset (a video-only recording can be labelled, not probed)."
        )
    camera = resolve_cameras(meta, [cfg.camera] if cfg.camera else None)[0]
    train_eps, test_eps = split_episodes(meta.total_episodes, cfg)
    policy_cfg = load_stamo_config(cfg.policy.path, cfg.policy.revision)
    if cfg.policy.device:
        policy_cfg.device = cfg.policy.device
    policy = StamoPolicy.from_pretrained(
        cfg.policy.path, config=policy_cfg, revision=cfg.policy.revision
    ).eval()
    dataset = LeRobotDataset(
        cfg.dataset.repo_id,
        root=cfg.dataset.root,
        revision=cfg.dataset.revision,
        video_backend=cfg.dataset.video_backend,
    )
    feats = frame_features(policy, dataset, camera, cfg)
    actions = np.stack(dataset.hf_dataset.with_format("numpy")[ACTION]).astype(np.float32)  # (F, A)

    results: dict[str, Any] = {name: {p: {} for p in PROBES} for name in REPRESENTATIONS}
    goal: dict[str, Any] = {}
    horizons = []
    for k in cfg.horizons:
        s_tr, e_tr, y_tr = probe_tuples(meta, actions, k, train_eps)
        s_te, e_te, y_te = probe_tuples(meta, actions, k, test_eps)
        if len(s_tr) < 2 or len(s_te) < 1:
            logger.warning(f"Horizon {k}: not enough tuples ({len(s_tr)} train, {len(s_te)} test): skipped.")
            continue
        horizons.append(k)
        ytr, yte = torch.from_numpy(y_tr), torch.from_numpy(y_te)
        for name in REPRESENTATIONS:
            f = torch.from_numpy(feats[name])
            xtr, xte = f[e_tr] - f[s_tr], f[e_te] - f[s_te]  # representation differences
            for kind in PROBES:
                mses = [fit_probe(kind, xtr, ytr, xte, yte, seed, cfg) for seed in cfg.seeds]
                results[name][kind][str(k)] = _summary(mses)
        f = torch.from_numpy(feats["stamo"])
        xtr = torch.cat([f[s_tr], f[e_tr]], dim=1)  # (current state, goal state)
        xte = torch.cat([f[s_te], f[e_te]], dim=1)
        goal[str(k)] = _summary([fit_probe("linear", xtr, ytr, xte, yte, seed, cfg) for seed in cfg.seeds])
        logger.info(
            f"k={k}: " + ", ".join(f"{n} {results[n]['linear'][str(k)]['mean']:.4f}" for n in REPRESENTATIONS)
        )
    if not horizons:
        raise ValueError(
            f"No horizon in {cfg.horizons} leaves tuples in both training and held-out episodes: use shorter ones."
        )
    report = {
        "dataset": {
            "repo_id": meta.repo_id,
            "root": str(dataset.root),
            "camera": camera,
            "train_episodes": train_eps,
            "test_episodes": test_eps,
        },
        "policy": {"path": cfg.policy.path, "revision": cfg.policy.revision},
        "metric": "held-out MSE of standardised action chunks (mean and std over seeds)",
        "horizons": horizons,
        "seeds": list(cfg.seeds),
        "results": results,
        "goal_conditioned": {
            "input": "(s_n, s_n+k)",
            "target": "a_n .. a_n+k-1",
            "probe": "linear",
            "mse": goal,
        },
    }
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "probe.json").write_text(json.dumps(report, indent=2))
    (out / "probe.md").write_text(markdown_table(report))
    plot(report, out / "probe.png")
    logger.info(f"Probe results written to {out}/probe.json, probe.md and probe.png")
    return report


def _summary(values: list[float]) -> dict[str, Any]:
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "per_seed": [float(v) for v in values],
    }


def markdown_table(report: dict[str, Any]) -> str:
    """One row per representation and probe, one column per horizon: `mean ± std` held-out MSE."""
    ks = report["horizons"]
    lines = [
        f"Held-out MSE (standardised actions, mean ± std over {len(report['seeds'])} seeds), camera "
        f"`{report['dataset']['camera']}`, test episodes {report['dataset']['test_episodes']}.",
        "",
        "| representation | probe | " + " | ".join(f"k={k}" for k in ks) + " |",
        "|---|---|" + "---|" * len(ks),
    ]
    for name in REPRESENTATIONS:
        for kind in PROBES:
            cells = [report["results"][name][kind][str(k)] for k in ks]
            lines.append(
                f"| {LABELS[name]} | {kind} | "
                + " | ".join(f"{c['mean']:.4f} ± {c['std']:.4f}" for c in cells)
                + " |"
            )
    goal = report["goal_conditioned"]["mse"]
    lines.append(
        "| Goal-conditioned (s_n, s_n+k) -> chunk | linear | "
        + " | ".join(f"{goal[str(k)]['mean']:.4f} ± {goal[str(k)]['std']:.4f}" for k in ks)
        + " |"
    )
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    """MSE vs horizon, one line per representation (solid: linear probe, dashed: MLP), std as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = report["horizons"]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for i, name in enumerate(REPRESENTATIONS):
        for kind, style in (("linear", "-o"), ("mlp", "--s")):
            cells = [report["results"][name][kind][str(k)] for k in ks]
            ax.errorbar(
                ks,
                [c["mean"] for c in cells],
                yerr=[c["std"] for c in cells],
                fmt=style,
                color=f"C{i}",
                capsize=3,
                label=f"{LABELS[name]} ({kind})",
            )
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("horizon k (frames)")
    ax.set_ylabel("held-out MSE (standardised actions)")
    ax.set_title(f"Linear probe of latent actions: {report['dataset']['camera']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
