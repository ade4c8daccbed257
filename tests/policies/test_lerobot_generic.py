"""The generic checks LeRobot runs on its own policies (tests/policies, tests/processor), run on ours.

Written anew against public APIs and the small dataset the tests record (`stamo_dataset`: two 64x64 cameras,
a 6-d state and action). What other files already check is not repeated here: bit-exact save/load
(test_stamo_model, test_stamo_vla_model), the action queue across `reset`, processor JSON round trips with
given stats, `forward` not mutating the batch of an encoder, golden outputs (test_*_golden).
"""

import inspect
from copy import deepcopy

import pytest
import torch
from huggingface_hub.constants import SAFETENSORS_SINGLE_FILE
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.datasets.factory import resolve_delta_timestamps
from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata
from lerobot.policies.factory import (
    get_policy_class,
    make_policy,
    make_policy_config,
    make_pre_post_processors,
)
from lerobot.processor import DataProcessorPipeline, PolicyProcessorPipeline
from lerobot.processor.converters import policy_action_to_transition, transition_to_policy_action
from lerobot.utils.constants import ACTION, OBS_STATE
from test_stamo_vla_model import make_policy as tiny_stamo_vla
from test_stamo_vla_model import raw_batch

from lerobot_stamo.policies.stamo import StamoConfig, StamoPolicy
from lerobot_stamo.policies.stamo_vla import StamoVLAConfig, StamoVLAPolicy
from lerobot_stamo.stand_ins import CAMERAS, tiny_policy_fields

VLA_SIZES = dict(chunk_size=4, n_action_steps=2, dim_model=32, n_heads=4, n_layers=1, dim_feedforward=64,
                 world_model_hidden_dim=32, tokenizer_max_length=32)  # fmt: skip


@pytest.fixture
def meta(stamo_dataset) -> LeRobotDatasetMetadata:
    repo_id, root = stamo_dataset
    return LeRobotDatasetMetadata(repo_id, root=root)


def stamo_config(tiny_pretrained) -> StamoConfig:
    return StamoConfig(**tiny_policy_fields(), **tiny_pretrained, device="cpu", push_to_hub=False)


def stamo_vla_config(stamo_ckpt) -> StamoVLAConfig:
    """World-model targets from the tiny stamo checkpoint: the dataset gives frames t and t+2 of each camera."""
    return StamoVLAConfig(
        **VLA_SIZES, stamo_path=str(stamo_ckpt), future_horizon=2, device="cpu", push_to_hub=False
    )


def first_batch(meta: LeRobotDatasetMetadata, config, batch_size: int = 2) -> dict:
    """A collated batch of the recorded dataset with the policy's delta timestamps (as `lerobot-train`)."""
    dataset = LeRobotDataset(
        meta.repo_id, root=meta.root, delta_timestamps=resolve_delta_timestamps(config, meta)
    )
    return next(iter(torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)))


def assert_unchanged(batch: dict, before: dict) -> None:
    assert set(batch) == set(before)
    for key, value in before.items():
        same = torch.equal(batch[key], value) if isinstance(value, torch.Tensor) else batch[key] == value
        assert same, key


@pytest.mark.parametrize(("name", "policy_cls"), [("stamo", StamoPolicy), ("stamo_vla", StamoVLAPolicy)])
def test_policy_and_config_classes(name, policy_cls):
    assert get_policy_class(name) is policy_cls and policy_cls.name == name
    config = make_policy_config(name)
    assert isinstance(config, policy_cls.config_class) and config.type == name
    # As LeRobot's test reads it: the annotation itself, not a string to evaluate (no `from __future__`).
    assert issubclass(type(config), inspect.signature(policy_cls.__init__).parameters["config"].annotation)


def test_stamo_from_dataset_metadata_trains(meta, tiny_pretrained):
    policy = make_policy(stamo_config(tiny_pretrained), ds_meta=meta)
    assert isinstance(policy, StamoPolicy)
    assert set(CAMERAS) <= set(policy.config.input_features)
    preprocessor, _ = make_pre_post_processors(policy.config, dataset_stats=meta.stats)
    batch = preprocessor(first_batch(meta, policy.config))
    before = deepcopy(batch)
    policy.train()
    loss, info = policy.forward(batch)
    assert_unchanged(batch, before)
    assert torch.isfinite(loss) and all(isinstance(v, float) for v in info.values())
    loss.backward()
    grads = [p.grad for p in policy.get_optim_params() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_stamo_vla_from_dataset_metadata_trains_and_acts(meta, stamo_ckpt):
    policy = make_policy(stamo_vla_config(stamo_ckpt), ds_meta=meta)
    config = policy.config
    assert isinstance(policy, StamoVLAPolicy)
    assert config.input_features[OBS_STATE].shape == (6,) and config.output_features[ACTION].shape == (6,)
    preprocessor, postprocessor = make_pre_post_processors(config, dataset_stats=meta.stats)

    batch = first_batch(meta, config)
    assert batch[CAMERAS[0]].shape[:2] == (2, 2) and batch[ACTION].shape[:2] == (2, config.chunk_size)
    batch = preprocessor(batch)
    before = deepcopy(batch)
    policy.train()
    loss, info = policy.forward(batch)
    assert_unchanged(batch, before)
    assert torch.isfinite(loss) and info["future_loss"] > 0
    loss.backward()
    grads = {n: p.grad for n, p in policy.named_parameters() if p.grad is not None}
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert any(n.startswith("model.action_head") for n in grads)
    assert any(n.startswith("model.world_model_head") for n in grads)

    # One observation as the env / robot gives it (no time axis, no action) -> one action.
    frame = LeRobotDataset(meta.repo_id, root=meta.root)[0]
    observation = {k: frame[k] for k in (*CAMERAS, OBS_STATE)} | {"task": frame["task"]}
    observation = preprocessor(observation)
    before = deepcopy(observation)
    policy.reset()
    action = postprocessor(policy.select_action(observation))
    assert_unchanged(observation, before)
    assert action.shape == (1, 6) and torch.isfinite(action).all()
    assert len(policy._queue) == config.n_action_steps - 1
    policy.reset()
    assert len(policy._queue) == 0
    policy.select_action(observation)
    policy.drop_queued_actions()  # LeRobot after 0.6.1: a new instruction mid-episode
    assert len(policy._queue) == 0


@pytest.mark.parametrize("name", ["stamo", "stamo_vla"])
def test_save_pretrained_with_a_gathered_state_dict(name, make_tiny_config, tmp_path):
    """LeRobot 0.6.1's FSDP path: the caller gathers the weights and passes them to `save_pretrained`."""
    torch.manual_seed(0)
    policy = StamoPolicy(make_tiny_config()) if name == "stamo" else tiny_stamo_vla()
    policy.save_pretrained(tmp_path, state_dict=policy.state_dict())
    assert (tmp_path / SAFETENSORS_SINGLE_FILE).is_file()
    assert not (tmp_path / f"{SAFETENSORS_SINGLE_FILE}.index.json").exists()
    loaded = type(policy).from_pretrained(tmp_path, config=policy.config)
    torch.testing.assert_close(list(policy.parameters()), list(loaded.parameters()), rtol=0, atol=0)


def test_stamo_vla_defaults_build_from_dataset_features(meta):
    """The default sizes (only the world-model head off: it needs StaMo targets) build without downloads."""
    from lerobot.utils.feature_utils import dataset_to_policy_features

    features = dataset_to_policy_features(meta.features)
    config = StamoVLAConfig(world_model_target="none")
    config.output_features = {k: ft for k, ft in features.items() if ft.type is FeatureType.ACTION}
    config.input_features = {k: ft for k, ft in features.items() if k not in config.output_features}
    assert config.chunk_size == len(StamoVLAPolicy(config).config.action_delta_indices)


def test_stamo_vla_state_and_action_made_of_several_keys():
    """Sub-keys of the state / action (e.g. `observation.state.arm`) leave the full keys the robot's features."""
    inputs = {
        f"{OBS_STATE}.arm": PolicyFeature(FeatureType.STATE, (5,)),
        OBS_STATE: PolicyFeature(FeatureType.STATE, (6,)),
    }
    inputs |= {CAMERAS[0]: PolicyFeature(FeatureType.VISUAL, (3, 32, 32))}
    outputs = {
        f"{ACTION}.arm": PolicyFeature(FeatureType.ACTION, (5,)),
        ACTION: PolicyFeature(FeatureType.ACTION, (6,)),
    }
    config = StamoVLAConfig(
        **VLA_SIZES, world_model_target="none", input_features=inputs, output_features=outputs
    )
    assert config.robot_state_feature == inputs[OBS_STATE] and config.action_feature == outputs[ACTION]
    assert StamoVLAPolicy(config).config.state_dim == 6


def test_stamo_vla_optimizer_groups():
    """The pretrained trunk parts train at `optimizer_lr_backbone`, every other parameter once at `optimizer_lr`."""
    policy = tiny_stamo_vla(optimizer_lr_backbone=1e-5)
    groups = policy.get_optim_params()
    assert len(groups) == 2 and groups[1]["lr"] == 1e-5 and "lr" not in groups[0]
    body = {id(p) for p in policy.model.trunk.vision.body.parameters() if p.requires_grad}
    assert {id(p) for p in groups[1]["params"]} == body
    grouped = [id(p) for g in groups for p in g["params"]]
    assert len(grouped) == len(set(grouped)) == sum(p.requires_grad for p in policy.parameters())


def test_stamo_vla_processors_apply_and_keep_the_dataset_stats(meta, stamo_ckpt, tmp_path):
    config = make_policy(stamo_vla_config(stamo_ckpt), ds_meta=meta).config
    pre, post = make_pre_post_processors(config, dataset_stats=meta.stats)
    state = torch.linspace(-1, 1, 6)
    observation = {CAMERAS[0]: torch.rand(3, 64, 64), CAMERAS[1]: torch.rand(3, 64, 64), OBS_STATE: state}
    observation["task"] = "move the square"
    out = pre(observation)
    mean, std = (torch.as_tensor(meta.stats[OBS_STATE][k]).float() for k in ("mean", "std"))
    torch.testing.assert_close(out[OBS_STATE], ((state - mean) / (std + 1e-8))[None])
    assert out[CAMERAS[0]].shape == (1, 3, 64, 64)  # batched once; cameras are not normalised (IDENTITY)
    torch.testing.assert_close(out[CAMERAS[0]][0], observation[CAMERAS[0]])
    action_mean = torch.as_tensor(meta.stats[ACTION]["mean"]).float()
    torch.testing.assert_close(post(torch.zeros(1, 6)), action_mean[None])

    pre.save_pretrained(tmp_path)
    post.save_pretrained(tmp_path)
    pre2 = DataProcessorPipeline.from_pretrained(tmp_path, config_filename="policy_preprocessor.json")
    post2 = PolicyProcessorPipeline.from_pretrained(
        tmp_path,
        config_filename="policy_postprocessor.json",
        to_transition=policy_action_to_transition,
        to_output=transition_to_policy_action,
    )
    out2 = pre2(observation)
    for key, value in out.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, out2[key]), key
    assert torch.equal(post2(torch.zeros(1, 6)), post(torch.zeros(1, 6)))
    batched = pre2(
        {k: v.expand(3, *v.shape) for k, v in observation.items() if k != "task"} | {"task": ["a"] * 3}
    )
    assert batched[OBS_STATE].shape == (3, 6)


def test_stamo_vla_processors_without_stats():
    config = tiny_stamo_vla(world_model_target="none", labelled=False).config
    pre, post = make_pre_post_processors(config, dataset_stats=None)
    batch = {k: v[0] for k, v in raw_batch(b=1).items() if k in (*config.camera_keys, OBS_STATE)}
    out = pre(batch | {"task": "push"})
    torch.testing.assert_close(out[OBS_STATE], batch[OBS_STATE][None])  # nothing to normalise with
    assert torch.equal(post(torch.ones(1, 6)), torch.ones(1, 6))
