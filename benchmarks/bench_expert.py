"""Success rate and episode length of the scripted expert on each task of the simulated SO-101.

    .venv/bin/python benchmarks/bench_expert.py [--episodes 50]

Seeds 0 .. episodes-1, the env's default (non-randomised) settings and with all domain randomisation
on. Writes benchmarks/results/expert_success.json. Goal: >= 90% on each task.
"""

import argparse
import json
import statistics
from pathlib import Path

from tqdm import tqdm

from lerobot_stamo.envs import TASKS, SO101SimEnv
from lerobot_stamo.envs.expert import ScriptedExpert

RESULTS = Path(__file__).parent / "results" / "expert_success.json"


def evaluate(task: str, episodes: int, randomize: bool) -> dict:
    env = SO101SimEnv(
        task=task,
        observation_height=64,
        observation_width=64,
        randomize_lighting=randomize,
        randomize_cube_color=randomize,
        camera_jitter=0.01 if randomize else 0.0,
    )
    expert = ScriptedExpert(env)
    successes, lengths = [], []
    for seed in tqdm(range(episodes), desc=f"{task}{' (randomised)' if randomize else ''}", unit="ep"):
        env.reset(seed=seed)
        expert.reset()
        for t in range(TASKS[task].max_episode_steps):  # noqa: B007  (t is the episode length)
            _, _, terminated, _, info = env.step(expert.act())
            if terminated:
                break
        successes.append(bool(info["is_success"]))
        lengths.append(t + 1)
    env.close()
    return {
        "success_rate": sum(successes) / episodes,
        "failed_seeds": [s for s, ok in enumerate(successes) if not ok],
        "median_steps": statistics.median(lengths),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=50)
    args = parser.parse_args()
    result = {
        f"{task}{'/randomised' if r else ''}": evaluate(task, args.episodes, r)
        for task in TASKS
        for r in (False, True)
    }
    for name, res in result.items():
        print(
            f"{name:22s} success {res['success_rate']:.0%}  median steps {res['median_steps']}  failed seeds {res['failed_seeds']}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"episodes": args.episodes, "results": result}, indent=2) + "\n")
    print(f"Saved {RESULTS}")


if __name__ == "__main__":
    main()
