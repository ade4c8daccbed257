"""The fake camera of `lerobot_stamo.robots.emulation` as a LeRobot camera plug-in (`type: stamo_test`).

The tests make LeRobot's own CLIs find it the way they find any plug-in: a `lerobot_camera_*` distribution on
the Python path (see `plugin_path` in tests/robots/conftest.py). Being imported by those CLIs, it also applies
`STAMO_TEST_SERIAL_LATENCY_MS` to the servo buses there (see `set_serial_latency`)."""

import os

from lerobot_stamo.robots.emulation import StamoTestCamera, StamoTestCameraConfig, set_serial_latency

if os.environ.get("STAMO_TEST_SERIAL_LATENCY_MS"):
    set_serial_latency(int(os.environ["STAMO_TEST_SERIAL_LATENCY_MS"]))

__all__ = ["StamoTestCamera", "StamoTestCameraConfig", "set_serial_latency"]
