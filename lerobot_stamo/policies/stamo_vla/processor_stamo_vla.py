"""Pre/post-processors of the `stamo_vla` policy.

Preprocessor: LeRobot's canonical steps (`rename_observations_processor`, `to_batch_processor`,
`device_processor`, `normalizer_processor`) plus

- `stamo_pseudo_action` (only with `world_model_targets_from=encoder`): encodes frames t and t+k with the
  frozen `stamo` checkpoint and writes the StaMo state/motion columns, a no-op on single frames (eval and
  rollout);
- `stamo_vla_image_processor`: checks every camera frame (dtype, channel order, NaN/inf) and resizes it to
  `resize_images`;
- `stamo_vla_state_check`: refuses an `observation.state` of another size than the policy's, before the
  normaliser fails on it with a bare tensor-size error;
- the instruction tokeniser: `stamo_vla_byte_tokenizer` (UTF-8 bytes, ByT5's vocabulary: nothing to
  download) for `compact`, LeRobot's `tokenizer_processor` with the VLM's own tokenizer for `vlm`.

Postprocessor: unnormalise the actions, move them to the CPU.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from lerobot.configs.types import PipelineFeatureType, PolicyFeature
from lerobot.processor import (
    EnvTransition,
    ObservationProcessorStep,
    PolicyAction,
    PolicyProcessorPipeline,
    ProcessorStepRegistry,
    TokenizerProcessorStep,
)
from lerobot.processor.factory import make_default_policy_processor_steps, make_policy_processor_pipelines
from lerobot.utils.constants import OBS_STATE
from transformers import ByT5Tokenizer

from lerobot_stamo.policies.stamo.images import prepare_images
from lerobot_stamo.policies.stamo.processor_stamo import StamoPseudoActionStep

from .configuration_stamo_vla import StamoVLAConfig
from .tasks import checked_tasks
from .vlm import StamoVLATokenizerStep  # registers `stamo_vla_tokenizer`: saves the VLM tokenizer's files


@ProcessorStepRegistry.register(name="stamo_vla_image_processor")
@dataclass
class StamoVLAImageProcessorStep(ObservationProcessorStep):
    """Checks camera frames ((B, 3, H, W) or time stacks (B, T, 3, H, W)) and resizes them.

    Attributes:
        image_keys: Observation keys of the cameras (others pass through).
        size: (height, width) to resize to, or None to keep the recorded size.
    """

    image_keys: list[str] = field(default_factory=list)
    size: list[int] | None = None

    def observation(self, observation: dict) -> dict:
        out = dict(observation)
        for key in self.image_keys:
            frames = out.get(key)
            if isinstance(frames, np.ndarray):  # a camera frame as read by OpenCV / imageio
                frames = torch.from_numpy(frames)
            if not isinstance(frames, torch.Tensor):
                continue
            if frames.ndim == 5:  # (B, T, 3, H, W) time stack
                b, t = frames.shape[:2]
                flat = prepare_images(frames.flatten(0, 1), self._size, key=key)
                out[key] = flat.view(b, t, *flat.shape[1:])
            else:
                out[key] = prepare_images(frames, self._size, key=key)
        return out

    @property
    def _size(self) -> tuple[int, int] | None:
        return tuple(self.size) if self.size is not None else None

    def get_config(self) -> dict[str, Any]:
        return {"image_keys": list(self.image_keys), "size": list(self.size) if self.size else None}

    def transform_features(
        self, features: dict[PipelineFeatureType, dict[str, PolicyFeature]]
    ) -> dict[PipelineFeatureType, dict[str, PolicyFeature]]:
        obs = features.get(PipelineFeatureType.OBSERVATION, {})
        for key in self.image_keys:
            if key in obs and self.size is not None:
                obs[key] = PolicyFeature(type=obs[key].type, shape=(3, *self.size))
        return features


@ProcessorStepRegistry.register(name="stamo_vla_state_check")
@dataclass
class StamoVLAStateCheckStep(ObservationProcessorStep):
    """Checks the robot state's size before the normaliser (whose own error is a bare tensor-size mismatch).

    Attributes:
        state_dim: Values of `observation.state` the policy was trained with (0: the policy reads no state).
    """

    state_dim: int = 0

    def observation(self, observation: dict) -> dict:
        state = observation.get(OBS_STATE)
        if self.state_dim and state is not None and not isinstance(state, torch.Tensor):
            raise TypeError(
                f"`{OBS_STATE}` must be a torch.Tensor of {self.state_dim} joint values, got "
                f"{type(state).__name__}. Convert it, e.g. `torch.tensor(values, dtype=torch.float32)`."
            )
        if self.state_dim and isinstance(state, torch.Tensor) and state.shape[-1:] != (self.state_dim,):
            raise ValueError(
                f"`{OBS_STATE}` has {state.shape[-1] if state.ndim else 1} values (shape {tuple(state.shape)}) but "
                f"the policy was trained with {self.state_dim}. Use a robot (or env) with the same joints as the "
                "training dataset, or train a policy on this robot's data."
            )
        return observation

    def get_config(self) -> dict[str, Any]:
        return {"state_dim": self.state_dim}

    def transform_features(
        self, features: dict[PipelineFeatureType, dict[str, PolicyFeature]]
    ) -> dict[PipelineFeatureType, dict[str, PolicyFeature]]:
        return features


@ProcessorStepRegistry.register(name="stamo_vla_byte_tokenizer")
@dataclass
class StamoVLAByteTokenizerStep(TokenizerProcessorStep):
    """LeRobot's tokenizer step with a byte-level tokenizer (transformers' `ByT5Tokenizer`).

    Built in code, so checkpoints reload anywhere without a tokenizer download or a stored local path.
    Token ids: 0 pad, 1 end of text, 2 unknown, 3 + byte value.
    """

    padding: str = "longest"  # the instruction's own length: no attention over padding

    def __post_init__(self):
        self.tokenizer = ByT5Tokenizer(extra_ids=0)
        super().__post_init__()

    def get_task(self, transition: EnvTransition) -> list[str]:
        return checked_tasks(transition, self.task_key)


def make_stamo_vla_pre_post_processors(
    config: StamoVLAConfig,
    dataset_stats: dict[str, dict[str, torch.Tensor]] | None = None,
) -> tuple[
    PolicyProcessorPipeline[dict[str, Any], dict[str, Any]],
    PolicyProcessorPipeline[PolicyAction, PolicyAction],
]:
    """Builds the stamo_vla pre- and post-processing pipelines (see the module docstring)."""
    s = make_default_policy_processor_steps(config, dataset_stats)
    steps = [s.rename_observations, s.add_batch_dim, s.to_device]
    if config.targets_from_encoder:
        steps.append(
            StamoPseudoActionStep(
                policy_path=config.stamo_path,
                revision=config.stamo_revision,
                cameras=config.world_model_cameras,
                write_states=True,
            )
        )
    size = list(config.resize_images) if config.resize_images else None
    steps.append(StamoVLAImageProcessorStep(image_keys=config.camera_keys, size=size))
    if config.backbone == "vlm":
        steps.append(
            StamoVLATokenizerStep(
                tokenizer_name=config.vlm_path,
                max_length=config.tokenizer_max_length,
                padding="longest",
                padding_side="right",
            )
        )
    else:
        steps.append(StamoVLAByteTokenizerStep(max_length=config.tokenizer_max_length))
    steps.append(StamoVLAStateCheckStep(state_dim=config.state_dim))
    steps.append(s.normalize)
    return make_policy_processor_pipelines(input_steps=steps, output_steps=[s.unnormalize, s.to_cpu])
