"""LeRobot's async-inference PolicyServer serving a `stamo_vla` checkpoint (`lerobot-stamo-policy-server`):
the policy instructions a robot client sends, then one observation -> a chunk of timed actions."""

import pickle
from pathlib import Path
from unittest.mock import MagicMock

import numpy as np
import torch
from lerobot.utils.constants import ACTION, OBS_STATE
from test_stamo_vla_model import CAMS, HW, make_policy

from lerobot_stamo.policies.stamo_vla import make_stamo_vla_pre_post_processors
from lerobot_stamo.scripts.lerobot_stamo_policy_server import enable_plugin_policies

MOTORS = [
    f"{m}.pos" for m in ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
]


def saved_checkpoint(path: Path) -> Path:
    policy = make_policy()
    stats = {
        OBS_STATE: {"mean": torch.zeros(6), "std": torch.ones(6)},
        ACTION: {"mean": torch.zeros(6), "std": torch.ones(6)},
    }
    pre, post = make_stamo_vla_pre_post_processors(policy.config, stats)
    for part in (policy, pre, post):
        part.save_pretrained(path)
    return path


def test_policy_server_serves_stamo_vla(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # LeRobot's server module writes logs/ into the working directory on import
    from lerobot.async_inference.configs import PolicyServerConfig
    from lerobot.async_inference.helpers import RemotePolicyConfig, TimedObservation
    from lerobot.async_inference.policy_server import PolicyServer

    assert "stamo_vla" in enable_plugin_policies()
    checkpoint = saved_checkpoint(tmp_path / "ckpt")
    lerobot_features = {
        OBS_STATE: {"dtype": "float32", "shape": (6,), "names": MOTORS},
        **{
            k: {"dtype": "video", "shape": (HW, HW, 3), "names": ["height", "width", "channels"]}
            for k in CAMS
        },
    }
    server = PolicyServer(PolicyServerConfig())
    specs = RemotePolicyConfig(
        "stamo_vla", str(checkpoint), lerobot_features, actions_per_chunk=3, device="cpu"
    )
    context = MagicMock(peer=lambda: "test-client")
    server.SendPolicyInstructions(MagicMock(data=pickle.dumps(specs)), context)
    assert type(server.policy).__name__ == "StamoVLAPolicy"

    rng = np.random.default_rng(0)
    raw = {m: float(i) for i, m in enumerate(MOTORS)}
    raw |= {k.split(".")[-1]: rng.integers(0, 255, (HW, HW, 3), dtype=np.uint8) for k in CAMS}
    raw["task"] = "pick up the cube"
    actions = server._predict_action_chunk(TimedObservation(timestamp=0.0, timestep=0, observation=raw))
    assert len(actions) == 3 and actions[0].get_action().shape == (6,)
    assert [a.get_timestep() for a in actions] == [0, 1, 2]
