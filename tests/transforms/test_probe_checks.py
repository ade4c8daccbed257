"""`lerobot-stamo-probe` gives no silent wrong answers: another checkpoint's stored states are not reported as
the probed one's, impossible horizons are refused before any feature is computed, errors name `--camera`."""

import numpy as np
import pytest
from test_probe import probe_cfg

import lerobot_stamo.transforms.probe as probe_module
from lerobot_stamo.transforms import LabelConfig, label_dataset
from lerobot_stamo.transforms.labelling import LabelDatasetArgs, LabelPolicyArgs
from lerobot_stamo.transforms.probe import run_probe, stored_states_usable

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
