"""Arms without hardware: servo emulators behind pseudo-terminals for LeRobot's real Feetech and Dynamixel bus
classes, and a fake camera (LeRobot camera type `stamo_test`, registered when this package is imported). The
tests and `benchmarks/bench_control_loop.py` drive `stamo_so100` / `stamo_koch` with them (needs the
`hardware` extra: the vendor SDKs)."""

from .camera import StamoTestCamera, StamoTestCameraConfig
from .servos import (
    KOCH_LEADER_MODELS,
    KOCH_MODELS,
    MOTORS,
    DynamixelEmulator,
    FeetechEmulator,
    ServoEmulator,
    degrees_to_raw,
    serial_timeout_patches,
    set_serial_latency,
    sine_motion,
    so_calibration,
    write_calibration,
)

__all__ = [
    "KOCH_LEADER_MODELS",
    "KOCH_MODELS",
    "MOTORS",
    "DynamixelEmulator",
    "FeetechEmulator",
    "ServoEmulator",
    "StamoTestCamera",
    "StamoTestCameraConfig",
    "degrees_to_raw",
    "serial_timeout_patches",
    "set_serial_latency",
    "sine_motion",
    "so_calibration",
    "write_calibration",
]
