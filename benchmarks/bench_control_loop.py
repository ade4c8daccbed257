"""End-to-end control loop: LeRobot's own `lerobot-rollout` drives the emulated SO-101 (`stamo_so100`) with a
`compact` `stamo_vla` on this CPU, with synchronous inference and with real-time chunking.

`lerobot-rollout --strategy.type=base` runs in this process, unchanged (its base strategy's loop: observation ->
inference engine -> `send_action` -> sleep to the period), once with `--inference.type=sync` (the chunk is
computed inside the tick that empties the action queue) and once with `--inference.type=rtc` (a background
thread computes the next chunk while the queue still holds actions; `stamo_vla` continues the queued actions,
see `StamoVLAPolicy.predict_action_chunk`). The real LeRobot Feetech bus talks to the servo emulator of
`tests/robots` (in a child process, over a pseudo-terminal); two fake 640x480 cameras (the test camera
plug-in) cost what a threaded OpenCV camera's `read_latest` costs, a copy. Random weights of the
`configs/stamo_vla_compact_sim.json` architecture (speed does not depend on their values), frames resized to
224x224 by the policy's pre-processor. Figures come from the arm's own per-tick timing (`ControlTiming`: late
ticks as LeRobot's loop counts them, observation-to-action time) plus timers on the bus, the cameras and
`predict_action_chunk`.

    .venv/bin/python benchmarks/bench_control_loop.py [--seconds 20] [--fps 30] [--threads 2] [--modes sync,rtc] [--repeats 3]

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
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.utils.constants import ACTION, OBS_STATE

from lerobot_stamo.policies.stamo_vla import (
    StamoVLAConfig,
    StamoVLAPolicy,
    make_stamo_vla_pre_post_processors,
)
from lerobot_stamo.robots import StamoSO100
from lerobot_stamo.robots.emulation import (  # (also registers the `stamo_test` camera type)
    FeetechEmulator,
    set_serial_latency,
    so_calibration,
    write_calibration,
)

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
POLICY_CONFIG = REPO / "configs" / "stamo_vla_compact_sim.json"
TASK = "pick up the cube and place it on the pad"
CAMERAS = ("front", "wrist")


def serve_emulator(conn) -> None:
    """Child process: one emulated arm until the parent closes the pipe."""
    emulator = FeetechEmulator.with_calibration(so_calibration())
    conn.send(emulator.port)
    try:
        conn.recv()  # blocks until the parent is done
    except EOFError:  # the parent closed the pipe: the benchmark is over
        pass
    emulator.close()


def save_policy(path: Path, height: int, width: int) -> StamoVLAConfig:
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
    for part in (policy, pre, post):
        part.save_pretrained(path)
    return config


class Timer:
    """Wraps callables and records the wall time of each call in a bucket (thread-safe enough: list appends)."""

    def __init__(self):
        self.samples: dict[str, list[float]] = {}

    def wrap(self, bucket: str, fn):
        samples = self.samples.setdefault(bucket, [])

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                samples.append(time.perf_counter() - start)

        return timed


def run_rollout(mode: str, args, port: str, calibration_dir: Path, policy_dir: Path, timers: Timer) -> dict:
    """One `lerobot-rollout` of `args.seconds` in this process; returns the arm's figures for the run."""
    from lerobot.scripts.lerobot_rollout import rollout

    arms: list[StamoSO100] = []
    connect = StamoSO100.connect

    def connect_and_time(self, calibrate: bool = True) -> None:
        connect(self, calibrate)
        arms.append(self)
        self.bus.sync_read = timers.wrap("bus", self.bus.sync_read)
        self.bus.sync_write = timers.wrap("bus", self.bus.sync_write)
        for camera in self.cameras.values():
            camera.read_latest = timers.wrap("cameras", camera.read_latest)

    cameras = {
        c: {"type": "stamo_test", "width": args.width, "height": args.height, "fps": args.fps}
        for c in CAMERAS
    }
    inference = ["--inference.type=sync"]
    if mode == "rtc":  # the next chunk once half of the queue is left, blended in over the next 5 actions
        inference = [
            "--inference.type=rtc",
            "--inference.queue_threshold=10",
            "--inference.rtc.execution_horizon=5",
        ]
    argv = ["lerobot-rollout", f"--policy.path={policy_dir}", "--robot.type=stamo_so100", f"--robot.port={port}",
            "--robot.id=arm", f"--robot.calibration_dir={calibration_dir}", f"--robot.cameras={json.dumps(cameras)}",
            "--strategy.type=base", f"--duration={args.seconds}", f"--fps={args.fps}", f"--task={TASK}",
            "--device=cpu", "--return_to_initial_position=false", *inference]  # fmt: skip
    StamoSO100.connect = connect_and_time
    sys.argv, started = argv, time.perf_counter()
    try:
        rollout()
    finally:
        StamoSO100.connect = connect
    elapsed = time.perf_counter() - started
    segments = arms[0].timing.segments
    ticks = sum(s["ticks"] for s in segments)
    late = [hz for s in segments for hz in s["late_hz"]]
    io = [t for s in segments for t in s["io_s"]]
    policy = [t for s in segments for t in s["policy_s"]]
    chunks = timers.samples.get("chunk", [])
    period = 1.0 / args.fps
    return {
        "inference": mode,
        "actions_sent_per_s": ticks / args.seconds,
        "ticks": ticks,
        "late_ticks": len(late),
        "slowest_tick_hz": min(late) if late else None,
        "observation_to_action_ms": {
            "median": 1e3 * statistics.median(policy),
            "max": 1e3 * max(policy),
        },
        "robot_io_ms_median": 1e3 * statistics.median(io),
        "cameras_ms_per_tick": 1e3 * sum(timers.samples.get("cameras", [])) / max(ticks, 1),
        "bus_ms_per_tick": 1e3 * sum(timers.samples.get("bus", [])) / max(ticks, 1),
        "chunk_inference_ms_median": 1e3 * statistics.median(chunks) if chunks else None,
        "chunks": len(chunks),
        "share_of_period": {
            "observation_to_action": statistics.fmean(policy) / period,
            "cameras": sum(timers.samples.get("cameras", [])) / max(ticks, 1) / period,
            "bus": sum(timers.samples.get("bus", [])) / max(ticks, 1) / period,
        },
        "rollout_wall_s": elapsed,
    }


def median_run(runs: list[dict]) -> dict:
    """Field-by-field median of runs of one mode (nested dicts too; None fields are left out)."""
    first = runs[0]
    out = {}
    for key, value in first.items():
        if isinstance(value, dict):
            out[key] = median_run([r[key] for r in runs])
        else:
            numbers = [
                r[key] for r in runs if isinstance(r[key], int | float) and not isinstance(r[key], bool)
            ]
            out[key] = statistics.median(numbers) if numbers else value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--modes", default="sync,rtc")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of all modes, alternating")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    parent, child = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(target=serve_emulator, args=(child,), daemon=True)
    process.start()
    port = parent.recv()
    set_serial_latency(250)  # only the timeout of a lost packet: on a loaded machine the handshake may wait
    work = Path(tempfile.mkdtemp(prefix="bench_control_loop_"))
    write_calibration(so_calibration(), work / "calibration", "arm")
    config = save_policy(work / "policy", args.height, args.width)
    chunk = StamoVLAPolicy.predict_action_chunk
    runs = []
    try:
        for mode in args.modes.split(",") * args.repeats:
            timers = Timer()
            StamoVLAPolicy.predict_action_chunk = timers.wrap("chunk", chunk)
            runs.append(run_rollout(mode, args, port, work / "calibration", work / "policy", timers))
    finally:
        StamoVLAPolicy.predict_action_chunk = chunk
        parent.close()
        process.join(timeout=5)

    result = {
        "machine": f"{platform.processor() or platform.machine()}, {args.threads} thread(s), torch {torch.__version__}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "policy": f"{POLICY_CONFIG.relative_to(REPO)} (compact, random weights), resize 224x224, "
        f"chunk_size {config.chunk_size}, n_action_steps {config.n_action_steps}",
        "cameras": f"2 x {args.width}x{args.height} (fake, threaded-camera cost)",
        "target_hz": args.fps,
        "seconds": args.seconds,
        "runs": runs,
        "medians": (
            medians := {
                mode: median_run([r for r in runs if r["inference"] == mode])
                for mode in args.modes.split(",")
            }
        ),
        "load_average_1min": os.getloadavg()[0],  # a shared machine: other jobs' load is in the figures
    }
    RESULTS.mkdir(exist_ok=True)
    tmp = RESULTS / "control_loop.json.tmp"
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(RESULTS / "control_loop.json")
    md = [
        f"# Control loop: `lerobot-rollout` on the emulated SO-101 ({result['machine']})",
        "",
        f"{result['date']}; {result['policy']}; cameras {result['cameras']}; {args.seconds} s per run at "
        f"{args.fps} Hz; 1-minute load average {result['load_average_1min']:.1f} on this {os.cpu_count()}-CPU "
        "machine (other jobs' load is in the figures).",
        "",
        "| inference | actions sent | late ticks | observation to action (median / max) | cameras | bus | chunk |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in medians.values():
        o, share = r["observation_to_action_ms"], r["share_of_period"]
        chunk_ms = f"{r['chunk_inference_ms_median']:.0f} ms x {r['chunks']}" if r["chunks"] else "-"
        md.append(
            f"| {r['inference']} | {r['actions_sent_per_s']:.1f} /s | {r['late_ticks']} / {r['ticks']} | "
            f"{o['median']:.1f} / {o['max']:.1f} ms ({share['observation_to_action']:.0%}) | "
            f"{r['cameras_ms_per_tick']:.1f} ms ({share['cameras']:.0%}) | {r['bus_ms_per_tick']:.1f} ms "
            f"({share['bus']:.0%}) | {chunk_ms} |"
        )
    md += [
        "",
        f"Medians of {args.repeats} runs per mode, alternating (actions sent per second in each run: "
        + "; ".join(
            f"{mode} " + ", ".join(f"{r['actions_sent_per_s']:.1f}" for r in runs if r["inference"] == mode)
            for mode in medians
        )
        + "). Shares are of the period (mean per tick). `chunk`: median time of one `predict_action_chunk` and how many "
        "ran; with `sync` it is paid inside the tick that empties the queue, with `rtc` in a background thread. "
        "The bus is 2 sync reads (state, `max_relative_target`) and 1 sync write per tick on a pseudo-terminal (a "
        "USB serial adapter adds its latency).",
    ]
    (RESULTS / "control_loop.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
