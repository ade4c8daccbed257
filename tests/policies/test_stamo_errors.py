"""Bad input: every error names the key/path and the fix."""

import json

import pytest
import torch
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.utils.constants import OBS_STATE

from lerobot_stamo.policies.stamo import StamoConfig, StamoPolicy
from lerobot_stamo.policies.stamo.images import prepare_images
from lerobot_stamo.stand_ins import CAMERAS


def test_nan_pixels():
    x = torch.rand(2, 3, 8, 8)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"observation.images.front.*NaN"):
        prepare_images(x, 8, key="observation.images.front")
    x[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        prepare_images(x, 8)


def test_channel_last_and_channels():
    with pytest.raises(ValueError, match="channel-last.*permute"):
        prepare_images(torch.rand(2, 8, 8, 3), 8, key="cam")
    with pytest.raises(ValueError, match="3 \\(RGB\\) channels"):
        prepare_images(torch.rand(2, 1, 8, 8), 8)


def test_bad_dtype_and_range():
    with pytest.raises(TypeError, match="int64"):
        prepare_images(torch.zeros(1, 3, 8, 8, dtype=torch.int64), 8)
    with pytest.raises(ValueError, match="divide by 255"):
        prepare_images(torch.full((1, 3, 8, 8), 200.0), 8)
    normalised = torch.linspace(-4.5, 5.2, 3 * 64).view(1, 3, 8, 8)  # ImageNet mean/std: no "divide by 255"
    with pytest.raises(ValueError, match=r"\[-4.500, 5.200\]\. They look normalised") as error:
        prepare_images(normalised, 8)
    assert "255" not in str(error.value)


def test_no_image_features(tiny_pretrained):
    cfg = StamoConfig(
        device="cpu", input_features={OBS_STATE: PolicyFeature(FeatureType.STATE, (6,))}, **tiny_pretrained
    )
    with pytest.raises(ValueError, match="no image feature"):
        cfg.validate_features()


def test_missing_camera_names_available_keys(make_tiny_config):
    cfg = make_tiny_config(cameras=["observation.images.top"])
    with pytest.raises(ValueError, match=r"observation.images.top.*observation.images.front"):
        StamoPolicy(cfg)


def test_missing_camera_in_batch(make_tiny_config):
    policy = StamoPolicy(make_tiny_config())
    with pytest.raises(KeyError, match=CAMERAS[1]):
        policy.forward({CAMERAS[0]: torch.rand(2, 3, 64, 64)})


def test_missing_offline_path(make_tiny_config, tmp_path):
    with pytest.raises(OSError, match=r"policy.backbone.*does_not_exist.*hf download"):
        StamoPolicy(make_tiny_config(backbone=str(tmp_path / "does_not_exist")))
    with pytest.raises(OSError, match=r"policy.decoder_path.*transformer"):
        StamoPolicy(make_tiny_config(decoder_path=str(tmp_path / "nothing_here")))


def test_missing_hub_id_offline(make_tiny_config, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="offline"):
        StamoPolicy(make_tiny_config(backbone="nobody/not-a-real-dinov2"))


def test_token_dim_mismatch_with_decoder(make_tiny_config):
    with pytest.raises(ValueError, match=r"token_dim.*joint_attention_dim=64"):
        StamoPolicy(make_tiny_config(project_state=False, token_dim=32))
    # Matching widths work without the projection.
    StamoPolicy(make_tiny_config(project_state=False, token_dim=64))


def test_non_stamo_checkpoint(tmp_path):
    from lerobot.policies.act.configuration_act import ACTConfig

    ACTConfig(device="cpu").save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["type"] == "act"
    with pytest.raises(TypeError, match="'act' checkpoint, not a 'stamo'"):
        StamoPolicy.from_pretrained(tmp_path)


def test_bad_config_values():
    with pytest.raises(ValueError, match="decoder_mode"):
        StamoConfig(device="cpu", decoder_mode="half")
    with pytest.raises(ValueError, match="compression_lengths"):
        StamoConfig(device="cpu", compression_lengths=[64, 128])


def test_wrong_state_shape(make_tiny_config):
    policy = StamoPolicy(make_tiny_config())
    with pytest.raises(ValueError, match=r"\(B, 2, 32\)"):
        policy.decode(torch.zeros(1, 3, 32), num_inference_steps=1)


def test_checkpoint_weights_must_match_the_config(make_tiny_config, tmp_path):
    policy = StamoPolicy(make_tiny_config())
    policy.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["decoder_mode"] = "lora"  # the saved weights have no LoRA adapters
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"missing keys.*lora"):
        StamoPolicy.from_pretrained(tmp_path)
