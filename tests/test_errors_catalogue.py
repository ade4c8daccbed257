"""The bad-input catalogue: each bad input, run through its console script, ends in a last line that names the
problem and the fix (`lerobot_stamo.errors`). `docs/errors.md` is rendered from `CASES`:
`python tests/test_errors_catalogue.py > docs/errors.md` after adding a case.

Most cases call the script's entry point in-process (same argv, same draccus / LeRobot parsing, then the
plug-in's excepthook renders what the console shows); the `SUBPROCESS` cases run the installed console scripts
to show the same mechanism end to end.
"""

import importlib
import json
import math
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import cli
from lerobot.utils.constants import OBS_STATE

from lerobot_stamo import activation, errors
from lerobot_stamo.policies.stamo import StamoConfig, StamoPolicy
from lerobot_stamo.policies.stamo_vla import StamoVLAConfig, StamoVLAPolicy

REPO_ROOT = Path(__file__).resolve().parents[1]
DOC = REPO_ROOT / "docs" / "errors.md"

# Console script -> entry point called in-process (`lerobot-train`: the parsed function under its `main`).
ENTRY_POINTS = {
    "lerobot-stamo-label": "lerobot_stamo.scripts.lerobot_stamo_label:main",
    "lerobot-stamo-probe": "lerobot_stamo.scripts.lerobot_stamo_probe:main",
    "lerobot-stamo-interpolate": "lerobot_stamo.scripts.lerobot_stamo_interpolate:main",
    "lerobot-stamo-sim-record": "lerobot_stamo.scripts.lerobot_stamo_sim_record:main",
    "lerobot-train": "lerobot.scripts.lerobot_train:train",
    "lerobot-eval": "lerobot.scripts.lerobot_eval:eval_main",
    "lerobot-record": "lerobot.scripts.lerobot_record:record",
    "lerobot-rollout": "lerobot.scripts.lerobot_rollout:rollout",
    "lerobot-stamo-cotrain": "lerobot_stamo.scripts.lerobot_stamo_cotrain:main",
    "lerobot-stamo-paper": "lerobot_stamo.scripts.lerobot_stamo_paper:main",
    "lerobot-stamo-demo": "lerobot_stamo.scripts.lerobot_stamo_demo:main",
    "lerobot-stamo-policy-server": "lerobot_stamo.scripts.lerobot_stamo_policy_server:main",
}
PYTHON_API = "Python API"


@dataclass(frozen=True)
class Case:
    """One bad input: `args` may use the placeholders of the `inputs` fixture ({ckpt}, {ds}, {out}, ...)."""

    id: str
    script: str
    args: str
    says: str  # a substring of the last non-empty line of stderr
    problem: str  # what is wrong, in words (for docs/errors.md)
    # `Python API` cases: the call (on the `api` fixture) that `args` shows; its uncaught exception is rendered
    # as the interpreter would (the plug-in's excepthook).
    call: Callable[[dict], object] | None = field(default=None, compare=False, repr=False)


LABEL = "--policy.path={ckpt} --dataset.repo_id=local/stamo_squares --dataset.root={ds} --output_dir={out}"
PROBE = LABEL
INTERP = "--policy.path={ckpt} --dataset.repo_id=local/stamo_squares --dataset.root={ds} --output_dir={out}"
TRAIN = "--dataset.repo_id=local/stamo_squares --dataset.root={ds} --output_dir={out}"
# Cases refused once the dataset is read (make_policy): past LeRobot's own checks of the command line.
RUN = " --policy.device=cpu --policy.push_to_hub=false"
EVAL = (
    "--env.type=stamo_so101 --env.observation_height=64 --env.observation_width=64 --eval.n_episodes=1 "
    "--eval.batch_size=1 --eval.use_async_envs=false --policy.device=cpu"
)
COTRAIN = "--robot_root={ds} --video_root={ds1cam} --output_dir={out}"
RECORD = (
    "--robot.type=stamo_so100 --robot.port=/dev/null --dataset.repo_id=local/arm --dataset.single_task=pick"
)

FRONT, WRIST = "observation.images.front", "observation.images.wrist"


def _act(a: dict, **changes):
    """`select_action` on a raw observation (uint8 frames, state, task) changed by `changes` (None: dropped),
    through the checkpoint's own preprocessor, as lerobot-eval / lerobot-rollout / a user script run it."""
    obs = {k: v for k, v in (a["observation"]() | changes).items() if v is not None}
    a["policy"].reset()
    return a["policy"].select_action(a["pre"](obs))


def _act_raw(a: dict, **changes):
    """`select_action` on an already preprocessed batch changed by `changes` (the preprocessor skipped)."""
    batch = a["pre"](a["observation"]()) | changes
    a["policy"].reset()
    return a["policy"].select_action(batch)


def _u8(*shape):
    return torch.zeros(*shape, dtype=torch.uint8)


API_CASES = [
    Case("api-vla-state-size", PYTHON_API, "policy.select_action(pre(obs | {'observation.state': torch.zeros(3)}))",
         "`observation.state` has 3 values (shape (1, 3)) but the policy was trained with 6",
         "state of another robot (was the normaliser's bare tensor-size RuntimeError)",
         call=lambda a: _act(a, **{OBS_STATE: torch.zeros(3)})),
    Case("api-vla-raw-uint8", PYTHON_API, "policy.select_action(batch | {camera: uint8 frames}) (no preprocessor)",
         "is torch.uint8, but the policy reads float frames in [0, 1]", "uint8 frames past the preprocessor",
         call=lambda a: _act_raw(a, **{FRONT: _u8(1, 3, 64, 64)})),
    Case("api-vla-raw-0-255", PYTHON_API, "policy.select_action(batch | {camera: 0..255 floats}) (no preprocessor)",
         "They look like 0-255 values: divide by 255", "unscaled float frames past the preprocessor",
         call=lambda a: _act_raw(a, **{FRONT: torch.full((1, 3, 64, 64), 200.0)})),
    Case("api-vla-no-preprocessor", PYTHON_API, "policy.select_action(obs) (raw observation)",
         "The observation has no instruction tokens: run it through the policy's preprocessor",
         "preprocessor skipped altogether",
         call=lambda a: a["policy"].select_action(a["observation"]())),
    Case("api-vla-no-task", PYTHON_API, "policy.select_action(pre(obs without 'task'))",
         "The observation has no `task`: stamo_vla reads the instruction", "missing task string (was KeyError: 'task')",
         call=lambda a: _act(a, task=None)),
    Case("api-vla-task-not-text", PYTHON_API, "policy.select_action(pre(obs | {'task': 5}))",
         "`task` must be a string or a non-empty list of strings", "task of the wrong type (was 'Task cannot be None')",
         call=lambda a: _act(a, task=5)),
    Case("api-vla-tasks-per-item", PYTHON_API, "policy.select_action(pre(obs | {'task': ['a', 'b']})) (one observation)",
         "The observation's batch sizes differ", "two tasks for one observation (was a torch.cat RuntimeError)",
         call=lambda a: _act(a, task=["pick", "place"])),
    Case("api-vla-batch-sizes", PYTHON_API, "policy.select_action(pre(obs | {front: 2 frames}))",
         "The observation's batch sizes differ", "cameras with different batch sizes (was a torch.cat RuntimeError)",
         call=lambda a: _act(a, **{FRONT: _u8(2, 3, 64, 64)})),
    Case("api-vla-missing-camera", PYTHON_API, "policy.select_action(pre(obs without the wrist camera))",
         "stamo_vla needs ['observation.images.wrist'], missing from the observation", "a camera missing",
         call=lambda a: _act(a, **{WRIST: None})),
    Case("api-vla-camera-observation-image", PYTHON_API,
         "policy.select_action(pre({'observation.image': frame, 'observation.state': ..., 'task': ...}))",
         "`--rename_map='{\"observation.image\": \"observation.images.front\"}'`",
         "single-camera naming (`observation.image`) for a policy trained on images.front/wrist",
         call=lambda a: _act(a, **{FRONT: None, WRIST: None, "observation.image": _u8(3, 64, 64)})),
    Case("api-vla-camera-wrist-image", PYTHON_API, "policy.select_action(pre(obs with 'observation.images.wrist_image'))",
         "`--rename_map='{\"observation.images.wrist_image\": \"observation.images.wrist\"}'`",
         "LIBERO's `wrist_image` name for the policy's `wrist`",
         call=lambda a: _act(a, **{WRIST: None, "observation.images.wrist_image": _u8(3, 64, 64)})),
    Case("api-vla-channel-last", PYTHON_API, "policy.select_action(pre(obs | {front: (64, 64, 3) frame}))",
         "looks channel-last (1, 64, 64, 3)", "HWC frame as cameras deliver it",
         call=lambda a: _act(a, **{FRONT: _u8(64, 64, 3)})),
    Case("api-vla-grayscale", PYTHON_API, "policy.select_action(pre(obs | {front: (1, 64, 64) frame}))",
         "must have 3 (RGB) channels in dim 1", "grayscale frame",
         call=lambda a: _act(a, **{FRONT: _u8(1, 64, 64)})),
    Case("api-vla-frame-nan", PYTHON_API, "policy.select_action(pre(obs | {front: NaN floats}))",
         "contains NaN or inf pixels", "NaN pixels",
         call=lambda a: _act(a, **{FRONT: torch.full((3, 64, 64), float("nan"))})),
    Case("api-vla-frame-0-255", PYTHON_API, "policy.select_action(pre(obs | {front: 0..255 floats}))",
         "They look like 0-255 values: divide by 255", "float frames in 0..255",
         call=lambda a: _act(a, **{FRONT: torch.full((3, 64, 64), 200.0)})),
    Case("api-vla-frame-int64", PYTHON_API, "policy.select_action(pre(obs | {front: int64 frame}))",
         "must be uint8 in [0, 255] or float in [0, 1], got dtype torch.int64", "integer frames of another dtype",
         call=lambda a: _act(a, **{FRONT: torch.zeros(3, 64, 64, dtype=torch.int64)})),
    Case("api-vla-state-list", PYTHON_API, "policy.select_action(pre(obs | {'observation.state': [0.0] * 6}))",
         "must be a torch.Tensor of 6 joint values, got list", "state as a Python list (was a torch.cat RuntimeError)",
         call=lambda a: _act(a, **{OBS_STATE: [0.0] * 6})),
    Case("api-vla-state-nan", PYTHON_API, "policy.select_action(pre(obs | {'observation.state': NaN}))",
         "`observation.state` contains NaN or inf values", "NaN joint reading",
         call=lambda a: _act(a, **{OBS_STATE: torch.full((6,), float("nan"))})),
    Case("api-vla-no-state", PYTHON_API, "policy.select_action(pre(obs without 'observation.state'))",
         "'observation.state'", "state missing",
         call=lambda a: _act(a, **{OBS_STATE: None})),
    Case("api-vla-load-stamo-checkpoint", PYTHON_API, "StamoVLAPolicy.from_pretrained('{ckpt}')",
         "is a 'stamo' checkpoint, not a 'stamo_vla' one", "the encoder's checkpoint loaded as the actor",
         call=lambda a: StamoVLAPolicy.from_pretrained(a["ckpt"])),
    Case("api-vla-config-of-stamo", PYTHON_API, "StamoVLAPolicy(StamoConfig())",
         "StamoVLAPolicy needs a StamoVLAConfig, got a StamoConfig", "the encoder's config for the actor",
         call=lambda a: StamoVLAPolicy(StamoConfig(device="cpu"))),
    Case("api-vla-config-nan", PYTHON_API, "StamoVLAConfig(lambda_future=float('nan'))",
         "`lambda_future` must be finite, got nan", "NaN loss weight in Python",
         call=lambda a: StamoVLAConfig(device="cpu", lambda_future=math.nan)),
    Case("api-stamo-config-inf-tuple", PYTHON_API, "StamoConfig(backbone_image_mean=(0.5, inf, 0.5))",
         "`backbone_image_mean` must be finite", "inf inside a tuple field",
         call=lambda a: StamoConfig(device="cpu", backbone_image_mean=(0.5, math.inf, 0.5))),
    Case("api-stamo-missing-checkpoint", PYTHON_API, "StamoPolicy.from_pretrained('{tmp}/nope')",
         "checkpoint={tmp}/nope: no such folder", "checkpoint folder does not exist",
         call=lambda a: StamoPolicy.from_pretrained(f"{a['tmp']}/nope")),
    Case("api-stamo-select-action", PYTHON_API, "stamo.select_action(batch)",
         "`stamo` is a state encoder (StaMo's diffusion autoencoder), not an actor", "the encoder asked for actions",
         call=lambda a: a["stamo"].select_action({FRONT: torch.rand(1, 3, 64, 64), WRIST: torch.rand(1, 3, 64, 64)})),
    Case("api-stamo-encode-channel-last", PYTHON_API, "stamo.encode(uint8 (1, 64, 64, 3) frames)",
         "looks channel-last (1, 64, 64, 3)", "HWC frames to the encoder",
         call=lambda a: a["stamo"].encode(_u8(1, 64, 64, 3))),
    Case("api-stamo-encode-0-255", PYTHON_API, "stamo.encode(0..255 float frames)",
         "They look like 0-255 values: divide by 255", "unscaled float frames to the encoder",
         call=lambda a: a["stamo"].encode(torch.full((1, 3, 64, 64), 255.0))),
    Case("api-stamo-encode-list", PYTHON_API, "stamo.encode([frame, frame])",
         "must be a torch.Tensor of shape (B, 3, H, W), got list", "a list of frames (was AttributeError: 'list' "
         "object has no attribute 'to'; numpy arrays are accepted)",
         call=lambda a: a["stamo"].encode([np.zeros((3, 64, 64), np.uint8)] * 2)),
    Case("api-stamo-forward-missing-camera", PYTHON_API, "stamo.forward({front: frames}) (two-camera model)",
         "Camera 'observation.images.wrist' is missing from the batch", "a camera missing from a training batch",
         call=lambda a: a["stamo"].forward({FRONT: torch.rand(2, 3, 64, 64)})),
]  # fmt: skip


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
         "`policy.world_model_target` must be one of ('auto', 'state', 'motion', 'none')", "unknown world-model target"),
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
    # --- added for issue #32 item 3 (an outside audit's bad inputs), then grown across every entry point ---
    # lerobot-train: NaN/inf and out-of-range policy values (the generic float check covers every float field)
    Case("train-vla-lambda-future-nan", "lerobot-train", TRAIN + " --policy.type=stamo_vla --policy.lambda_future=nan",
         "`lambda_future` must be finite, got nan", "NaN loss weight (passed `>= 0` and trained to the end)"),
    Case("train-stamo-env-eval", "lerobot-train",
         TRAIN + " --policy.path={stamo_full} --env.type=stamo_so101 --env_eval_freq=2 --steps=4" + RUN,
         "To train the encoder, drop --env.type (or pass --env_eval_freq=0)",
         "an encoder trained with env evaluation (failed only at the first evaluation, after its checkpoint)"),
    Case("train-stamo-lr-inf", "lerobot-train", TRAIN + " --policy.type=stamo --policy.optimizer_lr=inf",
         "`optimizer_lr` must be finite, got inf", "infinite learning rate"),
    Case("train-stamo-image-std-nan", "lerobot-train",
         TRAIN + " --policy.type=stamo --policy.backbone_image_std=[0.2,nan,0.2]",
         "`backbone_image_std` must be finite", "NaN inside a tuple of floats"),
    Case("train-stamo-weighting-scheme", "lerobot-train", TRAIN + " --policy.type=stamo --policy.weighting_scheme=logitnormal",
         "`weighting_scheme` must be one of", "misspelt timestep weighting (diffusers silently sampled uniformly)"),
    Case("train-stamo-compressor-dropout", "lerobot-train", TRAIN + " --policy.type=stamo --policy.compressor_dropout=1",
         "`compressor_dropout` is a probability in [0, 1), got 1.0", "dropout that drops everything"),
    Case("train-stamo-compressor-heads-zero", "lerobot-train", TRAIN + " --policy.type=stamo --policy.compressor_heads=0",
         "`compressor_heads` must be >= 1, got 0", "zero heads (was a ZeroDivisionError)"),
    Case("train-stamo-image-size-zero", "lerobot-train", TRAIN + " --policy.type=stamo --policy.image_size=0",
         "`image_size` must be >= 1, got 0", "image size out of range"),
    Case("train-stamo-logit-std-zero", "lerobot-train", TRAIN + " --policy.type=stamo --policy.logit_std=0",
         "they must be > 0", "zero standard deviation of the timestep sampling"),
    Case("train-stamo-compile-mode", "lerobot-train", TRAIN + " --policy.type=stamo --policy.compile_mode=fast",
         "`compile_mode` must be one of", "unknown torch.compile mode"),
    Case("train-stamo-loss-buckets-zero", "lerobot-train", TRAIN + " --policy.type=stamo --policy.loss_buckets=0",
         "`loss_buckets` must be >= 1, got 0", "no loss bucket"),
    Case("train-stamo-num-tokens-zero", "lerobot-train", TRAIN + " --policy.type=stamo --policy.num_tokens=0",
         "`num_tokens` and `token_dim` must be >= 1", "an empty state"),
    Case("train-stamo-dim-not-divisible", "lerobot-train",
         TRAIN + " --policy.type=stamo --policy.compressor_dim=100 --policy.compressor_heads=8",
         "`compressor_dim`=100 must be divisible by `compressor_heads`=8", "width not divisible by heads"),
    Case("train-stamo-recon-steps-zero", "lerobot-train",
         TRAIN + " --policy.type=stamo --policy.reconstruction_num_inference_steps=0",
         "`reconstruction_num_inference_steps` must be >= 1 Euler step", "no Euler step for the saved reconstructions"),
    Case("train-stamo-lora-rank-zero", "lerobot-train",
         TRAIN + " --policy.type=stamo --policy.decoder_mode=lora --policy.lora_rank=0",
         "`lora_rank` must be >= 1, got 0", "LoRA of rank 0"),
    Case("train-stamo-dtype-not-a-choice", "lerobot-train", TRAIN + " --policy.type=stamo --policy.dtype=bf16",
         "`dtype` must be 'float32', 'bfloat16' or 'float16', got 'bf16'", "dtype shorthand"),
    # lerobot-train: cameras (names users vary), datasets without what the policy needs
    Case("train-stamo-camera-short-name", "lerobot-train", TRAIN + " --policy.type=stamo --policy.cameras=[wrist]" + RUN,
         "Did you mean {'wrist': 'observation.images.wrist'}?", "camera's short name instead of its feature key"),
    Case("train-stamo-camera-observation-image", "lerobot-train",
         TRAIN + " --policy.type=stamo --policy.cameras=[observation.image]" + RUN,
         "Available image features: ['observation.images.front', 'observation.images.wrist']",
         "single-camera name (`observation.image`) on a two-camera dataset"),
    Case("train-stamo-camera-images-image", "lerobot-train",
         TRAIN.replace("{ds}", "{ds1cam}") + " --policy.type=stamo --policy.cameras=[observation.images.image]" + RUN,
         "Did you mean {'observation.images.image': 'observation.image'}?",
         "`observation.images.image` on a dataset whose one camera is `observation.image`"),
    Case("train-stamo-camera-wrist-image", "lerobot-train",
         TRAIN + " --policy.type=stamo --policy.cameras=[observation.images.wrist_image]" + RUN,
         "Did you mean {'observation.images.wrist_image': 'observation.images.wrist'}?",
         "LIBERO's `wrist_image` name on a dataset that calls it `wrist`"),
    Case("train-stamo-cameras-empty", "lerobot-train", TRAIN + " --policy.type=stamo --policy.cameras=[]" + RUN,
         "`policy.cameras` is empty: name one or more of", "empty camera list"),
    Case("train-stamo-no-camera", "lerobot-train",
         TRAIN.replace("{ds}", "{noimg}") + " --policy.type=stamo" + RUN,
         "the input features contain no image feature", "dataset without cameras"),
    Case("train-vla-no-camera", "lerobot-train",
         TRAIN.replace("{ds}", "{noimg}") + " --policy.type=stamo_vla --policy.world_model_target=none" + RUN,
         "stamo_vla needs at least one camera", "dataset without cameras"),
    Case("train-vla-no-action", "lerobot-train",
         TRAIN.replace("{ds}", "{noaction}") + " --policy.type=stamo_vla --policy.world_model_target=none" + RUN,
         "but the dataset has no `action` feature", "video-only dataset (no actions) for an actor"),
    Case("train-vla-unlabelled-dataset", "lerobot-train",
         TRAIN + " --policy.type=stamo_vla --policy.world_model_target=state" + RUN, "lerobot-stamo-label",
         "world-model head asked for on a dataset without StaMo labels and no stamo_path (the default trains)"),
    Case("train-vla-diverges", "lerobot-train",
         TRAIN + " --policy.type=stamo_vla --policy.world_model_target=none --policy.dim_model=32 --policy.n_heads=4"
         " --policy.n_layers=1 --policy.dim_feedforward=64 --policy.optimizer_lr=1e30 --steps=4 --save_freq=2"
         " --batch_size=4 --num_workers=0" + RUN,
         "or resume from the last good checkpoint", "training diverges (finite inputs, a NaN loss): stopped at the "
         "first non-finite loss, before saving"),
    # lerobot-train: stamo_vla values
    Case("train-vla-lambda-latent-inf", "lerobot-train", TRAIN + " --policy.type=stamo_vla --policy.lambda_latent=inf",
         "`lambda_latent` must be finite, got inf", "infinite co-training weight"),
    Case("train-vla-dropout", "lerobot-train", TRAIN + " --policy.type=stamo_vla --policy.dropout=1.5",
         "`dropout` is a probability in [0, 1), got 1.5", "dropout out of range (was refused only by torch, late)"),
    Case("train-vla-resize-zero", "lerobot-train", TRAIN + " --policy.type=stamo_vla --policy.resize_images=[0,0]",
         "`resize_images` must be [height, width] with both >= 1", "resize to zero pixels"),
    Case("train-vla-chunk-zero", "lerobot-train",
         TRAIN + " --policy.type=stamo_vla --policy.chunk_size=0 --policy.n_action_steps=1",
         "`chunk_size` must be >= 1, got 0", "empty action chunk"),
    Case("train-vla-n-heads-zero", "lerobot-train", TRAIN + " --policy.type=stamo_vla --policy.n_heads=0",
         "`n_heads` must be >= 1, got 0", "zero heads (was a ZeroDivisionError)"),
    Case("train-vla-tokenizer-length-zero", "lerobot-train",
         TRAIN + " --policy.type=stamo_vla --policy.tokenizer_max_length=0",
         "`tokenizer_max_length` must be >= 1, got 0", "no room for the instruction"),
    Case("train-vla-vlm-layers-zero", "lerobot-train",
         TRAIN + " --policy.type=stamo_vla --policy.backbone=vlm --policy.vlm_num_layers=0",
         "`vlm_num_layers` must be >= 1 (or null for all layers)", "VLM cut to zero layers"),
    Case("train-vla-vlm-dtype", "lerobot-train", TRAIN + " --policy.type=stamo_vla --policy.vlm_dtype=float64",
         "`policy.vlm_dtype` must be one of", "unsupported VLM dtype"),
    Case("train-vla-targets-from-encoder", "lerobot-train",
         TRAIN + " --policy.type=stamo_vla --policy.world_model_targets_from=encoder",
         "`policy.world_model_targets_from=encoder` encodes frames with a frozen stamo checkpoint",
         "online targets without a stamo checkpoint"),
    Case("train-vla-targets-from-typo", "lerobot-train",
         TRAIN + " --policy.type=stamo_vla --policy.world_model_targets_from=label",
         "`policy.world_model_targets_from` must be one of ('auto', 'labels', 'encoder'), got 'label'",
         "unknown target source"),
    Case("train-vla-future-horizon-zero", "lerobot-train", TRAIN + " --policy.type=stamo_vla --policy.future_horizon=0",
         "`future_horizon` must be >= 1 frame, got 0", "world-model horizon out of range"),
    Case("train-vla-n-obs-steps", "lerobot-train", TRAIN + " --policy.type=stamo_vla --policy.n_obs_steps=2",
         "`n_obs_steps` must be 1, got 2", "stacked observations"),
    Case("train-vla-optimizer-lr-zero", "lerobot-train", TRAIN + " --policy.type=stamo_vla --policy.optimizer_lr=0",
         "`optimizer_lr` must be > 0, got 0.0", "learning rate 0 (trains nothing)"),
    Case("train-vla-vision-typo", "lerobot-train", TRAIN + " --policy.type=stamo_vla --policy.vision=resnet",
         "`policy.vision` must be one of ('resnet18', 'efficientnet_lite0', 'stamo'), got 'resnet'", "unknown vision"),
    # lerobot-train: the stamo checkpoint stamo_vla reads, and checkpoints/configs in the wrong place
    Case("train-vla-stamo-path-missing", "lerobot-train",
         TRAIN + " --policy.type=stamo_vla --policy.stamo_path={tmp}/nope" + RUN,
         "--policy.stamo_path={tmp}/nope: no such folder", "stamo checkpoint folder does not exist"),
    Case("train-vla-stamo-path-is-dataset", "lerobot-train",
         TRAIN + " --policy.type=stamo_vla --policy.stamo_path={ds}" + RUN,
         "has no config.json, so it is not a checkpoint folder", "a dataset given as the stamo checkpoint"),
    Case("train-vla-stamo-path-is-vla", "lerobot-train",
         TRAIN + " --policy.type=stamo_vla --policy.stamo_path={vla}" + RUN,
         "--policy.stamo_path='{vla}' is a 'stamo_vla' checkpoint, not a 'stamo' one",
         "a stamo_vla checkpoint given as the stamo checkpoint"),
    Case("train-vla-world-model-camera", "lerobot-train",
         TRAIN + " --policy.type=stamo_vla --policy.stamo_path={ckpt} --policy.world_model_cameras=[observation.images.top]" + RUN,
         "observation.images.top", "world-model camera the stamo checkpoint does not encode"),
    Case("train-resume-preset", "lerobot-train",
         TRAIN.replace("{out}", "{tmp}/norun") + " --config_path={presets}/stamo_vla_compact_sim.json --resume=true",
         "holds no checkpoint (no checkpoints/last/pretrained_model), so there is no run to resume there",
         "--resume=true with a preset as --config_path (blamed the presets' folder)"),
    Case("train-resume-preset-run-exists", "lerobot-train",
         TRAIN.replace("{out}", "{run}") + " --config_path={presets}/stamo_vla_compact_sim.json --resume=true",
         "did you mean --config_path={run}/checkpoints/last/pretrained_model/train_config.json?",
         "--resume=true with a preset, the run's own train_config.json exists"),
    Case("train-config-path-missing", "lerobot-train", TRAIN + " --config_path={tmp}/stamo_tiny.json",
         "The plug-in ships this preset: pass --config_path=", "a preset's path from a clone, run elsewhere"),
    Case("train-policy-path-run-folder", "lerobot-train", TRAIN + " --policy.path={run}",
         "Did you mean {run}/checkpoints/last/pretrained_model?", "training run folder instead of its checkpoint"),
    Case("train-policy-path-offline-hub", "lerobot-train", TRAIN + " --policy.path=nobody/stamo",
         "HF_HUB_OFFLINE=1 forbids downloading it as a Hub repo id", "Hub checkpoint id, offline and not cached"),
    # lerobot-eval
    Case("eval-stamo-encoder", "lerobot-eval",
         "--policy.path={stamo_full} " + EVAL,
         "is a state encoder (StaMo's diffusion autoencoder), not an actor",
         "an encoder checkpoint evaluated as an actor (last line was a progress bar's cursor code)"),
    Case("eval-checkpoint-without-processors", "lerobot-eval", "--policy.path={ckpt} " + EVAL,
         "has no policy_preprocessor.json", "checkpoint saved by `save_pretrained` alone (was: run a migration script)"),
    Case("eval-vla-missing-camera", "lerobot-eval",
         "--policy.path={vla} " + EVAL + " --env.cameras=[front]",
         "stamo_vla needs ['observation.images.wrist']", "env without a camera the policy reads"),
    Case("eval-env-unknown-task", "lerobot-eval", "--policy.path={vla} --env.type=stamo_so101 --env.task=FlyAway",
         "Valid tasks: PickCube, PickPlace", "unknown task"),
    Case("eval-env-unknown-camera", "lerobot-eval", "--policy.path={vla} --env.type=stamo_so101 --env.cameras=[top]",
         "--env.cameras=['top'] is not valid: choose one or more of", "unknown camera"),
    Case("eval-env-fps", "lerobot-eval", "--policy.path={vla} --env.type=stamo_so101 --env.fps=30",
         "stamo_so101 runs at --env.fps=10", "another control rate"),
    Case("eval-env-episode-length-zero", "lerobot-eval",
         "--policy.path={vla} --env.type=stamo_so101 --env.episode_length=0",
         "--env.episode_length must be >= 1 step", "episode of zero steps"),
    Case("eval-env-camera-jitter-nan", "lerobot-eval",
         "--policy.path={vla} --env.type=stamo_so101 --env.camera_jitter=nan",
         "--env.camera_jitter must be a finite number >= 0 metres, got nan", "NaN camera jitter"),
    Case("eval-env-height-zero", "lerobot-eval",
         "--policy.path={vla} --env.type=stamo_so101 --env.observation_height=0",
         "--env.observation_height=0 is too small", "image height out of range"),
    Case("eval-broken-config-json", "lerobot-eval", "--policy.path={badjson} --env.type=stamo_so101",
         "config.json is not valid JSON", "checkpoint's config.json is cut short"),
    # lerobot-record / lerobot-rollout with our arms
    Case("record-max-relative-target-negative", "lerobot-record", RECORD + " --robot.max_relative_target=-5",
         "--robot.max_relative_target must be finite and > 0", "negative safety limit"),
    Case("record-camera-timeout-zero", "lerobot-record", RECORD + " --robot.camera_timeout_ms=0",
         "--robot.camera_timeout_ms must be >= 1, got 0", "camera timeout out of range"),
    Case("record-koch-nonfinite-actions-zero", "lerobot-record",
         RECORD.replace("stamo_so100", "stamo_koch") + " --robot.max_nonfinite_actions=0",
         "stamo_koch: --robot.max_nonfinite_actions must be >= 1, got 0", "Koch: safety limit out of range"),
    Case("record-follower-port-missing", "lerobot-record",
         "--config_path={presets}/record_so101.json --robot.port=/dev/nonexistent --dataset.repo_id=local/arm "
         "--dataset.root={out}", "The follower arm's port --robot.port=/dev/nonexistent does not exist",
         "follower port that does not exist (the leader's port was blamed: it connects first)"),
    Case("record-leader-port-unreachable", "lerobot-record",
         "--config_path={presets}/record_so101.json --robot.port=/dev/null --teleop.port=/dev/nonexistent_leader "
         "--dataset.repo_id=local/arm --dataset.root={out}",
         "Could not connect to the leader arm (so101_leader) on --teleop.port=/dev/nonexistent_leader",
         "LeRobot's leader arm on a port that does not answer (named no arm)"),
    Case("record-koch-missing-camera", "lerobot-record",
         RECORD.replace("stamo_so100", "stamo_koch") + " --robot.required_cameras=[front,wrist,side]",
         "the policy reads camera(s) ['side']", "Koch: a camera the policy reads is not configured"),
    Case("rollout-missing-checkpoint", "lerobot-rollout",
         "--policy.path={tmp}/nope --robot.type=stamo_so100 --robot.port=/dev/null",
         "--policy.path={tmp}/nope: no such folder", "checkpoint folder does not exist"),
    Case("rollout-max-relative-target-nan", "lerobot-rollout",
         "--policy.path={vla} --robot.type=stamo_so100 --robot.port=/dev/null --robot.max_relative_target=nan",
         "--robot.max_relative_target must be finite and > 0", "NaN safety limit (no clamp at all)"),
    # lerobot-stamo-label
    Case("label-vla-checkpoint", "lerobot-stamo-label", LABEL.replace("{ckpt}", "{vla}"),
         "is a 'stamo_vla' checkpoint, not a 'stamo' one", "an actor's checkpoint instead of the encoder"),
    Case("label-invalid-repo-id", "lerobot-stamo-label",
         "--policy.path={ckpt} --dataset.repo_id=bad//id --output_dir={out}",
         "is not a Hub repo id", "repo id that is not user/name"),
    Case("label-offline-hub-checkpoint", "lerobot-stamo-label", LABEL.replace("{ckpt}", "nobody/stamo"),
         "HF_HUB_OFFLINE=1 forbids downloading it as a Hub repo id", "Hub checkpoint id, offline and not cached"),
    Case("label-num-workers-negative", "lerobot-stamo-label", LABEL + " --num_workers=-1",
         "--num_workers must be >= 0, got -1", "worker count out of range"),
    Case("label-push-without-repo-id", "lerobot-stamo-label", LABEL + " --push_to_hub=true",
         "--push_to_hub=true needs --repo_id=", "push to the Hub without a repo"),
    Case("label-single-camera-dataset", "lerobot-stamo-label",
         LABEL.replace("{ds}", "{ds1cam}") + " --cameras=[observation.images.image]",
         "Fix --cameras", "`observation.images.image` on a dataset whose camera is `observation.image`"),
    Case("label-config-file-missing", "lerobot-stamo-label", "--config_path={tmp}/label.json",
         "--config_path={tmp}/label.json: no such file", "config file does not exist"),
    Case("label-no-policy", "lerobot-stamo-label", "--dataset.repo_id=local/stamo_squares --dataset.root={ds} --output_dir={out}",
         "--policy.path is required", "checkpoint not given"),
    # lerobot-stamo-probe
    Case("probe-lr-nan", "lerobot-stamo-probe", PROBE + " --lr=nan",
         "--lr must be a finite number > 0", "NaN learning rate of the MLP probe"),
    Case("probe-ridge-alpha-negative", "lerobot-stamo-probe", PROBE + " --ridge_alphas=[-1]",
         "--ridge_alphas must be non-negative numbers", "negative ridge penalty"),
    Case("probe-val-folds-one", "lerobot-stamo-probe", PROBE + " --val_folds=1",
         "--val_folds must be >= 2", "one cross-validation fold"),
    Case("probe-seeds-empty", "lerobot-stamo-probe", PROBE + " --seeds=[]",
         "--seeds must name at least one seed", "no seed"),
    Case("probe-steps-zero", "lerobot-stamo-probe", PROBE + " --steps=0",
         "--steps and --patience must be >= 1", "MLP probe with no step"),
    Case("probe-hidden-dim-zero", "lerobot-stamo-probe", PROBE + " --hidden_dim=0",
         "--hidden_dim, --pool and --batch_size must be >= 1", "MLP probe of width 0"),
    Case("probe-vla-checkpoint", "lerobot-stamo-probe", PROBE.replace("{ckpt}", "{vla}"),
         "is a 'stamo_vla' checkpoint, not a 'stamo' one", "an actor's checkpoint instead of the encoder"),
    Case("probe-test-fraction-nan", "lerobot-stamo-probe", PROBE + " --test_fraction=nan",
         "--test_fraction must be in (0, 1), got nan", "NaN fraction"),
    # lerobot-stamo-interpolate
    Case("interpolate-vla-checkpoint", "lerobot-stamo-interpolate", INTERP.replace("{ckpt}", "{vla}"),
         "is a 'stamo_vla' checkpoint, not a 'stamo' one", "an actor's checkpoint instead of the encoder"),
    Case("interpolate-fps-zero", "lerobot-stamo-interpolate", INTERP + " --fps=0",
         "`--fps` (frames per second of the GIF) must be >= 1", "GIF rate out of range"),
    Case("interpolate-three-images", "lerobot-stamo-interpolate",
         "--policy.path={ckpt} --images {img} {img} {img} --output_dir={out}", "takes exactly two files",
         "three images instead of two"),
    Case("interpolate-transfer-missing", "lerobot-stamo-interpolate",
         "--policy.path={ckpt} --images {img} {img} --transfer={tmp}/nofile.png --output_dir={out}",
         "--transfer: {tmp}/nofile.png is not a file", "transfer image does not exist"),
    Case("interpolate-offline-hub-checkpoint", "lerobot-stamo-interpolate", INTERP.replace("{ckpt}", "nobody/stamo"),
         "HF_HUB_OFFLINE=1 forbids downloading it as a Hub repo id", "Hub checkpoint id, offline and not cached"),
    Case("interpolate-transfer-episode", "lerobot-stamo-interpolate", INTERP + " --dataset.transfer_episode=5",
         "Episode 5 out of range", "transfer episode out of range"),
    # lerobot-stamo-sim-record
    Case("sim-record-camera-jitter-nan", "lerobot-stamo-sim-record", "--root={out} --camera_jitter=nan",
         "--camera_jitter must be >= 0 metres, got nan", "NaN camera jitter (passed `< 0`)"),
    Case("sim-record-steps-after-success", "lerobot-stamo-sim-record", "--root={out} --steps_after_success=-1",
         "--steps_after_success must be >= 0", "negative step count"),
    Case("sim-record-cameras-empty", "lerobot-stamo-sim-record", "--root={out} --cameras=[]",
         "--cameras=[] is not valid: choose one or more of", "no camera"),
    Case("sim-record-small-video", "lerobot-stamo-sim-record", "--root={out} --observation_width=8",
         "or record PNG frames with --use_videos=false", "frames too small for the video encoder"),
    Case("sim-record-root-is-file", "lerobot-stamo-sim-record", "--root={png} --num_episodes=1",
         "{png}", "output folder is a file"),
    # lerobot-stamo-cotrain
    Case("cotrain-no-robot-root", "lerobot-stamo-cotrain", "--video_root={ds} --output_dir={out}",
         "--robot_root is required", "robot dataset not given"),
    Case("cotrain-robot-root-not-dataset", "lerobot-stamo-cotrain", COTRAIN.replace("--robot_root={ds}", "--robot_root={notds}"),
         "is not a LeRobotDataset (no meta/info.json)", "robot folder that is not a dataset"),
    Case("cotrain-video-root-missing", "lerobot-stamo-cotrain", COTRAIN.replace("{ds1cam}", "{tmp}/nods"),
         "--video_root={tmp}/nods is not a LeRobotDataset", "video dataset folder does not exist"),
    Case("cotrain-same-dataset", "lerobot-stamo-cotrain", "--robot_root={ds} --video_root={ds} --output_dir={out}",
         "are the same dataset", "the robot dataset given as the videos too"),
    Case("cotrain-output-inside-input", "lerobot-stamo-cotrain", COTRAIN.replace("{out}", "{ds}/cotrain"),
         "overlaps the source dataset", "output folder inside a source dataset"),
    Case("cotrain-real-per-task-zero", "lerobot-stamo-cotrain", COTRAIN + " --real_per_task=0",
         "--real_per_task must be >= 1 episode", "episode count out of range"),
    Case("cotrain-two-selections", "lerobot-stamo-cotrain", COTRAIN + " --real_per_task=1 --real_episodes=[0]",
         "--real_per_task and --real_episodes both choose real episodes: give only one", "two ways to choose episodes"),
    Case("cotrain-repeat-zero", "lerobot-stamo-cotrain", COTRAIN + " --real_repeat=0",
         "--real_repeat must be >= 1", "repeat count out of range"),
    Case("cotrain-episodes-repeated", "lerobot-stamo-cotrain", COTRAIN + " --video_episodes=[0,0]",
         "--video_episodes must be a non-empty list without repeats", "an episode chosen twice"),
    Case("cotrain-push-without-repo-id", "lerobot-stamo-cotrain", COTRAIN + " --push_to_hub=true",
         "--push_to_hub=true needs --repo_id=", "push to the Hub without a repo"),
    Case("cotrain-unlabelled", "lerobot-stamo-cotrain", COTRAIN,
         "lerobot-stamo-label", "sources without StaMo labels"),
    # lerobot-stamo-paper
    Case("paper-unknown-task", "lerobot-stamo-paper", "--quick --tasks FlyAway",
         "--tasks=FlyAway is not valid: choose from", "unknown task"),
    Case("paper-seeds-not-int", "lerobot-stamo-paper", "--quick --seeds a,b",
         "expected comma-separated integers such as 0,1,2, got 'a,b'", "seeds of the wrong type"),
    Case("paper-seeds-repeated", "lerobot-stamo-paper", "--quick --seeds 0,0",
         "must name distinct seeds", "a seed given twice"),
    Case("paper-episodes-two", "lerobot-stamo-paper", "--quick --episodes 2",
         "--episodes must be >= 3 (train, held-out, transfer)", "too few episodes to split"),
    Case("paper-jobs-zero", "lerobot-stamo-paper", "--quick --jobs 0", "--jobs must be >= 1, got 0",
         "no parallel job"),
    Case("paper-horizon-zero", "lerobot-stamo-paper", "--quick --horizon 0", "--horizon must be >= 1, got 0",
         "label horizon out of range"),
    Case("paper-configs-dir-without-presets", "lerobot-stamo-paper", "--quick --configs_dir {notds}",
         "lacks stamo_tiny.json: pass a folder holding the presets", "--configs_dir without the presets"),
    Case("paper-unknown-flag", "lerobot-stamo-paper", "--quik", "unrecognized arguments: --quik", "misspelt flag"),
    # lerobot-stamo-demo
    Case("demo-one-episode", "lerobot-stamo-demo", "--output_dir={out} --num_episodes=1",
         "--num_episodes must be >= 2 (the interpolation transfers episode 0's motion to episode 1)",
         "too few episodes for the motion transfer"),
    Case("demo-tiny-config-missing", "lerobot-stamo-demo", "--output_dir={out} --tiny_config={tmp}/nope.json",
         "--tiny_config={tmp}/nope.json not found", "preset file does not exist"),
    Case("demo-output-is-file", "lerobot-stamo-demo", "--output_dir={png}",
         "is a file: choose a new or empty folder", "output folder is a file"),
    Case("demo-output-foreign", "lerobot-stamo-demo", "--output_dir={notds}",
         "holds files the demo did not write (notes.txt)", "output folder holding someone's files"),
    Case("demo-vla-horizon-zero", "lerobot-stamo-demo", "--output_dir={out} --vla_horizon=0",
         "--vla_horizon must be >= 1, got 0", "world-model horizon out of range"),
    Case("demo-fit-vae-negative", "lerobot-stamo-demo", "--output_dir={out} --fit_vae_steps=-1",
         "--fit_vae_steps must be >= 0, got -1", "negative step count"),
    Case("demo-height-small", "lerobot-stamo-demo", "--output_dir={out} --observation_height=4",
         "--observation_height=4 is too small", "frames too small for the video encoder"),
    # lerobot-stamo-policy-server (LeRobot's async-inference server with our policies)
    Case("policy-server-port-zero", "lerobot-stamo-policy-server", "--port=0",
         "Port must be between 1 and 65535, got 0", "port out of range"),
    Case("policy-server-port-not-int", "lerobot-stamo-policy-server", "--port=http",
         "Couldn't parse 'http' into an int", "port of the wrong type"),
    Case("policy-server-latency-negative", "lerobot-stamo-policy-server", "--inference_latency=-1",
         "inference_latency must be non-negative", "negative latency"),
    Case("policy-server-queue-timeout-negative", "lerobot-stamo-policy-server", "--obs_queue_timeout=-1",
         "obs_queue_timeout must be non-negative", "negative timeout"),
    Case("policy-server-fps-zero", "lerobot-stamo-policy-server", "--fps=0",
         "--fps=0 must be an integer >= 1", "control rate of zero (was a ZeroDivisionError)"),
    Case("policy-server-unknown-flag", "lerobot-stamo-policy-server", "--policy.path={vla}",
         "unrecognized arguments", "a policy flag (the client names the policy, not the server)"),
    *API_CASES,
]  # fmt: skip

# Also run as a real console process (slow: an interpreter start and the plug-in import): the excepthook the
# plug-in installs when imported turns draccus' "Couldn't instantiate class" into the config's message.
SUBPROCESS = ("label-horizon-zero", "eval-stamo-encoder")

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
    ("lerobot-stamo-paper", "--tasks, --real_episodes out of range; a --configs_dir without the presets",
     "tests/scripts/test_paper.py"),
    ("every console script", "run from a folder without configs/ (the defaults are the package's presets)",
     "tests/scripts/test_presets_anywhere.py"),
    ("Python API (stamo_vla)", "uint8 frames (scaled exactly like training frames); a state of another size "
     "(refused before the normaliser)", "tests/policies/test_stamo_vla_model.py"),
    ("stamo / stamo_vla configs", "NaN, inf or -inf in each float option (every one, tuples too)",
     "tests/test_errors_catalogue.py"),
    ("lerobot-stamo-paper", "a --work_dir cached, or a runs/ published, with other settings (names each one)",
     "tests/scripts/test_paper.py"),
    ("lerobot-stamo-paper", "--report_only before any pipeline has finished; a second run in one --work_dir",
     "tests/scripts/test_paper.py"),
    ("lerobot-stamo-paper", "a pipeline published in part whose re-made datasets or stamo differ from those its "
     "arms trained on", "tests/scripts/test_paper.py"),
]  # fmt: skip


def record_dataset(root: Path, features: dict, frames: int = 5) -> None:
    """A one-episode LeRobotDataset with `features` (images as PNG): the datasets users bring with a camera
    named otherwise, without cameras or without actions."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from lerobot_stamo.stand_ins import square_frame

    specs = {
        key: {"dtype": "image", "shape": (64, 64, 3), "names": ["height", "width", "channels"]}
        if kind == "image"
        else {"dtype": "float32", "shape": (6,), "names": [f"j{i}" for i in range(6)]}
        for key, kind in features.items()
    }
    ds = LeRobotDataset.create(f"local/{root.name}", fps=10, features=specs, root=root, use_videos=False)
    for i in range(frames):
        values = {k: square_frame(i / frames, (200, 60, 40)) if v == "image" else np.full(6, i, np.float32)
                  for k, v in features.items()}  # fmt: skip
        ds.add_frame(values | {"task": "move the square"})
    ds.save_episode()
    ds.finalize()


def tiny_vla_checkpoint(path: Path) -> Path:
    """A tiny random `stamo_vla` checkpoint (policy and processors) for the simulated arm's two 64x64 cameras."""
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.utils.constants import ACTION

    from lerobot_stamo.policies.stamo_vla import make_stamo_vla_pre_post_processors

    features = {key: PolicyFeature(FeatureType.VISUAL, (3, 64, 64)) for key in (FRONT, WRIST)}
    config = StamoVLAConfig(
        device="cpu", push_to_hub=False, chunk_size=4, n_action_steps=2, dim_model=32, n_heads=4, n_layers=1,
        dim_feedforward=64, world_model_hidden_dim=32, tokenizer_max_length=32, world_model_target="none",
        input_features=features | {OBS_STATE: PolicyFeature(FeatureType.STATE, (6,))},
        output_features={ACTION: PolicyFeature(FeatureType.ACTION, (6,))},
    )  # fmt: skip
    torch.manual_seed(0)
    policy = StamoVLAPolicy(config)
    stats = {key: {"mean": torch.zeros(6), "std": torch.ones(6)} for key in (OBS_STATE, ACTION)}
    for part in (policy, *make_stamo_vla_pre_post_processors(config, stats)):
        part.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    """Tiny stamo / stamo_vla checkpoints, small datasets and damaged copies (placeholders of `Case.args`)."""
    from PIL import Image

    from lerobot_stamo.paths import PRESETS_DIR
    from lerobot_stamo.policies.stamo.processor_stamo import make_stamo_pre_post_processors
    from lerobot_stamo.stand_ins import record_square_dataset, tiny_stamo_checkpoint

    tmp = tmp_path_factory.mktemp("errors")
    tiny = tiny_stamo_checkpoint(tmp / "stamo")
    ckpt = tiny.path
    record_square_dataset(tmp / "ds")
    record_dataset(tmp / "ds1cam", {"observation.image": "image", OBS_STATE: "state", "action": "state"})
    record_dataset(tmp / "noimg", {OBS_STATE: "state", "action": "state"})
    record_dataset(tmp / "noaction", {FRONT: "image", WRIST: "image"})
    tiny_vla_checkpoint(tmp / "vla")
    shutil.copytree(ckpt, tmp / "stamo_full")  # with its processors, as lerobot-train saves a checkpoint
    for part in make_stamo_pre_post_processors(tiny.policy.config):
        part.save_pretrained(tmp / "stamo_full")
    for name in ("badjson", "truncated"):
        (tmp / name).mkdir()
    weights = (ckpt / "model.safetensors").read_bytes()
    config_text = (ckpt / "config.json").read_text()
    (tmp / "badjson" / "config.json").write_text(config_text[: len(config_text) // 2])
    (tmp / "badjson" / "model.safetensors").write_bytes(weights)
    (tmp / "truncated" / "config.json").write_text(config_text)
    (tmp / "truncated" / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    run_ckpt = tmp / "run" / "checkpoints" / "last" / "pretrained_model"
    shutil.copytree(ckpt, run_ckpt)
    (run_ckpt / "train_config.json").write_text(json.dumps({"resume": False}))
    (tmp / "notds").mkdir()
    (tmp / "notds" / "notes.txt").write_text("someone's file")
    (tmp / "frame.png").write_bytes(b"not a png")
    Image.new("RGB", (64, 64), (200, 60, 40)).save(tmp / "image.png")
    names = ("ds", "ds1cam", "noimg", "noaction", "vla", "stamo_full", "badjson", "truncated", "notds", "run")
    return {
        "tmp": str(tmp),
        "out": str(tmp / "out-console"),
        "png": str(tmp / "frame.png"),
        "img": str(tmp / "image.png"),
        "ckpt": str(ckpt),
        "presets": str(PRESETS_DIR),
    } | {n: str(tmp / n) for n in names}


@pytest.fixture(scope="module")
def api(inputs) -> dict:
    """The Python API cases' objects: the tiny stamo_vla policy with its preprocessor, a raw observation of the
    simulated arm (uint8 (3, 64, 64) frames, 6 joints, a task) and the tiny stamo encoder."""
    from lerobot.policies.factory import make_pre_post_processors

    policy = StamoVLAPolicy.from_pretrained(inputs["vla"])
    pre, _ = make_pre_post_processors(policy.config, pretrained_path=inputs["vla"])

    def observation() -> dict:
        g = torch.Generator().manual_seed(0)
        frames = {
            k: torch.randint(0, 256, (3, 64, 64), generator=g, dtype=torch.uint8) for k in (FRONT, WRIST)
        }
        return frames | {OBS_STATE: torch.zeros(6), "task": "pick up the cube"}

    stamo = StamoPolicy.from_pretrained(inputs["ckpt"])
    return inputs | {"policy": policy, "pre": pre, "observation": observation, "stamo": stamo}


def fill(text: str, inputs: dict) -> str:
    """`text` with its placeholders ({ckpt}, {ds}, ...) replaced (other braces, e.g. of a dict, kept)."""
    for name, value in inputs.items():
        if isinstance(value, str):
            text = text.replace(f"{{{name}}}", value)
    return text


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


def run_call(case: Case, api: dict, capsys) -> str:
    """Runs a `Python API` case; returns what the uncaught exception prints (through the plug-in's excepthook)."""
    capsys.readouterr()
    try:
        case.call(api)
    except Exception as exc:
        errors._excepthook(type(exc), exc, exc.__traceback__)
    else:
        pytest.fail(f"{case.args} succeeded")
    return capsys.readouterr().err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_last_line(case: Case, inputs, request, capsys, monkeypatch):
    # In the scratch folder, as a user's shell would be: what LeRobot writes relative to it (lerobot-eval's
    # outputs/, the policy server's logs/) stays out of the repository.
    monkeypatch.chdir(inputs["tmp"])
    inputs = inputs | {"out": f"{inputs['tmp']}/out-{case.id}"}
    if case.call is not None:
        stderr = run_call(case, request.getfixturevalue("api"), capsys)
    else:
        stderr = run_in_process(case.script, fill(case.args, inputs).split(), capsys)
    assert fill(case.says, inputs) in last_line(stderr), stderr[-3000:]


@pytest.fixture(scope="module")
def console_runs(inputs) -> dict[str, tuple[int, str]]:
    """(return code, stderr) of the `SUBPROCESS` cases, run concurrently through the installed console scripts."""
    cases = [c for c in CASES if c.id in SUBPROCESS]
    procs = {
        c.id: subprocess.Popen(
            [cli(c.script), *fill(c.args, inputs).split()],
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
    assert fill(case.says, inputs) in last_line(stderr), stderr[-3000:]


def test_excepthook_installed_once():
    activation.activate()  # what this project's scripts and a StaMo config do
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


FLOAT_FIELDS = [(cls, name) for cls in (StamoConfig, StamoVLAConfig) for name in errors.float_fields(cls)]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize(
    ("config_class", "name"), FLOAT_FIELDS, ids=[f"{c.__name__}.{n}" for c, n in FLOAT_FIELDS]
)
def test_every_float_field_refuses_non_finite_values(config_class, name, value):
    """A NaN passes every `>=` check: each float option of both policy configs (tuples too) refuses NaN and inf."""
    default = getattr(config_class(device="cpu"), name)
    bad = tuple([value, *default[1:]]) if isinstance(default, tuple) else value
    with pytest.raises(ValueError, match=rf"`{name}` must be finite"):
        config_class(device="cpu", **{name: bad})


def test_float_fields_cover_the_known_weights():
    """The generic check sees the fields the audit named (a type annotation change would hide them)."""
    assert {"lambda_action", "lambda_future", "lambda_latent", "dropout"} <= set(
        errors.float_fields(StamoVLAConfig)
    )
    assert {"random_flip", "logit_std", "backbone_image_std"} <= set(errors.float_fields(StamoConfig))


def test_open_progress_bar_is_closed_before_the_traceback(capsys):
    """A bar still open when the error ends the program (lerobot-eval's episode bar) is closed first: otherwise it
    erases its line at shutdown, after the traceback, and the user's last line is a cursor code."""
    from tqdm import tqdm

    bar = tqdm(total=3, leave=False, file=sys.stderr, desc="Running rollout")
    bar.update(1)
    try:
        raise errors.StamoInputError("the message")
    except errors.StamoInputError as exc:
        errors._excepthook(type(exc), exc, exc.__traceback__)
    assert bar not in getattr(tqdm, "_instances", ())
    stderr = capsys.readouterr().err
    after = stderr[stderr.index("Traceback") :]
    assert "\r" not in after and "\x1b[" not in after  # the bar's erase codes came before the traceback
    assert last_line(stderr) == "lerobot_stamo.errors.StamoInputError: the message"


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
        "Each row is a bad input given to a console script or the Python API, and a part of the **last line** the user sees: it",
        "names the problem and the fix (see `lerobot_stamo/errors.py` for how that last line is kept under",
        "draccus and `lerobot-train`). Placeholders: `{ckpt}` a stamo checkpoint, `{ds}` a LeRobot dataset,",
        "`{out}` an output folder, `{tmp}` a scratch folder; `{badjson}` / `{truncated}` a checkpoint with a",
        "cut-short `config.json` / `model.safetensors`; `{notds}` a folder that is neither; `{run}` a training",
        "run's output folder; `{vla}` a stamo_vla checkpoint; `{stamo_full}` a stamo checkpoint with its",
        "processors; `{ds1cam}` a dataset whose one camera is `observation.image`; `{noimg}` / `{noaction}` a",
        "dataset without cameras / actions; `{png}` a text file named .png, `{img}` a real PNG; `{presets}` the",
        "plug-in's presets (`lerobot_stamo/configs`).",
        "`Python API` rows call the policies directly: `policy` is a stamo_vla policy, `pre` its preprocessor,",
        "`obs` a raw observation (uint8 (3, 64, 64) frames, 6 joints, a task), `stamo` a stamo policy. Generated by",
        f"`python {test} > docs/errors.md`; `{test}` checks every row.",
        "",
        "| Test id | Command | Bad input | Last line contains |",
        "|---|---|---|---|",
    ]
    for c in CASES:
        where = f"`{c.id}`" + (" (+ console)" if c.id in SUBPROCESS else "")
        command = c.args if c.script == PYTHON_API else f"{c.script} {c.args}"
        lines.append(f"| {where} | {code(command)} | {c.problem} | {code(c.says)} |")
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
