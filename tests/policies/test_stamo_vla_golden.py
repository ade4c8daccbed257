"""Golden values: a seeded tiny `stamo_vla`'s losses, gradients and action chunk on a fixed batch.

Protects the model from silent changes (like LeRobot's backward-compatibility artifacts). After an
*intended* change of the model, regenerate the artifact and commit it:

    .venv/bin/python tests/policies/test_stamo_vla_golden.py
"""

from pathlib import Path

import torch
from cli_helpers import REPO_ROOT
from lerobot.utils.constants import ACTION  # noqa: E402
from safetensors.torch import load_file, save_file
from test_stamo_vla_model import make_policy, raw_batch  # noqa: E402

ARTIFACT = REPO_ROOT / "tests" / "artifacts" / "stamo_vla_tiny_golden.safetensors"


def golden_values() -> dict[str, torch.Tensor]:
    """Builds the seeded tiny policy (compact, world model on the state) and returns its outputs."""
    policy = make_policy()
    batch = raw_batch(b=3, seed=0)
    policy.train()
    torch.manual_seed(1)  # dropout
    per_sample, info = policy.forward(batch, reduction="none")
    per_sample.mean().backward()
    grads = torch.stack([p.grad.norm() for p in policy.model.action_head.parameters() if p.grad is not None])
    future_grads = torch.stack([p.grad.norm() for p in policy.model.world_model_head.parameters()])
    chunk = policy.predict_action_chunk({k: v for k, v in batch.items() if k != ACTION})
    return {
        "per_sample_loss": per_sample.detach(),
        "loss_terms": torch.tensor([info["action_loss"], info["future_loss"]]),
        "action_head_grad_norms": grads,
        "future_head_grad_norms": future_grads,
        "action_chunk": chunk,
    }


def test_golden_values():
    assert ARTIFACT.is_file(), f"Missing {ARTIFACT}: run `python {Path(__file__).relative_to(REPO_ROOT)}`."
    expected = load_file(ARTIFACT)
    actual = golden_values()
    assert set(actual) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(
            actual[key], value, rtol=1e-4, atol=1e-5, msg=f"golden value {key!r} changed"
        )


if __name__ == "__main__":
    torch.set_num_threads(1)
    values = golden_values()
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in values.items()}, ARTIFACT)
    print(f"Wrote {ARTIFACT}: " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in values.items()))
