"""`lerobot-stamo-interpolate`: image files that are not images are named (issue 12), before any model loads."""

import subprocess

import numpy as np
import pytest
from cli_helpers import cli
from PIL import Image

from lerobot_stamo.errors import StamoInputError
from lerobot_stamo.scripts.lerobot_stamo_interpolate import check_image_file


@pytest.fixture
def images(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(good)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    return good, text


def test_check_image_file_names_the_file_and_flag(tmp_path, images):
    good, text = images
    check_image_file(good, "--images")
    with pytest.raises(StamoInputError, match=r"--transfer: .*notes.png is not an image file.*PNG or JPEG"):
        check_image_file(text, "--transfer")
    with pytest.raises(StamoInputError, match=r"--images: .*missing.png is not a file"):
        check_image_file(tmp_path / "missing.png", "--images")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:40])
    with pytest.raises(StamoInputError, match="truncated.png is not an image file"):
        check_image_file(truncated, "--images")


def test_console_script_last_line_names_the_text_file(tmp_path, images):
    """It said "need at least one array to stack"; now the last line names the file (no checkpoint needed)."""
    good, text = images
    args = [cli("lerobot-stamo-interpolate"), f"--policy.path={tmp_path}", "--images", str(good), str(text)]
    proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "--images (goal)" in last and "notes.png is not an image file" in last, proc.stderr


def test_gif_frame_rate_must_be_positive():
    from lerobot_stamo.scripts.lerobot_stamo_interpolate import InterpolateConfig

    with pytest.raises(ValueError, match="--fps"):
        InterpolateConfig(fps=0)
