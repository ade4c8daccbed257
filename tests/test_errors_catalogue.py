"""The bad-input catalogue: each bad input, run through its console script, ends in a last line that names the
problem and the fix (`lerobot_stamo.errors`). `docs/errors.md` is rendered from `CASES`:
`python tests/test_errors_catalogue.py > docs/errors.md` after adding a case.

Most cases call the script's entry point in-process (same argv, same draccus / LeRobot parsing, then the
plug-in's excepthook renders what the console shows); the `SUBPROCESS` cases run the installed console scripts
to show the same mechanism end to end.
"""

import importlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_helpers import cli

from lerobot_stamo import errors

REPO_ROOT = Path(__file__).resolve().parents[1]
DOC = REPO_ROOT / "docs" / "errors.md"
sys.path.insert(0, str(REPO_ROOT / "tests" / "policies"))  # stamo_testing: the tiny dataset recorder

# Console script -> entry point called in-process (`lerobot-train`: the parsed function under its `main`).
ENTRY_POINTS = {
    "lerobot-stamo-label": "lerobot_stamo.scripts.lerobot_stamo_label:main",
    "lerobot-stamo-probe": "lerobot_stamo.scripts.lerobot_stamo_probe:main",
    "lerobot-stamo-interpolate": "lerobot_stamo.scripts.lerobot_stamo_interpolate:main",
    "lerobot-stamo-sim-record": "lerobot_stamo.scripts.lerobot_stamo_sim_record:main",
    "lerobot-train": "lerobot.scripts.lerobot_train:train",
    "lerobot-eval": "lerobot.scripts.lerobot_eval:eval_main",
    "lerobot-record": "lerobot.scripts.lerobot_record:record",
}


@dataclass(frozen=True)
class Case:
    """One bad input: `args` may use the placeholders of the `inputs` fixture ({ckpt}, {ds}, {out}, ...)."""

    id: str
    script: str
    args: str
    says: str  # a substring of the last non-empty line of stderr
    problem: str  # what is wrong, in words (for docs/errors.md)


LABEL = "--policy.path={ckpt} --dataset.repo_id=local/stamo_squares --dataset.root={ds} --output_dir={out}"
PROBE = LABEL
INTERP = "--policy.path={ckpt} --dataset.repo_id=local/stamo_squares --dataset.root={ds} --output_dir={out}"
TRAIN = "--dataset.repo_id=local/stamo_squares --dataset.root={ds} --output_dir={out}"
RECORD = (
    "--robot.type=stamo_so100 --robot.port=/dev/null --dataset.repo_id=local/arm --dataset.single_task=pick"
)

CASES = [
    # lerobot-stamo-label
    Case("label-missing-checkpoint", "lerobot-stamo-label", LABEL.replace("{ckpt}", "{tmp}/nope"),
         "--policy.path={tmp}/nope: no such folder", "checkpoint folder does not exist"),
    Case("label-not-a-checkpoint", "lerobot-stamo-label", LABEL.replace("{ckpt}", "{notds}"),
         "has no config.json, so it is not a checkpoint folder", "folder without config.json"),
    Case("label-training-run-folder", "lerobot-stamo-label", LABEL.replace("{ckpt}", "{run}"),
         "Did you mean {run}/checkpoints/last/pretrained_model?", "training run folder instead of its checkpoint"),
    Case("label-broken-config-json", "lerobot-stamo-label", LABEL.replace("{ckpt}", "{badjson}"),
         "config.json is not valid JSON", "checkpoint's config.json is cut short"),
    Case("label-truncated-safetensors", "lerobot-stamo-label", LABEL.replace("{ckpt}", "{truncated}"),
         "model.safetensors cannot be read as safetensors", "checkpoint's weights file is truncated"),
    Case("label-missing-dataset-root", "lerobot-stamo-label", LABEL.replace("{ds}", "{tmp}/nods"),
         "--dataset.root={tmp}/nods: no such folder", "dataset folder does not exist"),
    Case("label-not-a-dataset", "lerobot-stamo-label", LABEL.replace("{ds}", "{notds}"),
         "is not a LeRobot dataset (no meta/info.json)", "dataset folder without meta/info.json"),
    Case("label-offline-hub-dataset", "lerobot-stamo-label",
         "--policy.path={ckpt} --dataset.repo_id=nobody/nothing --output_dir={out}",
         "HF_HUB_OFFLINE=1 forbids downloading it", "Hub dataset id, offline and not cached"),
    Case("label-horizon-zero", "lerobot-stamo-label", LABEL + " --horizon=0",
         "--horizon must be >= 1", "horizon out of range"),
    Case("label-horizon-not-int", "lerobot-stamo-label", LABEL + " --horizon=abc",
         "Couldn't parse 'abc' into an int", "horizon of the wrong type"),
    Case("label-horizon-too-long", "lerobot-stamo-label", LABEL + " --horizon=500",
         "Use --horizon < 10", "horizon longer than every episode"),
    Case("label-unknown-camera", "lerobot-stamo-label", LABEL + " --cameras=[observation.images.top]",
         "Fix --cameras", "camera not in the dataset"),
    Case("label-batch-size-zero", "lerobot-stamo-label", LABEL + " --batch_size=0",
         "--batch_size must be >= 1", "batch size out of range"),
    Case("label-unknown-flag", "lerobot-stamo-label", LABEL + " --bogus=1",
         "unrecognized arguments: --bogus=1", "misspelt flag"),
    Case("label-no-output-dir", "lerobot-stamo-label", LABEL.replace(" --output_dir={out}", ""),
         "--output_dir is required", "output folder not given"),
    Case("label-output-inside-input", "lerobot-stamo-label", LABEL.replace("{out}", "{ds}/labelled"),
         "lies inside the input", "output folder inside the source dataset"),
    # lerobot-stamo-probe
    Case("probe-unknown-camera", "lerobot-stamo-probe", PROBE + " --camera=observation.images.top",
         "Fix --camera.", "camera not in the dataset (names --camera, not --cameras)"),
    Case("probe-horizon-zero", "lerobot-stamo-probe", PROBE + " --horizons=[0]",
         "--horizons must be positive integers", "horizon out of range"),
    Case("probe-action-mode", "lerobot-stamo-probe", PROBE + " --action_mode=delta",
         "--action_mode must be one of", "unknown choice"),
    Case("probe-test-fraction", "lerobot-stamo-probe", PROBE + " --test_fraction=1.5",
         "--test_fraction must be in (0, 1)", "fraction out of range"),
    Case("probe-missing-dataset-root", "lerobot-stamo-probe", PROBE.replace("{ds}", "{tmp}/nods"),
         "--dataset.root={tmp}/nods: no such folder", "dataset folder does not exist"),
    Case("probe-missing-checkpoint", "lerobot-stamo-probe", PROBE.replace("{ckpt}", "{tmp}/nope"),
         "--policy.path={tmp}/nope: no such folder", "checkpoint folder does not exist"),
    # lerobot-stamo-interpolate
    Case("interpolate-missing-checkpoint", "lerobot-stamo-interpolate", INTERP.replace("{ckpt}", "{tmp}/nope"),
         "--policy.path={tmp}/nope: no such folder", "checkpoint folder does not exist"),
    Case("interpolate-truncated-safetensors", "lerobot-stamo-interpolate",
         INTERP.replace("{ckpt}", "{truncated}"), "model.safetensors cannot be read as safetensors",
         "checkpoint's weights file is truncated"),
    Case("interpolate-bad-policy-dtype", "lerobot-stamo-interpolate", INTERP + " --policy.dtype=float64",
         "`dtype` must be 'float32', 'bfloat16' or 'float16', got 'float64'", "policy override of a bad value"),
    Case("interpolate-one-image", "lerobot-stamo-interpolate",
         "--policy.path={ckpt} --images {png} --output_dir={out}", "takes exactly two files",
         "one image instead of two"),
    Case("interpolate-text-file-png", "lerobot-stamo-interpolate",
         "--policy.path={ckpt} --images {png} {png} --output_dir={out}", "is not an image file that can be read",
         "a text file named .png"),
    Case("interpolate-missing-image", "lerobot-stamo-interpolate",
         "--policy.path={ckpt} --images {tmp}/nofile.png {png} --output_dir={out}",
         "{tmp}/nofile.png is not a file", "image file does not exist"),
    Case("interpolate-no-policy", "lerobot-stamo-interpolate",
         "--dataset.repo_id=local/stamo_squares --dataset.root={ds} --output_dir={out}",
         "--policy.path=<dir or Hub id>", "checkpoint not given"),
    Case("interpolate-no-frames", "lerobot-stamo-interpolate", "--policy.path={ckpt} --output_dir={out}",
         "Give either `--images a.png b.png` or `--dataset.repo_id`", "neither images nor a dataset"),
    Case("interpolate-missing-dataset-root", "lerobot-stamo-interpolate", INTERP.replace("{ds}", "{tmp}/nods"),
         "--dataset.root={tmp}/nods: no such folder", "dataset folder does not exist"),
    Case("interpolate-episode-out-of-range", "lerobot-stamo-interpolate", INTERP + " --dataset.episode=7",
         "Episode 7 out of range", "episode index out of range"),
    Case("interpolate-frame-out-of-range", "lerobot-stamo-interpolate", INTERP + " --dataset.frames=[0,99]",
         "Frame 99 out of range", "frame index out of range"),
    Case("interpolate-unknown-camera", "lerobot-stamo-interpolate",
         INTERP + " --dataset.camera=observation.images.top", "set --dataset.camera", "camera not in the dataset"),
    Case("interpolate-steps-too-few", "lerobot-stamo-interpolate", INTERP + " --steps=0",
         "`--steps` must be >= 2", "interpolation steps out of range"),
    # lerobot-stamo-sim-record
    Case("sim-record-zero-episodes", "lerobot-stamo-sim-record", "--root={out} --num_episodes=0",
         "--num_episodes must be >= 1", "episode count out of range"),
    Case("sim-record-episodes-not-int", "lerobot-stamo-sim-record", "--root={out} --num_episodes=two",
         "Couldn't parse 'two' into an int", "episode count of the wrong type"),
    Case("sim-record-unknown-task", "lerobot-stamo-sim-record", "--root={out} --task=FlyAway",
         "Valid tasks: PickCube, PickPlace", "unknown task"),
    Case("sim-record-unknown-camera", "lerobot-stamo-sim-record", "--root={out} --cameras=[top]",
         "choose one or more of ['front', 'wrist']", "unknown camera"),
    Case("sim-record-height-zero", "lerobot-stamo-sim-record", "--root={out} --observation_height=0",
         "--observation_height=0 is too small", "image height out of range (was blamed on OpenGL)"),
    Case("sim-record-overwrite-not-ours", "lerobot-stamo-sim-record",
         "--root={notds} --overwrite=true --num_episodes=1", "so --overwrite=true will not replace it",
         "--overwrite on a folder that is not a recording"),
    Case("sim-record-existing-root", "lerobot-stamo-sim-record", "--root={ds} --num_episodes=1",
         "or pass --overwrite=true to replace it", "output folder exists"),
    # lerobot-train --policy.type=stamo / stamo_vla (LeRobot's own parser)
    Case("train-stamo-dtype", "lerobot-train", TRAIN + " --policy.type=stamo --policy.dtype=float64",
         "`dtype` must be 'float32', 'bfloat16' or 'float16', got 'float64'", "unsupported dtype"),
    Case("train-stamo-decoder-mode", "lerobot-train", TRAIN + " --policy.type=stamo --policy.decoder_mode=partial",
         "`decoder_mode` must be one of ('full', 'frozen', 'lora'), got 'partial'", "unknown decoder mode"),
    Case("train-stamo-n-obs-steps", "lerobot-train", TRAIN + " --policy.type=stamo --policy.n_obs_steps=2",
         "`n_obs_steps` must be 1, got 2", "stacked frames for a single-frame encoder"),
    Case("train-stamo-random-flip", "lerobot-train", TRAIN + " --policy.type=stamo --policy.random_flip=2",
         "`random_flip` is a probability, got 2.0", "probability out of range"),
    Case("train-stamo-compression-lengths", "lerobot-train",
         TRAIN + " --policy.type=stamo --policy.compression_lengths=[64,128]",
         "`compression_lengths` must be strictly decreasing", "compressor lengths not decreasing"),
    Case("train-stamo-inference-steps", "lerobot-train",
         TRAIN + " --policy.type=stamo --policy.num_inference_steps=0",
         "`num_inference_steps` must be >= 1", "Euler steps out of range"),
    Case("train-vla-backbone", "lerobot-train", TRAIN + " --policy.type=stamo_vla --policy.backbone=big",
         "`policy.backbone` must be one of ('compact', 'vlm'), got 'big'", "unknown trunk"),
    Case("train-vla-action-steps", "lerobot-train",
         TRAIN + " --policy.type=stamo_vla --policy.chunk_size=5 --policy.n_action_steps=10",
         "`n_action_steps`=10 must be between 1 and `chunk_size`=5", "executed steps longer than the chunk"),
    Case("train-vla-vision-without-stamo", "lerobot-train", TRAIN + " --policy.type=stamo_vla --policy.vision=stamo",
         "set `--policy.stamo_path=<stamo checkpoint folder or Hub id>`", "stamo vision without a checkpoint"),
    Case("train-vla-dim-model", "lerobot-train", TRAIN + " --policy.type=stamo_vla --policy.dim_model=100",
         "`dim_model`=100 must be divisible by `n_heads`=8", "width not divisible by heads"),
    Case("train-vla-world-model-target", "lerobot-train",
         TRAIN + " --policy.type=stamo_vla --policy.world_model_target=image",
         "`policy.world_model_target` must be one of ('state', 'motion', 'none')", "unknown world-model target"),
    Case("train-vla-negative-loss-weight", "lerobot-train", TRAIN + " --policy.type=stamo_vla --policy.lambda_action=-1",
         "must be >= 0, got -1.0", "negative loss weight"),
    Case("train-checkpoint-override", "lerobot-train", TRAIN + " --policy.path={ckpt} --policy.dtype=float64",
         "`dtype` must be 'float32', 'bfloat16' or 'float16', got 'float64'", "override of a checkpoint's config"),
    Case("train-missing-checkpoint", "lerobot-train", TRAIN + " --policy.path={tmp}/nope",
         "--policy.path={tmp}/nope: no such folder", "checkpoint folder does not exist (LeRobot's loading)"),
    Case("train-broken-config-json", "lerobot-train", TRAIN + " --policy.path={badjson}",
         "config.json is not valid JSON", "checkpoint's config.json is cut short (LeRobot's loading)"),
    Case("train-truncated-safetensors", "lerobot-train", TRAIN + " --policy.path={truncated}",
         "model.safetensors cannot be read as safetensors", "checkpoint's weights file is truncated"),
    Case("train-missing-dataset-root", "lerobot-train",
         TRAIN.replace("{ds}", "{tmp}/nods") + " --policy.type=stamo --policy.device=cpu --policy.push_to_hub=false",
         "--dataset.root={tmp}/nods: no such folder", "dataset folder does not exist (LeRobot's loading)"),
    Case("eval-policy-override", "lerobot-eval", "--policy.path={ckpt} --policy.dtype=float64 --env.type=stamo_so101",
         "`dtype` must be 'float32', 'bfloat16' or 'float16', got 'float64'", "policy override of a bad value"),
    Case("eval-missing-checkpoint", "lerobot-eval", "--policy.path={tmp}/nope --env.type=stamo_so101",
         "--policy.path={tmp}/nope: no such folder", "checkpoint folder does not exist (LeRobot's loading)"),
    Case("record-arm-lacks-policy-camera", "lerobot-record", RECORD + " --robot.required_cameras=[front,top]",
         "the policy reads camera(s) ['top'] but --robot.cameras only has ['front', 'wrist']. Add them to "
         "--robot.cameras", "a camera the policy reads is not configured on the arm"),
    Case("record-arm-max-failed-reads", "lerobot-record", RECORD + " --robot.max_failed_reads=0",
         "--robot.max_failed_reads must be >= 1, got 0", "safety limit out of range"),
    Case("train-unknown-policy-flag", "lerobot-train", TRAIN + " --policy.type=stamo --policy.chunk=3",
         "unrecognized arguments: --policy.chunk=3", "misspelt policy flag"),
]  # fmt: skip

# Also run as a real console process (slow: an interpreter start and the plug-in import): the excepthook the
# plug-in installs when imported turns draccus' "Couldn't instantiate class" into the config's message.
SUBPROCESS = ("label-horizon-zero",)

# Bad inputs whose tests live next to the code that refuses them.
ELSEWHERE = [
    ("lerobot-stamo-label", "--overwrite=true with --output_dir containing the source dataset",
     "tests/transforms/test_label.py"),
    ("lerobot-stamo-label", "camera keys containing 'image' (observation.image, LIBERO)",
     "tests/transforms/test_camera_names.py"),
    ("lerobot-stamo-probe", "checkpoint B on a dataset labelled by checkpoint A", "tests/transforms/test_probe.py"),
    ("lerobot-stamo-probe", "a horizon longer than every episode (refused before features)",
     "tests/transforms/test_probe.py"),
    ("lerobot-train --policy.type=stamo", "a feature cache built from another dataset",
     "tests/policies/test_stamo_feature_cache.py"),
    ("Python API", "decode/interpolate/motion/transfer with NaN, wrong-size or mismatched states",
     "tests/policies/test_stamo_api_validation.py"),
    ("lerobot-rollout --robot.type=stamo_so100", "a policy camera missing from the arm (refused before any motion)",
     "tests/robots/test_real_arms_cli.py"),
    ("lerobot-rollout --robot.type=stamo_so100", "a policy whose actions are NaN (none reaches the bus)",
     "tests/robots/test_real_arms_cli.py"),
    ("lerobot-rollout --robot.type=stamo_so100", "a camera that stops delivering frames (recorded episodes kept)",
     "tests/robots/test_real_arms_cli.py"),
    ("stamo_so100 / stamo_koch", "motor reads that keep failing; an uncalibrated arm asked to move",
     "tests/robots/test_real_arms.py"),
    ("lerobot-stamo-paper", "--tasks, --real_episodes out of range; no configs/ where it runs",
     "tests/scripts/test_paper.py"),
    ("lerobot-stamo-paper", "a --work_dir cached, or a runs/ published, with other settings (names each one)",
     "tests/scripts/test_paper.py"),
    ("lerobot-stamo-paper", "--report_only before any pipeline has finished; a second run in one --work_dir",
     "tests/scripts/test_paper.py"),
    ("lerobot-stamo-paper", "a pipeline published in part whose re-made datasets or stamo differ from those its "
     "arms trained on", "tests/scripts/test_paper.py"),
]  # fmt: skip


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    """A tiny stamo checkpoint, a 2-episode dataset and damaged copies of both (placeholders of `Case.args`)."""
    from stamo_testing import record_square_dataset, tiny_stamo_checkpoint

    tmp = tmp_path_factory.mktemp("errors")
    ckpt = tiny_stamo_checkpoint(tmp / "stamo").path
    record_square_dataset(tmp / "ds")
    for name in ("badjson", "truncated"):
        (tmp / name).mkdir()
    weights = (ckpt / "model.safetensors").read_bytes()
    config_text = (ckpt / "config.json").read_text()
    (tmp / "badjson" / "config.json").write_text(config_text[: len(config_text) // 2])
    (tmp / "badjson" / "model.safetensors").write_bytes(weights)
    (tmp / "truncated" / "config.json").write_text(config_text)
    (tmp / "truncated" / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    shutil.copytree(ckpt, tmp / "run" / "checkpoints" / "last" / "pretrained_model")
    (tmp / "notds").mkdir()
    (tmp / "notds" / "notes.txt").write_text("someone's file")
    (tmp / "frame.png").write_bytes(b"not a png")
    names = ("ds", "badjson", "truncated", "notds", "run")
    return {
        "tmp": str(tmp),
        "out": str(tmp / "out-console"),
        "png": str(tmp / "frame.png"),
        "ckpt": str(ckpt),
    } | {n: str(tmp / n) for n in names}


def last_line(stderr: str) -> str:
    return next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "")


def run_in_process(script: str, argv: list[str], capsys) -> str:
    """Runs a console script's entry point on `argv`; returns what it wrote to stderr, as the console shows it."""
    module, name = ENTRY_POINTS[script].split(":")
    entry = getattr(importlib.import_module(module), name)
    saved = sys.argv
    sys.argv = [script, *argv]
    capsys.readouterr()
    try:
        entry()
    except SystemExit as exc:
        assert exc.code not in (0, None), f"{script} exited 0"
    except Exception as exc:  # what the interpreter hands to sys.excepthook
        errors._excepthook(type(exc), exc, exc.__traceback__)
    else:
        pytest.fail(f"{script} {' '.join(argv)} succeeded")
    finally:
        sys.argv = saved
    return capsys.readouterr().err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_last_line(case: Case, inputs, capsys):
    inputs = inputs | {"out": f"{inputs['tmp']}/out-{case.id}"}
    stderr = run_in_process(case.script, case.args.format(**inputs).split(), capsys)
    assert case.says.format(**inputs) in last_line(stderr), stderr[-3000:]


@pytest.fixture(scope="module")
def console_runs(inputs) -> dict[str, tuple[int, str]]:
    """(return code, stderr) of the `SUBPROCESS` cases, run concurrently through the installed console scripts."""
    cases = [c for c in CASES if c.id in SUBPROCESS]
    procs = {
        c.id: subprocess.Popen(
            [cli(c.script), *c.args.format(**inputs).split()],
            cwd=inputs["tmp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in cases
    }
    stderrs = {cid: p.communicate(timeout=300)[1] for cid, p in procs.items()}
    return {cid: (p.returncode, stderrs[cid]) for cid, p in procs.items()}


@pytest.mark.slow
@pytest.mark.parametrize("case_id", SUBPROCESS)
def test_console_last_line(case_id, console_runs, inputs):
    case = next(c for c in CASES if c.id == case_id)
    returncode, stderr = console_runs[case_id]
    assert returncode != 0
    assert case.says.format(**inputs) in last_line(stderr), stderr[-3000:]


def test_excepthook_installed_on_import():
    hook = sys.excepthook
    assert hook.__name__ == "_stamo_excepthook"
    errors.install()  # idempotent: no second layer
    assert sys.excepthook is hook


def test_genuine_bug_keeps_its_traceback(capsys):
    """An error with no user error in its chain is printed exactly as Python would print it."""
    try:
        raise ZeroDivisionError("a bug")
    except ZeroDivisionError as exc:
        errors._excepthook(type(exc), exc, exc.__traceback__)
    stderr = capsys.readouterr().err
    assert stderr.startswith("Traceback") and last_line(stderr) == "ZeroDivisionError: a bug"


def test_config_error_is_a_value_error_in_python():
    """Outside draccus a policy config still raises the `ValueError` LeRobot's configs raise."""
    from lerobot_stamo.policies.stamo import StamoConfig

    with pytest.raises(ValueError, match="decoder_mode") as info:
        StamoConfig(device="cpu", decoder_mode="partial")
    assert not isinstance(info.value, errors.ConfigArgumentError)


def test_online_missing_dataset_is_left_to_lerobot(tmp_path, monkeypatch):
    """Online, LeRobot downloads a dataset into a missing or empty --dataset.root: no refusal then."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert errors.check_dataset("user/name", tmp_path / "missing") is None
    assert errors.check_dataset("user/name", tmp_path) is None
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "info.json").write_text("{")
    with pytest.raises(errors.StamoInputError, match=r"info.json is not valid JSON"):
        errors.check_dataset("user/name", tmp_path)


def code(text: str) -> str:
    """A markdown code span that may itself hold backticks, inside a table cell."""
    text = text.replace("|", "\\|")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def render_doc() -> str:
    """docs/errors.md, from `CASES`, `SUBPROCESS` and `ELSEWHERE`."""
    test = "tests/test_errors_catalogue.py"
    lines = [
        "# Bad inputs and what the user sees",
        "",
        "Each row is a bad input given to a console script, and a part of the **last line** the user sees: it",
        "names the problem and the fix (see `lerobot_stamo/errors.py` for how that last line is kept under",
        "draccus and `lerobot-train`). Placeholders: `{ckpt}` a stamo checkpoint, `{ds}` a LeRobot dataset,",
        "`{out}` an output folder, `{tmp}` a scratch folder; `{badjson}` / `{truncated}` a checkpoint with a",
        "cut-short `config.json` / `model.safetensors`; `{notds}` a folder that is neither; `{run}` a training",
        "run's output folder. Generated by",
        f"`python {test} > docs/errors.md`; `{test}` checks every row.",
        "",
        "| Test id | Command | Bad input | Last line contains |",
        "|---|---|---|---|",
    ]
    for c in CASES:
        where = f"`{c.id}`" + (" (+ console)" if c.id in SUBPROCESS else "")
        lines.append(f"| {where} | {code(f'{c.script} {c.args}')} | {c.problem} | {code(c.says)} |")
    lines += [
        "",
        "## Covered in other test files",
        "",
        "| Command | Bad input | Test file |",
        "|---|---|---|",
    ]
    lines += [f"| `{cmd}` | {what} | `{path}` |" for cmd, what, path in ELSEWHERE]
    return "\n".join(lines) + "\n"


def test_doc_lists_every_case():
    assert DOC.read_text() == render_doc(), f"docs/errors.md is stale: python {Path(__file__).name} > {DOC}"
    for _, _, path in ELSEWHERE:
        assert (REPO_ROOT / path).is_file(), path


if __name__ == "__main__":
    sys.stdout.write(render_doc())
