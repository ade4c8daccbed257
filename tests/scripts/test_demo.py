"""`lerobot-stamo-demo` (what `make demo` runs) end to end, at a tiny size and a few training steps."""

import json
import re
import subprocess
from pathlib import Path

import imageio.v3 as iio
import pytest
from cli_helpers import cli, run_cli

from lerobot_stamo.console import TORCHCODEC_HELP
from lerobot_stamo.envs.recording import MARKER as RECORD_MARKER
from lerobot_stamo.scripts import lerobot_stamo_demo as demo

REPO = Path(__file__).resolve().parents[2]
TINY = [
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
]


def assert_readable(log: str) -> None:
    """Issue 13: no traceback when nothing failed, no encoder banner, the torchcodec fallback said once."""
    assert "Traceback" not in log, log[max(0, log.find("Traceback") - 2000) :][:6000]
    assert "Svt[info]" not in log and "SVT [" not in log, log[log.find("Svt") - 500 :][:3000]
    assert "libtorchcodec loading traceback" not in log and "Could not load libtorchcodec" not in log
    assert log.count(TORCHCODEC_HELP) <= 1


@pytest.mark.slow
@pytest.mark.longest(minutes=2.5)  # on the 2-core CI machine
def test_demo_records_draws_trains_interpolates_and_runs_stamo_vla(tmp_path):
    out = tmp_path / "demo"
    proc = run_cli(
        [
            cli("lerobot-stamo-demo"),
            f"--output_dir={out}",
            *TINY,
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
    # The two labelled datasets share a horizon: they co-train as they are.
    cotrain = tmp_path / "cotrain"
    run_cli([cli("lerobot-stamo-cotrain"), f"--robot_root={out / 'data' / 'so101_pickcube_stamo'}",
             f"--video_root={labelled}", f"--output_dir={cotrain}"], cwd=tmp_path)  # fmt: skip
    assert (cotrain / "meta" / "info.json").exists()
    vla = out / "train_stamo_vla" / "checkpoints" / "last" / "pretrained_model"
    assert (vla / "model.safetensors").exists() and (vla / "config.json").exists()
    assert re.search(r"stamo_vla success on PickCube: [01]/1 \((0|100)%\) over 1 episode\.", proc.stdout)
    assert "docs/results/report.md" in proc.stdout
    gif = out / "eval_stamo_vla" / "episode_0.gif"
    assert gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    assert iio.improps(gif, index=None).shape[0] > 1  # an animation, not a still
    future = out / "eval_stamo_vla" / "predicted_future.png"
    assert future.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The combined output of the demo and of every command it ran (record, lerobot-train, -interpolate,
    # -label, -probe, lerobot-eval) is readable.
    assert_readable(proc.stdout + proc.stderr)
    assert json.loads((out / demo.MARKER).read_text())["written_by"] == "lerobot-stamo-demo"
    assert not [p for p in out.rglob(".*tmp*")]  # no temporary folders left behind


def test_every_argument_is_checked_before_the_disk_is_touched(tmp_path):
    """Issue 12: one bad count replaced the recorded dataset, then failed naming the wrong flag."""
    for flag in ("--num_episodes", "--num_video_episodes", "--vla_horizon", "--vla_eval_episodes"):
        with pytest.raises(ValueError, match=f"{flag} must be >= "):
            demo.DemoConfig(output_dir=tmp_path / "out", **{flag[2:]: 0})
    with pytest.raises(ValueError, match="--num_episodes must be >= 2 .*episode 1"):
        demo.DemoConfig(num_episodes=1)
    demo.DemoConfig(num_episodes=1, train_steps=0)  # recording only: one episode is enough
    with pytest.raises(ValueError, match="--observation_height=0 is too small"):
        demo.DemoConfig(observation_height=0)
    with pytest.raises(OSError, match="--vla_config=nowhere.json not found"):
        demo.DemoConfig(vla_config=Path("nowhere.json"), tiny_config=REPO / "configs" / "stamo_tiny.json")
    assert not (tmp_path / "out").exists()


def test_output_dir_holding_other_files_is_refused(tmp_path):
    cfg = demo.DemoConfig(output_dir=tmp_path, tiny_config=Path(__file__), vla_config=Path(__file__))
    (tmp_path / "thesis.tex").write_text("keep me")
    with pytest.raises(FileExistsError, match=r"holds files the demo did not write \(thesis.tex\)"):
        demo.run_demo(cfg)
    # A demo folder whose dataset folder is not a dataset the recorder wrote: refused before any write.
    (tmp_path / "thesis.tex").unlink()
    (tmp_path / "data" / "so101_pickcube").mkdir(parents=True)
    (tmp_path / "data" / "so101_pickcube" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a dataset recorded by .*another --output_dir"):
        demo.run_demo(cfg)
    assert [p.name for p in tmp_path.rglob("*")] == ["data", "so101_pickcube", "notes.txt"]


def test_console_script_bad_count_leaves_the_recorded_dataset_alone(tmp_path):
    dataset = tmp_path / "out" / "data" / "so101_pickcube"
    (dataset / "meta").mkdir(parents=True)
    (dataset / RECORD_MARKER).write_text("{}")
    (tmp_path / "out" / demo.MARKER).write_text("{}")
    args = [cli("lerobot-stamo-demo"), f"--output_dir={tmp_path / 'out'}", *TINY, "--num_video_episodes=0"]
    proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "--num_video_episodes must be >= 1" in proc.stderr.strip().splitlines()[-1], proc.stderr
    assert sorted(p.name for p in dataset.rglob("*")) == ["meta", RECORD_MARKER.split("/")[-1]]
