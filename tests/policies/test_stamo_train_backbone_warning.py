"""`policy.train_backbone=true` warns once per run, however often a run builds the model and in however many
of its child processes."""

import logging
import os
import subprocess
import sys

from lerobot_stamo.policies.stamo import StamoPolicy, modeling_stamo

MESSAGE = "policy.train_backbone=true: the backbone is trained"


def test_train_backbone_warning_once_per_run(make_tiny_config, caplog, monkeypatch):
    # an earlier test may have warned; monkeypatch restores the variable afterwards
    monkeypatch.delenv(modeling_stamo.TRAIN_BACKBONE_WARNED_ENV, raising=False)
    caplog.set_level(logging.WARNING, logger=modeling_stamo.__name__)
    StamoPolicy(make_tiny_config(train_backbone=False))
    assert MESSAGE not in caplog.text
    for _ in range(3):
        StamoPolicy(make_tiny_config(train_backbone=True))
    assert caplog.text.count(MESSAGE) == 1
    assert "The paper keeps DINOv2 frozen" in caplog.text
    # a child process started now (a command of `lerobot-stamo-demo`) inherits that it was said
    child = subprocess.run(
        [sys.executable, "-c", "from lerobot_stamo.policies.stamo import modeling_stamo as m; m.warn_train_backbone()"],
        env=dict(os.environ), capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert MESSAGE not in child.stderr
