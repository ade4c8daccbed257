"""The `stamo` policy: StaMo's diffusion autoencoder (DINOv2 + compressor -> state; SD3 DiT + VAE -> image).

Importing this package registers the policy type `stamo` and its processor step with LeRobot.
"""

from .configuration_stamo import StamoConfig
from .modeling_stamo import StamoPolicy
from .processor_stamo import StamoImageProcessorStep, make_stamo_pre_post_processors

__all__ = ["StamoConfig", "StamoImageProcessorStep", "StamoPolicy", "make_stamo_pre_post_processors"]
