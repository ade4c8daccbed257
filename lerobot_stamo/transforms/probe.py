"""Linear probing of latent actions (StaMo paper, section 5) and the goal-conditioned head (section 6).

From a robot dataset (with `action`), tuples (I_n, I_{n+k}, a_n .. a_{n+k-1}) are built for every horizon k;
each representation's difference is mapped to the action chunk by the same small probe (linear, and a
2-layer MLP) trained on the training episodes and scored by MSE on held-out episodes, over several seeds:

- `stamo`: s(I_{n+k}) - s(I_n), the StaMo state difference (read from `observation.stamo_state.<cam>` of
  a labelled dataset when present, else encoded with `StamoPolicy.encode`);
- `backbone`: the difference of mean-pooled patch features of the stamo checkpoint's own frozen backbone (the
  tokens its compressor reads: DINOv2's patch tokens, or the ImageNet EfficientNet-Lite0's feature-map cells
  for `backbone_type=efficientnet_lite0`);
- `pixels`: the Pooled Delta Image, the pixel difference average-pooled to `pool x pool`.

Actions are the dataset's (`--action_mode=absolute`, as in the paper) or, for datasets whose actions are
absolute joint targets (SO-100/SO-101, Koch), relative to the joint state at the chunk's start
(`--action_mode=relative`: a_{n+j} - q_n): a difference of two observations can only tell how far the arm
moved, not where it started, so it is the relative chunk that a latent *action* should predict.

Inputs and actions are standardised with statistics of the training episodes only, so the MSE is in
action-std units and the "predict the training mean" baseline scores about 1: a representation is only
informative where its probe scores clearly below that row.

- linear probe: ridge regression in closed form (one SVD, `torch.linalg`), its strength chosen from a
  log-spaced grid by validation on held-out *training* episodes (grouped K-fold over episodes, i.e.
  leave-one-episode-out when there are few), then refit on all training episodes; deterministic.
- MLP probe (2 layers): AdamW with weight decay, early stopping on held-out training episodes (the last
  validation fold), the weights of the best validation step kept; mean and std over seeds.
- goal-conditioned head (section 6): ridge from (s_n, s_{n+k}) to the chunk a_n .. a_{n+k-1}, chosen the
  same way.
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
from lerobot.utils.constants import ACTION, OBS_STATE
from torch import Tensor, nn
from tqdm import tqdm

from lerobot_stamo.columns import LABELS_FILE, read_labels, state_key
from lerobot_stamo.errors import check_dataset
from lerobot_stamo.policies.stamo import checkpoint_identity, load_stamo_config, open_frozen_stamo

from .labelling import (
    EpisodeChunks,
    LabelDatasetArgs,
    LabelPolicyArgs,
    check_frames,
    plan_chunks,
    resolve_cameras,
)

logger = logging.getLogger(__name__)

REPRESENTATIONS = ("stamo", "backbone", "pixels")
PROBES = ("linear", "mlp")
MEAN_BASELINE = "Predict the training mean"
ACTION_MODES = ("absolute", "relative")
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
    # "absolute": the dataset's actions; "relative": actions minus `observation.state` at the chunk's start
    # (for absolute joint-target actions; needs a state of the same size as the action).
    action_mode: str = "absolute"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    # Held-out episodes (default: the last `test_fraction` of the episodes, at least one).
    test_episodes: list[int] | None = None
    test_fraction: float = 0.2
    # Ridge strengths tried by the linear probe (on standardised features; chosen by validation).
    ridge_alphas: list[float] = field(default_factory=lambda: [10.0**e for e in range(-2, 6)])
    # Validation folds over the training episodes (fewer episodes: leave-one-episode-out).
    val_folds: int = 5
    # MLP probe: at most `steps` full-batch AdamW steps, stopped `patience` steps after the best
    # validation MSE (its weights are kept); learning rate, weight decay, width.
    steps: int = 2000
    patience: int = 100
    lr: float = 1e-3
    weight_decay: float = 1e-2
    hidden_dim: int = 256
    # Side of the average-pooled image of the Pooled Delta Image baseline.
    pool: int = 8
    batch_size: int = 32
    num_workers: int = 0

    def __post_init__(self):
        if not self.horizons or min(self.horizons) < 1:
            raise ValueError(f"--horizons must be positive integers, got {self.horizons}.")
        if self.action_mode not in ACTION_MODES:
            raise ValueError(f"--action_mode must be one of {ACTION_MODES}, got {self.action_mode!r}.")
        if not self.seeds:
            raise ValueError("--seeds must name at least one seed.")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"--test_fraction must be in (0, 1), got {self.test_fraction}.")
        if not self.ridge_alphas or not all(0 <= a < float("inf") for a in self.ridge_alphas):
            raise ValueError(f"--ridge_alphas must be non-negative numbers, got {self.ridge_alphas}.")
        if self.val_folds < 2:
            raise ValueError(f"--val_folds must be >= 2, got {self.val_folds}.")
        if self.steps < 1 or self.patience < 1:
            raise ValueError(f"--steps and --patience must be >= 1, got {self.steps} and {self.patience}.")
        if not (0 < self.lr < float("inf")) or not (0 <= self.weight_decay < float("inf")):  # NaN fails both
            raise ValueError(
                f"--lr must be a finite number > 0 and --weight_decay a finite number >= 0, got {self.lr} and "
                f"{self.weight_decay}."
            )
        if self.hidden_dim < 1 or self.pool < 1 or self.batch_size < 1 or self.num_workers < 0:
            raise ValueError(
                f"--hidden_dim, --pool and --batch_size must be >= 1 and --num_workers >= 0, got {self.hidden_dim}, "
                f"{self.pool}, {self.batch_size} and {self.num_workers}."
            )


# --------------------------------------------------------------------------------------------- features
def stored_states_usable(dataset, camera: str, policy_path: str, revision: str | None) -> tuple[bool, str]:
    """Whether the dataset's stored StaMo states of `camera` were encoded by the probed checkpoint.

    They are read only when `meta/stamo_labels.json` names weights with the same sha256 as `--policy.path`;
    otherwise the frames are encoded with `--policy.path` (a dataset labelled by checkpoint A never reports
    A's states as those of checkpoint B).

    Returns:
        (use the stored states, a sentence saying where the probe's StaMo states come from).
    """
    column = state_key(camera)
    if column not in dataset.meta.features:
        return False, f"encoded with --policy.path (the dataset has no stored {column!r})"
    labels = read_labels(Path(dataset.root))
    theirs = (labels or {}).get("weights_sha256")
    ours = checkpoint_identity(policy_path, revision)["weights_sha256"]
    if theirs == ours:
        return True, f"read from the dataset's {column!r} (labelled by the same checkpoint weights)"
    if labels is None:
        why = f"the dataset has no {LABELS_FILE} to tell which checkpoint wrote them"
    else:
        why = f"they were written by checkpoint {labels.get('policy_path')!r} (other weights)"
    return False, f"encoded with --policy.path, not read from the stored {column!r}: {why}"


@torch.inference_mode()
def frame_features(
    policy, dataset, camera: str, cfg: ProbeConfig, stored: bool = False
) -> dict[str, np.ndarray]:
    """Per-frame features of every representation, in dataset row order.

    Args:
        stored: Read the StaMo states from the dataset's state column instead of encoding the frames (only
            when they come from the probed checkpoint, see `stored_states_usable`).

    Returns:
        `{"stamo": (F, N*D), "backbone": (F, C), "pixels": (F, 3*pool*pool)}` float32 arrays.
    """

    meta = dataset.meta
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
    meta, actions: np.ndarray, k: int, episodes: list[int], reference: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Indices n, n+k and action chunks a_n .. a_{n+k-1} of all tuples inside `episodes`.

    `reference` (F, A), when given, is subtracted from every action of a chunk at its start row n
    (relative actions a_{n+j} - q_n).

    Returns:
        start (M,), end (M,) global row indices, chunks (M, k * A) and the episode of each tuple (M,).
    """
    starts, chunks, eps = [], [], []
    for ep in episodes:
        a = int(meta.episodes[ep]["dataset_from_index"])
        b = int(meta.episodes[ep]["dataset_to_index"])
        for n in range(a, b - k):
            starts.append(n)
            eps.append(ep)
            chunk = actions[n : n + k] - (reference[n] if reference is not None else 0)
            chunks.append(chunk.reshape(-1))
    start = np.asarray(starts, dtype=np.int64)
    chunks_arr = np.asarray(chunks, dtype=np.float32).reshape(len(starts), -1)
    return start, start + k, chunks_arr, np.asarray(eps, dtype=np.int64)


# --------------------------------------------------------------------------------------------- probes
class Standardiser:
    """Per-dimension standardisation with statistics of the data it is fitted on.

    Dimensions that are (numerically) constant there are mapped to 0 instead of being blown up by a tiny std.
    """

    def __init__(self, x: Tensor):
        self.mean = x.mean(0)
        std = x.std(0) if len(x) > 1 else torch.zeros_like(self.mean)
        floor = 1e-6 * float(std.max()) if std.numel() else 0.0
        self.std = torch.where(std > max(floor, 1e-12), std, torch.full_like(std, torch.inf))

    def __call__(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


def ridge_path(x: Tensor, y: Tensor, alphas: list[float]) -> Tensor:
    """Closed-form ridge weights for every strength at once, from one thin SVD.

    On centred data, W(alpha) = argmin |X W - Y|^2 + alpha |W|^2 = V diag(s / (s^2 + alpha)) U^T Y.

    Args:
        x: (n, d) centred features; y: (n, o) centred targets.
        alphas: R ridge strengths.

    Returns:
        (R, d, o) weights.
    """
    u, sv, vh = torch.linalg.svd(x, full_matrices=False)  # (n, r), (r,), (r, d)
    uty = u.T @ y  # (r, o)
    a = torch.as_tensor(alphas, dtype=x.dtype)[:, None]  # (R, 1)
    shrink = sv / (sv**2 + a).clamp_min(1e-12)  # (R, r)
    return torch.einsum("rd,Rr,ro->Rdo", vh, shrink, uty)


def validation_groups(groups: np.ndarray, folds: int) -> list[np.ndarray]:
    """Boolean masks of the validation folds over tuples, grouped by episode.

    Training episodes are split into `min(folds, #episodes)` contiguous groups (leave-one-episode-out
    when there are few). With a single training episode its last 20% of tuples validate.
    """
    episodes = np.unique(groups)
    if len(episodes) >= 2:
        parts = np.array_split(episodes, min(folds, len(episodes)))
        return [np.isin(groups, part) for part in parts]
    cut = max(1, int(round(0.8 * len(groups))))
    mask = np.arange(len(groups)) >= min(cut, len(groups) - 1)
    return [mask]


def fit_ridge(
    x_train: Tensor, y_train: Tensor, groups: np.ndarray, x_test: Tensor, y_test: Tensor, cfg: ProbeConfig
) -> tuple[float, float]:
    """Ridge probe: strength chosen by validation on held-out training episodes, refit, held-out MSE.

    Features and targets are standardised on the (fold's) training tuples; the test MSE is in units of the
    std of the actions of all training episodes.

    Returns:
        (test MSE, chosen ridge strength).
    """
    x_train, y_train = x_train.double(), y_train.double()
    val_sse = torch.zeros(len(cfg.ridge_alphas), dtype=torch.float64)
    for val in validation_groups(groups, cfg.val_folds):
        fit = torch.from_numpy(~val)
        sx, sy = Standardiser(x_train[fit]), Standardiser(y_train[fit])
        weights = ridge_path(sx(x_train[fit]), sy(y_train[fit]), cfg.ridge_alphas)  # (R, d, o)
        xv, yv = sx(x_train[~fit]), sy(y_train[~fit])
        val_sse += ((xv @ weights - yv) ** 2).flatten(1).sum(1)  # (R,)
    alpha = float(cfg.ridge_alphas[int(torch.argmin(val_sse))])
    sx, sy = Standardiser(x_train), Standardiser(y_train)
    weights = ridge_path(sx(x_train), sy(y_train), [alpha])[0]  # (d, o)
    mse = F.mse_loss(sx(x_test.double()) @ weights, sy(y_test.double())).item()
    return mse, alpha


def mean_baseline(y_train: Tensor, y_test: Tensor) -> float:
    """Held-out MSE of always predicting the training mean (about 1 in standardised units)."""
    sy = Standardiser(y_train.double())
    return sy(y_test.double()).pow(2).mean().item()


def make_probe(kind: str, in_dim: int, out_dim: int, hidden: int) -> nn.Module:
    if kind == "mlp":
        model = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))
        # Zero output layer: step 0 predicts the training mean, so early stopping never does worse on the
        # validation episodes than the mean baseline.
        nn.init.zeros_(model[-1].weight)
        nn.init.zeros_(model[-1].bias)
        return model
    raise ValueError(f"Unknown trained probe {kind!r}: the linear probe is ridge regression (`fit_ridge`).")


def fit_mlp(
    x_train: Tensor,
    y_train: Tensor,
    groups: np.ndarray,
    x_test: Tensor,
    y_test: Tensor,
    seed: int,
    cfg: ProbeConfig,
) -> tuple[float, int]:
    """2-layer MLP probe: full-batch AdamW with weight decay, early stopping on held-out training episodes.

    Inputs and targets are standardised with all training episodes; the model is fitted on the training
    episodes outside the last validation fold, and the weights of its best validation step are kept.

    Returns:
        (test MSE, best step).
    """
    sx, sy = Standardiser(x_train), Standardiser(y_train)
    xt, yt, xs, ys = sx(x_train), sy(y_train), sx(x_test), sy(y_test)
    val = torch.from_numpy(validation_groups(groups, cfg.val_folds)[-1])
    x_fit, y_fit, x_val, y_val = xt[~val], yt[~val], xt[val], yt[val]
    torch.manual_seed(seed)
    model = make_probe("mlp", xt.shape[1], yt.shape[1], cfg.hidden_dim)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    with torch.no_grad():
        best, best_step = F.mse_loss(model(x_val), y_val).item(), 0
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    for step in range(1, cfg.steps + 1):
        with torch.enable_grad():
            opt.zero_grad()
            F.mse_loss(model(x_fit), y_fit).backward()
            opt.step()
        with torch.no_grad():
            val_mse = F.mse_loss(model(x_val), y_val).item()
        if val_mse < best:
            best, best_step = val_mse, step
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        elif step - best_step >= cfg.patience:
            break
    model.load_state_dict(best_state)
    with torch.no_grad():
        return F.mse_loss(model(xs), ys).item(), best_step


def plan_horizons(meta, horizons: list[int], train: list[int], test: list[int]) -> list[int]:
    """The horizons that leave probe tuples on both sides, decided before any frame is encoded.

    An episode of L frames gives L - k tuples at horizon k; shorter episodes are skipped at that horizon
    (with a warning), a horizon without >= 2 training and >= 1 held-out tuples is dropped (with a warning).

    Raises:
        ValueError: If no horizon is usable (naming the episode lengths and the fix).
    """
    lengths = {e: int(meta.episodes[e]["length"]) for e in train + test}
    usable = []
    for k in horizons:
        short = [e for e in lengths if lengths[e] <= k]
        n_train = sum(max(lengths[e] - k, 0) for e in train)
        n_test = sum(max(lengths[e] - k, 0) for e in test)
        if n_train < 2 or n_test < 1:
            logger.warning(
                f"Horizon k={k} skipped: it leaves {n_train} training and {n_test} held-out tuple(s) "
                "(needs >= 2 and >= 1)."
            )
            continue
        if short:
            logger.warning(
                f"Horizon k={k}: episode(s) {short} have <= {k} frames and give no tuple at this horizon: skipped."
            )
        usable.append(k)
    if not usable:
        raise ValueError(
            f"No horizon in --horizons={list(horizons)} fits the episodes (training episodes {train} have "
            f"{[lengths[e] for e in train]} frames, held-out {test} have {[lengths[e] for e in test]}): a "
            "horizon k needs episodes longer than k frames on both sides. Use shorter --horizons."
        )
    return usable


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

    if not cfg.output_dir:
        raise ValueError("--output_dir is required (probe.json, probe.md and probe.png are written there).")
    check_dataset(cfg.dataset.repo_id, cfg.dataset.root)
    meta = LeRobotDatasetMetadata(cfg.dataset.repo_id, root=cfg.dataset.root, revision=cfg.dataset.revision)
    if ACTION not in meta.features:
        raise ValueError(
            f"Dataset {meta.repo_id!r} has no {ACTION!r} column: the probe regresses robot actions. Use a robot "
            "dataset (a video-only recording can be labelled, not probed)."
        )
    if cfg.action_mode == "relative":
        state, action = meta.features.get(OBS_STATE), meta.features[ACTION]
        if state is None or tuple(state["shape"]) != tuple(action["shape"]):
            raise ValueError(
                f"--action_mode=relative subtracts {OBS_STATE!r} from {ACTION!r}, but dataset {meta.repo_id!r} "
                f"has state shape {state and tuple(state['shape'])} and action shape {tuple(action['shape'])}. "
                "Use --action_mode=absolute."
            )
    camera = resolve_cameras(meta, [cfg.camera] if cfg.camera else None, flag="--camera")[0]
    train_eps, test_eps = split_episodes(meta.total_episodes, cfg)
    usable = plan_horizons(meta, list(cfg.horizons), train_eps, test_eps)
    policy_cfg = load_stamo_config(cfg.policy.path, cfg.policy.revision)
    if cfg.policy.device:
        policy_cfg.device = cfg.policy.device
    dataset = LeRobotDataset(
        cfg.dataset.repo_id,
        root=cfg.dataset.root,
        revision=cfg.dataset.revision,
        video_backend=cfg.dataset.video_backend,
    )
    check_frames(dataset, [camera], cfg.dataset.video_backend, flag="--camera")
    stored, states_source = stored_states_usable(dataset, camera, cfg.policy.path, cfg.policy.revision)
    if stored or state_key(camera) not in meta.features:
        logger.info(f"StaMo states of {camera!r}: {states_source}.")
    else:
        logger.warning(f"StaMo states of {camera!r}: {states_source}.")
    policy = open_frozen_stamo(cfg.policy.path, cfg.policy.revision, config=policy_cfg)
    feats = frame_features(policy, dataset, camera, cfg, stored=stored)
    columns = dataset.hf_dataset.with_format("numpy")
    actions = np.stack(columns[ACTION]).astype(np.float32)  # (F, A)
    reference = np.stack(columns[OBS_STATE]).astype(np.float32) if cfg.action_mode == "relative" else None

    results: dict[str, Any] = {name: {p: {} for p in PROBES} for name in REPRESENTATIONS}
    baseline: dict[str, Any] = {}
    goal: dict[str, Any] = {}
    horizons = []
    for k in usable:
        s_tr, e_tr, y_tr, g_tr = probe_tuples(meta, actions, k, train_eps, reference)
        s_te, e_te, y_te, _ = probe_tuples(meta, actions, k, test_eps, reference)
        horizons.append(k)
        ytr, yte = torch.from_numpy(y_tr), torch.from_numpy(y_te)
        baseline[str(k)] = _summary([mean_baseline(ytr, yte)])
        for name in REPRESENTATIONS:
            f = torch.from_numpy(feats[name])
            xtr, xte = f[e_tr] - f[s_tr], f[e_te] - f[s_te]  # representation differences
            mse, alpha = fit_ridge(xtr, ytr, g_tr, xte, yte, cfg)
            results[name]["linear"][str(k)] = _summary([mse]) | {"alpha": alpha}
            fits = [fit_mlp(xtr, ytr, g_tr, xte, yte, seed, cfg) for seed in cfg.seeds]
            results[name]["mlp"][str(k)] = _summary([m for m, _ in fits]) | {
                "best_step": [b for _, b in fits]
            }
        f = torch.from_numpy(feats["stamo"])
        xtr = torch.cat([f[s_tr], f[e_tr]], dim=1)  # (current state, goal state)
        xte = torch.cat([f[s_te], f[e_te]], dim=1)
        mse, alpha = fit_ridge(xtr, ytr, g_tr, xte, yte, cfg)
        goal[str(k)] = _summary([mse]) | {"alpha": alpha}
        logger.info(
            f"k={k}: mean baseline {baseline[str(k)]['mean']:.4f}, ridge "
            + ", ".join(f"{n} {results[n]['linear'][str(k)]['mean']:.4f}" for n in REPRESENTATIONS)
        )
    report = {
        "dataset": {
            "repo_id": meta.repo_id,
            "root": str(dataset.root),
            "camera": camera,
            "stamo_states": states_source,
            "train_episodes": train_eps,
            "test_episodes": test_eps,
        },
        "policy": {"path": cfg.policy.path, "revision": cfg.policy.revision},
        "action_mode": cfg.action_mode,
        "metric": (
            "held-out MSE of action chunks standardised with the training episodes' statistics; linear "
            "(ridge) and the mean baseline are deterministic (one value), the MLP is mean and std over seeds"
        ),
        "probes": {
            "linear": "ridge regression (closed form), alpha chosen by validation on held-out training "
            "episodes, refit on all training episodes",
            "mlp": f"2-layer MLP (width {cfg.hidden_dim}), AdamW lr {cfg.lr} weight decay {cfg.weight_decay}, "
            f"early stopping (patience {cfg.patience}, at most {cfg.steps} steps) on held-out training episodes",
            "ridge_alphas": list(cfg.ridge_alphas),
            "val_folds": cfg.val_folds,
        },
        "horizons": horizons,
        "seeds": list(cfg.seeds),
        "baseline": {"name": MEAN_BASELINE, "mse": baseline},
        "results": results,
        "goal_conditioned": {
            "input": "(s_n, s_n+k)",
            "target": "a_n .. a_n+k-1" + (" - q_n" if cfg.action_mode == "relative" else ""),
            "probe": "linear (ridge)",
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


def _cell(c: dict[str, Any]) -> str:
    return f"{c['mean']:.4f}" if len(c["per_seed"]) == 1 else f"{c['mean']:.4f} ± {c['std']:.4f}"


def markdown_table(report: dict[str, Any]) -> str:
    """One row per representation and probe, one column per horizon: held-out MSE (`mean ± std` for the MLP)."""
    ks = report["horizons"]
    lines = [
        f"Held-out MSE ({report['action_mode']} actions"
        f"{' (a - q_n)' if report['action_mode'] == 'relative' else ''} standardised on the training "
        f"episodes; MLP: mean ± std over "
        f"{len(report['seeds'])} seeds), camera `{report['dataset']['camera']}`, test episodes "
        f"{report['dataset']['test_episodes']}. Rows below the training-mean baseline (~1) carry information "
        "about the action.",
        "",
        "| representation | probe | " + " | ".join(f"k={k}" for k in ks) + " |",
        "|---|---|" + "---|" * len(ks),
    ]
    base = report["baseline"]["mse"]
    lines.append(f"| {MEAN_BASELINE} | none | " + " | ".join(_cell(base[str(k)]) for k in ks) + " |")
    for name in REPRESENTATIONS:
        for kind in PROBES:
            cells = [report["results"][name][kind][str(k)] for k in ks]
            probe = "linear (ridge)" if kind == "linear" else kind
            lines.append(f"| {LABELS[name]} | {probe} | " + " | ".join(_cell(c) for c in cells) + " |")
    goal = report["goal_conditioned"]["mse"]
    lines.append(
        "| Goal-conditioned (s_n, s_n+k) -> chunk | linear (ridge) | "
        + " | ".join(_cell(goal[str(k)]) for k in ks)
        + " |"
    )
    return "\n".join(lines) + "\n"


def style_probe_axes(ax, ks: list[int], title: str, legend: bool = True) -> None:
    """Styles the axes of an MSE-vs-horizon probe plot (log2 horizons; MSE from 0), the legend outside right.

    Shared by `plot` and the paper report's per-task probe plot (`lerobot_stamo.paper.report.plot_probe`).

    Args:
        ax: The matplotlib `Axes` the lines are drawn on.
        ks: The horizons (x ticks).
        title: The axes' title.
        legend: Whether these axes carry the legend (one per figure).
    """
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("horizon k (frames)")
    ax.set_ylabel("held-out MSE (standardised actions)")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)


def plot(report: dict[str, Any], path: Path) -> None:
    """MSE vs horizon, one line per representation (solid: linear probe, dashed: MLP), std as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = report["horizons"]
    fig, ax = plt.subplots(figsize=(8.5, 4), dpi=120)
    base = [report["baseline"]["mse"][str(k)]["mean"] for k in ks]
    ax.plot(ks, base, ":", color="black", linewidth=2, zorder=5, label=f"{MEAN_BASELINE} (baseline)")
    goal = [report["goal_conditioned"]["mse"][str(k)]["mean"] for k in ks]
    ax.plot(ks, goal, "-^", color=f"C{len(REPRESENTATIONS)}", label="Goal-conditioned (s_n, s_n+k), linear")
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
    style_probe_axes(ax, ks, f"Probing latent actions: {report['dataset']['camera']}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
