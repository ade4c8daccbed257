"""`lerobot-stamo-demo` (what `make demo` runs) end to end, at a tiny size and a few training steps."""

import re
from pathlib import Path

import imageio.v3 as iio
import pytest
from cli_helpers import cli, run_cli

REPO = Path(__file__).resolve().parents[2]
# LeRobot logs torchcodec's loading tracebacks (between these markers) when it falls back to pyav.
TORCHCODEC_FALLBACK = re.compile(
    r"\[start of libtorchcodec loading traceback\].*?\[end of libtorchcodec loading traceback\]", re.S
)


@pytest.mark.slow
def test_demo_records_draws_trains_interpolates_and_runs_stamo_vla(tmp_path):
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
            "--vla_train_steps=2",
            "--vla_eval_episodes=1",
            f"--vla_config={REPO / 'configs' / 'stamo_vla_compact_sim.json'}",
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

    # stamo_vla: the labelled robot dataset, the checkpoint, the success line, the GIF and predicted futures.
    assert (out / "data" / "so101_pickcube_stamo" / "meta" / "stamo_labels.json").exists()
    vla = out / "train_stamo_vla" / "checkpoints" / "last" / "pretrained_model"
    assert (vla / "model.safetensors").exists() and (vla / "config.json").exists()
    assert re.search(r"stamo_vla success on PickCube: [01]/1 \((0|100)%\) over 1 episode\.", proc.stdout)
    assert "benchmarks/results/vla_success.md" in proc.stdout
    gif = out / "eval_stamo_vla" / "episode_0.gif"
    assert gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    assert iio.improps(gif, index=None).shape[0] > 1  # an animation, not a still
    future = out / "eval_stamo_vla" / "predicted_future.png"
    assert future.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = TORCHCODEC_FALLBACK.sub("", proc.stdout + proc.stderr)
    assert "Traceback" not in log, log[max(0, log.find("Traceback") - 2000) :][:6000]
