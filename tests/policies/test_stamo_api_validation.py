"""The public state API refuses NaN/inf, wrongly sized or mismatched states and bad counts with a message
that says what was expected (issue 12, part 4), instead of returning NaN images or broadcast results."""

import numpy as np
import pytest
import torch

from lerobot_stamo.policies.stamo import StamoPolicy

N, D = 2, 32  # the tiny preset's num_tokens x token_dim


@pytest.fixture
def policy(make_tiny_config) -> StamoPolicy:
    return StamoPolicy(make_tiny_config()).eval()


def _states(b: int | None = 3, fill: float | None = None) -> torch.Tensor:
    x = torch.randn((b, N, D) if b is not None else (N, D))
    if fill is not None:
        x[0, 0] = fill
    return x


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda p: p.decode(_states(fill=NAN), num_inference_steps=1),
            r"`states` contains NaN or inf.*\[0\]",
        ),
        (lambda p: p.decode(_states(fill=-INF), num_inference_steps=1), "NaN or inf"),
        (
            lambda p: p.decode(torch.zeros(1, N, D + 1), num_inference_steps=1),
            rf"\(B, {N}, {D}\).*\(1, 2, 33\)",
        ),
        (lambda p: p.decode(torch.zeros(0, N, D), num_inference_steps=1), "B >= 1"),
        (lambda p: p.decode(torch.zeros(2, N, D, dtype=torch.long)), "float states"),
        (lambda p: p.decode(np.zeros((2, N, D))), "torch.Tensor"),
        (lambda p: p.motion(_states(), _states(fill=NAN)), "`s_tk` contains NaN"),
        (lambda p: p.motion(_states(3), _states(1)), r"same shape.*\(3, 2, 32\).*\(1, 2, 32\)"),
        (lambda p: p.motion(_states(None), _states(2)), "same shape"),
        (
            lambda p: p.motion(torch.zeros(3, N, 16), torch.zeros(3, N, 16)),
            rf"`s_t` must have shape \(B, {N}, {D}\)",
        ),
        (lambda p: p.interpolate(_states(), _states(fill=INF), 4), "`s_b` contains NaN or inf"),
        (lambda p: p.interpolate(_states(2), _states(3), 4), "same shape"),
        (lambda p: p.interpolate(_states(), _states(), 1), r"`n` must be an integer >= 2 to include both"),
        (lambda p: p.interpolate(_states(), _states(), 2.5), r"`n` must be an integer"),
        (lambda p: p.transfer(_states(1), _states(3), _states(3)), r"`s_c` \(1, 2, 32\)"),
        (lambda p: p.transfer(_states(), _states(fill=NAN), _states()), "`s_a` contains NaN"),
        (lambda p: p.transfer(_states(), _states(), torch.zeros(3, N + 1, D)), "`s_b` must have shape"),
    ],
)
def test_bad_states_are_refused(policy, call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(policy)


@pytest.mark.parametrize("steps", [0, -3, 1.5, True])
def test_decode_refuses_bad_step_counts(policy, steps):
    with pytest.raises(ValueError, match=r"`num_inference_steps` must be an integer >= 1"):
        policy.decode(_states(1), num_inference_steps=steps)


def test_decode_default_steps_only_when_none(policy, make_tiny_config):
    calls = []
    sample = policy.model.decoder.sample

    def spy(states, steps, **kwargs):
        calls.append(steps)
        return sample(states, steps, **kwargs)

    policy.model.decoder.sample = spy
    policy.decode(_states(1), num_inference_steps=np.int64(2))
    policy.decode(_states(None))
    assert calls == [2, policy.config.num_inference_steps]
    with pytest.raises(ValueError, match="`num_inference_steps` must be >= 1"):
        make_tiny_config(num_inference_steps=0)


def test_encode_refuses_empty_and_nan_frames(policy):
    with pytest.raises(ValueError, match=r"B, H, W >= 1"):
        policy.encode(torch.zeros(0, 3, 64, 64))
    frames = torch.rand(2, 3, 64, 64)
    frames[1, 0, 3, 3] = NAN
    with pytest.raises(ValueError, match="NaN or inf pixels"):
        policy.encode(frames)


def test_valid_states_keep_their_shapes(policy):
    a, b, c = _states(None), _states(None), _states(None)
    assert policy.motion(a, b).shape == (N, D)
    assert policy.interpolate(a, b, 3).shape == (3, N, D)
    assert policy.transfer(c, a, b).shape == (N, D)
    assert policy.interpolate(_states(2), _states(2), np.int64(4)).shape == (2, 4, N, D)
