"""The stamo policy on the tiny preset: shapes, training signal, state API, save/load and modes."""

import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lerobot_stamo.policies.stamo import StamoConfig, StamoPolicy
from lerobot_stamo.policies.stamo.tiny import write_tiny_pretrained
from lerobot_stamo.stand_ins import CAMERAS


@pytest.fixture
def policy(make_tiny_config) -> StamoPolicy:
    torch.manual_seed(0)
    return StamoPolicy(make_tiny_config())


def test_forward_shapes_and_logged_values(policy, square_batch):
    policy.train()
    loss, info = policy.forward(square_batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert set(info) == {"loss"} | {f"loss_t{i}" for i in range(policy.config.loss_buckets)}
    assert all(isinstance(v, float) for v in info.values())
    per_sample, _ = policy.forward(square_batch, reduction="none")
    assert per_sample.shape == (4,)  # averaged over the two cameras


def test_training_stops_at_the_first_non_finite_loss(policy, square_batch):
    from lerobot_stamo.errors import NonFiniteLossError

    policy.train()
    with torch.no_grad():
        next(policy.model.compressor.parameters()).fill_(float("inf"))
    with pytest.raises(
        NonFiniteLossError, match=r"stamo: the training loss is not finite at training step 1 "
    ):
        policy.forward(square_batch)


def test_forward_does_not_mutate_batch(policy, square_batch):
    before = {k: v.clone() for k, v in square_batch.items()}
    policy.train()
    policy.forward(square_batch)
    for key, value in before.items():
        torch.testing.assert_close(square_batch[key], value, rtol=0, atol=0)


def test_loss_decreases_on_a_fixed_batch(policy, square_batch):
    def fixed_noise_loss() -> float:
        torch.manual_seed(1)  # same timesteps and noise before and after training
        policy.eval()
        with torch.no_grad():
            return policy.forward(square_batch)[0].item()

    before = fixed_noise_loss()
    torch.manual_seed(0)
    opt = torch.optim.AdamW(policy.get_optim_params(), lr=2e-3)
    policy.train()
    for _ in range(40):
        loss, _ = policy.forward(square_batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = fixed_noise_loss()
    assert after < 0.7 * before, (before, after)


def test_encode_shape_and_determinism(policy, square_batch):
    frames = square_batch[CAMERAS[0]]
    s1 = policy.encode(frames)
    s2 = policy.encode(frames)
    assert s1.shape == (4, policy.config.num_tokens, policy.config.token_dim)
    torch.testing.assert_close(s1, s2, rtol=0, atol=0)
    # uint8 and float inputs agree; other sizes are resized.
    s_uint8 = policy.encode((frames * 255).round().to(torch.uint8))
    torch.testing.assert_close(s_uint8, s1, rtol=1e-4, atol=1e-4)
    big = torch.nn.functional.interpolate(frames, size=(96, 96), mode="bilinear")
    assert policy.encode(big).shape == s1.shape


def test_decode_range_and_seed(policy, square_batch):
    states = policy.encode(square_batch[CAMERAS[0]][:2])
    img1 = policy.decode(states, num_inference_steps=4, generator=torch.Generator().manual_seed(3))
    img2 = policy.decode(states, num_inference_steps=4, generator=torch.Generator().manual_seed(3))
    assert img1.shape == (2, 3, policy.config.image_size, policy.config.image_size)
    assert img1.min() >= 0 and img1.max() <= 1
    torch.testing.assert_close(img1, img2, rtol=0, atol=0)


def test_motion_interpolate_transfer(policy, square_batch):
    s = policy.encode(square_batch[CAMERAS[0]])
    s_a, s_b, s_c = s[:1], s[1:2], s[2:3]
    torch.testing.assert_close(policy.motion(s_a, s_b), s_b - s_a)
    torch.testing.assert_close(policy.transfer(s_c, s_a, s_b), s_c + s_b - s_a)
    path = policy.interpolate(s_a, s_b, 5)
    assert path.shape == (1, 5, *s_a.shape[1:])
    torch.testing.assert_close(path[:, 0], s_a)
    torch.testing.assert_close(path[:, -1], s_b)
    torch.testing.assert_close(path[:, 2], (s_a + s_b) / 2)
    with pytest.raises(ValueError, match="n"):
        policy.interpolate(s_a, s_b, 1)


def test_interpolation_endpoints_decode_like_inputs(policy, square_batch):
    s = policy.encode(square_batch[CAMERAS[0]])
    s_a, s_b = s[:1], s[3:4]
    path = policy.interpolate(s_a, s_b, 4)[0]  # (4, N, D)
    strip = policy.decode(path, 3, generator=torch.Generator().manual_seed(7), shared_noise=True)
    end_a = policy.decode(s_a, 3, generator=torch.Generator().manual_seed(7), shared_noise=True)
    end_b = policy.decode(s_b, 3, generator=torch.Generator().manual_seed(7), shared_noise=True)
    torch.testing.assert_close(strip[0], end_a[0], rtol=0, atol=1e-4)
    torch.testing.assert_close(strip[-1], end_b[0], rtol=0, atol=1e-4)


def test_not_an_actor(policy, square_batch):
    with pytest.raises(NotImplementedError, match="stamo_vla"):
        policy.select_action(square_batch)
    with pytest.raises(NotImplementedError, match="latent motion"):
        policy.predict_action_chunk(square_batch)


def test_unchanged_weights_reuse_the_last_reconstructions(policy, tmp_path, square_batch, monkeypatch):
    policy.train()
    policy.forward(square_batch)
    policy.save_pretrained(tmp_path / "a")
    calls = []
    original = policy.reconstruct
    monkeypatch.setattr(policy, "reconstruct", lambda *a, **k: calls.append(1) or original(*a, **k))
    policy.save_pretrained(tmp_path / "b")  # e.g. push_to_hub right after the final checkpoint
    policy.save_pretrained(tmp_path / "b")  # the same folder again
    assert calls == []
    for name in ("reconstructions.png", "reconstruction_metrics.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()

    loss, _ = policy.forward(square_batch)
    loss.backward()
    torch.optim.SGD(policy.get_optim_params(), lr=1e-3).step()  # the weights changed: decode again
    policy.save_pretrained(tmp_path / "c")
    assert calls == [1] and (tmp_path / "c" / "reconstructions.png").is_file()


def test_save_load_bit_exact(policy, tmp_path, square_batch):
    policy.train()
    policy.forward(square_batch)  # caches the reconstruction frames
    policy.save_pretrained(tmp_path)
    assert (tmp_path / "reconstructions.png").is_file()
    metrics = json.loads((tmp_path / "reconstruction_metrics.json").read_text())
    assert set(metrics) == {"psnr", "ssim", "psnr_vae", "ssim_vae", "frames"}
    assert metrics["frames"] == "training"
    loaded = StamoPolicy.from_pretrained(tmp_path)
    saved = load_file(tmp_path / "model.safetensors")
    assert set(saved) == set(loaded.state_dict())
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, policy.state_dict()[name]), name
    torch.testing.assert_close(
        loaded.encode(square_batch[CAMERAS[0]]), policy.encode(square_batch[CAMERAS[0]])
    )


@pytest.mark.parametrize("mode", ["frozen", "lora"])
def test_decoder_modes_train_the_right_parameters(make_tiny_config, square_batch, mode):
    policy = StamoPolicy(make_tiny_config(decoder_mode=mode, train_backbone=False))
    trainable = {n for n, p in policy.named_parameters() if p.requires_grad}
    assert not any(n.startswith("model.backbone.") for n in trainable)
    assert not any(n.startswith("model.decoder.vae.") for n in trainable)
    dit = {n for n in trainable if n.startswith("model.decoder.transformer.")}
    if mode == "frozen":
        assert not dit
    else:
        assert dit and all("lora_" in n for n in dit)
    assert any(n.startswith("model.compressor.") for n in trainable)
    policy.train()
    loss, _ = policy.forward(square_batch)
    loss.backward()
    assert policy.model.compressor.split.weight.grad is not None  # gradients reach the encoder


@pytest.mark.parametrize("mode", ["frozen", "lora"])
def test_frozen_dit_is_stored_in_the_compute_dtype(make_tiny_config, square_batch, tmp_path, mode):
    """A DiT that is never trained is stored in bf16 (half the memory); LoRA adapters stay float32 for the
    optimizer; training (without autocast here) and a save/load round trip work."""
    policy = StamoPolicy(make_tiny_config(decoder_mode=mode, dtype="bfloat16", train_backbone=False))
    dit = policy.model.decoder.transformer
    frozen = {p.dtype for p in dit.parameters() if not p.requires_grad}
    trained = {p.dtype for p in dit.parameters() if p.requires_grad}
    assert frozen == {torch.bfloat16} and trained <= {torch.float32}
    assert policy.model.decoder.state_proj.weight.dtype == torch.float32  # trained projections stay float32
    policy.train()
    loss, _ = policy.forward(square_batch)
    loss.backward()
    assert torch.isfinite(loss) and policy.model.compressor.split.weight.grad is not None
    if mode == "lora":
        assert all(p.grad is not None for p in dit.parameters() if p.requires_grad)
    policy.save_pretrained(tmp_path)
    loaded = StamoPolicy.from_pretrained(tmp_path).eval()
    frames = square_batch[CAMERAS[0]]
    torch.testing.assert_close(loaded.encode(frames), policy.eval().encode(frames))


def test_decoder_from_scratch_differs_from_pretrained(make_tiny_config, tiny_pretrained):
    from diffusers import SD3Transformer2DModel

    pretrained = SD3Transformer2DModel.from_pretrained(
        tiny_pretrained["decoder_path"], subfolder="transformer"
    )
    torch.manual_seed(123)
    policy = StamoPolicy(make_tiny_config(decoder_pretrained=False))
    w_ref = pretrained.transformer_blocks[0].attn.to_q.weight
    w_new = policy.model.decoder.transformer.transformer_blocks[0].attn.to_q.weight
    assert w_ref.shape == w_new.shape and not torch.equal(w_ref, w_new)


def test_gradient_checkpointing_runs(make_tiny_config, square_batch):
    policy = StamoPolicy(make_tiny_config(gradient_checkpointing=True))
    assert policy.model.decoder.transformer.is_gradient_checkpointing
    policy.train()
    loss, _ = policy.forward(square_batch)
    loss.backward()


def test_real_model_ids_are_the_defaults():
    cfg = StamoConfig(device="cpu")
    assert cfg.backbone == "facebook/dinov2-with-registers-base"
    assert cfg.decoder_path == "stabilityai/stable-diffusion-3-medium-diffusers"
    assert (cfg.num_tokens, cfg.token_dim, cfg.image_size) == (2, 1024, 224)


def test_tiny_writer_is_deterministic(tmp_path):
    a = write_tiny_pretrained(tmp_path / "a", seed=0)
    b = write_tiny_pretrained(tmp_path / "b", seed=0)
    for part in ("transformer", "vae"):
        wa = load_file(next((tmp_path / "a" / "sd3" / part).glob("*.safetensors")))
        wb = load_file(next((tmp_path / "b" / "sd3" / part).glob("*.safetensors")))
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a["backbone"].endswith("dinov2") and b["decoder_path"].endswith("sd3")


def test_bfloat16_frozen_parts(make_tiny_config, square_batch):
    policy = StamoPolicy(make_tiny_config(dtype="bfloat16", train_backbone=False))
    assert policy.model.backbone.dtype == torch.bfloat16 and policy.model.decoder.vae.dtype == torch.bfloat16
    assert policy.model.decoder.transformer.dtype == torch.float32  # trained parts stay in fp32 (autocast)
    policy.train()
    loss, _ = policy.forward(square_batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert policy.encode(square_batch[CAMERAS[0]]).dtype == torch.float32


def test_tiny_vae_fit_changes_the_vae_and_keeps_factors_sane(tmp_path):
    from diffusers import AutoencoderKL

    random = AutoencoderKL.from_pretrained(
        write_tiny_pretrained(tmp_path / "a")["decoder_path"], subfolder="vae"
    )
    fitted_dir = write_tiny_pretrained(tmp_path / "b", fit_vae_steps=3)["decoder_path"]
    fitted = AutoencoderKL.from_pretrained(fitted_dir, subfolder="vae")
    w = "decoder.conv_out.weight"
    assert not torch.equal(random.state_dict()[w], fitted.state_dict()[w])
    assert 0 < fitted.config.scaling_factor < 100 and abs(fitted.config.shift_factor) < 10


def test_tiny_vae_fit_has_the_same_bytes_whatever_the_callers_thread_count(tmp_path):
    threads = torch.get_num_threads()
    digests = []
    try:
        for n in (1, 3):
            torch.set_num_threads(n)
            vae = Path(write_tiny_pretrained(tmp_path / str(n), fit_vae_steps=2)["decoder_path"]) / "vae"
            digests.append(
                hashlib.sha256((vae / "diffusion_pytorch_model.safetensors").read_bytes()).digest()
            )
            assert torch.get_num_threads() == n  # the caller's setting is restored
    finally:
        torch.set_num_threads(threads)
    assert digests[0] == digests[1]


def test_reconstructions_prefer_held_out_frames(policy, square_batch):
    train_batch = {k: v.flip(0) for k, v in square_batch.items()}
    policy.train()
    policy.forward(train_batch)
    assert policy._reconstruction_source == "training"
    policy.eval()  # LeRobot's eval loop on held-out episodes (--dataset.eval_split, --eval_steps)
    with torch.no_grad():
        policy.forward(square_batch)
    policy.train()
    policy.forward(train_batch)  # later training batches do not replace the held-out frames
    assert policy._reconstruction_source == "held-out"
    n = policy.config.reconstruction_num_images
    torch.testing.assert_close(policy._reconstruction_images, square_batch[CAMERAS[0]][:n])
