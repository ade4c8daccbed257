"""The stamo pre/post-processors: canonical step names, resizing, checks and the JSON round trip."""

import pytest
import torch
from lerobot.configs.types import FeatureType, PipelineFeatureType, PolicyFeature
from lerobot.processor import DataProcessorPipeline
from lerobot.processor.converters import policy_action_to_transition, transition_to_policy_action
from lerobot.utils.constants import ACTION, OBS_STATE

from lerobot_stamo.policies.stamo import StamoImageProcessorStep, make_stamo_pre_post_processors
from lerobot_stamo.stand_ins import CAMERAS

STATS = {
    OBS_STATE: {"mean": torch.zeros(6), "std": torch.full((6,), 2.0)},
    ACTION: {"mean": torch.ones(6), "std": torch.full((6,), 2.0)},
    **{key: {"mean": torch.zeros(3, 1, 1), "std": torch.ones(3, 1, 1)} for key in CAMERAS},
}


def raw_observation() -> dict[str, torch.Tensor]:
    """One unbatched observation as at eval/rollout time: uint8 (3, 48, 80) frames."""
    g = torch.Generator().manual_seed(0)
    obs = {key: torch.randint(0, 256, (3, 48, 80), generator=g, dtype=torch.uint8) for key in CAMERAS}
    return obs | {OBS_STATE: torch.arange(6, dtype=torch.float32)}


def test_canonical_step_names(make_tiny_config):
    pre, post = make_stamo_pre_post_processors(make_tiny_config(), STATS)
    names = [type(step).__name__ for step in pre.steps]
    assert names == [
        "RenameObservationsProcessorStep",
        "AddBatchDimensionProcessorStep",
        "DeviceProcessorStep",
        "StamoImageProcessorStep",
        "NormalizerProcessorStep",
    ]
    assert [type(step).__name__ for step in post.steps] == [
        "UnnormalizerProcessorStep",
        "DeviceProcessorStep",
    ]


def test_preprocessor_resizes_and_normalises(make_tiny_config):
    cfg = make_tiny_config()
    pre, _ = make_stamo_pre_post_processors(cfg, STATS)
    out = pre(raw_observation())
    for key in CAMERAS:
        assert out[key].shape == (1, 3, cfg.image_size, cfg.image_size)
        assert out[key].dtype == torch.float32 and 0 <= out[key].min() and out[key].max() <= 1
    torch.testing.assert_close(out[OBS_STATE], (torch.arange(6.0) / 2).unsqueeze(0))


def test_processor_json_round_trip(make_tiny_config, tmp_path):
    pre, post = make_stamo_pre_post_processors(make_tiny_config(), STATS)
    pre.save_pretrained(tmp_path)
    post.save_pretrained(tmp_path)
    pre2 = DataProcessorPipeline.from_pretrained(tmp_path, config_filename="policy_preprocessor.json")
    post2 = DataProcessorPipeline.from_pretrained(
        tmp_path,
        config_filename="policy_postprocessor.json",
        to_transition=policy_action_to_transition,
        to_output=transition_to_policy_action,
    )
    a, b = pre(raw_observation()), pre2(raw_observation())
    assert set(a) == set(b)
    for key in CAMERAS + (OBS_STATE,):
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    action = torch.zeros(1, 6)
    torch.testing.assert_close(post(action), post2(action))
    assert isinstance(pre2.steps[3], StamoImageProcessorStep)


def test_preprocessor_rejects_nan_frames(make_tiny_config):
    pre, _ = make_stamo_pre_post_processors(make_tiny_config(), STATS)
    obs = raw_observation()
    obs[CAMERAS[0]] = torch.full((3, 64, 64), float("nan"))
    with pytest.raises(ValueError, match=rf"{CAMERAS[0]}.*NaN"):
        pre(obs)


def test_transform_features_declares_the_model_size():
    step = StamoImageProcessorStep(image_keys=[CAMERAS[0]], image_size=32)
    features = {
        PipelineFeatureType.OBSERVATION: {
            CAMERAS[0]: PolicyFeature(FeatureType.VISUAL, (3, 480, 640)),
            CAMERAS[1]: PolicyFeature(FeatureType.VISUAL, (3, 480, 640)),
        }
    }
    out = step.transform_features(features)[PipelineFeatureType.OBSERVATION]
    assert out[CAMERAS[0]].shape == (3, 32, 32) and out[CAMERAS[1]].shape == (3, 480, 640)
