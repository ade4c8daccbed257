"""The `stamo_vla` policy: a chunked actor (compact transformer or a VLM) with StaMo's world-model head.

Importing this package registers the policy type `stamo_vla` and its processor steps with LeRobot.
"""

from .configuration_stamo_vla import StamoVLAConfig
from .modeling_stamo_vla import StamoVLAPolicy
from .processor_stamo_vla import (
    StamoVLAByteTokenizerStep,
    StamoVLAImageProcessorStep,
    make_stamo_vla_pre_post_processors,
)

__all__ = [
    "StamoVLAByteTokenizerStep",
    "StamoVLAConfig",
    "StamoVLAImageProcessorStep",
    "StamoVLAPolicy",
    "make_stamo_vla_pre_post_processors",
]
