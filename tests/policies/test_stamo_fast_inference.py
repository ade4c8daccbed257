"""Fast inference (issue 13, part 2): an inference copy in the compute dtype, optionally compiled, gives the
same states and images within bf16 tolerance, follows the trained weights and is never saved."""

import pytest
import torch

from lerobot_stamo.policies.stamo import StamoPolicy
from lerobot_stamo.stand_ins import CAMERAS


def _pair(make_tiny_config, **overrides) -> tuple[StamoPolicy, StamoPolicy]:
    """A float32 policy and one with `overrides` holding the same weights."""
    torch.manual_seed(0)
    reference = StamoPolicy(make_tiny_config()).eval()
    fast = StamoPolicy(make_tiny_config(**overrides)).eval()
    fast.load_state_dict(reference.state_dict())
    return reference, fast


def _encode_decode(policy, frames):
    states = policy.encode(frames)
    return states, policy.decode(states, num_inference_steps=3, generator=torch.Generator().manual_seed(0))


def _assert_bf16_close(reference, fast, frames):
    states, images = _encode_decode(reference, frames)
    fast_states, fast_images = _encode_decode(fast, frames)
    assert fast_states.dtype == torch.float32 and fast_images.dtype == torch.float32
    rel = (fast_states - states).norm() / states.norm()
    assert rel < 2e-2, f"states differ by {rel:.4f} (relative)"
    assert (fast_images - images).abs().mean() < 2e-2


def test_bfloat16_inference_copy_matches_float32(make_tiny_config, square_batch):
    reference, fast = _pair(make_tiny_config, dtype="bfloat16")
    frames = square_batch[CAMERAS[0]]
    _assert_bf16_close(reference, fast, frames)
    twin = fast.inference_model()
    assert twin is not fast.model and twin.decoder.vae is fast.model.decoder.vae  # the frozen VAE is shared
    for module in (twin.backbone, twin.compressor, twin.decoder.transformer, twin.decoder.state_proj):
        assert {p.dtype for p in module.parameters()} == {torch.bfloat16}
    assert fast.model.compressor.split.weight.dtype == torch.float32  # training keeps float32 weights
    assert fast.inference_model() is twin  # unchanged weights: no new copy
    assert set(fast.state_dict()) == set(reference.state_dict())  # never saved


def test_inference_copy_follows_training_and_is_dropped_by_train(make_tiny_config, square_batch):
    _, fast = _pair(make_tiny_config, dtype="bfloat16")
    frames = square_batch[CAMERAS[1]]
    before = fast.encode(frames)
    fast.train()
    assert fast._inference == []
    optimizer = torch.optim.SGD(fast.get_optim_params(), lr=1.0)
    loss, _ = fast.forward(square_batch)
    loss.backward()
    optimizer.step()
    fast.eval()
    after = fast.encode(frames)
    with torch.no_grad():  # change the weights in place while in eval mode: the copy is refreshed
        fast.model.compressor.split.bias.add_(1.0)
    assert not torch.equal(before, after)
    assert not torch.equal(after, fast.encode(frames))
    assert torch.allclose(
        fast.inference_model().compressor.split.bias.float(), fast.model.compressor.split.bias, atol=1e-2
    )


@pytest.mark.parametrize("backend", ["aot_eager"])
def test_compiled_inference_matches(make_tiny_config, square_batch, backend):
    reference, fast = _pair(make_tiny_config, dtype="bfloat16", compile=True, compile_backend=backend)
    _assert_bf16_close(reference, fast, square_batch[CAMERAS[0]])
    twin = fast.inference_model()
    assert twin.decoder.transformer._compiled_call_impl is not None
    assert reference.model.compressor._compiled_call_impl is None


def test_compile_config_is_checked(make_tiny_config):
    with pytest.raises(ValueError, match="`compile_mode` must be one of"):
        make_tiny_config(compile=True, compile_mode="fastest")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_compiled_reduce_overhead(make_tiny_config, square_batch):
    reference, fast = _pair(make_tiny_config, dtype="bfloat16", compile=True)
    reference.to("cuda"), fast.to("cuda")
    _assert_bf16_close(reference, fast, square_batch[CAMERAS[0]])
    _assert_bf16_close(reference, fast, square_batch[CAMERAS[0]])  # CUDA-graph replays


def _weight_bytes(policy) -> int:
    return sum(p.numel() * p.element_size() for p in policy.model.parameters())


def test_for_inference_keeps_one_set_of_weights(make_tiny_config, square_batch):
    _, copy_based = _pair(make_tiny_config, dtype="bfloat16")
    _, in_place = _pair(make_tiny_config, dtype="bfloat16")
    frames = square_batch[CAMERAS[0]]
    float32_bytes = _weight_bytes(in_place)
    assert in_place.for_inference() is in_place and not in_place.training
    # The same states and images as the inference copy (the same casts), without a second model.
    for expected, got in zip(
        _encode_decode(copy_based, frames), _encode_decode(in_place, frames), strict=True
    ):
        torch.testing.assert_close(got, expected)
    assert in_place._inference == [] and in_place.inference_model() is in_place.model
    trained = (in_place.model.compressor, in_place.model.decoder.transformer)
    assert {p.dtype for m in trained for p in m.parameters()} == {torch.bfloat16}
    assert _weight_bytes(in_place) < 0.55 * float32_bytes  # copy_based holds float32 + the bf16 copy
    with pytest.raises(RuntimeError, match="prepared for inference only.*from_pretrained"):
        in_place.train()
    in_place.eval()  # eval stays allowed


def test_for_inference_in_float32_changes_nothing(make_tiny_config, square_batch):
    reference, same = _pair(make_tiny_config)
    same.for_inference()
    torch.testing.assert_close(
        same.encode(square_batch[CAMERAS[0]]), reference.encode(square_batch[CAMERAS[0]])
    )
    same.train()  # nothing was cast: training is still possible
