"""A fake camera (LeRobot camera type `stamo_test`): frames of a coloured square that moves with each read, at
the configured size; `stop_after` makes it stop delivering, like a pulled cable."""

import time
from dataclasses import dataclass

import numpy as np
from lerobot.cameras import Camera, CameraConfig


@CameraConfig.register_subclass("stamo_test")
@dataclass
class StamoTestCameraConfig(CameraConfig):
    """Frames of a coloured square that moves with each read; `stop_after` frames, then nothing (a pulled
    cable)."""

    width: int = 64
    height: int = 64
    fps: int = 30
    colour: tuple[int, int, int] = (200, 60, 40)
    # After this many frames the camera delivers nothing more (read_latest: frame too old).
    stop_after: int | None = None


class StamoTestCamera(Camera):
    def __init__(self, config: StamoTestCameraConfig):
        super().__init__(config)
        self.config = config
        self.frames = 0
        self._connected = False
        self._last_time = 0.0

    @property
    def is_connected(self) -> bool:
        return self._connected

    @staticmethod
    def find_cameras() -> list[dict]:
        return []

    def connect(self, warmup: bool = True) -> None:
        self._connected = True

    def _frame(self) -> np.ndarray:
        if self.config.stop_after is not None and self.frames >= self.config.stop_after:
            age_ms = (time.perf_counter() - self._last_time) * 1e3
            raise TimeoutError(f"{self} latest frame is too old: {age_ms:.1f} ms.")
        h, w = self.config.height, self.config.width
        frame = np.full((h, w, 3), 20, dtype=np.uint8)
        x = (self.frames * 3) % max(w - h // 4, 1)
        frame[h // 3 : h // 3 + h // 4, x : x + h // 4] = self.config.colour
        self.frames += 1
        self._last_time = time.perf_counter()
        return frame

    def read(self) -> np.ndarray:
        return self._frame()

    def async_read(self, timeout_ms: float = 200) -> np.ndarray:
        return self._frame()

    def read_latest(self, max_age_ms: int = 500) -> np.ndarray:
        return self._frame()

    def disconnect(self) -> None:
        self._connected = False
