"""Fixtures of the real-arm tests: emulated SO-101 and Koch arms on pseudo-terminals, calibrated through
`calibration_dir`, with fake cameras."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the fake camera plug-in and the emulators

from servo_emulators import (  # noqa: E402
    KOCH_MODELS,
    DynamixelEmulator,
    FeetechEmulator,
    so_calibration,
    write_calibration,
)


@pytest.fixture(autouse=True)
def _emulator_gets_its_turn(monkeypatch):
    """The SDKs busy-poll the port for ~34 ms per packet; with Python's default 5 ms GIL switch interval and
    LeRobot's writer threads, an emulator thread in the same process may not answer in time on a loaded
    machine. Faster switching, and 100 ms instead of 16 ms of USB latency allowance in the SDKs' timeouts."""
    import dynamixel_sdk.port_handler
    import scservo_sdk.port_handler

    monkeypatch.setattr(dynamixel_sdk.port_handler, "LATENCY_TIMER", 100)
    monkeypatch.setattr(scservo_sdk.port_handler, "LATENCY_TIMER", 100)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    yield
    sys.setswitchinterval(previous)


@pytest.fixture
def so_emulator():
    emulator = FeetechEmulator.with_calibration(so_calibration())
    yield emulator
    emulator.close()


@pytest.fixture
def koch_emulator():
    emulator = DynamixelEmulator.with_calibration(so_calibration(), KOCH_MODELS)
    yield emulator
    emulator.close()


@pytest.fixture
def calibration_dir(tmp_path) -> Path:
    """A calibration folder with `arm.json` matching the emulated servos' registers."""
    directory = tmp_path / "calibration"
    write_calibration(so_calibration(), directory, "arm")
    return directory
