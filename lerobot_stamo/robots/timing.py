"""Late control ticks and clamped targets, reported once per episode with the figures instead of once per tick.

LeRobot's loops (`lerobot-record`, every `lerobot-rollout` strategy) log one warning per tick that misses the
period ("Record loop is running slower (X Hz) than the target FPS (Y Hz) ..."): a chunked policy that
computes a chunk every `n_action_steps` ticks floods the console with them and says nothing about where the
time went. While a StaMo arm is connected, `ControlTiming` (a log filter on those loops' loggers) lets the
first late tick of an episode through as one short line, counts the others, and at the end of the episode
says once how many ticks were late, how slow they were, and how long the robot's own I/O and the time
from observation to action (the policy and its processors) took. Episodes are delimited by the loops' own
log lines ("Recording episode N", "Reset the environment", ...) and by `disconnect()`. LeRobot's
`max_relative_target` warning (a multi-line dict on every clamped action) is treated the same way: the first
one of an episode is shown, the others are counted in the summary.
"""

from __future__ import annotations

import logging
import re
import statistics
import time

import numpy as np

logger = logging.getLogger(__name__)

CLAMPED = "Relative goal position magnitude had to be clamped"
RTC_DELAY = "Indexes diff is not equal to real delay"
LATE_TICK = re.compile(r"running slower \(([\d.]+) Hz\) than the target FPS \(([\d.]+) Hz\)")
EPISODE_START = re.compile(r"Recording episode (\d+)")
# Lines after which the loop leaves an episode (then: the reset period, or the end of the run).
EPISODE_END = ("Reset the environment", "Re-record episode", "Stop recording", "Episodic control loop ended")
RUN_END = ("Duration limit reached", "Stop recording")
# Where LeRobot 0.6.1 logs the late-tick warning and the episode lines: `lerobot-record` and `log_say` use
# the root logger, the rollout strategies their module loggers.
LOOP_LOGGERS = (
    "",
    *(f"lerobot.rollout.strategies.{name}" for name in ("base", "episodic", "sentry", "highlight", "dagger")),
    "lerobot.policies.rtc.action_queue",  # `--inference.type=rtc`: a warning on every chunk whose delay differs
)


def _ms(seconds: list[float], percentile: float) -> float:
    return 1e3 * float(np.percentile(seconds, percentile))


class ControlTiming(logging.Filter):
    """Per-episode control-loop timing of one arm; a log filter on LeRobot's loop loggers while connected."""

    def __init__(self, robot: str):
        super().__init__()
        self.robot = robot
        self.segments: list[dict] = []  # the figures of every finished episode / period, in order
        self._start("run")

    def _start(self, segment: str) -> None:
        self.segment = segment
        self.ticks = 0
        self.late_hz: list[float] = []
        self.clamped = 0
        self.rtc_delay_mismatches = 0
        self.target_hz: float | None = None
        self.io: list[float] = []  # get_observation + send_action of a tick
        self.policy: list[float] = []  # end of get_observation -> start of send_action
        self._observed_at: float | None = None
        self._observation_io = 0.0

    # --- hooks called by the arm ------------------------------------------------------------------------
    def observed(self, started: float) -> None:
        """`get_observation` started at `started` (perf_counter) and returns now."""
        self._observed_at = time.perf_counter()
        self._observation_io = self._observed_at - started

    def acting(self) -> float:
        """`send_action` starts now: the gap since the observation was the policy's. Returns the start time."""
        now = time.perf_counter()
        if self._observed_at is not None:
            self.policy.append(now - self._observed_at)
        return now

    def sent(self, started: float) -> None:
        """`send_action`, started at `started`, returns now: one control tick done."""
        self.ticks += 1
        self.io.append(self._observation_io + time.perf_counter() - started)
        self._observed_at, self._observation_io = None, 0.0

    # --- log filter -------------------------------------------------------------------------------------
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(CLAMPED):
            self.clamped += 1
            return self.clamped == 1
        if message.startswith(RTC_DELAY):
            self.rtc_delay_mismatches += 1
            return self.rtc_delay_mismatches == 1
        late = LATE_TICK.search(message)
        if late:
            self.late_hz.append(float(late[1]))
            self.target_hz = float(late[2])
            if len(self.late_hz) > 1:
                return False
            record.msg = (
                f"{self.robot}: the control loop missed its {self.target_hz:g} Hz period ({float(late[1]):.1f} Hz "
                f"on this tick); late ticks are counted and reported once at the end of the {self.segment}."
            )
            record.args = ()
            return True
        started = EPISODE_START.match(message)
        if started:
            self.report()
            self._start(f"episode {started[1]}")
        elif message.startswith(EPISODE_END) or message.startswith(RUN_END):
            self.report()
            self._start("run" if message.startswith(RUN_END) else "reset period")
        return True

    def install(self) -> None:
        for name in LOOP_LOGGERS:
            logging.getLogger(name).addFilter(self)

    def close(self) -> None:
        """Reports what is left and removes the filter (the arm disconnects)."""
        self.report()
        for name in LOOP_LOGGERS:
            logging.getLogger(name).removeFilter(self)

    def summary(self) -> str | None:
        """The once-per-episode report, or None when no tick was late and no target was clamped."""
        ticks = max(self.ticks, len(self.late_hz))
        parts = []
        if self.clamped:
            parts.append(
                f"max_relative_target limited {self.clamped} of {ticks} actions (the recorded actions are the "
                "limited ones)."
            )
        if self.rtc_delay_mismatches:
            parts.append(
                f"Real-time chunking: {self.rtc_delay_mismatches} chunks arrived after a different number of "
                "actions than their measured latency predicted (LeRobot's 'Indexes diff' warning)."
            )
        if self.late_hz:
            period_ms = 1e3 / self.target_hz
            parts.append(
                f"{len(self.late_hz)} of {ticks} control ticks missed the {self.target_hz:g} Hz period "
                f"({period_ms:.1f} ms); late ticks ran at {statistics.median(self.late_hz):.1f} Hz (median), "
                f"{min(self.late_hz):.1f} Hz at the slowest."
            )
            if self.io:
                parts.append(f"Cameras and motor bus: {_ms(self.io, 50):.1f} ms a tick (median).")
            if self.policy:
                parts.append(
                    f"Observation to action (the policy and its processors): {_ms(self.policy, 50):.1f} ms median, "
                    f"{_ms(self.policy, 95):.1f} ms at the 95th percentile, {1e3 * max(self.policy):.1f} ms at most."
                )
                if max(self.policy) > 1e-3 * period_ms:
                    parts.append(
                        "The policy is what misses the period: a chunked policy computes a chunk every "
                        "n_action_steps ticks; `lerobot-rollout --inference.type=rtc` computes it in the "
                        "background instead, or lower --fps / use a GPU."
                    )
        return f"{self.robot} ({self.segment}): " + " ".join(parts) if parts else None

    def report(self) -> None:
        """Says the summary (if any) and records the segment's figures in `segments`."""
        text = self.summary()
        if text:
            logger.warning(text)
        if self.ticks or text:
            self.segments.append(
                {
                    "segment": self.segment,
                    "ticks": self.ticks,
                    "late_hz": self.late_hz,
                    "target_hz": self.target_hz,
                    "clamped": self.clamped,
                    "io_s": self.io,
                    "policy_s": self.policy,
                }  # fmt: skip
            )
        self._start(self.segment)
