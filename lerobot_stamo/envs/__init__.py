"""The simulated SO-101 arm: gym ids `lerobot_stamo/<Task>` and the LeRobot env type `stamo_so101`."""

import gymnasium as gym

from lerobot_stamo.envs.configuration_stamo_so101 import GYM_NAMESPACE, StamoSO101EnvConfig
from lerobot_stamo.envs.so101_sim import JOINT_NAMES, MOTOR_FEATURE_NAMES, TASKS, SO101SimEnv

for _task, _spec in TASKS.items():
    _gym_id = f"{GYM_NAMESPACE}/{_task}"
    if _gym_id not in gym.registry:
        gym.register(
            id=_gym_id,
            entry_point="lerobot_stamo.envs.so101_sim:SO101SimEnv",
            max_episode_steps=_spec.max_episode_steps,
            kwargs={"task": _task},
        )

__all__ = ["JOINT_NAMES", "MOTOR_FEATURE_NAMES", "SO101SimEnv", "StamoSO101EnvConfig", "TASKS"]
