"""`stamo_vla` in Python: shapes, losses, the action queue, the world-model head off the inference path,
save/load, the processors, and clear errors."""

from pathlib import Path
from unittest import mock

import pytest
import torch
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.processor import DataProcessorPipeline, PolicyProcessorPipeline
from lerobot.processor.converters import policy_action_to_transition, transition_to_policy_action
from lerobot.utils.constants import ACTION, OBS_LANGUAGE_ATTENTION_MASK, OBS_LANGUAGE_TOKENS, OBS_STATE

from lerobot_stamo.cards import DOCS_URL
from lerobot_stamo.columns import VALID_KEY, motion_key, state_key
from lerobot_stamo.policies.stamo_vla import (
    StamoVLAConfig,
    StamoVLAPolicy,
    make_stamo_vla_pre_post_processors,
)

CAMS = ("observation.images.front", "observation.images.wrist")
HW = 32
N_TOK, TOK_DIM = 2, 8


def features(cameras=CAMS, labelled: bool = True) -> dict[str, PolicyFeature]:
    feats = {k: PolicyFeature(FeatureType.VISUAL, (3, HW, HW)) for k in cameras}
    feats[OBS_STATE] = PolicyFeature(FeatureType.STATE, (6,))
    if labelled:
        for k in cameras:
            feats[state_key(k)] = PolicyFeature(FeatureType.STATE, (N_TOK, TOK_DIM))
            feats[motion_key(k)] = PolicyFeature(FeatureType.STATE, (N_TOK, TOK_DIM))
        feats[VALID_KEY] = PolicyFeature(FeatureType.STATE, (1,))
    return feats


def tiny_config(cameras=CAMS, labelled: bool = True, **overrides) -> StamoVLAConfig:
    fields = dict(
        device="cpu",
        push_to_hub=False,
        chunk_size=4,
        n_action_steps=2,
        dim_model=32,
        n_heads=4,
        n_layers=1,
        dim_feedforward=64,
        world_model_hidden_dim=32,
        tokenizer_max_length=32,
        input_features=features(cameras, labelled),
        output_features={ACTION: PolicyFeature(FeatureType.ACTION, (6,))},
    )
    fields.update(overrides)
    return StamoVLAConfig(**fields)


def raw_batch(b: int = 3, cameras=CAMS, seed: int = 0) -> dict:
    """A preprocessed-style batch: frames in [0, 1], tokens, state, action chunk and StaMo columns."""
    g = torch.Generator().manual_seed(seed)
    batch = {k: torch.rand(b, 3, HW, HW, generator=g) for k in cameras}
    batch[OBS_STATE] = torch.randn(b, 6, generator=g)
    batch[OBS_LANGUAGE_TOKENS] = torch.randint(3, 200, (b, 10), generator=g)
    batch[OBS_LANGUAGE_ATTENTION_MASK] = torch.ones(b, 10, dtype=torch.bool)
    batch[ACTION] = torch.randn(b, 4, 6, generator=g)
    batch[f"{ACTION}_is_pad"] = torch.zeros(b, 4, dtype=torch.bool)
    for k in cameras:
        batch[state_key(k)] = torch.randn(b, N_TOK, TOK_DIM, generator=g)
        batch[motion_key(k)] = torch.randn(b, N_TOK, TOK_DIM, generator=g) * 0.1
    batch[VALID_KEY] = torch.ones(b, dtype=torch.bool)
    return batch


def make_policy(**overrides) -> StamoVLAPolicy:
    torch.manual_seed(0)
    return StamoVLAPolicy(tiny_config(**overrides))


def test_forward_backward_and_loss_terms():
    policy = make_policy()
    policy.train()
    loss, info = policy.forward(raw_batch())
    loss.backward()
    assert {"loss", "action_loss", "future_loss", "future_mse", "future_l1"} <= set(info)
    assert info["loss"] == pytest.approx(info["action_loss"] + info["future_loss"], rel=1e-5)
    grads = {n for n, p in policy.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert any(n.startswith("model.world_model_head") for n in grads)
    assert any(n.startswith("model.trunk.vision.body") for n in grads)
    per_sample, _ = policy.forward(raw_batch(), reduction="none")
    assert per_sample.shape == (3,)


def test_world_model_target_none_and_lambdas():
    policy = make_policy(world_model_target="none", labelled=False)
    assert policy.model.world_model_head is None
    _, info = policy.forward(raw_batch())
    assert "future_loss" not in info and info["loss"] == pytest.approx(info["action_loss"])
    weighted = make_policy(lambda_action=2.0, lambda_future=0.5)
    _, info = weighted.forward(raw_batch())
    assert info["loss"] == pytest.approx(2.0 * info["action_loss"] + 0.5 * info["future_loss"], rel=1e-5)


def test_padded_actions_and_invalid_targets_are_masked():
    policy = make_policy()
    batch = raw_batch()
    _, ref = policy.forward(batch)
    # Changing padded action steps and invalid-target rows changes nothing.
    batch2 = {k: v.clone() for k, v in batch.items()}
    batch2[f"{ACTION}_is_pad"][:, 2:] = True
    batch2[ACTION][:, 2:] += 100
    batch2[VALID_KEY][0] = False
    batch2[motion_key(CAMS[0])][0] += 100
    policy.eval()
    _, a = policy.forward(batch2)
    batch3 = {k: v.clone() for k, v in batch2.items()}
    batch3[ACTION][:, 2:] -= 50
    batch3[motion_key(CAMS[0])][0] -= 50
    _, b = policy.forward(batch3)
    assert a["action_loss"] == pytest.approx(b["action_loss"]) and a["future_loss"] == pytest.approx(
        b["future_loss"]
    )
    # No valid target in the batch: zero future loss, no NaN.
    batch3[VALID_KEY][:] = False
    loss, info = policy.forward(batch3)
    assert info["future_loss"] == 0.0 and torch.isfinite(loss)


def test_target_motion_vs_state():
    batch = raw_batch()
    state = make_policy(world_model_target="state")
    motion = make_policy(world_model_target="motion")
    t_state, _ = state._targets(batch)
    t_motion, _ = motion._targets(batch)
    expected = (batch[state_key(CAMS[0])] + batch[motion_key(CAMS[0])]).flatten(1)
    assert torch.equal(t_state[:, : N_TOK * TOK_DIM], expected)
    assert torch.equal(t_motion[:, : N_TOK * TOK_DIM], batch[motion_key(CAMS[0])].flatten(1))
    assert t_state.shape == (3, 2 * N_TOK * TOK_DIM)


def test_target_stats_from_dataset_and_running():
    stats = {
        state_key(k): {"mean": torch.full((N_TOK, TOK_DIM), 2.0), "std": torch.full((N_TOK, TOK_DIM), 4.0)}
        for k in CAMS
    }
    torch.manual_seed(0)
    fixed = StamoVLAPolicy(tiny_config(), dataset_stats=stats)
    norm = fixed.model.target_norm
    assert bool(norm.fixed) and torch.allclose(norm.mean, torch.full_like(norm.mean, 2.0))
    fixed.train()
    fixed.forward(raw_batch())
    assert torch.allclose(norm.mean, torch.full_like(norm.mean, 2.0))  # fixed stats never move
    running = make_policy()
    running.train()
    batches = [raw_batch(seed=s) for s in range(3)]
    for b in batches:
        running.forward(b)
    targets = torch.cat([running._targets(b)[0] for b in batches])
    assert torch.allclose(running.model.target_norm.mean, targets.mean(0), atol=1e-5)
    assert torch.allclose(running.model.target_norm.var, targets.var(0, unbiased=False), atol=1e-4)


def test_select_action_queue_and_reset():
    policy = make_policy()
    batch = {k: v for k, v in raw_batch(b=2).items() if not k.startswith("observation.stamo") and k != ACTION}
    chunk = policy.predict_action_chunk(batch)
    assert chunk.shape == (2, 4, 6)
    with mock.patch.object(policy, "predict_action_chunk", wraps=policy.predict_action_chunk) as spy:
        first = policy.select_action(batch)
        second = policy.select_action(batch)
        assert spy.call_count == 1  # n_action_steps = 2 from one chunk
        assert torch.allclose(first, chunk[:, 0]) and torch.allclose(second, chunk[:, 1])
        policy.select_action(batch)
        assert spy.call_count == 2  # queue empty -> new chunk
        policy.reset()
        policy.select_action(batch)
        assert spy.call_count == 3  # reset empties the queue


def test_inference_never_runs_the_world_model_head():
    policy = make_policy()
    batch = {k: v for k, v in raw_batch(b=1).items() if k != ACTION}
    with mock.patch.object(
        policy.model.world_model_head, "forward", side_effect=AssertionError("world-model head ran")
    ):
        policy.select_action(batch)
        policy.predict_action_chunk(batch)


def test_save_load_bit_exact(tmp_path: Path):
    policy = make_policy()
    policy.train()
    policy.forward(raw_batch())  # running target stats move
    policy.save_pretrained(tmp_path)
    loaded = StamoVLAPolicy.from_pretrained(tmp_path)
    for (n, a), (_, b) in zip(policy.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), n
    batch = {k: v for k, v in raw_batch(b=2).items() if k != ACTION}
    assert torch.equal(policy.predict_action_chunk(batch), loaded.predict_action_chunk(batch))
    # The StaMo columns are targets: the saved config keeps them out of the inputs.
    assert state_key(CAMS[0]) not in loaded.config.input_features
    assert state_key(CAMS[0]) in loaded.config.target_features


def test_processor_round_trip_and_tokens(tmp_path: Path):
    cfg = tiny_config(resize_images=(24, 24))
    StamoVLAPolicy(cfg)  # validate_features moves the StaMo columns out of the inputs
    stats = {
        OBS_STATE: {"mean": torch.zeros(6), "std": torch.ones(6) * 2},
        ACTION: {"mean": torch.ones(6), "std": torch.ones(6)},
    }
    pre, post = make_stamo_vla_pre_post_processors(cfg, stats)
    obs = {k: torch.rand(3, 40, 40) for k in CAMS} | {
        OBS_STATE: torch.ones(6) * 4,
        "task": "pick up the cube",
    }
    out = pre(obs | {"index": torch.tensor(7)})
    assert out["index"].item() == 7  # a training frame's dataset index: the frozen-feature memo's key
    out = pre(obs)
    assert out[CAMS[0]].shape == (1, 3, 24, 24)
    assert out[OBS_STATE].flatten().tolist() == [2.0] * 6
    tokens = out[OBS_LANGUAGE_TOKENS]
    assert tokens.shape == (1, len("pick up the cube") + 1) and tokens[0, 0].item() == ord("p") + 3
    pre.save_pretrained(tmp_path)
    post.save_pretrained(tmp_path)
    pre2 = DataProcessorPipeline.from_pretrained(tmp_path, config_filename="policy_preprocessor.json")
    out2 = pre2(obs)
    for k, v in out.items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, out2[k]), k
    post2 = PolicyProcessorPipeline.from_pretrained(
        tmp_path,
        config_filename="policy_postprocessor.json",
        to_transition=policy_action_to_transition,
        to_output=transition_to_policy_action,
    )
    assert torch.allclose(post2(torch.zeros(1, 6)), torch.ones(1, 6))


def test_any_number_of_cameras():
    for cams in [
        ("observation.image",),
        ("observation.images.image", "observation.images.wrist_image", "observation.images.top"),
    ]:
        torch.manual_seed(0)
        policy = StamoVLAPolicy(tiny_config(cameras=cams, world_model_target="none", labelled=False))
        batch = raw_batch(cameras=cams)
        loss, _ = policy.forward(batch)
        assert torch.isfinite(loss)
        assert policy.predict_action_chunk(batch).shape == (3, 4, 6)


# ------------------------------------------------------------------------------------------- clear errors
def test_error_world_model_without_targets():
    """Asked for (`state`), a world model without targets is refused; by default (`auto`) it is turned off."""
    with pytest.raises(ValueError, match="lerobot-stamo-label"):
        StamoVLAPolicy(tiny_config(labelled=False, world_model_target="state"))
    policy = StamoVLAPolicy(tiny_config(labelled=False, world_model_target="auto"))
    assert policy.config.world_model_target == "none" and policy.model.world_model_head is None
    labelled = StamoVLAPolicy(tiny_config(world_model_target="auto"))
    assert labelled.config.world_model_target == "state" and labelled.model.world_model_head is not None


def test_error_missing_camera_and_wrong_state_at_inference():
    policy = make_policy()
    batch = {k: v for k, v in raw_batch(b=1).items() if k != CAMS[1]}
    with pytest.raises(KeyError, match="wrist"):
        policy.select_action(batch)
    batch = raw_batch(b=1)
    batch[OBS_STATE] = torch.zeros(1, 7)
    with pytest.raises(ValueError, match="7 values"):
        policy.select_action(batch)


def test_error_nan_in_batch():
    policy = make_policy()
    batch = raw_batch()
    batch[ACTION][0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="`action` contains NaN"):
        policy.forward(batch)


def test_training_stops_at_the_first_non_finite_loss():
    """A diverged model (finite inputs, NaN weights) stops training at once, naming the step and the terms."""
    from lerobot_stamo.errors import NonFiniteLossError

    policy = make_policy()
    policy.train()
    policy.forward(raw_batch())  # step 1: finite
    with torch.no_grad():
        policy.model.action_head.out[1].weight.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match=r"not finite at training step 2 .*action_loss=nan") as err:
        policy.forward(raw_batch())
    assert str(err.value).endswith("or resume from the last good checkpoint.")
    policy.eval()
    policy.forward(raw_batch())  # evaluation reports a NaN loss but does not stop anything


def test_error_checkpoint_of_another_policy(tmp_path: Path):
    from lerobot.policies.act.configuration_act import ACTConfig

    ACTConfig(device="cpu", push_to_hub=False, pretrained_backbone_weights=None)._save_pretrained(tmp_path)
    with pytest.raises(TypeError, match="not a 'stamo_vla' one"):
        StamoVLAPolicy.from_pretrained(tmp_path)


def test_error_bad_config_values():
    with pytest.raises(ValueError, match="world_model_target"):
        tiny_config(world_model_target="image")
    with pytest.raises(ValueError, match="stamo_path"):
        tiny_config(vision="stamo")
    with pytest.raises(ValueError, match="n_action_steps"):
        tiny_config(n_action_steps=10)


def test_push_model_to_hub_uploads_weights_and_card():
    """LeRobot's push_model_to_hub (mocked HfApi) with the stamo_vla model card: backbone, target, data."""
    import warnings
    from unittest.mock import MagicMock, patch

    from huggingface_hub import HfApi
    from lerobot.configs.default import DatasetConfig
    from lerobot.configs.train import TrainPipelineConfig

    policy = make_policy(repo_id="someone/stamo-vla-tiny")
    cfg = TrainPipelineConfig(
        dataset=DatasetConfig(repo_id="someone/pickcube"), policy=policy.config, steps=10
    )
    uploaded: dict[str, str] = {}

    def fake_upload_folder(self, *, folder_path, allow_patterns=None, **kwargs):
        for path in Path(folder_path).rglob("*"):  # LeRobot after 0.6.1 uploads in several commits
            if path.is_file() and (allow_patterns is None or any(path.match(p) for p in allow_patterns)):
                uploaded[path.name] = path.read_text() if path.suffix in (".md", ".json") else "<binary>"
        return MagicMock(repo_url=MagicMock(url="https://huggingface.co/someone/stamo-vla-tiny"))

    with (
        patch.object(HfApi, "create_repo", return_value=MagicMock(repo_id="someone/stamo-vla-tiny")),
        patch.object(HfApi, "upload_folder", fake_upload_folder),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", FutureWarning)  # deprecated after 0.6.1 (publish_trained_model)
        policy.push_model_to_hub(cfg)
    assert {"config.json", "model.safetensors", "train_config.json", "README.md"} <= set(uploaded)
    card = uploaded["README.md"]
    for text in ("stamo_vla", "Trunk: `compact` (vision: `resnet18`)", "World-model target: `state`",
                 "someone/pickcube", "Steps: 10", "--policy.path=someone/stamo-vla-tiny", "dataset's StaMo columns"):  # fmt: skip
        assert text in card, text
    assert "library_name: lerobot" in card and "- world-model" in card
    assert f"{DOCS_URL}/stamo-vla.md" in card  # the card links back to the docs


def test_checkpoint_with_the_old_head_name_loads(tmp_path):
    """Checkpoints saved when the world-model head was `model.future_head` load into `model.world_model_head`."""
    from safetensors.torch import load_file, save_file

    policy = make_policy().eval()
    policy.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    old = {k.replace("model.world_model_head.", "model.future_head."): v for k, v in weights.items()}
    assert any(k.startswith("model.future_head.") for k in old)
    save_file(old, tmp_path / "model.safetensors")
    loaded = StamoVLAPolicy.from_pretrained(tmp_path)
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, weights[key]), key


def test_uint8_frames_are_scaled_like_training_frames():
    """uint8 camera frames (as robots and envs deliver them) act exactly like the same frames as floats in [0, 1]
    (as the dataset gives them in training); past the preprocessor, uint8 or 0-255 frames are refused."""
    policy = make_policy().eval()
    stats = {k: {"mean": torch.zeros(6), "std": torch.ones(6)} for k in (OBS_STATE, ACTION)}
    pre, _ = make_stamo_vla_pre_post_processors(policy.config, stats)
    g = torch.Generator().manual_seed(0)
    frames = {k: torch.randint(0, 256, (3, HW, HW), generator=g, dtype=torch.uint8) for k in CAMS}
    common = {OBS_STATE: torch.randn(6, generator=g), "task": "pick up the cube"}
    as_uint8 = pre(frames | common)
    as_float = pre({k: v.float() / 255 for k, v in frames.items()} | common)
    for key in CAMS:
        assert as_uint8[key].dtype == torch.float32 and 0 <= as_uint8[key].min() <= as_uint8[key].max() <= 1
        torch.testing.assert_close(as_uint8[key], as_float[key], rtol=0, atol=0)
    torch.testing.assert_close(policy.predict_action_chunk(as_uint8), policy.predict_action_chunk(as_float))
    with pytest.raises(TypeError, match="is torch.uint8, but the policy reads float frames in"):
        policy.predict_action_chunk(as_uint8 | {CAMS[0]: frames[CAMS[0]][None]})
    with pytest.raises(ValueError, match="look like 0-255 values"):
        policy.predict_action_chunk(as_uint8 | {CAMS[0]: frames[CAMS[0]][None].float()})
    with pytest.raises(ValueError, match="look normalised") as error:
        policy.predict_action_chunk(as_uint8 | {CAMS[0]: (frames[CAMS[0]][None].float() / 255 - 0.45) / 0.1})
    assert "255" not in str(error.value)


def test_wrong_state_size_is_refused_before_the_normaliser():
    """Through the real preprocessor, the policy's own message comes before the normaliser's tensor-size error."""
    policy = make_policy().eval()
    stats = {k: {"mean": torch.zeros(6), "std": torch.ones(6)} for k in (OBS_STATE, ACTION)}
    pre, _ = make_stamo_vla_pre_post_processors(policy.config, stats)
    frames = {k: torch.zeros(3, HW, HW, dtype=torch.uint8) for k in CAMS}
    with pytest.raises(ValueError, match=r"`observation.state` has 3 values .* trained with 6"):
        pre(frames | {OBS_STATE: torch.zeros(3), "task": "pick"})
