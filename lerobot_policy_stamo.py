import lerobot_stamo  # noqa: F401  (LeRobot discovers plug-ins by this distribution name)
