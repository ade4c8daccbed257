"""The plug-in's arms: LeRobot's SO and Koch followers (same buses, motor code and calibration files) with the
safety layer of `StamoArmMixin`, and the Koch leader read in degrees."""

from lerobot.motors import MotorNormMode
from lerobot.robots.koch_follower import KochFollower
from lerobot.robots.so_follower import SOFollower
from lerobot.teleoperators.koch_leader import KochLeader

from lerobot_stamo.errors import check_port

from .config_stamo_arms import StamoKochConfig, StamoKochLeaderConfig, StamoSO100Config
from .safety import StamoArmMixin


class StamoSO100(StamoArmMixin, SOFollower):
    """SO-100 / SO-101 follower (`stamo_so100`, `stamo_so101`). `name` stays LeRobot's, so calibration files are
    shared with `so100_follower` / `so101_follower` (`<calibration dir>/robots/so_follower/<id>.json`)."""

    config_class = StamoSO100Config
    name = SOFollower.name


class StamoKoch(StamoArmMixin, KochFollower):
    """Koch follower in degrees (`stamo_koch`); calibration shared with `koch_follower`."""

    config_class = StamoKochConfig
    name = KochFollower.name


class StamoKochLeader(KochLeader):
    """Koch leader (`stamo_koch_leader`) whose joints read in degrees, gripper 0..100: the units of `stamo_koch`
    and of the simulated arm. Same hardware, motor code and calibration files as `koch_leader`."""

    config_class = StamoKochLeaderConfig
    name = KochLeader.name

    def __init__(self, config: StamoKochLeaderConfig):
        check_port(config.port, "teleop")
        super().__init__(config)
        for motor_name, motor in self.bus.motors.items():
            if motor_name != "gripper":
                motor.norm_mode = MotorNormMode.DEGREES
