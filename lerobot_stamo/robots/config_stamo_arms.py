"""Configs of the real arms: `stamo_so100` / `stamo_so101`, `stamo_koch` and the `stamo_koch_leader` teleoperator.

They extend LeRobot's `so_follower`, `koch_follower` and `koch_leader` configs (same ports, buses and calibration
files) with defaults that line up with the simulated arm (`stamo_so101` env) and a StaMo policy:

- joints `<motor>.pos` in degrees (0 = middle of the calibrated range), gripper 0..100, like the simulation;
- cameras `front` and `wrist` (OpenCV, 640x480 at 30 fps; a `stamo_vla` policy resizes frames itself with
  `--policy.resize_images`), both required by default: a missing one is an error before anything connects;
- a conservative `max_relative_target` (degrees, or gripper percent, per control step);
- the control-loop safety settings of `StamoArmConfig` (see `lerobot_stamo.robots.safety`).
"""

import json
from dataclasses import dataclass, field

from lerobot.cameras import CameraConfig
from lerobot.cameras.opencv import OpenCVCameraConfig
from lerobot.robots.config import RobotConfig
from lerobot.robots.koch_follower import KochFollowerConfig
from lerobot.robots.so_follower import SOFollowerRobotConfig
from lerobot.teleoperators.config import TeleoperatorConfig
from lerobot.teleoperators.koch_leader import KochLeaderConfig

from lerobot_stamo.errors import explain_config_errors

# Camera names of the simulated arm (`lerobot_stamo.envs.so101_sim.CAMERA_NAMES`), which the policies read.
STAMO_CAMERAS: tuple[str, ...] = ("front", "wrist")
# Degrees (gripper: percent) a joint target may move away from the present position in one control step:
# 5 per step at 30 fps is 150 deg/s, slow enough to stop a bad policy before it hits something.
DEFAULT_MAX_RELATIVE_TARGET = 5.0


def default_cameras() -> dict[str, CameraConfig]:
    """`front` on video device 0 and `wrist` on 1, 640x480 at 30 fps (override with `--robot.cameras`)."""
    return {
        name: OpenCVCameraConfig(index_or_path=index, width=640, height=480, fps=30)
        for index, name in enumerate(STAMO_CAMERAS)
    }


@dataclass(kw_only=True)
class StamoArmConfig:
    """Defaults and safety settings shared by the plug-in's arms (see `safety.StamoArmMixin`).

    A mixin placed before LeRobot's follower config (`class X(StamoArmConfig, SOFollowerRobotConfig)`): its
    first three fields override the follower's defaults in place (same position, still positional), the
    safety settings come after the follower's fields, keyword-only; `__post_init__` runs the follower's, then
    `validate_arm`.
    """

    # Cameras (default: `front` on video device 0, `wrist` on 1, 640x480 at 30 fps).
    cameras: dict[str, CameraConfig] = field(default_factory=default_cameras, kw_only=False)
    # Degrees (gripper: percent) a joint target may move from the present position in one control step.
    max_relative_target: float | dict[str, float] | None = field(
        default=DEFAULT_MAX_RELATIVE_TARGET, kw_only=False
    )
    # Joints in degrees (gripper 0..100), like the simulated arm.
    use_degrees: bool = field(default=True, kw_only=False)

    # Cameras the policy reads. Each must be configured (checked when the config is parsed) and deliver a frame
    # when the robot connects (checked before the first control step). `[]` for a policy without cameras.
    required_cameras: list[str] = field(default_factory=lambda: list(STAMO_CAMERAS))
    # Consecutive actions with a NaN/inf value after which the run stops. Such an action is never sent: the arm
    # holds its last goal (and that goal is what gets recorded).
    max_nonfinite_actions: int = 3
    # Consecutive failed motor reads (each after the bus's own retries) after which the run stops; a single
    # failure reuses the last reading.
    max_failed_reads: int = 3
    # A camera whose newest frame is older than this has stopped delivering: the run stops.
    camera_timeout_ms: int = 1000
    # Turn a Ctrl-C-less stop (SIGTERM, e.g. `kill` or a job scheduler) into KeyboardInterrupt, so that LeRobot's
    # `lerobot-record` finalises the dataset and disconnects (torque off) as it does on Ctrl-C.
    handle_sigterm: bool = True

    @explain_config_errors  # the message reaches the console's last line, not draccus' "Couldn't instantiate"
    def __post_init__(self):
        super().__post_init__()  # the follower config's (next in the MRO)
        self.validate_arm(self.type)

    def validate_arm(self, robot_type: str) -> None:
        cameras = getattr(self, "cameras", {})
        missing = [name for name in self.required_cameras if name not in cameras]
        if missing:
            raise ValueError(
                f"{robot_type}: the policy reads camera(s) {missing} but --robot.cameras only has "
                f"{sorted(cameras)}. Add them to --robot.cameras (names as in the dataset the policy was trained "
                f"on), or set --robot.required_cameras='{json.dumps(sorted(cameras))}' for a policy trained without "
                "them."
            )
        limit = self.max_relative_target
        if isinstance(limit, int):  # LeRobot's clamp checks `isinstance(x, float)`: "5" would fail mid-run
            self.max_relative_target = float(limit)
        elif isinstance(limit, dict):
            self.max_relative_target = {k: float(v) for k, v in limit.items()}
        limits = self.max_relative_target
        values = list(limits.values()) if isinstance(limits, dict) else [] if limits is None else [limits]
        if not all(0 < v < float("inf") for v in values):  # NaN too
            raise ValueError(
                f"{robot_type}: --robot.max_relative_target must be finite and > 0 (the largest step per joint and "
                f"control step), got {limits}. Pass e.g. --robot.max_relative_target=10, or null for no limit."
            )
        for name in ("max_nonfinite_actions", "max_failed_reads", "camera_timeout_ms"):
            if getattr(self, name) < 1:
                raise ValueError(f"{robot_type}: --robot.{name} must be >= 1, got {getattr(self, name)}.")


@RobotConfig.register_subclass("stamo_so101")
@RobotConfig.register_subclass("stamo_so100")
@dataclass
class StamoSO100Config(StamoArmConfig, SOFollowerRobotConfig):
    """SO-100 / SO-101 follower (6 Feetech STS3215, ids 1-6); calibration shared with `so100_follower`."""


@RobotConfig.register_subclass("stamo_koch")
@dataclass
class StamoKochConfig(StamoArmConfig, KochFollowerConfig):
    """Koch v1.1 follower (Dynamixel XL430/XL330), in degrees like the simulated arm (LeRobot's default for
    Koch is -100..100); calibration shared with `koch_follower`. Teleoperate it with `stamo_koch_leader`, the
    stock Koch leader read in degrees."""


@TeleoperatorConfig.register_subclass("stamo_koch_leader")
@dataclass
class StamoKochLeaderConfig(KochLeaderConfig):
    """The stock Koch leader arm with its joints read in degrees (gripper 0..100), the units of `stamo_koch`.
    LeRobot's `koch_leader` sends -100..100, which a degree follower would take as degrees. Same hardware and
    calibration files as `koch_leader`."""
