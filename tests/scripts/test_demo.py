"""`lerobot-stamo-demo` (what `make demo` runs) end to end, at a tiny size and a few training steps."""

from pathlib import Path

import pytest
from cli_helpers import cli, run_cli

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_records_draws_trains_and_interpolates(tmp_path):
    out = tmp_path / "demo"
    proc = run_cli(
        [
            cli("lerobot-stamo-demo"),
            f"--output_dir={out}",
            "--num_episodes=3",
            "--num_video_episodes=1",
            "--observation_height=32",
            "--observation_width=32",
            "--fit_vae_steps=0",
            "--train_steps=2",
            f"--tiny_config={REPO / 'configs' / 'stamo_tiny.json'}",
        ],
        cwd=tmp_path,
    )
    assert "Demo outputs:" in proc.stdout
    for png in ("pickcube_frames.png", "pickplace_video_frames.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert (out / "data" / "so101_pickcube" / "meta" / "info.json").exists()
    assert (out / "data" / "so101_pickplace_video" / "meta" / "info.json").exists()
    checkpoint = out / "train_stamo_tiny" / "checkpoints" / "last" / "pretrained_model"
    assert (checkpoint / "model.safetensors").exists() and (checkpoint / "reconstructions.png").exists()
    assert sorted(p.suffix for p in (out / "interpolation").iterdir()) >= [".gif", ".png"]
    labelled = out / "data" / "so101_pickplace_video_stamo"
    assert (labelled / "meta" / "stamo_labels.json").exists()
    assert "| StaMo state difference |" in (out / "probe" / "probe.md").read_text()
