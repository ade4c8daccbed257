"""Golden values: a seeded tiny stamo's loss, gradients and `encode` output on a fixed batch.

Protects the model from silent changes (like LeRobot's backward-compatibility artifacts). After an
*intended* change of the model or of the tiny preset, regenerate the artifact and commit it:

    .venv/bin/python tests/policies/test_stamo_golden.py
"""

import tempfile
from pathlib import Path

import numpy as np
import torch
from cli_helpers import REPO_ROOT
from lerobot.configs.types import FeatureType, PolicyFeature  # noqa: E402
from safetensors.torch import load_file, save_file

from lerobot_stamo.policies.stamo import StamoConfig, StamoPolicy  # noqa: E402
from lerobot_stamo.policies.stamo.tiny import write_tiny_pretrained  # noqa: E402
from lerobot_stamo.stand_ins import CAMERAS, square_frame, tiny_policy_fields

ARTIFACT = REPO_ROOT / "tests" / "artifacts" / "stamo_tiny_golden.safetensors"


def golden_values(pretrained_root: Path) -> dict[str, torch.Tensor]:
    """Builds the seeded tiny policy and returns its outputs on the fixed batch."""
    paths = write_tiny_pretrained(pretrained_root, seed=0)
    features = {key: PolicyFeature(FeatureType.VISUAL, (3, 64, 64)) for key in CAMERAS}
    config = StamoConfig(device="cpu", input_features=features, **tiny_policy_fields(), **paths)
    torch.manual_seed(0)
    policy = StamoPolicy(config)
    batch = {
        key: torch.from_numpy(np.stack([square_frame(t, (200, 60 + 80 * c, 40)) for t in (0.0, 0.5, 1.0)]))
        .permute(0, 3, 1, 2)
        .float()
        / 255.0
        for c, key in enumerate(CAMERAS)
    }
    policy.train()
    torch.manual_seed(1)
    per_sample, _ = policy.forward(batch, reduction="none")
    per_sample.mean().backward()
    grads = torch.stack([p.grad.norm() for p in policy.model.compressor.parameters() if p.grad is not None])
    policy.eval()
    return {
        "per_sample_loss": per_sample.detach(),
        "compressor_grad_norms": grads,
        "encode_front": policy.encode(batch[CAMERAS[0]]),
    }


def test_golden_values(tmp_path):
    assert ARTIFACT.is_file(), f"Missing {ARTIFACT}: run `python {Path(__file__).relative_to(REPO_ROOT)}`."
    expected = load_file(ARTIFACT)
    actual = golden_values(tmp_path)
    assert set(actual) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(
            actual[key], value, rtol=1e-4, atol=1e-5, msg=f"golden value {key!r} changed"
        )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        values = golden_values(Path(tmp))
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in values.items()}, ARTIFACT)
    print(f"Wrote {ARTIFACT}: " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in values.items()))
