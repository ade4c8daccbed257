"""`lerobot-stamo-probe`: end to end on a tiny dataset, three outputs, stored vs encoded states, bad input."""

import json
import sys

import numpy as np
import pytest
from lerobot.datasets.lerobot_dataset import LeRobotDataset

from lerobot_stamo.policies.stamo import StamoPolicy
from lerobot_stamo.transforms import LabelConfig, label_dataset
from lerobot_stamo.transforms.labelling import LabelDatasetArgs, LabelPolicyArgs
from lerobot_stamo.transforms.probe import ProbeConfig, frame_features, run_probe


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
        for kind in ("linear", "mlp"):
            for k in ("1", "4"):
                cell = saved["results"][name][kind][k]
                assert len(cell["per_seed"]) == 2 and np.isfinite(cell["mean"]) and cell["std"] >= 0
    assert set(saved["goal_conditioned"]["mse"]) == {"1", "4"}
    table = (tmp_path / "probe.md").read_text()
    assert "StaMo state difference" in table and "Pooled Delta Image" in table and "Goal-conditioned" in table
    assert (tmp_path / "probe.png").read_bytes()[:4] == b"\x89PNG"


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
    stored = frame_features(
        policy, LeRobotDataset(f"{repo_id}_stamo", root=out), "observation.images.front", cfg
    )
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
    assert "| StaMo state difference | linear |" in proc.stdout
    assert (
        json.loads((tmp_path / "probe.json").read_text())["dataset"]["camera"] == "observation.images.wrist"
    )
