"""Real arms for StaMo policies: `stamo_so100` / `stamo_so101` and `stamo_koch` robots, `stamo_koch_leader`.

Importing this package registers the configs with LeRobot; LeRobot finds the device classes here by name
(`StamoSO100Config` -> `StamoSO100`).
"""

from .config_stamo_arms import (
    STAMO_CAMERAS,
    StamoArmConfig,
    StamoKochConfig,
    StamoKochLeaderConfig,
    StamoSO100Config,
)
from .safety import ArmSafetyError, StamoArmMixin, calibrated_limits
from .stamo_arms import StamoKoch, StamoKochLeader, StamoSO100

__all__ = [
    "STAMO_CAMERAS",
    "ArmSafetyError",
    "StamoArmConfig",
    "StamoArmMixin",
    "StamoKoch",
    "StamoKochConfig",
    "StamoKochLeader",
    "StamoKochLeaderConfig",
    "StamoSO100",
    "StamoSO100Config",
    "calibrated_limits",
]
