"""Scripted expert for the simulated SO-101: joint targets from a Cartesian pick(-and-place) plan.

The phase logic (hover, descend, close, lift, traverse, lower, open, retreat) is the pick-and-place
controller that `lerobot-env-so101` ships; it plans small Cartesian moves of the grasp point between
the jaws. This module turns each move into the six absolute joint targets that ``SO101SimEnv`` (and a
real SO-101 follower) takes, with a damped least-squares inverse kinematics over MuJoCo's Jacobians that
keeps the gripper pointing straight down (the package's ``solve_ik``).
"""

from __future__ import annotations

import numpy as np
from lerobot_env_so101.ik_control import control_point, roll_to_align_axis, solve_ik
from lerobot_env_so101.mujoco_env import CARTESIAN_BOUNDS, grasp_point_offset
from lerobot_env_so101.policy import DEFAULT_ACTION_SCALE
from lerobot_env_so101.scripted.pick_place import Phase, PickPlaceController

from lerobot_stamo.envs.so101_sim import SO101SimEnv

# gripperframe site axes: x runs out of the gripper along the jaws, z from the fixed to the moving jaw.
_APPROACH_AXIS = 0
_JAW_AXIS = 2
# Top-down grasps hold the jaw axis along world y, so the jaws close on two faces of the cube.
_JAW_DIRECTION = np.asarray([0.0, 1.0, 0.0])
_IK_DAMPING = 0.1
_IK_ITERATIONS = 20
_ZERO_MOVE = 1e-6
GRIPPER_OPEN = 100.0
GRIPPER_CLOSED = 0.0


class ScriptedExpert:
    """Privileged expert: reads the simulator state, returns joint targets in follower units.

    Usage::

        expert = ScriptedExpert(env)        # env: SO101SimEnv (or a gym wrapper around one)
        obs, info = env.reset(seed=0)
        expert.reset()
        while not done:
            obs, reward, terminated, truncated, info = env.step(expert.act())
    """

    def __init__(self, env: SO101SimEnv | object):
        env = getattr(env, "unwrapped", env)
        if not isinstance(env, SO101SimEnv):
            raise TypeError(f"ScriptedExpert drives a SO101SimEnv, got {type(env).__name__}.")
        self.env = env
        model = env.model
        self._site = model.site("gripperframe").id
        self._roll_joint = model.joint("wrist_roll").id
        self._roll_range = model.jnt_range[self._roll_joint]
        self._offset = grasp_point_offset(model, self._site)
        self._controller = PickPlaceController(action_scale=DEFAULT_ACTION_SCALE)
        self.reset()

    def reset(self) -> None:
        """Call after every ``env.reset``."""
        self._controller.reset()
        self._target: np.ndarray | None = None
        self._holding = False
        self._last_move_zero = False

    @property
    def done(self) -> bool:
        """The plan has finished (the env may still need a step or two to report success)."""
        return self._controller.done

    def grasp_point(self) -> np.ndarray:
        """World position of the point between the jaws that the plan moves."""
        return control_point(self.env.data, self._site, self._offset)

    def act(self) -> np.ndarray:
        """Joint targets (6,) float32: degrees for the arm, 0..100 for the gripper."""
        env = self.env
        grasp = self.grasp_point()
        if self._target is None:
            self._target = grasp
        cube = env.cube_pos
        goal = env.pad_pos if env.task_spec.uses_pad else np.asarray([*cube[:2], env.cube_rest_z])
        move = self._controller.act(grasp, cube, goal)
        if env.task_name == "PickCube" and self._controller.phase not in (
            Phase.HOVER,
            Phase.DESCEND,
            Phase.CLOSE,
            Phase.LIFT,
        ):
            move = np.asarray([0.0, 0.0, 0.0, 0.0], dtype=np.float32)  # hold the cube up
        delta, grip = move[:3].astype(np.float64), float(move[3])

        # Same target bookkeeping as the package's env: a zero move holds the current position.
        is_zero = np.linalg.norm(delta) < _ZERO_MOVE
        if is_zero and not self._last_move_zero:
            self._target = grasp
        elif not is_zero:
            self._target = self._target + delta * DEFAULT_ACTION_SCALE
        self._last_move_zero = is_zero
        self._target = np.clip(self._target, CARTESIAN_BOUNDS[0], CARTESIAN_BOUNDS[1])

        q_arm = solve_ik(
            model=env.model,
            data=env.data,
            site_id=self._site,
            dof_ids=env.arm_dof_ids,
            target_pos=self._target,
            ik_method="levenberg_marquardt",
            ik_damping=_IK_DAMPING,
            ik_iterations=_IK_ITERATIONS,
            seed_q=self._top_down_seed(),
            point_offset=self._offset,
            approach_axis=_APPROACH_AXIS,
        )
        q = np.concatenate([q_arm, [0.0]])
        targets = env.ctrl_to_user(q)
        targets[-1] = GRIPPER_CLOSED + grip * (GRIPPER_OPEN - GRIPPER_CLOSED)
        low, high = env.joint_limits_user_units()
        return np.clip(targets, low, high).astype(np.float32)

    def _top_down_seed(self) -> np.ndarray:
        """Current arm angles with wrist_roll turned so the jaws close along world y."""
        env = self.env
        seed = env.data.qpos[env.joint_qpos_adr[:5]].copy()
        seed[4] += roll_to_align_axis(env.data, self._site, self._roll_joint, _JAW_AXIS, _JAW_DIRECTION)
        seed[4] = np.clip(seed[4], *self._roll_range)
        return seed
