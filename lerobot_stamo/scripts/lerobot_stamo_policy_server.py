"""`lerobot-stamo-policy-server`: LeRobot's async-inference policy server, with this plug-in's policies.

LeRobot's `python -m lerobot.async_inference.policy_server` never imports third-party plug-ins and only
serves the policy types hard-coded in `SUPPORTED_POLICIES`. This entry point imports the plug-in (which
registers `stamo_vla`), adds the type to that list, then runs LeRobot's own `serve` with the same flags:

    # on the GPU machine
    lerobot-stamo-policy-server --host=0.0.0.0 --port=8080
    # on the laptop driving the arm (LeRobot's client imports plug-ins itself)
    python -m lerobot.async_inference.robot_client --server_address=<gpu host>:8080 --policy_type=stamo_vla \\
        --pretrained_name_or_path=<checkpoint> --robot.type=so101_follower ... --actions_per_chunk=10
"""

import sys

import lerobot_stamo  # noqa: F401  (registers the plug-in's policies and processor steps)
from lerobot_stamo.errors import StamoInputError, _flags

SERVED_TYPES = ("stamo_vla",)


def enable_plugin_policies() -> list[str]:
    """Adds this plug-in's actor types to LeRobot's async-inference `SUPPORTED_POLICIES` (idempotent)."""
    from lerobot.async_inference import constants

    for policy_type in SERVED_TYPES:
        if policy_type not in constants.SUPPORTED_POLICIES:
            constants.SUPPORTED_POLICIES.append(policy_type)  # the list the server module imported, in place
    return constants.SUPPORTED_POLICIES


def check_arguments(argv: list[str]) -> None:
    """Refuses what LeRobot's server config turns into a bare `ZeroDivisionError` (`environment_dt = 1 / fps`).

    Raises:
        StamoInputError: For an `--fps` that is not a positive integer.
    """
    fps = _flags(argv).get("fps")
    if fps is not None and (not fps.lstrip("-").isdigit() or int(fps) < 1):
        raise StamoInputError(
            f"--fps={fps} must be an integer >= 1: the control rate (frames per second) of the robot the client "
            "drives, e.g. --fps=30."
        )


def main() -> None:
    check_arguments(sys.argv[1:])
    enable_plugin_policies()
    from lerobot.async_inference.policy_server import serve

    serve()


if __name__ == "__main__":
    main()
