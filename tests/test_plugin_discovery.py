"""LeRobot finds the plug-in the way its CLIs do: register_third_party_plugins() on the installed package."""

import importlib.metadata
import subprocess
import sys

DISCOVER = """
from lerobot.utils.import_utils import register_third_party_plugins
register_third_party_plugins()
import sys
from lerobot.envs.configs import EnvConfig
from lerobot.configs.policies import PreTrainedConfig
print("ENV", sorted(EnvConfig.get_known_choices()))
print("POLICY", sorted(PreTrainedConfig.get_known_choices()))
print("LOADED", "lerobot_stamo" in sys.modules)
"""


def test_distribution_name_uses_underscores():
    names = {d.metadata["Name"] for d in importlib.metadata.distributions()}
    assert "lerobot_policy_stamo" in names  # a dashed name is skipped by LeRobot without a word


def test_register_third_party_plugins_registers_everything():
    proc = subprocess.run([sys.executable, "-c", DISCOVER], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = dict(line.split(" ", 1) for line in proc.stdout.strip().splitlines())
    assert out["LOADED"] == "True"
    assert "'stamo_so101'" in out["ENV"]
    assert "'stamo'" in out["POLICY"]
