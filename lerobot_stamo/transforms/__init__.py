"""Latent-motion tools built on the `stamo` encoder: offline labelling, the in-batch processor step, probes.

Importing this package registers the processor step `stamo_pseudo_action`.
"""

from .labelling import (
    LABELS_FILE,
    MOTION_PREFIX,
    STATE_PREFIX,
    VALID_KEY,
    LabelConfig,
    label_dataset,
    load_labels,
    motion_from_states,
    motion_key,
    stamo_columns,
    state_key,
)

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

from .pseudo_action import StamoPseudoActionStep  # noqa: E402  (registers "stamo_pseudo_action")

__all__ += ["StamoPseudoActionStep"]
