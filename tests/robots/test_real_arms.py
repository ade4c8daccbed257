"""`stamo_so100` and `stamo_koch` with LeRobot's real Feetech/Dynamixel buses against emulated servos: connect,
units, clipping to the calibrated ranges and `max_relative_target`, no NaN on the bus, torque off on
disconnect, and the faults that end a run (missing/frozen camera, dead bus)."""

import math
import signal

import pytest
from arm_testing import fake_cameras
from lerobot.robots.utils import make_robot_from_config
from lerobot.teleoperators.utils import make_teleoperator_from_config

from lerobot_stamo.robots import (
    ArmSafetyError,
    StamoKochConfig,
    StamoKochLeaderConfig,
    StamoSO100,
    StamoSO100Config,
)
from lerobot_stamo.robots.emulation import (
    KOCH_LEADER_MODELS,
    KOCH_MODELS,
    MOTORS,
    DynamixelEmulator,
    FeetechEmulator,
    degrees_to_raw,
    so_calibration,
)

CAL = so_calibration()
IDS = {m: CAL[m]["id"] for m in MOTORS}


def flush(robot) -> None:
    """Sync writes get no reply: a read behind them in the serial stream waits until the servos got them."""
    robot.bus.sync_read("Present_Position")


def so_robot(emulator, calibration_dir, **overrides) -> StamoSO100:
    fields = {
        "port": emulator.port,
        "id": "arm",
        "calibration_dir": calibration_dir,
        "cameras": fake_cameras(),
    }
    return make_robot_from_config(StamoSO100Config(**(fields | overrides)))


def test_types_defaults_and_shared_calibration():
    config = StamoSO100Config(port="/dev/ttyACM0")
    assert config.type == "stamo_so100" and StamoKochConfig(port="p").type == "stamo_koch"
    assert set(config.cameras) == {"front", "wrist"} and config.use_degrees
    assert config.max_relative_target == 5.0 and config.disable_torque_on_disconnect
    robot = make_robot_from_config(StamoSO100Config(port="p", id="x", max_relative_target=3))
    assert isinstance(robot.config.max_relative_target, float)  # LeRobot's clamp rejects an int mid-run
    assert robot.calibration_fpath.parent.name == "so_follower"  # the stock follower's calibration files
    assert list(robot.action_features) == [f"{m}.pos" for m in MOTORS]


def test_missing_policy_camera_is_a_config_error():
    with pytest.raises(ValueError, match=r"camera\(s\) \['wrist'\].*required_cameras"):
        StamoSO100Config(port="p", cameras={"front": fake_cameras()["front"]})
    StamoSO100Config(port="p", cameras={"front": fake_cameras()["front"]}, required_cameras=["front"])


def test_late_answers_within_the_latency_allowance_arrive(so_emulator, koch_emulator):
    """Answers 0.2 s late (beyond LeRobot's 50 ms Feetech and the SDKs' 34 ms timeouts) reach both buses: the
    allowance of conftest's `_emulator_gets_its_turn` applies to each (it once missed the Feetech one, and its
    tests failed now and then on a loaded machine)."""
    from lerobot.motors import Motor, MotorNormMode
    from lerobot.motors.dynamixel import DynamixelMotorsBus
    from lerobot.motors.feetech import FeetechMotorsBus

    buses = (
        (so_emulator, FeetechMotorsBus, "sts3215", FeetechEmulator.MODEL),
        (koch_emulator, DynamixelMotorsBus, "xl430-w250", KOCH_MODELS["shoulder_pan"]),
    )
    for emulator, bus_class, model, number in buses:
        bus = bus_class(emulator.port, {"shoulder_pan": Motor(1, model, MotorNormMode.DEGREES)})
        bus.connect(handshake=False)
        emulator.reply_delay = 0.2
        try:
            assert bus.ping(1) == number, bus_class.__name__
        finally:
            bus.disconnect(disable_torque=False)


def test_connect_read_write_clip_and_torque(so_emulator, calibration_dir):
    robot = so_robot(so_emulator, calibration_dir, max_relative_target=None)
    robot.connect()
    try:
        assert all(so_emulator.torque(i) for i in IDS.values())
        obs = robot.get_observation()
        assert obs["front"].shape == (64, 64, 3) and obs["wrist"].shape == (64, 64, 3)
        assert (
            abs(obs["shoulder_pan.pos"]) < 0.1 and abs(obs["gripper.pos"] - 50) < 0.1
        )  # middle of the range
        low, high = robot.joint_limits["elbow_flex"]
        assert high == pytest.approx(-low) and 85 < high < 90

        action = {f"{m}.pos": 10.0 for m in MOTORS} | {"elbow_flex.pos": 500.0, "gripper.pos": -20.0}
        sent = robot.send_action(action)
        assert sent["elbow_flex.pos"] == pytest.approx(high) and sent["gripper.pos"] == 0.0
        assert action == sent  # updated in place: a loop recording `action` records what was sent
        flush(robot)
        assert so_emulator.goal(IDS["elbow_flex"]) == CAL["elbow_flex"]["range_max"]
        assert so_emulator.goal(IDS["gripper"]) == CAL["gripper"]["range_min"]
        assert so_emulator.goal(IDS["shoulder_pan"]) == degrees_to_raw(CAL["shoulder_pan"], 10.0)
        assert robot.get_observation()["shoulder_pan.pos"] == pytest.approx(10.0, abs=0.1)
    finally:
        robot.disconnect()
    assert not any(so_emulator.torque(i) for i in IDS.values())


def test_max_relative_target_after_range_clip(so_emulator, calibration_dir):
    robot = so_robot(so_emulator, calibration_dir)  # default: 5 per step
    robot.connect()
    try:
        sent = robot.send_action({"shoulder_lift.pos": 300.0, "gripper.pos": 0.0})
        assert sent == pytest.approx({"shoulder_lift.pos": 5.0, "gripper.pos": 45.0}, abs=0.1)
    finally:
        robot.disconnect()


def test_nonfinite_actions_never_reach_the_bus(so_emulator, calibration_dir):
    robot = so_robot(so_emulator, calibration_dir, max_nonfinite_actions=2)
    robot.connect()
    try:
        robot.send_action({f"{m}.pos": 2.0 for m in MOTORS})
        flush(robot)
        writes, goals = len(so_emulator.goal_writes), {i: so_emulator.goal(i) for i in IDS.values()}
        action = {f"{m}.pos": 4.0 for m in MOTORS} | {"gripper.pos": math.nan}
        sent = robot.send_action(action)
        assert all(math.isfinite(v) for v in sent.values()) and action == sent
        assert sent["shoulder_pan.pos"] == pytest.approx(2.0, abs=0.1)  # held: the last goal
        with pytest.raises(ArmSafetyError, match="2 actions in a row had non-finite values"):
            robot.send_action({f"{m}.pos": math.inf for m in MOTORS})
        flush(robot)
        assert len(so_emulator.goal_writes) == writes and goals == {
            i: so_emulator.goal(i) for i in IDS.values()
        }
        robot.send_action({"shoulder_pan.pos": 3.0})  # a policy fault leaves the bus usable (return to start)
    finally:
        robot.disconnect()
    assert not any(so_emulator.torque(i) for i in IDS.values())


def test_camera_without_frames_fails_connect_with_torque_off(so_emulator, calibration_dir):
    robot = so_robot(so_emulator, calibration_dir, cameras=fake_cameras(stop_after=0))
    with pytest.raises(ArmSafetyError, match="camera 'front'.*delivered no frame"):
        robot.connect()
    assert not robot.bus.is_connected and not any(c.is_connected for c in robot.cameras.values())
    assert not any(so_emulator.torque(i) for i in IDS.values())


def test_camera_that_stops_ends_the_run(so_emulator, calibration_dir):
    robot = so_robot(so_emulator, calibration_dir, cameras=fake_cameras(stop_after=3))
    robot.connect()  # one frame per camera checked at connect
    try:
        robot.get_observation()
        robot.get_observation()
        with pytest.raises(ArmSafetyError, match="camera 'front' stopped delivering frames"):
            robot.get_observation()
    finally:
        robot.disconnect()
    assert not any(so_emulator.torque(i) for i in IDS.values())


def test_failing_motor_reads_end_the_run_and_block_motion(so_emulator, calibration_dir):
    robot = so_robot(so_emulator, calibration_dir, max_failed_reads=2)
    robot.connect()
    try:
        first = robot.get_observation()
        so_emulator.fail_reads = True
        assert (
            robot.get_observation()["elbow_flex.pos"] == first["elbow_flex.pos"]
        )  # one failure: last reading
        with pytest.raises(ArmSafetyError, match="failed 2 time\\(s\\) in a row.*power supply"):
            robot.get_observation()
        with pytest.raises(ArmSafetyError, match="motion refused"):
            robot.send_action({"elbow_flex.pos": 1.0})
    finally:
        robot.disconnect()
    assert not any(so_emulator.torque(i) for i in IDS.values())  # torque off is a write: still gets through


def test_sigterm_becomes_keyboard_interrupt_while_connected(so_emulator, calibration_dir):
    robot = so_robot(so_emulator, calibration_dir)
    robot.connect()
    try:
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGTERM)
    finally:
        robot.disconnect()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_koch_in_degrees_and_leader_in_degrees(koch_emulator, calibration_dir, tmp_path):
    robot = make_robot_from_config(
        StamoKochConfig(
            port=koch_emulator.port, id="arm", calibration_dir=calibration_dir, cameras=fake_cameras()
        )
    )
    robot.connect()
    try:
        assert all(koch_emulator.torque(i) for i in IDS.values())
        assert abs(robot.get_observation()["wrist_flex.pos"]) < 0.1
        sent = robot.send_action({"wrist_flex.pos": -3.0, "shoulder_pan.pos": 1000.0})
        assert sent["wrist_flex.pos"] == pytest.approx(-3.0)
        assert sent["shoulder_pan.pos"] == pytest.approx(5.0)  # extended mode: only our clamps bound it
        flush(robot)
        assert koch_emulator.goal(IDS["wrist_flex"]) == degrees_to_raw(CAL["wrist_flex"], -3.0)
    finally:
        robot.disconnect()
    assert not any(koch_emulator.torque(i) for i in IDS.values())

    leader_emulator = DynamixelEmulator.with_calibration(CAL, KOCH_LEADER_MODELS)
    try:
        leader_emulator.set(IDS["elbow_flex"], 132, 4, degrees_to_raw(CAL["elbow_flex"], 30.0))
        leader = make_teleoperator_from_config(
            StamoKochLeaderConfig(port=leader_emulator.port, id="arm", calibration_dir=calibration_dir)
        )
        leader.connect()
        assert leader.calibration_fpath.parent == calibration_dir
        assert leader.get_action()["elbow_flex.pos"] == pytest.approx(30.0, abs=0.1)  # not -100..100
        leader.disconnect()
    finally:
        leader_emulator.close()


def test_uncalibrated_arm_connects_for_lerobot_calibrate_but_refuses_motion(so_emulator, tmp_path):
    robot = so_robot(so_emulator, tmp_path / "empty")  # no calibration file
    robot.connect(calibrate=False)  # what lerobot-calibrate does before calibrate()
    try:
        with pytest.raises(
            ArmSafetyError, match="has no calibration.*lerobot-calibrate --robot.type=stamo_so100"
        ):
            robot.send_action({"gripper.pos": 10.0})
    finally:
        robot.disconnect()
    assert so_emulator.goal_writes == []
