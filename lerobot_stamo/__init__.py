"""lerobot-stamo: StaMo for LeRobot.

Importing this package registers everything the plug-in adds to LeRobot (policies, processor steps,
the simulated arm). LeRobot imports it through the one-line module ``lerobot_policy_stamo``. The plug-in's
console behaviour (the last line of a user error, quieter logs) is on only in runs that use it
(``lerobot_stamo.activation``).
"""

import sys

__version__ = "0.1.0"

# Every module with a registration side effect is imported here (and only here).
from lerobot_stamo import (
    envs,  # noqa: F401,E402  (EnvConfig "stamo_so101" + gym ids)
    robots,  # noqa: F401,E402  (RobotConfig "stamo_so100"/"stamo_so101"/"stamo_koch", teleop "stamo_koch_leader")
)
from lerobot_stamo.activation import activate_if_used  # noqa: E402
from lerobot_stamo.policies import (
    stamo,  # noqa: F401,E402  (PolicyConfig "stamo" + processor steps, incl. "stamo_pseudo_action")
    stamo_vla,  # noqa: F401,E402  (PolicyConfig "stamo_vla" + its processor steps)
)

# This project's scripts, and LeRobot commands whose command line names a StaMo policy, robot, env or
# checkpoint: the last line of an uncaught user error names the problem and the fix, LeRobot's
# torchcodec-fallback traceback is said once in one line. Any other command keeps LeRobot's own output.
activate_if_used(sys.argv)
