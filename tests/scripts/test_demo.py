"""`lerobot-stamo-demo` (what `make demo` runs) end to end, at a tiny size."""

import pytest
from cli_helpers import cli, run_cli


@pytest.mark.slow
def test_demo_writes_datasets_and_contact_sheets(tmp_path):
    out = tmp_path / "demo"
    proc = run_cli(
        [
            cli("lerobot-stamo-demo"),
            f"--output_dir={out}",
            "--num_episodes=1",
            "--num_video_episodes=1",
            "--observation_height=32",
            "--observation_width=32",
        ],
        cwd=tmp_path,
    )
    assert "Demo outputs:" in proc.stdout
    for png in ("pickcube_frames.png", "pickplace_video_frames.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert (out / "data" / "so101_pickcube" / "meta" / "info.json").exists()
    assert (out / "data" / "so101_pickplace_video" / "meta" / "info.json").exists()
