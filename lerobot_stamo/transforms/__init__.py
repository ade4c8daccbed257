"""Latent-motion tools built on the `stamo` encoder: offline labelling, co-training mixes, the probe.

(The in-batch `stamo_pseudo_action` processor step lives with the `stamo` policy: `policies/stamo/processor_stamo.py`.)
"""

from lerobot_stamo.columns import (
    LABELS_FILE,
    MOTION_PREFIX,
    STATE_PREFIX,
    VALID_KEY,
    load_labels,
    motion_key,
    stamo_columns,
    state_key,
)

from .labelling import LabelConfig, label_dataset, motion_from_states

__all__ = [
    "LABELS_FILE",
    "MOTION_PREFIX",
    "STATE_PREFIX",
    "VALID_KEY",
    "LabelConfig",
    "label_dataset",
    "load_labels",
    "motion_from_states",
    "motion_key",
    "stamo_columns",
    "state_key",
]
