"""`lerobot-stamo-policy-server` (LeRobot's PolicyServer with `stamo_vla` enabled) on localhost, driven by LeRobot's
own RobotClient, unchanged, on the emulated SO-101 (`stamo_so100`): actions computed remotely reach the servos
inside the calibrated ranges, and the arm ends with torque off."""

import threading
import time
from concurrent import futures

import grpc
import pytest
from arm_testing import fake_cameras, tiny_stamo_vla

from lerobot_stamo.robots import StamoSO100Config
from lerobot_stamo.robots.emulation import so_calibration
from lerobot_stamo.scripts.lerobot_stamo_policy_server import enable_plugin_policies


@pytest.mark.slow
def test_robot_client_drives_emulated_arm_through_policy_server(
    so_emulator, calibration_dir, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # LeRobot's async-inference modules write logs/ into the working directory
    enable_plugin_policies()
    from lerobot.async_inference.configs import PolicyServerConfig, RobotClientConfig
    from lerobot.async_inference.policy_server import PolicyServer
    from lerobot.async_inference.robot_client import RobotClient
    from lerobot.transport import services_pb2_grpc

    policy_server = PolicyServer(PolicyServerConfig(host="127.0.0.1"))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    services_pb2_grpc.add_AsyncInferenceServicer_to_server(policy_server, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    client, threads = None, []
    try:
        client = RobotClient(
            RobotClientConfig(
                policy_type="stamo_vla",
                pretrained_name_or_path=str(tiny_stamo_vla(tmp_path / "policy", action_std=20.0)),
                robot=StamoSO100Config(
                    port=so_emulator.port, id="arm", calibration_dir=calibration_dir, cameras=fake_cameras()
                ),
                actions_per_chunk=4,
                task="pick up the cube",
                server_address=f"127.0.0.1:{port}",
                policy_device="cpu",
            )
        )
        assert client.start()
        threads = [
            threading.Thread(target=client.receive_actions, daemon=True),
            threading.Thread(target=client.control_loop, args=("pick up the cube",), daemon=True),
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(so_emulator.goal_writes) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        if client is not None:
            # LeRobot's `stop()` disconnects the bus without waiting for the control loop, which may be reading
            # it (a SerialException under load): let the threads end first.
            client.shutdown_event.set()
            for thread in threads:
                thread.join(timeout=10)
            client.stop()
        server.stop(grace=None)
    assert len(so_emulator.goal_writes) >= 5, "no remote action reached the arm within 60 s"
    cal = {c["id"]: c for c in so_calibration().values()}
    for write in so_emulator.goal_writes:
        assert all(cal[i]["range_min"] <= raw <= cal[i]["range_max"] for i, raw in write.items())
    assert not any(so_emulator.torque(i) for i in so_emulator.registers)
