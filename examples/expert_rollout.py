"""Run the scripted expert on the simulated SO-101 and save a GIF of both cameras.

MUJOCO_GL=egl python examples/expert_rollout.py --task PickPlace --seed 3 --out expert.gif
"""

import argparse

import gymnasium as gym
import imageio.v3 as iio
import numpy as np

import lerobot_stamo  # noqa: F401  (registers lerobot_stamo/PickCube and lerobot_stamo/PickPlace)
from lerobot_stamo.envs.expert import ScriptedExpert

parser = argparse.ArgumentParser()
parser.add_argument("--task", default="PickCube", choices=["PickCube", "PickPlace"])
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--out", default="expert.gif")
args = parser.parse_args()

env = gym.make(f"lerobot_stamo/{args.task}", observation_height=160, observation_width=160)
expert = ScriptedExpert(env)
obs, info = env.reset(seed=args.seed)
expert.reset()
frames = []
done = False
while not done:
    frames.append(np.concatenate([obs["pixels"]["front"], obs["pixels"]["wrist"]], axis=1))
    obs, reward, terminated, truncated, info = env.step(expert.act())  # six joint targets, degrees
    done = terminated or truncated
print(f"{args.task} seed {args.seed}: success={info['is_success']} after {len(frames)} steps")
iio.imwrite(args.out, frames, duration=100, loop=0)
print(f"wrote {args.out}")
