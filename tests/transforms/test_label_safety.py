"""`lerobot-stamo-label` never deletes what is not its own: outputs overlapping an input are refused before
anything is written, and an interrupted run leaves nothing a re-run does not clean up."""

import json
import shutil

import pytest
from test_label import make_cfg

from lerobot_stamo.paths import check_output_path
from lerobot_stamo.transforms import label_dataset, load_labels
from lerobot_stamo.transforms.labelling import work_dir_for


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
