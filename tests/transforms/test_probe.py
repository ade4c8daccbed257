"""`lerobot-stamo-probe`: end to end on a tiny dataset, three outputs, stored vs encoded states, bad input; no silent
wrong answers (checkpoint B on A's labels, horizons longer than the episodes, errors naming --camera)."""

import json
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset

import lerobot_stamo.transforms.probe as probe_module
from lerobot_stamo.policies.stamo import StamoPolicy
from lerobot_stamo.transforms import LabelConfig, label_dataset
from lerobot_stamo.transforms.labelling import LabelDatasetArgs, LabelPolicyArgs
from lerobot_stamo.transforms.probe import (
    ProbeConfig,
    fit_mlp,
    fit_ridge,
    frame_features,
    mean_baseline,
    probe_tuples,
    run_probe,
    stored_states_usable,
)


def probe_cfg(ckpt, repo_id, root, out, **kw) -> ProbeConfig:
    return ProbeConfig(
        policy=LabelPolicyArgs(path=str(ckpt)),
        dataset=LabelDatasetArgs(repo_id=repo_id, root=str(root)),
        output_dir=str(out),
        **{"horizons": [1, 4], "seeds": [0, 1], "steps": 30, **kw},
    )


def test_probe_end_to_end(stamo_checkpoint, sim_dataset, tmp_path):
    repo_id, root = sim_dataset
    report = run_probe(probe_cfg(stamo_checkpoint, repo_id, root, tmp_path))
    for name in ("probe.json", "probe.md", "probe.png"):
        assert (tmp_path / name).stat().st_size > 0
    saved = json.loads((tmp_path / "probe.json").read_text())
    assert saved == json.loads(json.dumps(report))
    assert saved["dataset"]["test_episodes"] == [2] and saved["horizons"] == [1, 4]
    for name in ("stamo", "backbone", "pixels"):
        for k in ("1", "4"):
            ridge, mlp = saved["results"][name]["linear"][k], saved["results"][name]["mlp"][k]
            assert len(ridge["per_seed"]) == 1 and ridge["alpha"] in saved["probes"]["ridge_alphas"]
            assert len(mlp["per_seed"]) == 2 and np.isfinite(mlp["mean"]) and mlp["std"] >= 0
            assert all(0 <= s <= 30 for s in mlp["best_step"])
    for k in ("1", "4"):  # the training-mean baseline (~1 on average; one held-out episode here)
        assert saved["baseline"]["mse"][k]["mean"] > 0 and len(saved["baseline"]["mse"][k]["per_seed"]) == 1
    assert set(saved["goal_conditioned"]["mse"]) == {"1", "4"}
    table = (tmp_path / "probe.md").read_text()
    assert "StaMo state difference" in table and "Pooled Delta Image" in table and "Goal-conditioned" in table
    assert "| Predict the training mean | none |" in table
    assert (tmp_path / "probe.png").read_bytes()[:4] == b"\x89PNG"


def _synthetic(features, seed: int = 0, episodes: int = 6, length: int = 40, dim: int = 16, out: int = 4):
    """Tuples of `episodes` episodes: features x (state differences) and action chunks y = f(x) + noise."""
    g = torch.Generator().manual_seed(seed)
    n = episodes * length
    x = torch.randn(n, dim, generator=g) * torch.linspace(0.1, 10, dim)  # unequal scales: standardised
    y = features(x, torch.randn(n, out, generator=g)) + 5.0
    groups = np.repeat(np.arange(episodes), length)
    train = groups < episodes - 1  # the last episode is held out
    return x[train], y[train], groups[train], x[~train], y[~train]


def test_ridge_probe_recovers_a_linear_map_and_stays_at_the_mean_on_noise():
    cfg = ProbeConfig(steps=200, patience=20)
    w = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    x_tr, y_tr, g_tr, x_te, y_te = _synthetic(lambda x, noise: x @ w)  # exact linear function of x
    mse, alpha = fit_ridge(x_tr, y_tr, g_tr, x_te, y_te, cfg)
    assert mse < 1e-3 and alpha == min(cfg.ridge_alphas), (mse, alpha)
    assert mean_baseline(y_tr, y_te) > 0.3

    for seed in range(3):  # pure-noise features: no better than the mean, but never much worse
        x_tr, y_tr, g_tr, x_te, y_te = _synthetic(lambda x, noise: noise, seed=seed)
        base = mean_baseline(y_tr, y_te)
        mse, alpha = fit_ridge(x_tr, y_tr, g_tr, x_te, y_te, cfg)
        assert mse < base * 1.1 and alpha >= 100, (mse, base, alpha)
        mlp, _ = fit_mlp(x_tr, y_tr, g_tr, x_te, y_te, seed, cfg)
        assert mlp < base * 1.15, (mlp, base)


def test_mlp_probe_learns_a_nonlinear_map_with_early_stopping():
    cfg = ProbeConfig(steps=400, patience=50, lr=1e-2)
    x_tr, y_tr, g_tr, x_te, y_te = _synthetic(lambda x, noise: (x[:, :4] / x[:, :4].std(0)).abs())
    base = mean_baseline(y_tr, y_te)
    mse, step = fit_mlp(x_tr, y_tr, g_tr, x_te, y_te, 0, cfg)
    ridge, _ = fit_ridge(x_tr, y_tr, g_tr, x_te, y_te, cfg)
    assert mse < 0.7 * base and mse < ridge and 0 < step <= 400, (mse, base, ridge, step)


def test_probe_reads_stored_states_of_a_labelled_dataset(stamo_checkpoint, sim_dataset, tmp_path):
    repo_id, root = sim_dataset
    out = tmp_path / "labelled"
    label_dataset(
        LabelConfig(
            policy=LabelPolicyArgs(path=str(stamo_checkpoint)),
            dataset=LabelDatasetArgs(repo_id=repo_id, root=str(root)),
            output_dir=str(out),
            cameras=["front"],
            num_workers=0,
        )
    )
    policy = StamoPolicy.from_pretrained(stamo_checkpoint).eval()
    cfg = probe_cfg(stamo_checkpoint, f"{repo_id}_stamo", out, tmp_path)
    labelled = LeRobotDataset(f"{repo_id}_stamo", root=out)
    usable, source = stored_states_usable(labelled, "observation.images.front", str(stamo_checkpoint), None)
    assert usable and source.startswith("read from the dataset's 'observation.stamo_state.front'")
    stored = frame_features(policy, labelled, "observation.images.front", cfg, stored=True)
    encoded = frame_features(policy, LeRobotDataset(repo_id, root=root), "observation.images.front", cfg)
    np.testing.assert_allclose(stored["stamo"], encoded["stamo"], atol=1e-5)
    assert stored["backbone"].shape[0] == stored["pixels"].shape[0] == len(encoded["stamo"])


def test_probe_refuses_a_video_only_dataset(stamo_checkpoint, video_dataset, tmp_path):
    repo_id, root = video_dataset
    with pytest.raises(ValueError, match="no 'action' column"):
        run_probe(probe_cfg(stamo_checkpoint, repo_id, root, tmp_path))


@pytest.mark.slow
def test_probe_cli(stamo_checkpoint, sim_dataset, tmp_path):
    import subprocess

    repo_id, root = sim_dataset
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lerobot_stamo.scripts.lerobot_stamo_probe",
            f"--policy.path={stamo_checkpoint}",
            f"--dataset.repo_id={repo_id}",
            f"--dataset.root={root}",
            f"--output_dir={tmp_path}",
            "--horizons=[1,8]",
            "--seeds=[0]",
            "--steps=20",
            "--camera=wrist",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "| StaMo state difference | linear (ridge) |" in proc.stdout
    assert "| Predict the training mean | none |" in proc.stdout
    assert (
        json.loads((tmp_path / "probe.json").read_text())["dataset"]["camera"] == "observation.images.wrist"
    )


def test_relative_action_chunks_subtract_the_state_at_the_chunk_start():
    meta = SimpleNamespace(episodes=[{"dataset_from_index": 0, "dataset_to_index": 4}])
    actions = np.arange(8, dtype=np.float32).reshape(4, 2) + 100  # rows: [100, 101], [102, 103], ...
    state = np.arange(8, dtype=np.float32).reshape(4, 2)
    start, end, chunks, _ = probe_tuples(meta, actions, 2, [0], reference=state)
    assert start.tolist() == [0, 1] and end.tolist() == [2, 3]
    # n = 0: (a_0 - q_0, a_1 - q_0); n = 1: (a_1 - q_1, a_2 - q_1)
    np.testing.assert_array_equal(chunks, [[100, 100, 102, 102], [100, 100, 102, 102]])
    _, _, absolute, _ = probe_tuples(meta, actions, 2, [0])
    np.testing.assert_array_equal(absolute[0], [100, 101, 102, 103])
    with pytest.raises(ValueError, match="--action_mode"):
        ProbeConfig(action_mode="delta")


def test_probe_with_relative_actions(stamo_checkpoint, sim_dataset, tmp_path):
    repo_id, root = sim_dataset
    report = run_probe(
        probe_cfg(stamo_checkpoint, repo_id, root, tmp_path, horizons=[2], seeds=[0], action_mode="relative")
    )
    assert report["action_mode"] == "relative" and report["goal_conditioned"]["target"].endswith("- q_n")
    assert "relative actions (a - q_n)" in (tmp_path / "probe.md").read_text()


# ----------------------------------------------------------------- no silent wrong answers
FRONT = "observation.images.front"


@pytest.fixture(scope="module")
def labelled_by_a(stamo_checkpoint, sim_dataset, tmp_path_factory):
    """(repo_id, root) of the recorded dataset labelled (front camera) by checkpoint A."""
    repo_id, root = sim_dataset
    out = tmp_path_factory.mktemp("labelled_a") / "so101_stamo"
    label_dataset(
        LabelConfig(
            policy=LabelPolicyArgs(path=str(stamo_checkpoint)),
            dataset=LabelDatasetArgs(repo_id=repo_id, root=str(root)),
            output_dir=str(out),
            cameras=["front"],
            num_workers=0,
        )
    )
    return f"{repo_id}_stamo", out


def test_probe_with_checkpoint_b_encodes_instead_of_reading_a_states(
    stamo_checkpoint, other_stamo_checkpoint, labelled_by_a, sim_dataset, tmp_path, caplog
):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    repo_id, root = labelled_by_a
    ds = LeRobotDataset(repo_id, root=root)
    assert stored_states_usable(ds, FRONT, str(stamo_checkpoint), None)[0]
    usable, source = stored_states_usable(ds, FRONT, str(other_stamo_checkpoint), None)
    assert not usable and f"written by checkpoint {str(stamo_checkpoint.resolve())!r}" in source

    kw = {"horizons": [2], "seeds": [0], "steps": 5, "camera": "front"}
    with caplog.at_level("WARNING"):
        on_labelled = run_probe(probe_cfg(other_stamo_checkpoint, repo_id, root, tmp_path / "a", **kw))
    assert on_labelled["dataset"]["stamo_states"].startswith("encoded with --policy.path, not read from")
    assert "encoded with --policy.path" in caplog.text
    # The same numbers as probing checkpoint B on the unlabelled source: B's own states were used.
    on_source = run_probe(probe_cfg(other_stamo_checkpoint, *sim_dataset, tmp_path / "b", **kw))
    for kind in ("linear", "mlp"):
        np.testing.assert_allclose(
            on_labelled["results"]["stamo"][kind]["2"]["per_seed"],
            on_source["results"]["stamo"][kind]["2"]["per_seed"],
            rtol=1e-4,
        )
    assert on_source["dataset"]["stamo_states"].startswith("encoded with --policy.path (the dataset has no")


def test_horizon_longer_than_every_episode_is_refused_before_features(
    stamo_checkpoint, sim_dataset, tmp_path, monkeypatch
):
    def never(*args, **kwargs):
        raise AssertionError("features were computed for an impossible probe")

    monkeypatch.setattr(probe_module, "frame_features", never)
    repo_id, root = sim_dataset
    with pytest.raises(
        ValueError, match=r"No horizon in --horizons=\[500, 900\] fits.*Use shorter --horizons"
    ):
        run_probe(probe_cfg(stamo_checkpoint, repo_id, root, tmp_path, horizons=[500, 900]))
    assert not (tmp_path / "probe.json").exists()


def test_probe_errors_name_the_camera_flag(stamo_checkpoint, sim_dataset, tmp_path):
    repo_id, root = sim_dataset
    with pytest.raises(ValueError, match=r"'top' is not in dataset.*Fix --camera\.$"):
        run_probe(probe_cfg(stamo_checkpoint, repo_id, root, tmp_path, camera="top"))
