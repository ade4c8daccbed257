"""The scripts in examples/ (the README's recipes) run end to end, at tiny sizes, so that they cannot rot."""

import os
import re
import subprocess
from pathlib import Path

import pytest
from cli_helpers import VENV_BIN

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
# The sizes every example reads from the environment, at their smallest.
TINY = {
    "SIZE": "32",
    "EPISODES": "3",
    "STEPS": "2",
    "FIT_VAE_STEPS": "0",
    "VIDEO_EPISODES": "1",
    "EVAL_EPISODES": "1",
    "REAL": "2",
    "REAL_REPEAT": "2",
}


def run_example(name: str, env: dict[str, str], cwd: Path, *args: str) -> str:
    cmd = (
        ["bash", str(EXAMPLES / name)]
        if name.endswith(".sh")
        else [str(VENV_BIN / "python"), str(EXAMPLES / name)]
    )
    proc = subprocess.run([*cmd, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (
        f"examples/{name} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    )
    return proc.stdout + proc.stderr


def test_examples_are_valid_and_name_shipped_configs():
    for script in EXAMPLES.glob("*.sh"):
        subprocess.run(["bash", "-n", str(script)], check=True)
        for name in re.findall(r"\$CONFIGS/([\w.]+)", script.read_text()):
            assert (REPO / "lerobot_stamo" / "configs" / name).is_file(), f"{script.name}: {name}"
    # the examples find the presets inside the installed package, as after `pip install`
    out = subprocess.run(
        ["bash", "-c", f"source {EXAMPLES / '_common.sh'} && echo $CONFIGS"],
        env={**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", "CONFIGS": ""},
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert Path(out) == REPO / "lerobot_stamo" / "configs"


@pytest.mark.slow
@pytest.mark.longest(minutes=3)  # on the 2-core CI machine: 13 console-script starts
def test_examples_run_end_to_end_at_tiny_sizes(tmp_path):
    env = {
        **os.environ,
        **TINY,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "OUT": str(tmp_path / "out"),
        "CONFIGS": str(REPO / "lerobot_stamo" / "configs"),  # saves a `python -c` start per script
        "HF_LEROBOT_HOME": str(tmp_path / "hf"),
        "OMP_NUM_THREADS": "1",  # one thread per command, beside the other test worker (no oversubscription)
    }
    out = tmp_path / "out"
    # The numbered recipes chain: a stamo, labelled video, stamo_vla, co-training.
    run_example("01_train_stamo.sh", env, tmp_path)
    assert (out / "stamo/checkpoints/last/pretrained_model/reconstructions.png").is_file()
    assert (out / "interpolation/interpolation.png").is_file()
    run_example("02_label_video.sh", env, tmp_path)
    assert (out / "data/so101_video_stamo/meta/stamo_labels.json").is_file()
    log = run_example("03_train_eval_stamo_vla.sh", env, tmp_path)
    assert (out / "vla/checkpoints/last/pretrained_model/model.safetensors").is_file()
    assert "pc_success" in log or (out / "eval_vla/eval_info.json").is_file()
    run_example("04_cotrain.sh", env, tmp_path)
    assert (out / "eval_vla_cotrain/eval_info.json").is_file()
    # The real-arm loop needs the arms: without its ports it stops before touching anything.
    proc = subprocess.run(["bash", str(EXAMPLES / "05_real_arm.sh")], env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "set HF_USER" in proc.stderr
    # The scripted expert's GIF. (sim_act_quickstart.sh is LeRobot's ACT on the simulated arm, the commands of
    # tests/scripts/test_lerobot_cli_sim.py: checked above for syntax, not run again, to keep the suite short.)
    run_example("expert_rollout.py", env, tmp_path, "--out", str(tmp_path / "expert.gif"))
    assert (tmp_path / "expert.gif").read_bytes()[:6] in (b"GIF87a", b"GIF89a")
