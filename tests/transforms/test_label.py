"""`lerobot-stamo-label`: columns, shapes, masks, stats, metadata, bad input, kill-and-resume, accelerate; never
deleting what is not its own (outputs overlapping an input, --overwrite of foreign folders, leftover work)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from cli_helpers import accelerate_launch
from labelling_utils import read_labelled

from lerobot_stamo.cards import DOCS_URL
from lerobot_stamo.paths import check_output_path
from lerobot_stamo.policies.stamo import StamoPolicy
from lerobot_stamo.transforms import VALID_KEY, LabelConfig, label_dataset, load_labels, motion_key, state_key
from lerobot_stamo.transforms.labelled_dataset import shard_path
from lerobot_stamo.transforms.labelling import (
    LabelDatasetArgs,
    LabelPolicyArgs,
    resolve_cameras,
    work_dir_for,
)

FRONT, WRIST = "observation.images.front", "observation.images.wrist"


def make_cfg(ckpt, dataset, out, **kw) -> LabelConfig:
    repo_id, root = dataset
    return LabelConfig(
        policy=LabelPolicyArgs(path=str(ckpt)),
        dataset=LabelDatasetArgs(repo_id=repo_id, root=str(root)),
        output_dir=str(out),
        **{"batch_size": 8, "num_workers": 0, **kw},
    )


def cli_args(ckpt, dataset, out, *extra) -> list[str]:
    repo_id, root = dataset
    return [
        f"--policy.path={ckpt}",
        f"--dataset.repo_id={repo_id}",
        f"--dataset.root={root}",
        f"--output_dir={out}",
        *extra,
    ]


@pytest.fixture(scope="module")
def labelled_h2(stamo_checkpoint, sim_dataset, tmp_path_factory) -> Path:
    """The robot dataset labelled with horizon 2 (in-process, one DataLoader worker)."""
    out = tmp_path_factory.mktemp("labelled") / "h2"
    label_dataset(make_cfg(stamo_checkpoint, sim_dataset, out, horizon=2, num_workers=1))
    return out


def test_label_robot_dataset(labelled_h2, stamo_checkpoint, sim_dataset):
    ds, cols = read_labelled(labelled_h2)
    meta, k = ds.meta, 2
    n = meta.total_frames
    src = ds.meta.features
    for key in ("action", "observation.state", FRONT, WRIST):  # the source columns are all kept
        assert key in src
    for cam in (FRONT, WRIST):
        assert cols[state_key(cam)].shape == (n, 2, 32) and cols[state_key(cam)].dtype == torch.float32
        assert tuple(src[state_key(cam)]["shape"]) == (2, 32)
    assert state_key(FRONT) == "observation.stamo_state.front"
    assert motion_key(WRIST) == "observation.stamo_motion.wrist"

    valid = cols[VALID_KEY].bool().view(-1)
    for ep in range(meta.total_episodes):
        a, b = int(meta.episodes[ep]["dataset_from_index"]), int(meta.episodes[ep]["dataset_to_index"])
        assert valid[a : b - k].all() and not valid[b - k : b].any()
        for cam in (FRONT, WRIST):
            s, m = cols[state_key(cam)][a:b], cols[motion_key(cam)][a:b]
            torch.testing.assert_close(m[:-k], s[k:] - s[:-k], rtol=0, atol=0)
            assert (m[-k:] == 0).all()

    # The states are the policy's own encoding of the frames.
    policy = StamoPolicy.from_pretrained(stamo_checkpoint).eval()
    frames = torch.stack([ds[i][FRONT] for i in range(5)])
    torch.testing.assert_close(policy.encode(frames), cols[state_key(FRONT)][:5], atol=1e-5, rtol=1e-5)

    # Stats of the new columns, per token and dimension; motion stats from valid frames only.
    stats = meta.stats
    for cam in (FRONT, WRIST):
        for key in (state_key(cam), motion_key(cam)):
            assert np.asarray(stats[key]["mean"]).shape == (2, 32)
            assert np.isfinite(np.asarray(stats[key]["std"])).all()
        mvalid = cols[motion_key(cam)][valid]
        np.testing.assert_allclose(stats[motion_key(cam)]["mean"], mvalid.mean(0).numpy(), atol=1e-5)
    assert np.asarray(stats[VALID_KEY]["mean"]).item() == pytest.approx(valid.float().mean().item(), abs=1e-6)
    assert "action" in stats  # the source stats are kept

    info = load_labels(labelled_h2)
    assert info["policy_path"] == str(Path(stamo_checkpoint).resolve())
    assert len(info["weights_sha256"]) == 64 and info["horizon"] == 2
    assert info["cameras"] == [FRONT, WRIST] and info["source_repo_id"] == sim_dataset[0]
    assert not work_dir_for(labelled_h2).exists()

    # Same arguments again: nothing to do, the folder is left as it is.
    mtime = (labelled_h2 / "meta" / "stats.json").stat().st_mtime
    label_dataset(make_cfg(stamo_checkpoint, sim_dataset, labelled_h2, horizon=2, num_workers=1))
    assert (labelled_h2 / "meta" / "stats.json").stat().st_mtime == mtime


def test_label_video_only_dataset(stamo_checkpoint, video_dataset, tmp_path):
    out = tmp_path / "video_stamo"
    label_dataset(make_cfg(stamo_checkpoint, video_dataset, out, cameras=["front"]))
    ds, cols = read_labelled(out)
    assert "action" not in ds.meta.features and "observation.state" not in ds.meta.features
    assert set(cols) == {state_key(FRONT), motion_key(FRONT), VALID_KEY}
    assert cols[motion_key(FRONT)].shape == (ds.meta.total_frames, 2, 32)
    item = ds[0]  # a training item carries the label under an observation.* key
    assert item[motion_key(FRONT)].shape == (2, 32) and bool(item[VALID_KEY])


def test_bad_input_is_refused_before_any_work(stamo_checkpoint, act_checkpoint, sim_dataset, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"'top' is not in dataset.*\['front', 'wrist'\]"):
        label_dataset(make_cfg(stamo_checkpoint, sim_dataset, out, cameras=["top"]))
    with pytest.raises(ValueError, match="--horizon=500 is not shorter than any episode"):
        label_dataset(make_cfg(stamo_checkpoint, sim_dataset, out, horizon=500))
    with pytest.raises(TypeError, match="'act' checkpoint, not a 'stamo' one"):
        label_dataset(make_cfg(act_checkpoint, sim_dataset, out))
    with pytest.raises(ValueError, match="--horizon must be >= 1"):
        make_cfg(stamo_checkpoint, sim_dataset, out, horizon=0)
    assert not out.exists() and not work_dir_for(out).exists()

    # Frames that are not 3-channel RGB (e.g. a depth stream).
    meta = SimpleNamespace(
        repo_id="x/y",
        camera_keys=["observation.images.depth"],
        features={
            "observation.images.depth": {"shape": [64, 64, 1], "names": ["height", "width", "channels"]}
        },
    )
    with pytest.raises(ValueError, match="has 1 channel.*expects 3-channel RGB"):
        resolve_cameras(meta, None)


def test_refuses_a_different_labelling_unless_overwrite(stamo_checkpoint, labelled_h2, sim_dataset):
    with pytest.raises(FileExistsError, match="already holds a different stamo labelling.*--overwrite=true"):
        label_dataset(make_cfg(stamo_checkpoint, sim_dataset, labelled_h2, horizon=1, num_workers=1))
    assert load_labels(labelled_h2)["horizon"] == 2  # untouched


def test_overwrite_replaces_only_a_labelled_dataset(stamo_checkpoint, sim_dataset, tmp_path, caplog):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("not a dataset")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="not a dataset written by lerobot-stamo-label"):
            label_dataset(
                make_cfg(stamo_checkpoint, sim_dataset, out, cameras=["wrist"], overwrite=overwrite)
            )
    assert (out / "notes.txt").read_text() == "not a dataset"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing written next to it either

    out = tmp_path / "labelled"
    label_dataset(make_cfg(stamo_checkpoint, sim_dataset, out, cameras=["wrist"]))
    with caplog.at_level("WARNING"):
        label_dataset(make_cfg(stamo_checkpoint, sim_dataset, out, cameras=["front"], overwrite=True))
    assert load_labels(out)["cameras"] == [FRONT]
    assert f"replacing the stamo-labelled dataset at {out.resolve()}" in caplog.text
    assert "cameras ['observation.images.wrist']" in caplog.text
    assert not work_dir_for(out).exists()


def _columns(root: Path) -> dict[str, torch.Tensor]:
    return read_labelled(root)[1]


@pytest.mark.slow
def test_kill_and_resume_gives_identical_output(stamo_checkpoint, sim_dataset, labelled_h2, tmp_path):
    out = tmp_path / "resumed"
    work = work_dir_for(out)
    args = [sys.executable, "-m", "lerobot_stamo.scripts.lerobot_stamo_label"]
    args += cli_args(stamo_checkpoint, sim_dataset, out, "--horizon=2", "--batch_size=8", "--num_workers=1")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    # Kill right after the first episode shard lands, then after the second: no output may be visible.
    for shards_before_kill in (1, 2):
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list((work / "states").glob("episode_*.safetensors"))) >= shards_before_kill:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not out.exists(), "a killed run left a dataset at --output_dir"
        assert shard_path(work, shards_before_kill - 1).exists()

    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "already encoded" in proc.stderr
    assert not work.exists()
    resumed, reference = _columns(out), _columns(labelled_h2)
    assert resumed.keys() == reference.keys()
    for key in reference:
        torch.testing.assert_close(resumed[key], reference[key], rtol=0, atol=1e-6, msg=key)


@pytest.mark.slow
def test_accelerate_two_processes_equal_one(stamo_checkpoint, sim_dataset, labelled_h2, tmp_path):
    out = tmp_path / "two_ranks"
    args = [*accelerate_launch(2), "-m", "lerobot_stamo.scripts.lerobot_stamo_label"]
    args += cli_args(stamo_checkpoint, sim_dataset, out, "--horizon=2", "--batch_size=8", "--num_workers=0")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=420)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert "rank 0/2: encoded" in log and "rank 1/2: encoded" in log, log[-4000:]
    two, one = _columns(out), _columns(labelled_h2)
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=0, atol=1e-6, msg=key)
    assert json.loads((out / "meta" / "stamo_labels.json").read_text()) == load_labels(labelled_h2) | {
        "policy_path": load_labels(out)["policy_path"]
    }


def test_streaming_merge_equals_reference_and_holds_few_episodes(
    stamo_checkpoint, sim_dataset, labelled_h2, tmp_path, monkeypatch
):
    """Batches of 7 rows (crossing episode boundaries): same columns and stats, <= 2 episodes in memory."""
    from lerobot_stamo.transforms import labelled_dataset

    held = []
    rows = labelled_dataset.EpisodeColumns.rows

    def spy(self, a, b):
        out = rows(self, a, b)
        held.append(len(self.loaded))
        return out

    monkeypatch.setattr(labelled_dataset, "MERGE_ROWS", 7)
    monkeypatch.setattr(labelled_dataset.EpisodeColumns, "rows", spy)
    out = tmp_path / "streamed"
    label_dataset(make_cfg(stamo_checkpoint, sim_dataset, out, horizon=2))
    assert len(held) > 3 and max(held) <= 2
    streamed, reference = _columns(out), _columns(labelled_h2)
    assert streamed.keys() == reference.keys()
    for key in reference:
        torch.testing.assert_close(streamed[key], reference[key], rtol=0, atol=0, msg=key)
    assert json.loads((out / "meta" / "stats.json").read_text()) == json.loads(
        (labelled_h2 / "meta" / "stats.json").read_text()
    )


class FakeHfApi:
    """Records the calls `LeRobotDataset.push_to_hub` makes (and what the uploaded folder holds)."""

    calls: list = []

    def __getattr__(self, name):
        def call(*args, **kwargs):
            files = None
            if "folder_path" in kwargs:
                root = Path(kwargs["folder_path"])
                files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
            FakeHfApi.calls.append((name, args, kwargs, files))

        return call


def test_push_to_hub_uploads_the_labelled_dataset_under_repo_id(
    stamo_checkpoint, video_dataset, labelled_h2, sim_dataset, tmp_path, monkeypatch
):
    from huggingface_hub import DatasetCard
    from lerobot.datasets import lerobot_dataset

    with pytest.raises(ValueError, match="--push_to_hub=true needs --repo_id"):
        make_cfg(stamo_checkpoint, video_dataset, tmp_path / "x", push_to_hub=True)

    FakeHfApi.calls = []
    cards = []
    monkeypatch.setattr(lerobot_dataset, "HfApi", FakeHfApi)
    monkeypatch.setattr(DatasetCard, "push_to_hub", lambda self, **kw: cards.append(kw))
    texts = []  # the dataset card's text: it links back to the docs
    from lerobot.datasets import utils as dataset_utils

    make_card = dataset_utils.create_lerobot_dataset_card

    def record_card(*args, **kwargs):
        card = make_card(*args, **kwargs)
        texts.append(str(card))
        return card

    monkeypatch.setattr(lerobot_dataset, "create_lerobot_dataset_card", record_card)
    out = tmp_path / "pushed"
    cfg = make_cfg(
        stamo_checkpoint, video_dataset, out, cameras=["front"], push_to_hub=True, repo_id="me/video_stamo"
    )
    label_dataset(cfg)
    calls = {name: (args, kw, files) for name, args, kw, files in FakeHfApi.calls}
    assert calls["create_repo"][1] == {
        "repo_id": "me/video_stamo",
        "private": False,
        "repo_type": "dataset",
        "exist_ok": True,
    }
    _, upload, files = calls["upload_folder"]
    assert upload["repo_id"] == "me/video_stamo" and upload["repo_type"] == "dataset"
    assert Path(upload["folder_path"]) == out and "images/" in upload["ignore_patterns"]
    assert {"meta/info.json", "meta/stats.json", "meta/stamo_labels.json"} <= set(files)
    assert any(f.startswith("data/") and f.endswith(".parquet") for f in files)
    assert any(f.startswith("videos/observation.images.front/") for f in files)
    stats = json.loads((out / "meta" / "stats.json").read_text())
    assert {state_key(FRONT), motion_key(FRONT), VALID_KEY} <= set(stats)
    assert cards == [{"repo_id": "me/video_stamo", "repo_type": "dataset", "revision": None}]
    assert f"{DOCS_URL}/latent-motion.md" in texts[0] and "stamo" in texts[0]
    assert calls["create_tag"][0][0] == "me/video_stamo"

    # An already finished labelling is still pushed (nothing re-encoded), privately when asked.
    FakeHfApi.calls = []
    label_dataset(
        make_cfg(
            stamo_checkpoint,
            sim_dataset,
            labelled_h2,
            horizon=2,
            num_workers=1,
            push_to_hub=True,
            private=True,
            repo_id="me/pickcube_stamo",
        )
    )
    create = [kw for name, _, kw, _ in FakeHfApi.calls if name == "create_repo"]
    assert create == [
        {"repo_id": "me/pickcube_stamo", "private": True, "repo_type": "dataset", "exist_ok": True}
    ]


class FakeRows:
    """`hf_dataset` of an image (non-video) dataset whose first frame is `frame`."""

    def __init__(self, frame):
        self.frame = frame

    def __getitem__(self, rows: slice):
        return {"timestamp": [0.0], FRONT: [self.frame]}


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (
            torch.full((3, 8, 8), 200.0),
            r"'observation.images.front'.*must be in \[0, 1\].*\[200, 200\].*divided by 255",
        ),
        (torch.full((3, 8, 8), float("nan")), r"'observation.images.front'.*NaN"),
        (torch.full((3, 8, 8), -0.5), r"values in \[-0.5, -0.5\]"),
    ],
)
def test_frames_out_of_range_are_refused(frame, match):
    from lerobot_stamo.transforms.labelling import check_frames

    meta = SimpleNamespace(
        repo_id="x/images", video_keys=[], episodes=[{"dataset_from_index": 0, "dataset_to_index": 1}]
    )
    dataset = SimpleNamespace(meta=meta, hf_dataset=FakeRows(frame))
    with pytest.raises(ValueError, match=match):
        check_frames(dataset, [FRONT], "pyav")
    check_frames(SimpleNamespace(meta=meta, hf_dataset=FakeRows(torch.rand(3, 8, 8))), [FRONT], "pyav")
    check_frames(  # uint8 frames are always fine
        SimpleNamespace(meta=meta, hf_dataset=FakeRows(torch.full((3, 8, 8), 255, dtype=torch.uint8))),
        [FRONT],
        "pyav",
    )


# ----------------------------------------------------------------- never delete what is not ours
def snapshot(folder) -> dict[str, int]:
    """Relative path -> size of every file under `folder`."""
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def source_copy(sim_dataset, tmp_path):
    """A copy of the recorded dataset at `tmp_path/parent/so101`, next to an unrelated file."""
    repo_id, root = sim_dataset
    parent = tmp_path / "parent"
    shutil.copytree(root, parent / "so101")
    (parent / "notes.txt").write_text("someone's notes")
    return repo_id, parent / "so101"


@pytest.mark.parametrize("where", ["equal", "inside", "containing"])
def test_output_overlapping_the_source_is_refused_before_writing(stamo_checkpoint, source_copy, where):
    repo_id, root = source_copy
    out = {"equal": root, "inside": root / "labelled", "containing": root.parent}[where]
    before, parent_before = snapshot(root), sorted(p.name for p in root.parent.parent.iterdir())
    relation = {"equal": "is", "inside": "lies inside", "containing": "contains"}[where]
    with pytest.raises(ValueError, match=rf"--output_dir=.* {relation} the input --dataset.root=.*Choose an"):
        label_dataset(make_cfg(stamo_checkpoint, source_copy, out, overwrite=True))
    assert snapshot(root) == before and (root.parent / "notes.txt").read_text() == "someone's notes"
    assert sorted(p.name for p in root.parent.parent.iterdir()) == parent_before


def test_output_overlapping_the_checkpoint_is_refused(stamo_checkpoint, sim_dataset):
    for out in (stamo_checkpoint, stamo_checkpoint.parent, stamo_checkpoint / "labelled"):
        with pytest.raises(ValueError, match="the input --policy.path="):
            label_dataset(make_cfg(stamo_checkpoint, sim_dataset, out, overwrite=True))
    assert (stamo_checkpoint / "model.safetensors").is_file()


def test_check_output_path_ignores_hub_ids_and_siblings(tmp_path):
    (tmp_path / "data").mkdir()
    out = check_output_path(
        tmp_path / "data_stamo", {"--dataset.root": tmp_path / "data", "--policy.path": "a/b"}
    )
    assert out == (tmp_path / "data_stamo").resolve()
    with pytest.raises(ValueError, match="--out=.* contains the input --in="):
        check_output_path(tmp_path, {"--in": tmp_path / "data"}, flag="--out")


def test_an_output_file_is_refused(stamo_checkpoint, sim_dataset, tmp_path):
    out = tmp_path / "out"
    out.write_text("a file")
    with pytest.raises(FileExistsError, match="is a file"):
        label_dataset(make_cfg(stamo_checkpoint, sim_dataset, out, overwrite=True))
    assert out.read_text() == "a file"


def test_leftover_work_folder_of_another_run_is_cleaned_up(stamo_checkpoint, sim_dataset, tmp_path):
    """A run interrupted with other arguments left its work folder: the next run discards it and finishes."""
    out = tmp_path / "out"
    work = work_dir_for(out)
    (work / "states").mkdir(parents=True)
    (work / "states" / "episode_000000.safetensors").write_bytes(b"partial")
    (work / "fingerprint.json").write_text(json.dumps({"created_by": "lerobot-stamo-label", "horizon": 7}))
    label_dataset(make_cfg(stamo_checkpoint, sim_dataset, out, cameras=["front"]))
    assert load_labels(out)["horizon"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no hidden folder left


def test_foreign_files_in_the_work_folder_are_not_deleted(stamo_checkpoint, sim_dataset, tmp_path):
    out = tmp_path / "out"
    work = work_dir_for(out)
    work.mkdir()
    (work / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="holds files lerobot-stamo-label did not write"):
        label_dataset(make_cfg(stamo_checkpoint, sim_dataset, out))
    assert (work / "mine.txt").read_text() == "keep me" and not out.exists()
