"""Cameras whose names contain "image" (pusht's `observation.image`, LIBERO's `observation.images.image` and
`observation.images.wrist_image`): one naming function for the StaMo columns, and the whole path on them:
`lerobot-stamo-label`, `lerobot-stamo-probe`, the `stamo_pseudo_action` step and a `stamo_vla` lerobot-train."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import cli, run_cli
from labelling_utils import IMAGE_NAMED_CAMERAS, read_labelled
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.processor import PolicyProcessorPipeline
from lerobot.processor.converters import batch_to_transition, transition_to_batch

from lerobot_stamo.columns import (
    RESERVED_SUBSTRINGS,
    VALID_KEY,
    load_labels,
    motion_key,
    stamo_columns,
    state_key,
)
from lerobot_stamo.policies.stamo import StamoPseudoActionStep

REPO_ROOT = Path(__file__).resolve().parents[2]
HORIZON = 2


def test_column_names_are_plain_for_normal_cameras_and_never_special():
    assert state_key("observation.images.front") == "observation.stamo_state.front"
    assert motion_key("front") == "observation.stamo_motion.front"
    cameras = [
        "observation.image",
        "observation.images.image",
        "observation.images.wrist_image",
        "observation.images.imimagege",
        "observation.pixels",
        "observation.images.visual",
        "observation.images.front_is_pad",
        "observation.images.a--b",
        "observation.images.a-b",
        "observation.images.img",
        "observation.images.img--aaaaaaaa",
        "observation.images.front",
        "front",
    ]
    names = [state_key(c) for c in cameras] + [motion_key(c) for c in cameras]
    for name in names:
        assert not any(token in name for token in RESERVED_SUBSTRINGS), name
        assert ".images." not in name
    # "front" and "observation.images.front" are the same camera; every other pair gets its own column.
    assert len(set(names)) == len(names) - 2
    assert state_key("observation.images.img") == "observation.stamo_state.img"  # kept as is
    assert state_key("observation.images.image").startswith("observation.stamo_state.img--")
    assert state_key("observation.image") != state_key("observation.images.image")
    columns = stamo_columns(list(IMAGE_NAMED_CAMERAS))
    assert columns["state"] == {c: state_key(c) for c in IMAGE_NAMED_CAMERAS}


@pytest.fixture(scope="module")
def labelled_image_named(stamo_checkpoint, image_named_dataset, tmp_path_factory) -> Path:
    """The image-named dataset labelled through the `lerobot-stamo-label` console script."""
    repo_id, root = image_named_dataset
    out = tmp_path_factory.mktemp("labelled_image_named") / "pusht_like_stamo"
    run_cli(
        [cli("lerobot-stamo-label"), f"--policy.path={stamo_checkpoint}", f"--dataset.repo_id={repo_id}",
         f"--dataset.root={root}", f"--output_dir={out}", f"--horizon={HORIZON}", "--num_workers=0",
         "--batch_size=8"],
        cwd=REPO_ROOT,
    )  # fmt: skip
    return out


def test_label_cli_on_image_named_cameras(labelled_image_named):
    ds, cols = read_labelled(labelled_image_named)
    labels = load_labels(labelled_image_named)
    assert labels["cameras"] == list(IMAGE_NAMED_CAMERAS)
    assert labels["columns"]["state"] == {c: state_key(c) for c in IMAGE_NAMED_CAMERAS}
    assert labels["columns"]["motion"] == {c: motion_key(c) for c in IMAGE_NAMED_CAMERAS}
    stats = json.loads((labelled_image_named / "meta" / "stats.json").read_text())
    for cam in IMAGE_NAMED_CAMERAS:
        assert cols[state_key(cam)].shape == (ds.meta.total_frames, 2, 32)
        assert np.asarray(stats[state_key(cam)]["mean"]).shape == (2, 32)
        assert np.asarray(stats[cam]["mean"]).shape == (3, 1, 1)  # the cameras' own stats are kept
    assert cols[VALID_KEY].bool().sum() == ds.meta.total_frames - HORIZON * ds.meta.total_episodes


def test_pseudo_action_step_matches_the_labels(stamo_checkpoint, labelled_image_named):
    """The in-batch step on (t, t+k) frame stacks gives the labeller's states and motion."""
    info = load_labels(labelled_image_named)
    ds = LeRobotDataset(
        f"{info['source_repo_id']}_stamo",
        root=labelled_image_named,
        delta_timestamps={cam: [0.0, HORIZON / 10] for cam in IMAGE_NAMED_CAMERAS},
    )
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4, shuffle=False)))
    step = StamoPseudoActionStep(
        policy_path=str(stamo_checkpoint), cameras=list(IMAGE_NAMED_CAMERAS), write_states=True
    )
    pipeline = PolicyProcessorPipeline(
        steps=[step], to_transition=batch_to_transition, to_output=transition_to_batch
    )
    out = pipeline({k: v for k, v in batch.items() if not k.startswith("observation.stamo")})
    assert out[VALID_KEY].all()
    for cam in IMAGE_NAMED_CAMERAS:
        torch.testing.assert_close(out[state_key(cam)], batch[state_key(cam)], atol=2e-4, rtol=1e-3)
        torch.testing.assert_close(out[motion_key(cam)], batch[motion_key(cam)], atol=2e-4, rtol=1e-3)


def test_probe_cli_on_image_named_cameras(stamo_checkpoint, labelled_image_named, tmp_path):
    """Stored states of the same checkpoint are read; the short episode is skipped at k=8 with a warning."""
    info = load_labels(labelled_image_named)
    proc = run_cli(
        [cli("lerobot-stamo-probe"), f"--policy.path={stamo_checkpoint}",
         f"--dataset.repo_id={info['source_repo_id']}_stamo", f"--dataset.root={labelled_image_named}",
         f"--output_dir={tmp_path}", "--camera=observation.image", "--horizons=[1,8]", "--seeds=[0]",
         "--steps=10", "--test_episodes=[1]"],
        cwd=REPO_ROOT,
    )  # fmt: skip
    report = json.loads((tmp_path / "probe.json").read_text())
    assert report["horizons"] == [1, 8] and report["dataset"]["camera"] == "observation.image"
    assert report["dataset"]["stamo_states"].startswith("read from the dataset's")
    assert "episode(s) [2] have <= 8 frames" in proc.stderr + proc.stdout
    assert "| StaMo state difference | linear (ridge) |" in proc.stdout


@pytest.mark.slow
def test_stamo_vla_trains_on_image_named_labels(labelled_image_named, tmp_path):
    info = load_labels(labelled_image_named)
    out = tmp_path / "train"
    proc = subprocess.run(
        [cli("lerobot-train"), "--policy.type=stamo_vla", "--policy.device=cpu", "--policy.push_to_hub=false",
         "--policy.dim_model=32", "--policy.n_heads=4", "--policy.n_layers=1", "--policy.dim_feedforward=64",
         "--policy.world_model_hidden_dim=32", "--policy.chunk_size=4", "--policy.n_action_steps=2",
         f"--dataset.repo_id={info['source_repo_id']}_stamo", f"--dataset.root={labelled_image_named}",
         f"--output_dir={out}", "--steps=2", "--save_freq=2", "--batch_size=4", "--num_workers=0",
         "--wandb.enable=false"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-6000:]
    config = json.loads((out / "checkpoints" / "last" / "pretrained_model" / "config.json").read_text())
    assert set(config["target_features"]) >= {state_key(c) for c in IMAGE_NAMED_CAMERAS}
