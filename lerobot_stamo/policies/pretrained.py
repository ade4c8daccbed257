"""What every policy of this plug-in does the same way when loading a checkpoint."""

import contextlib
import io
import sys
from pathlib import Path

from lerobot.configs import PreTrainedConfig
from lerobot.policies.pretrained import PreTrainedPolicy

from lerobot_stamo.errors import check_checkpoint

LEROBOT_LOAD_LINE = "Loading weights from local directory\n"


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
            StamoInputError: If a local checkpoint folder is missing or its files are damaged.
        """
        check_checkpoint(pretrained_name_or_path, "checkpoint")
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
        # LeRobot's marker of "weights come from a checkpoint" (as `lerobot-train --policy.path` sets it): parts
        # are then rebuilt from the configurations saved in the checkpoint, not loaded from their sources.
        config.pretrained_path = Path(pretrained_name_or_path)
        # LeRobot prints "Loading weights from local directory" on every local load, between progress bars.
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                return super().from_pretrained(pretrained_name_or_path, config=config, **kwargs)
        finally:
            sys.stdout.write(printed.getvalue().replace(LEROBOT_LOAD_LINE, ""))

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


def render_model_card(
    template_package: str,
    config: PreTrainedConfig,
    dataset_repo_id: str,
    model_type: str,
    license: str | None,
    tags: list[str] | None,
    extra_tags: set[str],
    cfg=None,
    dataset_meta=None,
    **context,
):
    """A Hub model card from the `model_card.md` template of a policy package.

    LeRobot's card context (training details, dataset) is built by its own `_build_card_context`; the policy
    adds its fields as keyword arguments. No Hub request is made (LeRobot's card validation is one).
    """
    from importlib.resources import files

    from huggingface_hub import ModelCard, ModelCardData
    from lerobot.policies.pretrained import _build_card_context

    card_data = ModelCardData(
        license=license or "apache-2.0",
        library_name="lerobot",
        pipeline_tag="robotics",
        tags=sorted(set(tags or []) | {"robotics", "lerobot", "stamo"} | extra_tags),
        model_name=model_type,
        datasets=dataset_repo_id,
    )
    base = _build_card_context(cfg, dataset_meta, config.input_features, config.output_features)
    template = files(template_package).joinpath("model_card.md").read_text(encoding="utf-8")
    return ModelCard.from_template(
        card_data, template_str=template, **(base | {"dataset_repo_id": dataset_repo_id} | context)
    )
