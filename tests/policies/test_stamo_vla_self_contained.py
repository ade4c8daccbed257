"""Self-contained `stamo_vla` checkpoints with the `vlm` trunk: the VLM's configuration is saved in config.json
and its tokenizer's files with the preprocessor, so a checkpoint reloads without `vlm_path` (issue 12)."""

import json
import shutil

import torch
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.factory import make_pre_post_processors
from lerobot.utils.constants import ACTION, OBS_LANGUAGE_TOKENS, OBS_STATE

from lerobot_stamo.policies.stamo_vla import (
    StamoVLAConfig,
    StamoVLAPolicy,
    make_stamo_vla_pre_post_processors,
)
from lerobot_stamo.stand_ins import write_tiny_smolvlm

CAMS = ("observation.images.front",)


def _config(vlm_path) -> StamoVLAConfig:
    return StamoVLAConfig(
        device="cpu",
        push_to_hub=False,
        backbone="vlm",
        vlm_path=str(vlm_path),
        vlm_dtype="float32",
        vlm_num_layers=None,
        world_model_target="none",
        chunk_size=4,
        n_action_steps=2,
        tokenizer_max_length=16,
        input_features={k: PolicyFeature(FeatureType.VISUAL, (3, 32, 32)) for k in CAMS}
        | {OBS_STATE: PolicyFeature(FeatureType.STATE, (6,))},
        output_features={ACTION: PolicyFeature(FeatureType.ACTION, (6,))},
    )


def _actions(policy, preprocessor) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    obs = {CAMS[0]: torch.rand(3, 32, 32, generator=g), OBS_STATE: torch.randn(6, generator=g)}
    batch = preprocessor(obs | {"task": "pick up the red cube"})
    return batch[OBS_LANGUAGE_TOKENS], policy.predict_action_chunk(batch)


def test_vlm_checkpoint_reloads_without_vlm_path(tmp_path, monkeypatch):
    vlm = write_tiny_smolvlm(tmp_path / "tiny_smolvlm")
    config = _config(vlm)
    torch.manual_seed(0)
    policy = StamoVLAPolicy(config).eval()
    pre, post = make_stamo_vla_pre_post_processors(config)
    tokens, actions = _actions(policy, pre)

    ckpt = tmp_path / "run" / "pretrained_model"
    policy.save_pretrained(ckpt)
    pre.save_pretrained(ckpt)
    post.save_pretrained(ckpt)
    saved = json.loads((ckpt / "config.json").read_text())
    assert saved["vlm_path"] == str(vlm)  # provenance
    assert saved["vlm_config"]["model_type"] == "smolvlm"

    moved = tmp_path / "elsewhere" / "vla_ckpt"
    shutil.move(ckpt, moved)
    shutil.rmtree(vlm)
    monkeypatch.chdir(tmp_path / "elsewhere")

    loaded = StamoVLAPolicy.from_pretrained(moved)
    pre2, _ = make_pre_post_processors(loaded.config, pretrained_path=str(moved))
    tokens2, actions2 = _actions(loaded, pre2)
    assert torch.equal(tokens, tokens2)
    torch.testing.assert_close(actions, actions2)
    step = next(s for s in json.loads((moved / "policy_preprocessor.json").read_text())["steps"]
                if s.get("registry_name") == "stamo_vla_tokenizer")  # fmt: skip
    assert step["config"]["tokenizer_name"] == str(vlm) and step["state_file"]
