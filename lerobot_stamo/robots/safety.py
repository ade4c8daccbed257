"""Control-loop safety for the plug-in's arms, on top of LeRobot's SO and Koch follower classes.

LeRobot 0.6.1 sends whatever a policy outputs: a NaN gripper target becomes 0, a NaN joint raises mid-write,
targets are not bounded by the calibrated ranges (Koch's extended-position mode has no servo limit at all), a
missing or frozen camera shows up as a KeyError/TimeoutError somewhere in the loop, and SIGTERM leaves the
torque on. `StamoArmMixin` (first base of `StamoSO100` / `StamoKoch`) makes the robot itself safe, whatever
loop drives it (`lerobot-record`, `lerobot-rollout`, LeRobot's async robot client):

- `send_action`: a non-finite action is never sent (the arm holds its last goal); targets are clipped to the
  calibrated joint ranges, then to `max_relative_target` around the present position; the action dict is
  updated in place with what was written, so the loop that records it records what was sent.
- `connect`: every camera the policy needs must deliver a frame before the first control step; any error
  after the bus opened closes everything again with torque off; an arm still connected when the process
  exits (an error before a loop's teardown) is disconnected, torque off; SIGTERM becomes KeyboardInterrupt,
  so `lerobot-record` finalises the dataset as on Ctrl-C.
- Timing: `ControlTiming` (`timing.py`) turns LeRobot's per-tick "running slower" and `max_relative_target`
  warnings into one line and one summary per episode, with the measured figures.
- `get_observation`: a failing motor read is retried by the bus, then reuses the last reading, and stops the
  run (`ArmSafetyError`) once it failed `max_failed_reads` times in a row; a camera that stops delivering
  frames stops the run. LeRobot's teardown then returns to the start pose (`--return_to_initial_position`)
  or holds, and disconnects with torque off (`--robot.disable_torque_on_disconnect`); after a bus fault the
  arm refuses further motion commands, so the teardown only holds and disables torque.
"""

import atexit
import logging
import math
import signal
import threading
import time
from typing import Any

from lerobot.robots.utils import ensure_safe_goal_position

from lerobot_stamo.errors import check_port

from .timing import ControlTiming

logger = logging.getLogger(__name__)


class ArmSafetyError(RuntimeError):
    """The arm stopped the run to stay safe (the message says why and what to do)."""


def calibrated_limits(bus) -> dict[str, tuple[float, float]]:
    """(low, high) of each motor's calibrated range, in the bus's normalised units (degrees / 0..100)."""
    ids = {motor: bus.motors[motor].id for motor in bus.calibration}
    lows = bus._normalize({ids[m]: cal.range_min for m, cal in bus.calibration.items()})
    highs = bus._normalize({ids[m]: cal.range_max for m, cal in bus.calibration.items()})
    limits = {}
    for motor, id_ in ids.items():
        limits[motor] = (min(lows[id_], highs[id_]), max(lows[id_], highs[id_]))
    return limits


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt(f"received signal {signal.Signals(signum).name}")


class StamoArmMixin:
    """Safety layer over a LeRobot follower with a `bus`, `cameras` and a config deriving from `StamoArmConfig`."""

    def __init__(self, config):
        check_port(config.port, "robot")
        super().__init__(config)
        self.joint_limits: dict[str, tuple[float, float]] = {}
        self.fault: str | None = None
        self._bus_fault = False
        self._last_goal: dict[str, float] | None = None
        self._last_positions: dict[str, float] | None = None
        self._nonfinite_streak = 0
        self._failed_reads = 0
        self._previous_sigterm: Any = None
        self.timing: ControlTiming | None = None

    # --- connect / disconnect -------------------------------------------------------------------------
    def connect(self, calibrate: bool = True) -> None:
        try:
            super().connect(calibrate)
            self._check_required_cameras()
            if (
                self.bus.calibration
            ):  # absent only under `connect(calibrate=False)`, as lerobot-calibrate does
                self.joint_limits = calibrated_limits(self.bus)
                self._last_positions = self._read_positions()
        except BaseException:
            self._close_after_failed_connect()
            raise
        self.fault, self._bus_fault = None, False
        self._nonfinite_streak = self._failed_reads = 0
        self._install_sigterm_handler()
        atexit.register(self._disconnect_at_exit)
        self.timing = ControlTiming(str(self))
        self.timing.install()
        logger.info(f"{self} joint limits (calibrated): {self.joint_limits}")

    def _check_required_cameras(self) -> None:
        for name in self.config.required_cameras:
            camera = self.cameras.get(name)
            try:
                frame = camera.async_read(timeout_ms=self.config.camera_timeout_ms)
            except Exception as e:
                raise ArmSafetyError(
                    f"{self}: camera '{name}' ({camera}) delivered no frame within "
                    f"{self.config.camera_timeout_ms} ms after connecting ({type(e).__name__}: {e}). Check its "
                    f"cable and --robot.cameras.{name} (find cameras with `lerobot-find-cameras`)."
                ) from e
            if getattr(frame, "ndim", 0) != 3 or frame.shape[-1] != 3:
                raise ArmSafetyError(
                    f"{self}: camera '{name}' delivered a frame of shape {getattr(frame, 'shape', None)}, "
                    f"expected (height, width, 3). Check --robot.cameras.{name}."
                )

    def _close_after_failed_connect(self) -> None:
        """Whatever opened before the error closes again, motors with torque off."""
        if self.bus.is_connected:
            try:
                self.bus.disconnect(disable_torque=True)
            except Exception as e:  # the original error matters more; say what may still be on
                logger.error(f"{self}: could not disable torque after a failed connect: {e}")
        for camera in self.cameras.values():
            if camera.is_connected:
                try:
                    camera.disconnect()
                except Exception as e:
                    logger.warning(f"{self}: could not close camera {camera}: {e}")

    def _disconnect_at_exit(self) -> None:
        """An error between `connect()` and a loop's teardown (e.g. a bad dataset name in lerobot-rollout) skips
        LeRobot's disconnect: at exit the arm still goes torque off."""
        if self.bus.is_connected:
            logger.warning(f"{self} still connected at exit: disconnecting (torque off).")
            self.disconnect()

    def disconnect(self) -> None:
        atexit.unregister(self._disconnect_at_exit)
        self._restore_sigterm_handler()
        if self.timing is not None:
            self.timing.close()  # kept: `timing.segments` holds the run's figures
        if self.fault:
            logger.error(f"{self} stopped the run: {self.fault}")
        try:
            if self.bus.is_connected:
                self.bus.disconnect(self.config.disable_torque_on_disconnect)
        finally:
            for camera in self.cameras.values():
                if camera.is_connected:
                    try:
                        camera.disconnect()
                    except Exception as e:
                        logger.warning(f"{self}: could not close camera {camera}: {e}")
        logger.info(f"{self} disconnected.")

    def _install_sigterm_handler(self) -> None:
        if not self.config.handle_sigterm or threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # leave a loop's own handler alone
            self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)

    def _restore_sigterm_handler(self) -> None:
        if self._previous_sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    # --- observation ----------------------------------------------------------------------------------
    def _read_positions(self) -> dict[str, float]:
        retries = getattr(self.config, "num_read_retries", 0)
        return self.bus.sync_read("Present_Position", num_retry=retries)

    def _stop(self, message: str, bus_fault: bool = False) -> None:
        self.fault = message
        self._bus_fault = self._bus_fault or bus_fault
        logger.error(f"{self}: {message}")
        raise ArmSafetyError(message)

    def get_observation(self) -> dict[str, Any]:
        if not self.is_connected:
            return super().get_observation()  # LeRobot's not-connected error
        if self._bus_fault:
            self._stop(f"the motor bus failed earlier ({self.fault}); reconnect the arm.", bus_fault=True)
        started = time.perf_counter()
        try:
            positions = self._read_positions()
            self._failed_reads = 0
            self._last_positions = positions
        except (ConnectionError, RuntimeError) as e:
            self._failed_reads += 1
            if self._failed_reads >= self.config.max_failed_reads or self._last_positions is None:
                self._stop(
                    f"reading the motors on {self.config.port} failed {self._failed_reads} time(s) in a row "
                    f"({e}). Check the arm's power supply and USB cable, then run again.",
                    bus_fault=True,
                )
            logger.warning(f"{self}: motor read failed ({e}); reusing the last reading.")
            positions = self._last_positions
        observation: dict[str, Any] = {f"{motor}.pos": value for motor, value in positions.items()}
        for name, camera in self.cameras.items():
            try:
                observation[name] = camera.read_latest(max_age_ms=self.config.camera_timeout_ms)
            except Exception as e:
                self._stop(
                    f"camera '{name}' stopped delivering frames ({type(e).__name__}: {e}). Check its cable "
                    f"and that no other program uses it, then run again."
                )
        if self.timing is not None:
            self.timing.observed(started)
        return observation

    # --- action ---------------------------------------------------------------------------------------
    def send_action(self, action: dict[str, Any]) -> dict[str, float]:
        """Writes a safe version of `action`; returns it and updates `action` in place to the values sent."""
        if not self.is_connected:
            return super().send_action(action)  # LeRobot's not-connected error
        if self._bus_fault:
            self._stop(f"motion refused: the motor bus failed earlier ({self.fault}).", bus_fault=True)
        started = self.timing.acting() if self.timing is not None else 0.0
        goal = {k.removesuffix(".pos"): float(v) for k, v in action.items() if k.endswith(".pos")}
        unknown = sorted(set(goal) - set(self.bus.motors))
        if unknown:
            raise ValueError(
                f"{self}: unknown motors {unknown} in the action; expected {list(self.bus.motors)}."
            )
        bad = sorted(motor for motor, value in goal.items() if not math.isfinite(value))
        if bad:
            self._nonfinite_streak += 1
            held = {**(self._last_positions or self._read_positions()), **(self._last_goal or {})}
            if self._nonfinite_streak >= self.config.max_nonfinite_actions:
                self._stop(
                    f"{self._nonfinite_streak} actions in a row had non-finite values (last for {bad}); none "
                    f"was sent and the arm held its position. The policy diverged: check its checkpoint, its "
                    f"normalisation statistics and the input cameras."
                )
            logger.warning(f"{self}: non-finite action for {bad} not sent; holding the last goal.")
            sent = {motor: held[motor] for motor in goal}
        else:
            self._nonfinite_streak = 0
            sent = self._safe_goal(goal)
            self.bus.sync_write("Goal_Position", sent)
            self._last_goal = {**(self._last_goal or {}), **sent}
        sent_action = {f"{motor}.pos": value for motor, value in sent.items()}
        action.update(sent_action)
        if self.timing is not None:
            self.timing.sent(started)
        return sent_action

    def _safe_goal(self, goal: dict[str, float]) -> dict[str, float]:
        """Calibrated joint range first, then at most `max_relative_target` away from the present position."""
        if not self.joint_limits:
            raise ArmSafetyError(
                f"{self} has no calibration (looked in {self.calibration_fpath}): run `lerobot-calibrate "
                f"--robot.type={self.config.type} --robot.port={self.config.port} --robot.id={self.id}` first."
            )
        clipped = {}
        for motor, value in goal.items():
            low, high = self.joint_limits[motor]
            clipped[motor] = min(max(value, low), high)
        if clipped != goal:
            logger.debug(f"{self}: targets clipped to the calibrated ranges: {goal} -> {clipped}")
        limit = self.config.max_relative_target
        if limit is None:
            return clipped
        present = self._read_positions()
        if isinstance(limit, dict):
            limit = {motor: limit[motor] for motor in clipped}
        return ensure_safe_goal_position({m: (g, present[m]) for m, g in clipped.items()}, limit)
