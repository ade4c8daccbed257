"""Pre/post-processors of the `stamo` policy, and the `stamo_pseudo_action` step other policies use.

Preprocessor: LeRobot's canonical steps (`rename_observations_processor`, `to_batch_processor`,
`device_processor`, `normalizer_processor`) plus `stamo_image_processor`, which checks every camera frame
(dtype, channel order, NaN/inf) and resizes it to `config.image_size`. Frames stay in [0, 1]; the model
applies the backbone's and the VAE's own normalisations.

`stamo_pseudo_action`: latent motion computed on the fly inside another policy's preprocessor. A policy that wants StaMo pseudo-actions without a labelled dataset asks for two frames per camera through
its config (`observation_delta_indices = [0, k]`, so LeRobot's dataset returns (B, 2, 3, H, W) stacks) and
puts this step in its preprocessor, after the device step and before normalisation. The step encodes the
first and last frame of the stack with a frozen `stamo` encoder (loaded once, lazily, from `policy_path`)
and writes

- `observation.stamo_motion.<cam>`: (B, num_tokens, token_dim) = s(t+k) - s(t);
- `observation.stamo_motion_valid`: (B,) bool, false where either frame was padding (`<cam>_is_pad`);
- with `write_states`, also `observation.stamo_state.<cam>`: (B, num_tokens, token_dim) = s(t), the same
  columns as a dataset labelled by `lerobot-stamo-label` (what `stamo_vla`'s world-model head reads).

`<cam>` is the one naming of `columns.state_key` / `motion_key` (`front` for `observation.images.front`;
names LeRobot would treat specially, e.g. `wrist_image`, are rewritten). Names start with `observation.` so
they survive LeRobot's batch conversion and reach `policy.forward`. On single frames (B, 3, H, W) (evaluation, rollout) the step does nothing, so the same pipeline runs there.

Offline labelling (`lerobot-stamo-label`) or this step?
- Offline: encodes every frame once, for every epoch and every run; needed for `stamo_vla` co-training
  on large video sets, for Hub sharing and for the probe. The fast path.
- This step: no new dataset, any horizon or checkpoint per run; but two encoder passes per sample and per
  epoch, on the training process. Use it for quick experiments or when the encoder changes often.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from lerobot.configs.types import FeatureType, PipelineFeatureType, PolicyFeature
from lerobot.processor import (
    ObservationProcessorStep,
    PolicyAction,
    PolicyProcessorPipeline,
    ProcessorStepRegistry,
    TransitionKey,
)
from lerobot.processor.factory import make_default_policy_processor_steps, make_policy_processor_pipelines
from torch import Tensor

from lerobot_stamo.columns import VALID_KEY, motion_key, state_key

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
            if isinstance(out.get(key), np.ndarray):  # a camera frame as read by OpenCV / imageio
                out[key] = torch.from_numpy(out[key])
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


@ProcessorStepRegistry.register(name="stamo_pseudo_action")
@dataclass
class StamoPseudoActionStep(ObservationProcessorStep):
    """Adds StaMo latent motion between the first and last frame of each camera's time stack.

    Attributes:
        policy_path: Folder or Hub id of the frozen `stamo` checkpoint (referenced, not copied: the saved
            processor stays small and reloads it from there).
        revision: Hub revision of the checkpoint.
        cameras: Camera keys to compute motion for (default: the stamo checkpoint's cameras).
        start_index / end_index: Positions in the time stack of s_t and s_{t+k} (default first and last).
        device: Device of the encoder (default: the device of the frames).
        write_states: Also write the state s(t) of each camera.
    """

    policy_path: str = ""
    revision: str | None = None
    cameras: list[str] | None = None
    start_index: int = 0
    end_index: int = -1
    device: str | None = None
    write_states: bool = False
    _encoder: Any = field(default=None, init=False, repr=False, compare=False)
    _stamo_config: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        if not self.policy_path:
            raise ValueError("stamo_pseudo_action needs `policy_path`: a stamo checkpoint folder or Hub id.")

    # ------------------------------------------------------------------ encoder
    @property
    def stamo_config(self):
        """The checkpoint's `StamoConfig` (read from config.json; raises if it is not a stamo checkpoint)."""
        if self._stamo_config is None:
            from .inference import load_stamo_config  # the model, imported when first used

            self._stamo_config = load_stamo_config(self.policy_path, self.revision)
        return self._stamo_config

    @property
    def camera_keys(self) -> list[str]:
        return list(self.cameras) if self.cameras is not None else list(self.stamo_config.camera_keys)

    def encoder(self, device: torch.device):
        """The frozen `StamoPolicy`, loaded at the first call and kept in eval mode without gradients."""
        if self._encoder is None:
            from .inference import open_frozen_stamo

            self._encoder = open_frozen_stamo(
                self.policy_path, self.revision, self.device or str(device), config=self.stamo_config
            )
        return self._encoder

    # ------------------------------------------------------------------ step
    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        stacks = {k: observation[k] for k in self.camera_keys if isinstance(observation.get(k), Tensor)}
        stacks = {k: v for k, v in stacks.items() if v.ndim == 5 and v.shape[1] >= 2}
        if not stacks:  # single frames (eval / rollout): nothing to do
            return observation
        out = dict(observation)
        current = self._current_transition or {}  # set by ObservationProcessorStep.__call__
        comp = current.get(TransitionKey.COMPLEMENTARY_DATA) or {}  # holds the `<key>_is_pad` flags
        valid = None
        for key, frames in stacks.items():  # (B, T, 3, H, W)
            pair = frames[:, [self.start_index, self.end_index]]  # (B, 2, 3, H, W)
            b = pair.shape[0]
            encoder = self.encoder(frames.device)
            states = encoder.encode(pair.flatten(0, 1)).view(b, 2, *encoder_state_shape(encoder))
            out[motion_key(key)] = encoder.motion(states[:, 0], states[:, 1]).to(frames.device).clone()
            if self.write_states:
                out[state_key(key)] = states[:, 0].to(frames.device).clone()
            pad = comp.get(f"{key}_is_pad")
            if isinstance(pad, Tensor) and pad.ndim == 2:
                ok = ~(pad[:, self.start_index] | pad[:, self.end_index])  # (B,)
                valid = ok if valid is None else valid & ok
        if valid is None:
            valid = torch.ones(next(iter(stacks.values())).shape[0], dtype=torch.bool)
        out[VALID_KEY] = valid.to(next(iter(stacks.values())).device)
        return out

    def get_config(self) -> dict[str, Any]:
        return {
            "policy_path": self.policy_path,
            "revision": self.revision,
            "cameras": list(self.cameras) if self.cameras is not None else None,
            "start_index": self.start_index,
            "end_index": self.end_index,
            "device": self.device,
            "write_states": self.write_states,
        }

    def transform_features(
        self, features: dict[PipelineFeatureType, dict[str, PolicyFeature]]
    ) -> dict[PipelineFeatureType, dict[str, PolicyFeature]]:
        cfg = self.stamo_config
        obs = features.setdefault(PipelineFeatureType.OBSERVATION, {})
        for key in self.camera_keys:
            shape = (cfg.num_tokens, cfg.token_dim)
            obs[motion_key(key)] = PolicyFeature(type=FeatureType.STATE, shape=shape)
            if self.write_states:
                obs[state_key(key)] = PolicyFeature(type=FeatureType.STATE, shape=shape)
        obs[VALID_KEY] = PolicyFeature(type=FeatureType.STATE, shape=(1,))
        return features


def encoder_state_shape(policy) -> tuple[int, int]:
    """(num_tokens, token_dim) of a stamo policy's states."""
    return policy.config.num_tokens, policy.config.token_dim
