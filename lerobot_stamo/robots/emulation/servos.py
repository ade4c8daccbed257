"""Stateful servo emulators behind pseudo-terminals, for LeRobot's real Feetech and Dynamixel bus classes.

Each emulator owns one register bytearray per motor id and answers the packets the vendor SDKs send (ping, read,
write, sync read, sync write) on the slave end of a pty, whose path is the robot's `port`. Writing Goal_Position
with torque on moves Present_Position there at once. Tests read the registers to check what reached the motors.
"""

import json
import math
import os
import pty
import select
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

from dynamixel_sdk import Protocol2PacketHandler

MOTORS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
PING, READ, WRITE, SYNC_READ, SYNC_WRITE = 0x01, 0x02, 0x03, 0x82, 0x83
BROADCAST = 0xFE


class ServoEmulator:
    """A daisy chain of servos on a pseudo-terminal (subclasses speak one protocol)."""

    torque_addr: int
    goal_addr: int
    present_addr: int
    position_bytes: int

    def __init__(self, registers: dict[int, bytearray]):
        self.registers = registers
        self.fail_reads = False  # True: reads of Present_Position get no answer (a dead bus)
        self.reply_delay = 0.0  # seconds before each answer (a slow adapter or a loaded machine)
        self.motion: Callable[[int, float], int] | None = None  # (id, seconds) -> raw position of a moved arm
        self.goal_writes: list[dict[int, int]] = []  # raw Goal_Position values, one dict per write packet
        self._t0 = time.monotonic()
        self._master, self._slave = pty.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        os.close(self._master)
        os.close(self._slave)

    # --- registers ----------------------------------------------------------------------------------
    def get(self, id_: int, addr: int, n: int) -> int:
        return int.from_bytes(self.registers[id_][addr : addr + n], "little", signed=n == 4)

    def set(self, id_: int, addr: int, n: int, value: int) -> None:
        self.registers[id_][addr : addr + n] = int(value).to_bytes(n, "little", signed=n == 4)

    def torque(self, id_: int) -> bool:
        return bool(self.registers[id_][self.torque_addr])

    def present(self, id_: int) -> int:
        return self.get(id_, self.present_addr, self.position_bytes)

    def goal(self, id_: int) -> int:
        return self.get(id_, self.goal_addr, self.position_bytes)

    def _written(self, id_: int, addr: int, data: bytes) -> None:
        regs = self.registers[id_]
        regs[addr : addr + len(data)] = data
        n = self.position_bytes
        if addr <= self.goal_addr < addr + len(data) and self.torque(id_):
            regs[self.present_addr : self.present_addr + n] = regs[self.goal_addr : self.goal_addr + n]

    def _read(self, id_: int, addr: int, n: int) -> bytes | None:
        if addr == self.present_addr:
            if self.fail_reads:
                return None
            if self.motion is not None and not self.torque(id_):
                self.set(id_, addr, n, self.motion(id_, time.monotonic() - self._t0))
        return bytes(self.registers[id_][addr : addr + n])

    # --- transport ----------------------------------------------------------------------------------
    def _serve(self) -> None:
        try:  # a real servo answers within microseconds: don't queue behind a loaded machine's other processes
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))
        except (OSError, AttributeError):  # not permitted (non-root): best effort
            pass
        buffer = bytearray()
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.02)
            if not ready:
                continue
            try:
                buffer += os.read(self._master, 4096)
            except OSError:
                return
            while (packet := self._parse(buffer)) is not None:
                reply = self._handle(*packet)
                if reply:
                    time.sleep(self.reply_delay)
                    os.write(self._master, reply)

    def _parse(self, buffer: bytearray) -> tuple[int, int, bytes] | None:
        raise NotImplementedError

    def _status(self, id_: int, data: bytes) -> bytes:
        raise NotImplementedError

    def _split_address(self, params: bytes) -> tuple[int, int, bytes]:
        raise NotImplementedError

    def _handle(self, id_: int, instr: int, params: bytes) -> bytes:
        """Ping, read, sync read and sync write (subclasses handle WRITE, whose layout differs)."""
        if instr == PING:
            return self._status(id_, self._ping_data(id_)) if id_ in self.registers else b""
        addr, n, rest = self._split_address(params)
        if instr == READ:
            data = self._read(id_, addr, n) if id_ in self.registers else None
            return self._status(id_, data) if data is not None else b""
        if instr == SYNC_READ:
            replies = [self._read(i, addr, n) for i in rest if i in self.registers]
            if any(r is None for r in replies):
                return b""
            return b"".join(self._status(i, r) for i, r in zip(rest, replies, strict=False))
        if instr == SYNC_WRITE:
            chunks = {rest[k]: bytes(rest[k + 1 : k + 1 + n]) for k in range(0, len(rest), n + 1)}
            self._log_goals(chunks, addr)
            for i, data in chunks.items():
                if i in self.registers:
                    self._written(i, addr, data)
        return b""

    def _log_goals(self, chunks: dict[int, bytes], addr: int) -> None:
        if addr == self.goal_addr:
            self.goal_writes.append(
                {i: int.from_bytes(d, "little", signed=len(d) == 4) for i, d in chunks.items()}
            )

    def _ping_data(self, id_: int) -> bytes:
        return b""


class FeetechEmulator(ServoEmulator):
    """STS3215 servos (SO-100/SO-101), Feetech protocol 0: `FF FF id len instr params ~sum`."""

    torque_addr, goal_addr, present_addr, position_bytes = 40, 42, 56, 2
    MODEL, MODEL_NUMBER_ADDR = 777, 3
    MIN_ADDR, MAX_ADDR, HOMING_ADDR = 9, 11, 31

    @classmethod
    def with_calibration(cls, calibration: dict[str, dict[str, int]]) -> "FeetechEmulator":
        registers = {}
        for cal in calibration.values():
            regs = bytearray(256)
            regs[0:2] = bytes([3, 10])  # firmware major/minor, the same on every motor
            regs[cls.MODEL_NUMBER_ADDR : cls.MODEL_NUMBER_ADDR + 2] = cls.MODEL.to_bytes(2, "little")
            regs[5] = cal["id"]
            for addr, key in ((cls.MIN_ADDR, "range_min"), (cls.MAX_ADDR, "range_max")):
                regs[addr : addr + 2] = cal[key].to_bytes(2, "little")
            regs[cls.HOMING_ADDR : cls.HOMING_ADDR + 2] = cal["homing_offset"].to_bytes(2, "little")
            mid = (cal["range_min"] + cal["range_max"]) // 2
            regs[cls.present_addr : cls.present_addr + 2] = mid.to_bytes(2, "little")
            registers[cal["id"]] = regs
        return cls(registers)

    def _parse(self, buffer: bytearray) -> tuple[int, int, bytes] | None:
        start = buffer.find(b"\xff\xff")
        if start < 0 or len(buffer) < start + 4:
            return None
        id_, length = buffer[start + 2], buffer[start + 3]
        end = start + 4 + length
        if len(buffer) < end:
            return None
        packet = (id_, buffer[start + 4], bytes(buffer[start + 5 : end - 1]))
        del buffer[:end]
        return packet

    def _status(self, id_: int, data: bytes) -> bytes:
        body = bytes([id_, len(data) + 2, 0, *data])
        return b"\xff\xff" + body + bytes([~sum(body) & 0xFF])

    def _split_address(self, params: bytes) -> tuple[int, int, bytes]:
        if len(params) < 2:
            return 0, 0, b""
        return params[0], params[1], params[2:]

    def _handle(self, id_: int, instr: int, params: bytes) -> bytes:
        if instr == WRITE:  # WRITE has no length byte: [addr, data...]
            data = params[1:]
            self._log_goals({id_: data}, params[0])
            self._written(id_, params[0], data)
            return self._status(id_, b"") if id_ != BROADCAST else b""
        return super()._handle(id_, instr, params)


class DynamixelEmulator(ServoEmulator):
    """Dynamixel X-series servos (Koch), protocol 2.0: `FF FF FD 00 id len16 instr params crc16`."""

    torque_addr, goal_addr, present_addr, position_bytes = 64, 116, 132, 4
    DRIVE_MODE_ADDR, HOMING_ADDR, MAX_ADDR, MIN_ADDR = 10, 20, 48, 52
    _crc = Protocol2PacketHandler()

    @classmethod
    def with_calibration(
        cls, calibration: dict[str, dict[str, int]], models: dict[str, int]
    ) -> "DynamixelEmulator":
        registers = {}
        for motor, cal in calibration.items():
            regs = bytearray(256)
            regs[0:2] = models[motor].to_bytes(2, "little")
            regs[6], regs[7] = 52, cal["id"]  # firmware version, id
            regs[cls.DRIVE_MODE_ADDR] = cal["drive_mode"]
            for addr, key in (
                (cls.HOMING_ADDR, "homing_offset"),
                (cls.MAX_ADDR, "range_max"),
                (cls.MIN_ADDR, "range_min"),
            ):
                regs[addr : addr + 4] = cal[key].to_bytes(4, "little", signed=True)
            mid = (cal["range_min"] + cal["range_max"]) // 2
            regs[cls.present_addr : cls.present_addr + 4] = mid.to_bytes(4, "little", signed=True)
            registers[cal["id"]] = regs
        return cls(registers)

    def _parse(self, buffer: bytearray) -> tuple[int, int, bytes] | None:
        start = buffer.find(b"\xff\xff\xfd\x00")
        if start < 0 or len(buffer) < start + 8:
            return None
        length = buffer[start + 5] | buffer[start + 6] << 8
        end = start + 7 + length
        if len(buffer) < end:
            return None
        params = bytes(buffer[start + 8 : end - 2]).replace(b"\xff\xff\xfd\xfd", b"\xff\xff\xfd")
        packet = (buffer[start + 4], buffer[start + 7], params)
        del buffer[:end]
        return packet

    def _status(self, id_: int, data: bytes) -> bytes:
        body = bytes([0, *data]).replace(b"\xff\xff\xfd", b"\xff\xff\xfd\xfd")  # error byte + stuffed data
        length = len(body) + 3
        packet = [0xFF, 0xFF, 0xFD, 0x00, id_, length & 0xFF, length >> 8, 0x55, *body]
        crc = self._crc.updateCRC(0, packet, len(packet))
        return bytes([*packet, crc & 0xFF, crc >> 8])

    def _ping_data(self, id_: int) -> bytes:
        regs = self.registers[id_]
        return bytes([regs[0], regs[1], regs[6]])

    def _split_address(self, params: bytes) -> tuple[int, int, bytes]:
        if len(params) < 4:
            return 0, 0, b""
        return params[0] | params[1] << 8, params[2] | params[3] << 8, params[4:]

    def _handle(self, id_: int, instr: int, params: bytes) -> bytes:
        if instr == WRITE:  # WRITE has no length field: [addr L, addr H, data...]
            addr, data = params[0] | params[1] << 8, params[2:]
            self._log_goals({id_: data}, addr)
            self._written(id_, addr, data)
            return self._status(id_, b"") if id_ != BROADCAST else b""
        return super()._handle(id_, instr, params)


def serial_timeout_patches(ms: int) -> list[tuple[object, str, object]]:
    """(module, name, value) that allow `ms` of latency per packet instead of a real USB adapter's: the Dynamixel
    and Feetech SDKs time out after 2 x 16 ms of `LATENCY_TIMER` (+ transfer time), and LeRobot's Feetech bus
    replaces that timeout by a fixed 50 ms (`feetech.patch_setPacketTimeout`, bound to each bus it builds). An
    emulator on a pseudo-terminal of a loaded, shared test machine may not be scheduled that fast."""
    import dynamixel_sdk.port_handler
    import scservo_sdk.port_handler
    from lerobot.motors.feetech import feetech

    def feetech_packet_timeout(port_handler, packet_length):  # LeRobot's, with `ms` in place of 50 ms
        port_handler.packet_start_time = port_handler.getCurrentTime()
        transfer = port_handler.tx_time_per_byte * (packet_length + 3.0)
        port_handler.packet_timeout = transfer + max(50.0, 2.0 * ms)

    patches = [
        (dynamixel_sdk.port_handler, "LATENCY_TIMER", ms),
        (scservo_sdk.port_handler, "LATENCY_TIMER", ms),
    ]
    if hasattr(feetech, "patch_setPacketTimeout"):  # LeRobot 0.6.1 (without it: the SDK's timeout)
        patches.append((feetech, "patch_setPacketTimeout", feetech_packet_timeout))
    return patches


def set_serial_latency(ms: int) -> None:
    """Allow `ms` of latency per serial packet in this process (see `serial_timeout_patches`)."""
    for module, name, value in serial_timeout_patches(ms):
        setattr(module, name, value)


def so_calibration() -> dict[str, dict[str, int]]:
    """A plausible SO-101 calibration: every joint about +-90 degrees around the middle, wrist_roll a full turn."""
    cal = {}
    for i, motor in enumerate(MOTORS, start=1):
        low, high = (0, 4095) if motor == "wrist_roll" else (1024 + 10 * i, 3072 - 10 * i)
        cal[motor] = {"id": i, "drive_mode": 0, "homing_offset": 5 * i, "range_min": low, "range_max": high}
    return cal


KOCH_MODELS = {m: (1060 if i < 2 else 1200) for i, m in enumerate(MOTORS)}  # xl430-w250 x2, xl330-m288 x4
KOCH_LEADER_MODELS = dict.fromkeys(MOTORS, 1190)  # xl330-m077


def write_calibration(calibration: dict[str, dict[str, int]], directory: Path, device_id: str) -> Path:
    """`<directory>/<device_id>.json` in LeRobot's calibration format; the directory is `calibration_dir`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{device_id}.json"
    path.write_text(json.dumps(calibration, indent=4))
    return path


def degrees_to_raw(calibration: dict[str, int], degrees: float) -> int:
    """LeRobot's DEGREES unnormalisation for a 4096-step servo: middle of the range + degrees * 4095 / 360."""
    return int(degrees * 4095 / 360 + (calibration["range_min"] + calibration["range_max"]) / 2)


def sine_motion(calibration: dict[str, dict[str, int]], amplitude: int = 150) -> Callable[[int, float], int]:
    """A leader arm moved by hand: each joint swings around the middle of its range."""
    by_id = {cal["id"]: cal for cal in calibration.values()}

    def position(id_: int, t: float) -> int:
        cal = by_id[id_]
        return int((cal["range_min"] + cal["range_max"]) / 2 + amplitude * math.sin(2.0 * t + id_))

    return position
