"""Files and folders appear whole or not at all (`lerobot_stamo.paths`)."""

import pytest

from lerobot_stamo.paths import replace_folder, write_atomically, write_text_atomically


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = write_text_atomically(tmp_path / "sub" / "result.json", "old")

    def fails(tmp):
        tmp.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_atomically(path, fails)
    assert path.read_text() == "old"
    assert sorted(p.name for p in path.parent.iterdir()) == ["result.json"]


def test_the_temporary_keeps_the_suffix(tmp_path):
    seen = []
    write_atomically(tmp_path / "plot.png", lambda tmp: (seen.append(tmp.suffix), tmp.write_bytes(b"png")))
    assert seen == [".png"] and (tmp_path / "plot.png").read_bytes() == b"png"


def test_replace_folder_swaps_in_the_finished_folder(tmp_path):
    target, finished = tmp_path / "dataset", tmp_path / ".dataset.work"
    for folder, text in ((target, "old"), (finished, "new")):
        folder.mkdir()
        (folder / "data.txt").write_text(text)
    replace_folder(finished, target)
    assert (target / "data.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]
    (tmp_path / "again").mkdir()
    replace_folder(tmp_path / "again", tmp_path / "new" / "place")  # a target that does not exist yet
    assert (tmp_path / "new" / "place").is_dir()
