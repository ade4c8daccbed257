"""lerobot-stamo: StaMo for LeRobot.

Importing this package registers everything the plug-in adds to LeRobot (policies, processor steps,
the simulated arm). LeRobot imports it through the one-line module ``lerobot_policy_stamo``.
"""

__version__ = "0.1.0.dev0"

# Every module with a registration side effect is imported here (and only here).
from lerobot_stamo import (
    envs,  # noqa: F401,E402  (EnvConfig "stamo_so101" + gym ids)
    robots,  # noqa: F401,E402  (RobotConfig "stamo_so100"/"stamo_so101"/"stamo_koch", teleop "stamo_koch_leader")
    transforms,  # noqa: F401,E402  (processor step "stamo_pseudo_action")
)
from lerobot_stamo.console import install as _install_console_filters  # noqa: E402
from lerobot_stamo.errors import install as _install_error_reporting  # noqa: E402
from lerobot_stamo.policies import (
    stamo,  # noqa: F401,E402  (PolicyConfig "stamo" + its processor step)
    stamo_vla,  # noqa: F401,E402  (PolicyConfig "stamo_vla" + its processor steps)
)

# The last line of an uncaught user error (also under lerobot-train/-eval/-record) names the problem and fix.
_install_error_reporting()
# LeRobot's torchcodec-fallback traceback becomes one line, said once (also under lerobot-train/-eval).
_install_console_filters()
