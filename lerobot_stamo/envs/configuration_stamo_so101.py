"""`lerobot-eval --env.type=stamo_so101`: the simulated SO-101 as a LeRobot env plug-in."""

from __future__ import annotations

from dataclasses import dataclass, field

from lerobot.configs import FeatureType, PolicyFeature
from lerobot.envs.configs import EnvConfig
from lerobot.utils.constants import ACTION, OBS_IMAGES, OBS_STATE

from lerobot_stamo.activation import activate
from lerobot_stamo.envs.so101_sim import CAMERA_NAMES, JOINT_NAMES, TASKS, check_image_size, check_task

GYM_NAMESPACE = "lerobot_stamo"


@EnvConfig.register_subclass("stamo_so101")
@dataclass
class StamoSO101EnvConfig(EnvConfig):
    """Simulated SO-101 follower with a front and a wrist camera.

    Observations and actions use the real `so101_follower`'s names and units (`shoulder_pan.pos` ...
    `gripper.pos`; degrees, gripper 0..100), so a policy trained here has the real arm's feature schema.
    """

    # Task: "PickCube" (lift the cube) or "PickPlace" (put it on the green pad).
    task: str | None = "PickCube"
    fps: int = 10
    # Steps before truncation; None uses the task's default (PickCube 100, PickPlace 200).
    episode_length: int | None = None
    # Camera images (HWC uint8) for each camera in `cameras`.
    observation_height: int = 224
    observation_width: int = 224
    cameras: list[str] = field(default_factory=lambda: list(CAMERA_NAMES))
    # Domain randomisation, all off by default.
    randomize_lighting: bool = False
    randomize_cube_color: bool = False
    camera_jitter: float = 0.0  # metres
    render_mode: str = "rgb_array"
    features: dict[str, PolicyFeature] = field(default_factory=dict)
    features_map: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        activate()  # the env is in use: user errors end in their fix (`lerobot_stamo.activation`)
        check_task(self.task)
        unknown = [c for c in self.cameras if c not in CAMERA_NAMES]
        if unknown or not self.cameras:
            raise ValueError(
                f"--env.cameras={self.cameras} is not valid: choose one or more of {list(CAMERA_NAMES)}."
            )
        if self.fps != 10:
            raise ValueError("stamo_so101 runs at --env.fps=10 (its control step is 0.1 s).")
        check_image_size(self.observation_height, self.observation_width, prefix="--env.")
        if not 0 <= self.camera_jitter < float("inf"):  # NaN too
            raise ValueError(
                f"--env.camera_jitter must be a finite number >= 0 metres, got {self.camera_jitter}."
            )
        if self.episode_length is not None and self.episode_length < 1:
            raise ValueError(
                f"--env.episode_length must be >= 1 step (or unset for the task's own), got {self.episode_length}."
            )
        self.features = {ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(len(JOINT_NAMES),))}
        self.features["agent_pos"] = PolicyFeature(type=FeatureType.STATE, shape=(len(JOINT_NAMES),))
        self.features_map = {ACTION: ACTION, "agent_pos": OBS_STATE}
        for cam in self.cameras:
            shape = (self.observation_height, self.observation_width, 3)
            self.features[f"pixels/{cam}"] = PolicyFeature(type=FeatureType.VISUAL, shape=shape)
            self.features_map[f"pixels/{cam}"] = f"{OBS_IMAGES}.{cam}"

    @property
    def package_name(self) -> str:
        return GYM_NAMESPACE

    @property
    def gym_kwargs(self) -> dict:
        return {
            "observation_height": self.observation_height,
            "observation_width": self.observation_width,
            "cameras": tuple(self.cameras),
            "randomize_lighting": self.randomize_lighting,
            "randomize_cube_color": self.randomize_cube_color,
            "camera_jitter": self.camera_jitter,
            "render_mode": self.render_mode,
            "max_episode_steps": self.episode_length or TASKS[self.task].max_episode_steps,
        }
