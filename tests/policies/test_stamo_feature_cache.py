"""The frozen-feature cache gives the same loss as encoding frames on the fly, flips included."""

import json

import numpy as np
import pytest
import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset

from lerobot_stamo.policies.stamo import StamoPolicy
from lerobot_stamo.policies.stamo.feature_cache import StamoFeatureCache, build_feature_cache
from lerobot_stamo.policies.stamo.images import prepare_images


@pytest.fixture
def dataset(stamo_dataset):
    repo_id, root = stamo_dataset
    return LeRobotDataset(repo_id, root=root)


def first_batch(dataset, n=6):
    return next(iter(torch.utils.data.DataLoader(dataset, batch_size=n, shuffle=False)))


@pytest.mark.parametrize("train_backbone", [False, True])
def test_cached_loss_matches_on_the_fly_loss(make_tiny_config, dataset, tmp_path, train_backbone):
    torch.manual_seed(0)
    cfg = make_tiny_config(train_backbone=train_backbone, random_flip=0.5)
    policy = StamoPolicy(cfg)
    build_feature_cache(policy, dataset, tmp_path / "cache", batch_size=8)
    info = json.loads((tmp_path / "cache" / "cache_info.json").read_text())
    assert info["num_frames"] == dataset.num_frames and info["flips"]
    assert info["backbone_cached"] is (not train_backbone)

    batch = first_batch(dataset)
    policy.train()
    torch.manual_seed(5)
    plain, _ = policy.forward(batch, reduction="none")
    policy.config.feature_cache = str(tmp_path / "cache")
    torch.manual_seed(5)
    cached, _ = policy.forward(batch, reduction="none")
    assert policy._feature_cache is not None
    torch.testing.assert_close(cached, plain, rtol=2e-2, atol=2e-3)  # patches are stored in fp16


def test_cache_of_other_weights_is_rejected(make_tiny_config, dataset, tmp_path):
    policy = StamoPolicy(make_tiny_config(train_backbone=False))
    build_feature_cache(policy, dataset, tmp_path / "cache")
    other = StamoPolicy(
        make_tiny_config(train_backbone=False, image_size=48, feature_cache=str(tmp_path / "cache"))
    )
    other.train()
    with pytest.raises(ValueError, match="image_size"):
        other.forward(first_batch(dataset))
    missing = StamoPolicy(make_tiny_config(feature_cache=str(tmp_path / "nope")))
    with pytest.raises(FileNotFoundError, match="policy.feature_cache"):
        missing.forward(first_batch(dataset))


def test_cache_is_written_atomically_and_read_memory_mapped(make_tiny_config, dataset, tmp_path):
    policy = StamoPolicy(make_tiny_config(train_backbone=False, random_flip=0.5))
    out = tmp_path / "cache"
    build_feature_cache(policy, dataset, out, batch_size=7)  # last batch is partial
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # no temporary folder left behind
    with pytest.raises(FileExistsError, match="--overwrite"):
        build_feature_cache(policy, dataset, out)
    build_feature_cache(policy, dataset, out, batch_size=16, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]

    cache = StamoFeatureCache(out, policy)
    assert cache.arrays == {}  # nothing read before the first lookup
    cam = policy.config.camera_keys[0]
    indices = torch.tensor([dataset.num_frames - 1, 0, 3])
    flip = torch.tensor([True, False, True])
    patches, latents = cache.lookup(indices, cam, flip)
    assert all(isinstance(a, np.memmap) for a in cache.arrays.values())
    assert patches.shape[0] == latents.shape[0] == 3 and patches.dtype == torch.float32

    frames = prepare_images(torch.stack([dataset[int(i)][cam] for i in indices]), policy.config.image_size)
    with torch.no_grad():
        expected = policy.model.decoder.latent_params(
            torch.where(flip.view(-1, 1, 1, 1), frames.flip(-1), frames)
        )
    torch.testing.assert_close(latents, expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(KeyError, match="rebuild"):
        cache.lookup(torch.tensor([dataset.num_frames + 5]), cam, None)


def test_cache_of_another_dataset_is_refused(make_tiny_config, dataset, sim_dataset, tmp_path):
    import shutil

    from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata

    policy = StamoPolicy(make_tiny_config(train_backbone=False))
    out = build_feature_cache(policy, dataset, tmp_path / "cache")
    recorded = json.loads((out / "cache_info.json").read_text())["dataset"]
    assert recorded["repo_id"] == dataset.repo_id and recorded["total_frames"] == dataset.num_frames

    StamoFeatureCache(out, policy, dataset_meta=dataset.meta)  # the same dataset
    copy = tmp_path / "copy"
    shutil.copytree(dataset.root, copy)
    StamoFeatureCache(out, policy, dataset_meta=LeRobotDatasetMetadata(dataset.repo_id, root=copy))

    other = LeRobotDatasetMetadata(sim_dataset[0], root=sim_dataset[1])
    with pytest.raises(
        ValueError, match=r"was built from dataset .* not from the training dataset .*Rebuild"
    ):
        StamoFeatureCache(out, policy, dataset_meta=other)
    # Under lerobot-train, make_policy records the training dataset on the config: checked at the first step.
    trained = StamoPolicy(make_tiny_config(train_backbone=False, feature_cache=str(out)))
    trained.config._runtime_dataset_meta = other
    trained.train()
    with pytest.raises(ValueError, match="train without --policy.feature_cache"):
        trained.forward(first_batch(dataset))

    info = json.loads((out / "cache_info.json").read_text())
    info.pop("dataset")  # a cache that records no dataset cannot be trusted with one
    (out / "cache_info.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="records none"):
        StamoFeatureCache(out, policy, dataset_meta=dataset.meta)


def test_cache_build_never_deletes_what_is_not_a_cache(make_tiny_config, dataset, tmp_path):
    policy = StamoPolicy(make_tiny_config(train_backbone=False))
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("someone's notes")
    with pytest.raises(FileExistsError, match="is not a stamo feature cache"):
        build_feature_cache(policy, dataset, out, overwrite=True)
    assert (out / "notes.txt").read_text() == "someone's notes"
    for inside in (dataset.root, dataset.root.parent, dataset.root / "cache"):
        with pytest.raises(ValueError, match="the input --root="):
            build_feature_cache(policy, dataset, inside, overwrite=True)
    # A build interrupted earlier left its work folder: the next build cleans it up.
    work = tmp_path / ".cache.stamo-cache-work"
    work.mkdir()
    (work / "index.npy").write_bytes(b"partial")
    build_feature_cache(policy, dataset, tmp_path / "cache")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "out"]
