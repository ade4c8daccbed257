"""Pre/post-processors of the `stamo` policy.

Preprocessor: LeRobot's canonical steps (`rename_observations_processor`, `to_batch_processor`,
`device_processor`, `normalizer_processor`) plus `stamo_image_processor`, which checks every camera frame
(dtype, channel order, NaN/inf) and resizes it to `config.image_size`. Frames stay in [0, 1]; the model
applies the backbone's and the VAE's own normalisations.
"""

from dataclasses import dataclass, field
from typing import Any

import torch
from lerobot.configs.types import PipelineFeatureType, PolicyFeature
from lerobot.processor import (
    ObservationProcessorStep,
    PolicyAction,
    PolicyProcessorPipeline,
    ProcessorStepRegistry,
)
from lerobot.processor.factory import make_default_policy_processor_steps, make_policy_processor_pipelines

from .configuration_stamo import StamoConfig
from .images import prepare_images


@ProcessorStepRegistry.register(name="stamo_image_processor")
@dataclass
class StamoImageProcessorStep(ObservationProcessorStep):
    """Checks camera frames and resizes them to the encoder's square input size.

    Attributes:
        image_keys: Observation keys of the cameras to process (others pass through).
        image_size: Output side in pixels.
    """

    image_keys: list[str] = field(default_factory=list)
    image_size: int = 224

    def observation(self, observation: dict) -> dict:
        out = dict(observation)
        for key in self.image_keys:
            if key in out and isinstance(out[key], torch.Tensor):
                out[key] = prepare_images(out[key], self.image_size, key=key)
        return out

    def get_config(self) -> dict[str, Any]:
        return {"image_keys": list(self.image_keys), "image_size": self.image_size}

    def transform_features(
        self, features: dict[PipelineFeatureType, dict[str, PolicyFeature]]
    ) -> dict[PipelineFeatureType, dict[str, PolicyFeature]]:
        obs = features.get(PipelineFeatureType.OBSERVATION, {})
        for key in self.image_keys:
            if key in obs:
                obs[key] = PolicyFeature(type=obs[key].type, shape=(3, self.image_size, self.image_size))
        return features


def make_stamo_pre_post_processors(
    config: StamoConfig,
    dataset_stats: dict[str, dict[str, torch.Tensor]] | None = None,
) -> tuple[
    PolicyProcessorPipeline[dict[str, Any], dict[str, Any]],
    PolicyProcessorPipeline[PolicyAction, PolicyAction],
]:
    """Builds the stamo pre- and post-processing pipelines.

    Args:
        config: The stamo policy config.
        dataset_stats: Dataset statistics for the (state/action) normaliser.

    Returns:
        The preprocessor (rename -> batch -> device -> stamo images -> normalise) and the postprocessor
        (unnormalise -> cpu).
    """
    s = make_default_policy_processor_steps(config, dataset_stats)
    images = StamoImageProcessorStep(image_keys=config.camera_keys, image_size=config.image_size)
    return make_policy_processor_pipelines(
        input_steps=[s.rename_observations, s.add_batch_dim, s.to_device, images, s.normalize],
        output_steps=[s.unnormalize, s.to_cpu],
    )
