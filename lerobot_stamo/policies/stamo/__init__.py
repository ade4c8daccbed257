"""The `stamo` policy: StaMo's diffusion autoencoder (DINOv2 + compressor -> state; SD3 DiT + VAE -> image).

Importing this package registers the policy type `stamo` and the processor steps `stamo_image_processor`
and `stamo_pseudo_action` with LeRobot.
"""

from .configuration_stamo import StamoConfig
from .inference import checkpoint_identity, load_stamo_config, open_frozen_stamo
from .modeling_stamo import StamoPolicy
from .processor_stamo import StamoImageProcessorStep, StamoPseudoActionStep, make_stamo_pre_post_processors

__all__ = [
    "StamoConfig",
    "StamoImageProcessorStep",
    "StamoPolicy",
    "StamoPseudoActionStep",
    "checkpoint_identity",
    "load_stamo_config",
    "make_stamo_pre_post_processors",
    "open_frozen_stamo",
]
