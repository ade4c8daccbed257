"""What every policy of this plug-in does the same way when loading a checkpoint."""

from pathlib import Path

from lerobot.configs import PreTrainedConfig
from lerobot.policies.pretrained import PreTrainedPolicy


class StrictLoadingMixin:
    """Loading for a LeRobot policy that refuses checkpoints of another type and weights that do not match.

    LeRobot resolves `--policy.path` to whatever type `config.json` names and only logs missing or
    unexpected weight keys; a policy with this mixin first (`class P(StrictLoadingMixin, PreTrainedPolicy)`)
    raises a clear error for both instead.
    """

    @classmethod
    def from_pretrained(
        cls, pretrained_name_or_path: str | Path, *, config: PreTrainedConfig | None = None, **kwargs
    ):
        """Loads a checkpoint of this policy type (a folder or Hub id with `config.json` and weights).

        Raises:
            TypeError: If the checkpoint belongs to another policy type.
        """
        if config is None:
            hub_kwargs = {
                k: kwargs[k]
                for k in ("force_download", "token", "cache_dir", "local_files_only", "revision")
                if k in kwargs
            }
            config = PreTrainedConfig.from_pretrained(pretrained_name_or_path, **hub_kwargs)
        if not isinstance(config, cls.config_class):
            raise TypeError(
                f"{pretrained_name_or_path} is a {config.type!r} checkpoint, not a {cls.name!r} one. Use "
                f"`--policy.path` with a {cls.name} checkpoint, or load it with the {config.type!r} policy "
                f"class (`--policy.type={config.type}`)."
            )
        return super().from_pretrained(pretrained_name_or_path, config=config, **kwargs)

    @classmethod
    def _load_as_safetensor(cls, model: PreTrainedPolicy, model_file: str, map_location: str, strict: bool):
        """Loads the weights and fails loudly on missing/unexpected keys (LeRobot only logs them)."""
        from lerobot.utils.device_utils import resolve_safetensors_device
        from safetensors.torch import load_model

        missing, unexpected = load_model(
            model, model_file, strict=False, device=resolve_safetensors_device(map_location)
        )
        if missing or unexpected:
            raise ValueError(
                f"{model_file} does not match the {cls.name} model built from its config.json: missing keys "
                f"{sorted(missing)[:5]} ({len(missing)}), unexpected keys {sorted(unexpected)[:5]} "
                f"({len(unexpected)}). Was it saved with other sizes or options, or edited by hand?"
            )
        return model
