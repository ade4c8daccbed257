"""lerobot-stamo-sim-record: a loadable LeRobotDataset v3, reproducible, never half-written."""

import json
import os
import subprocess

import numpy as np
import pytest
from cli_helpers import SIM_IMAGE_HW, cli, run_cli
from lerobot.datasets.lerobot_dataset import LeRobotDataset

from lerobot_stamo.console import TORCHCODEC_HELP
from lerobot_stamo.envs import MOTOR_FEATURE_NAMES
from lerobot_stamo.envs import recording as rec


def small_cfg(root, **kw) -> rec.SimRecordConfig:
    fields = dict(repo_id="local/rec", root=root, num_episodes=2, observation_height=32, observation_width=32)
    fields.update(kw)
    return rec.SimRecordConfig(**fields)


def test_recorded_dataset_loads_with_lerobot(sim_dataset):
    repo_id, root = sim_dataset
    ds = LeRobotDataset(repo_id, root=root)
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["robot_type"] == "so101_follower" and info["fps"] == 10
    assert ds.num_episodes == 3
    lengths = [ep["length"] for ep in ds.meta.episodes]
    assert ds.num_frames == sum(lengths) == len(ds)
    assert ds.meta.features["observation.state"]["names"] == MOTOR_FEATURE_NAMES
    assert ds.meta.features["action"]["names"] == MOTOR_FEATURE_NAMES
    item = ds[0]
    assert item["observation.images.front"].shape == (3, SIM_IMAGE_HW, SIM_IMAGE_HW)
    assert item["observation.images.wrist"].shape == (3, SIM_IMAGE_HW, SIM_IMAGE_HW)
    assert item["task"] == "Pick up the cube and lift it."
    assert "action" in ds.meta.stats and "observation.images.front" in ds.meta.stats
    assert not (root / "images").exists()  # LeRobot's PNG staging folders are not left behind


def test_video_only_has_frames_and_task_only(tmp_path):
    root = rec.record(small_cfg(tmp_path / "video", video_only=True, task="PickPlace"))
    ds = LeRobotDataset("local/rec", root=root)
    assert "action" not in ds.meta.features and "observation.state" not in ds.meta.features
    assert {"observation.images.front", "observation.images.wrist"} <= set(ds.meta.features)
    assert ds[0]["task"] == "Put the cube on the green pad."


def test_same_seed_reproduces_the_same_episodes(tmp_path):
    a = rec.record(small_cfg(tmp_path / "a", use_videos=False, seed=5))
    b = rec.record(small_cfg(tmp_path / "b", use_videos=False, seed=5))
    c = rec.record(small_cfg(tmp_path / "c", use_videos=False, seed=6, num_episodes=1))
    da, db, dc = (LeRobotDataset("local/rec", root=r) for r in (a, b, c))
    assert da.num_frames == db.num_frames
    cols = ["action", "observation.state"]
    ha, hb, hc = (d.hf_dataset.with_format("numpy") for d in (da, db, dc))
    for col in cols:
        np.testing.assert_array_equal(ha[col], hb[col])
    np.testing.assert_array_equal(da[3]["observation.images.front"], db[3]["observation.images.front"])
    assert not np.array_equal(ha["action"][:5], hc["action"][:5])


def test_interrupted_run_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = {"n": 0}
    original = rec.run_expert_episode

    def crash_on_second_episode(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(rec, "run_expert_episode", crash_on_second_episode)
    with pytest.raises(KeyboardInterrupt):
        rec.record(small_cfg(tmp_path / "ds"))
    assert list(tmp_path.iterdir()) == []


def test_existing_root_is_refused_unless_overwrite(tmp_path):
    root = rec.record(small_cfg(tmp_path / "ds", num_episodes=1, use_videos=False))
    marker = json.loads((root / rec.MARKER).read_text())
    assert marker["recorded_by"] == "lerobot-stamo-sim-record" and marker["episodes"] == 1
    with pytest.raises(FileExistsError, match="--overwrite=true"):
        rec.record(small_cfg(root, use_videos=False))
    rec.record(small_cfg(root, num_episodes=2, use_videos=False, overwrite=True))
    assert LeRobotDataset("local/rec", root=root).num_episodes == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no temporary folder left


def test_overwrite_never_replaces_a_folder_it_did_not_record(tmp_path):
    """Issue 12: --overwrite=true on a folder that is not a recorded dataset deleted it."""
    root = tmp_path / "mine"
    root.mkdir()
    (root / "keep.txt").write_text("user data")
    with pytest.raises(
        FileExistsError, match="not a dataset recorded by lerobot-stamo-sim-record.*another --root"
    ):
        rec.record(small_cfg(root, overwrite=True))
    assert (root / "keep.txt").read_text() == "user data"
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not a dataset recorded"):
        rec.record(small_cfg(tmp_path / "file", overwrite=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "mine"]


def test_rerun_removes_the_temporary_folder_of_a_killed_run(tmp_path):
    dead = tmp_path / ".ds.tmp-999999999-0123abcd"  # no process has this id
    legacy = tmp_path / ".ds.tmp-89abcdef"  # the name earlier versions used
    alive = tmp_path / f".ds.tmp-{os.getpid()}-0123abcd"  # a recording still running
    other = tmp_path / ".other.tmp-999999999-0123abcd"  # another dataset's
    for folder in (dead, legacy, alive, other):
        (folder / "meta").mkdir(parents=True)
    rec.record(small_cfg(tmp_path / "ds", num_episodes=1, use_videos=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ds", alive.name, other.name])


def test_bad_arguments_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="PickCube, PickPlace"):
        small_cfg(tmp_path / "x", task="Pick")
    with pytest.raises(ValueError, match="--num_episodes"):
        small_cfg(tmp_path / "x", num_episodes=0)
    # Issue 12: a zero size was blamed on OpenGL, a small one crashed the AV1 encoder (SIGFPE).
    with pytest.raises(ValueError, match=r"--observation_height=0 is too small.*--observation_height>=32"):
        small_cfg(tmp_path / "x", observation_height=0)
    with pytest.raises(ValueError, match=r"--observation_width=16 .*--use_videos=false"):
        small_cfg(tmp_path / "x", observation_width=16)
    small_cfg(tmp_path / "x", observation_width=16, use_videos=False)  # PNG frames of any size
    with pytest.raises(ValueError, match=r"--cameras=\['top'\].*front"):
        small_cfg(tmp_path / "x", cameras=["top"])
    with pytest.raises(ValueError, match="--steps_after_success"):
        small_cfg(tmp_path / "x", steps_after_success=-1)
    assert not (tmp_path / "x").exists()


def test_console_script_refuses_to_replace_a_folder_of_someone_else(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    args = [cli("lerobot-stamo-sim-record"), f"--root={tmp_path / 'notes'}", "--overwrite=true"]
    proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "not a dataset recorded by lerobot-stamo-sim-record" in last and "--root" in last, proc.stderr
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["notes"]


@pytest.mark.slow
def test_console_script_prints_expert_success_rate(tmp_path):
    proc = run_cli(
        [
            cli("lerobot-stamo-sim-record"),
            "--repo_id=local/cli",
            f"--root={tmp_path / 'cli'}",
            "--task=PickPlace",
            "--num_episodes=1",
            "--observation_height=32",
            "--observation_width=32",
        ],
        cwd=tmp_path,
    )
    assert "expert success rate 1/1" in proc.stdout
    # Issue 13: no decoder traceback, no encoder banner.
    log = proc.stdout + proc.stderr
    assert "Traceback" not in log and "Svt[" not in log and "SVT [" not in log, log
    assert "Map:" not in log, log  # datasets' per-episode progress bar, between the recording bar's lines
    assert log.count(TORCHCODEC_HELP) <= 1 and "libtorchcodec loading traceback" not in log
    assert LeRobotDataset("local/cli", root=tmp_path / "cli").num_episodes == 1
