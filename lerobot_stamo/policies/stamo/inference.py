"""A trained `stamo` checkpoint, opened to encode frames: the one way every consumer opens it.

The labeller, the probe, the `stamo_pseudo_action` processor step, the frozen encoder of `stamo_vla`,
`lerobot-stamo-interpolate` and the paper pipeline all read a checkpoint's config first (`load_stamo_config`:
a clear error if it is not a `stamo` checkpoint, before any weights are read), then the weights, frozen
(`open_frozen_stamo`). `checkpoint_identity` names the weights a labelling or a prediction came from.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from lerobot_stamo.errors import check_checkpoint

from .configuration_stamo import StamoConfig
from .modeling_stamo import StamoPolicy


def load_stamo_config(path: str, revision: str | None = None, flag: str = "--policy.path"):
    """Loads a checkpoint's config and checks that it is a `stamo` policy (no weights loaded).

    `flag` names the option that gave `path` in messages (`--policy.stamo_path` for stamo_vla).

    Raises:
        TypeError: If the checkpoint is another policy type.
    """
    from lerobot.configs import PreTrainedConfig

    if not path:
        raise ValueError(f"{flag} is required: a stamo checkpoint folder or Hub id.")
    check_checkpoint(path, flag)
    try:
        config = PreTrainedConfig.from_pretrained(path, revision=revision)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"{flag}={path!r} has no config.json: point it at a `stamo` checkpoint (e.g. "
            f"outputs/train/.../checkpoints/last/pretrained_model) or a Hub id. ({err})"
        ) from err
    if not isinstance(config, StamoConfig):
        raise TypeError(
            f"{flag}={path!r} is a {getattr(config, 'type', type(config).__name__)!r} checkpoint, not a "
            "'stamo' one: StaMo states and latent motion need the StaMo encoder. Train one with `lerobot-train "
            f"--policy.type=stamo` and pass its pretrained_model folder as {flag}."
        )
    return config


def checkpoint_identity(path: str, revision: str | None = None) -> dict[str, Any]:
    """Where the weights come from: path or Hub id, resolved commit (Hub) and sha256 of the weights."""
    from huggingface_hub import hf_hub_download

    local = Path(path)
    if local.is_dir():
        weights, commit = local / "model.safetensors", None
        source = str(local.resolve())
    else:
        weights = Path(hf_hub_download(path, "model.safetensors", revision=revision))
        parts = weights.parts
        commit = parts[parts.index("snapshots") + 1] if "snapshots" in parts else None
        source = path
    digest = hashlib.sha256()
    with open(weights, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {
        "policy_path": source,
        "policy_revision": revision,
        "policy_commit": commit,
        "weights_sha256": digest.hexdigest(),
    }


def open_frozen_stamo(
    path: str, revision: str | None = None, device: str | None = None, config: StamoConfig | None = None
) -> StamoPolicy:
    """The `stamo` checkpoint at `path` (folder or Hub id), frozen for encoding (`StamoPolicy.for_inference`).

    Args:
        path: The checkpoint folder or Hub id.
        revision: Hub revision of the checkpoint.
        device: Device to encode on (default: the checkpoint's `device`).
        config: The checkpoint's config as already read (and possibly overridden) by the caller; default:
            `load_stamo_config(path, revision)`.
    """
    config = config if config is not None else load_stamo_config(path, revision)
    if device:
        config.device = device
    return StamoPolicy.from_pretrained(path, config=config, revision=revision).for_inference()
