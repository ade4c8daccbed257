"""`policy.train_backbone=true` warns once per process, however often a run builds the model."""

import logging

from lerobot_stamo.policies.stamo import StamoPolicy, modeling_stamo

MESSAGE = "policy.train_backbone=true: the backbone is trained"


def test_train_backbone_warning_once_per_process(make_tiny_config, caplog):
    modeling_stamo._warn_train_backbone.cache_clear()  # an earlier test of this process may have warned
    caplog.set_level(logging.WARNING, logger=modeling_stamo.__name__)
    StamoPolicy(make_tiny_config(train_backbone=False))
    assert MESSAGE not in caplog.text
    for _ in range(3):
        StamoPolicy(make_tiny_config(train_backbone=True))
    assert caplog.text.count(MESSAGE) == 1
    assert "The paper keeps DINOv2 frozen" in caplog.text
