"""End-to-end control loop on the emulated SO-101 (`stamo_so100`) with a `compact` `stamo_vla` on this CPU.

The real LeRobot Feetech bus talks to the servo emulator of `tests/robots` (in a child process, over a
pseudo-terminal), two fake 640x480 cameras stand in for the OpenCV ones (their reads cost what a threaded
OpenCV camera's `read_latest` costs: a copy), and the loop is LeRobot's synchronous one: observation ->
`predict_action` (pre-processor, `select_action` with its action queue, post-processor) -> `send_action`
(clipping, `max_relative_target` read, sync write) -> sleep to the period. Reports the achieved rate against
the target and the share of each period spent in inference, cameras and the bus. Random weights of the
`configs/stamo_vla_compact_sim.json` architecture (speed does not depend on their values), frames resized
to 224x224 by the policy's pre-processor.

    .venv/bin/python benchmarks/bench_control_loop.py [--seconds 20] [--fps 30] [--threads 2]

Writes benchmarks/results/control_loop.{json,md}.
"""

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import torch
from lerobot.common.control_utils import predict_action
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.utils import make_robot_action
from lerobot.utils.constants import ACTION, OBS_STATE, OBS_STR
from lerobot.utils.feature_utils import build_dataset_frame, hw_to_dataset_features
from lerobot.utils.robot_utils import precise_sleep

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "robots"))  # the servo emulator and the fake camera plug-in

from lerobot_camera_stamo_test import StamoTestCameraConfig, set_serial_latency  # noqa: E402
from servo_emulators import FeetechEmulator, so_calibration, write_calibration  # noqa: E402

from lerobot_stamo.policies.stamo_vla import (  # noqa: E402
    StamoVLAConfig,
    StamoVLAPolicy,
    make_stamo_vla_pre_post_processors,
)
from lerobot_stamo.robots import StamoSO100, StamoSO100Config  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
POLICY_CONFIG = REPO / "configs" / "stamo_vla_compact_sim.json"
TASK = "pick up the cube and place it on the pad"
CAMERAS = ("front", "wrist")


def serve_emulator(conn) -> None:
    """Child process: one emulated arm until the parent closes the pipe."""
    emulator = FeetechEmulator.with_calibration(so_calibration())
    conn.send(emulator.port)
    conn.recv()  # blocks until the parent is done (EOFError on close)


def make_policy(height: int, width: int):
    fields = json.loads(POLICY_CONFIG.read_text())["policy"]
    fields = {k: v for k, v in fields.items() if k not in ("type", "optimizer_lr", "optimizer_lr_backbone")}
    fields = {k: v for k, v in fields.items() if not k.startswith("scheduler")}
    config = StamoVLAConfig(
        **fields | {"world_model_target": "none", "device": "cpu"},  # the head never runs at inference anyway
        resize_images=(224, 224),
        input_features={
            f"observation.images.{c}": PolicyFeature(FeatureType.VISUAL, (3, height, width)) for c in CAMERAS
        }
        | {OBS_STATE: PolicyFeature(FeatureType.STATE, (6,))},
        output_features={ACTION: PolicyFeature(FeatureType.ACTION, (6,))},
    )
    torch.manual_seed(0)
    policy = StamoVLAPolicy(config).eval()
    stats = {
        OBS_STATE: {"mean": torch.zeros(6), "std": torch.full((6,), 30.0)},
        ACTION: {"mean": torch.zeros(6), "std": torch.full((6,), 2.0)},
    }
    pre, post = make_stamo_vla_pre_post_processors(config, stats)
    return policy, pre, post


class Timer:
    """Wraps callables and adds their wall time to a per-tick bucket."""

    def __init__(self):
        self.tick: dict[str, float] = {}

    def wrap(self, bucket: str, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.tick[bucket] = self.tick.get(bucket, 0.0) + time.perf_counter() - start

        return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    parent, child = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(target=serve_emulator, args=(child,), daemon=True)
    process.start()
    port = parent.recv()
    set_serial_latency(250)  # only the timeout of a lost packet: on a loaded machine the handshake may wait
    calibration_dir = Path(tempfile.mkdtemp(prefix="bench_control_loop_"))
    write_calibration(so_calibration(), calibration_dir, "arm")
    cameras = {c: StamoTestCameraConfig(width=args.width, height=args.height, fps=args.fps) for c in CAMERAS}
    robot = StamoSO100(
        StamoSO100Config(port=port, id="arm", calibration_dir=calibration_dir, cameras=cameras)
    )
    policy, pre, post = make_policy(args.height, args.width)
    features = hw_to_dataset_features(robot.observation_features, OBS_STR) | hw_to_dataset_features(
        robot.action_features, ACTION
    )

    robot.connect()
    timer = Timer()
    robot.bus.sync_read = timer.wrap("bus", robot.bus.sync_read)
    robot.bus.sync_write = timer.wrap("bus", robot.bus.sync_write)
    for camera in robot.cameras.values():
        camera.read_latest = timer.wrap("cameras", camera.read_latest)
    period = 1.0 / args.fps
    ticks: list[dict[str, float]] = []
    try:
        for _ in range(3):  # warm-up: first chunks allocate
            frame = build_dataset_frame(features, robot.get_observation(), prefix=OBS_STR)
            predict_action(frame, policy, torch.device("cpu"), pre, post, False, TASK, robot.name)
        policy.reset()
        loop_start = time.perf_counter()
        while time.perf_counter() - loop_start < args.seconds:
            tick_start = time.perf_counter()
            timer.tick = {}
            frame = build_dataset_frame(features, robot.get_observation(), prefix=OBS_STR)
            t = time.perf_counter()
            action = predict_action(frame, policy, torch.device("cpu"), pre, post, False, TASK, robot.name)
            inference = time.perf_counter() - t
            robot.send_action(make_robot_action(action, features))
            busy = time.perf_counter() - tick_start
            ticks.append({"inference": inference, **timer.tick, "busy": busy})
            precise_sleep(max(period - busy, 0.0))
            ticks[-1]["period"] = time.perf_counter() - tick_start
        elapsed = time.perf_counter() - loop_start
    finally:
        robot.disconnect()
        parent.close()
        process.join(timeout=5)

    n = len(ticks)
    mean = {
        k: statistics.fmean(t.get(k, 0.0) for t in ticks) for k in ("inference", "cameras", "bus", "busy")
    }
    chunk_ticks = [t["inference"] for t in ticks if t["inference"] > 0.5 * max(x["inference"] for x in ticks)]
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {args.threads} thread(s), torch {torch.__version__}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "policy": f"{POLICY_CONFIG.relative_to(REPO)} (compact, random weights), resize 224x224, "
        f"chunk_size {policy.config.chunk_size}, n_action_steps {policy.config.n_action_steps}",
        "cameras": f"2 x {args.width}x{args.height} (fake, threaded-camera cost)",
        "target_hz": args.fps,
        "achieved_hz": n / elapsed,
        "ticks": n,
        "late_ticks": sum(t["busy"] > period for t in ticks),
        "mean_ms": {k: 1e3 * v for k, v in mean.items()},
        "share_of_period": {k: v / period for k, v in mean.items() if k != "busy"},
        "inference_ms_on_chunk_ticks": 1e3 * statistics.median(chunk_ticks),
        "inference_ms_on_queue_ticks": 1e3
        * statistics.median([t["inference"] for t in ticks if t["inference"] not in chunk_ticks] or [0.0]),
        "max_tick_ms": 1e3 * max(t["busy"] for t in ticks),
        "run_time_s": time.perf_counter() - started,
        "load_average_1min": os.getloadavg()[0],  # a shared machine: other jobs' load is in the figures
    }
    RESULTS.mkdir(exist_ok=True)
    tmp = RESULTS / "control_loop.json.tmp"
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(RESULTS / "control_loop.json")
    share = result["share_of_period"]
    md = [
        f"# Control loop on the emulated SO-101 ({result['machine']})",
        "",
        f"{result['date']}; {result['policy']}; cameras {result['cameras']}; {n} ticks in {elapsed:.1f} s; "
        f"1-minute load average {result['load_average_1min']:.1f} on this {os.cpu_count()}-CPU machine "
        "(other jobs' load is in the figures).",
        "",
        "| target | achieved | late ticks | inference | cameras | bus | busy per tick | worst tick |",
        "|---|---|---|---|---|---|---|---|",
        f"| {args.fps} Hz | {result['achieved_hz']:.1f} Hz | {result['late_ticks']} / {n} | "
        f"{result['mean_ms']['inference']:.1f} ms ({share['inference']:.0%}) | {result['mean_ms']['cameras']:.1f} ms "
        f"({share['cameras']:.0%}) | {result['mean_ms']['bus']:.1f} ms ({share['bus']:.0%}) | "
        f"{result['mean_ms']['busy']:.1f} ms | {result['max_tick_ms']:.0f} ms |",
        "",
        f"Inference is paid once per chunk: {result['inference_ms_on_chunk_ticks']:.0f} ms on a chunk tick, "
        f"{result['inference_ms_on_queue_ticks']:.1f} ms when the action queue serves the step (medians). Shares "
        "are of the period (mean per tick); the bus is 2 sync reads (state, `max_relative_target`) and 1 sync "
        "write per tick on a pseudo-terminal (a USB serial adapter adds its latency).",
    ]
    (RESULTS / "control_loop.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
