"""Fixtures of the real-arm tests: emulated SO-101 and Koch arms on pseudo-terminals, calibrated through
`calibration_dir`, with fake cameras."""

import os
import sys
from pathlib import Path

import pytest

from lerobot_stamo.robots.emulation import (  # noqa: E402
    KOCH_MODELS,
    DynamixelEmulator,
    FeetechEmulator,
    serial_timeout_patches,
    so_calibration,
    write_calibration,
)

SERIAL_LATENCY_MS = 1000


@pytest.fixture(autouse=True)
def _emulator_gets_its_turn(monkeypatch):
    """The SDKs busy-poll the port and time out after ~34 ms per packet (LeRobot's Feetech bus: 50 ms); an
    emulator thread in the same process (Python's default 5 ms GIL switch interval) on a loaded shared machine may
    not answer that fast. Faster switching, and 1 s of latency allowance, here and in the CLIs the tests run (the
    Feetech bus ignored the allowance until `serial_timeout_patches` replaced LeRobot's fixed 50 ms: its tests
    failed now and then in the full suite on the 2-core CI machine)."""
    for module, name, value in serial_timeout_patches(SERIAL_LATENCY_MS):
        monkeypatch.setattr(module, name, value)
    monkeypatch.setenv("STAMO_TEST_SERIAL_LATENCY_MS", str(SERIAL_LATENCY_MS))
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


@pytest.fixture(scope="session")
def plugin_path(tmp_path_factory) -> str:
    """PYTHONPATH that makes `lerobot_camera_stamo_test` an installed camera plug-in for LeRobot's CLIs."""
    site = tmp_path_factory.mktemp("site")
    dist = site / "lerobot_camera_stamo_test-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: lerobot_camera_stamo_test\nVersion: 0.1\n")
    return os.pathsep.join([str(site), str(Path(__file__).parent)])
