"""What every policy of this plug-in does the same way when loading, saving and publishing a checkpoint."""

import contextlib
import functools
import io
import sys
import weakref
from pathlib import Path
from typing import Any

from lerobot.configs import PreTrainedConfig
from lerobot.policies.pretrained import PreTrainedPolicy

from lerobot_stamo.errors import check_checkpoint, check_resume

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
        check_resume(pretrained_name_or_path)  # `lerobot-train --resume=true` with a preset as --config_path
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


# The policies being pushed, by `id` of their config: LeRobot's free `generate_model_card(config)` renders theirs.
_PUSHED: "weakref.WeakValueDictionary[int, Any]" = weakref.WeakValueDictionary()


def _is_main_process() -> bool:
    """Rank 0, or the only process (LeRobot after 0.6.1 saves on every rank of a multi-process run)."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


class HubCompatMixin:
    """Saving and publishing that work alike under LeRobot 0.6.1 and the LeRobot after it.

    - `_save_pretrained` takes and passes on whatever LeRobot's own takes (0.6.1: `(save_directory,
      state_dict=None)`, a state dict gathered by an FSDP caller; after 0.6.1: `(save_directory)`, which
      gathers it itself), then writes the policy's `save_extras` files on the main process.
    - After 0.6.1, `lerobot-train` publishes with `publish_trained_model`: the model commit is `push_to_hub`
      (every file `_save_pretrained` wrote, extras included) and the card is rendered by LeRobot's free
      `generate_model_card(config, cfg, dataset_meta)`, which knows no plug-in. `push_to_hub` makes that
      function render this policy's own `generate_model_card` for its config.

    Put it before `PreTrainedPolicy`: `class P(StrictLoadingMixin, HubCompatMixin, PreTrainedPolicy)`.
    """

    def _save_pretrained(self, save_directory: Path, *args: Any, **kwargs: Any) -> None:
        super()._save_pretrained(save_directory, *args, **kwargs)
        if _is_main_process():
            self.save_extras(Path(save_directory))

    def save_extras(self, save_directory: Path) -> None:
        """Files written beside the config and weights of every save (none by default)."""

    def push_to_hub(self, repo_id: str, **kwargs: Any):
        """LeRobot's `push_to_hub` (one commit of what `save_pretrained` writes); see the class docstring."""
        _PUSHED[id(self.config)] = self
        _install_card_hook()
        return super().push_to_hub(repo_id, **kwargs)


def _install_card_hook() -> None:
    """Makes LeRobot's free `generate_model_card`, where it has one, render the card of a policy being pushed."""
    try:
        from lerobot.common import train_utils
    except ImportError:
        return
    lerobot_card = getattr(train_utils, "generate_model_card", None)
    if lerobot_card is None or getattr(lerobot_card, "renders_stamo_cards", False):
        return

    @functools.wraps(lerobot_card)
    def generate_model_card(model_cfg, cfg=None, dataset_meta=None, *args, **kwargs):
        policy = _PUSHED.get(id(model_cfg))
        if policy is None or policy.config is not model_cfg:
            return lerobot_card(model_cfg, cfg, dataset_meta, *args, **kwargs)
        repo = cfg.dataset.repo_id if cfg is not None else None
        c = model_cfg
        return policy.generate_model_card(repo, c.type, c.license, c.tags, cfg=cfg, dataset_meta=dataset_meta)

    generate_model_card.renders_stamo_cards = True
    train_utils.generate_model_card = generate_model_card


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

    LeRobot's card context (training details, dataset) is built by its own `build_card_context`; the policy
    adds its fields as keyword arguments. No Hub request is made (LeRobot's card validation is one).
    """
    from importlib.resources import files

    from huggingface_hub import ModelCard, ModelCardData

    try:  # LeRobot after 0.6.1
        from lerobot.common.train_utils import build_card_context
    except ImportError:  # LeRobot 0.6.1
        from lerobot.policies.pretrained import _build_card_context as build_card_context

    card_data = ModelCardData(
        license=license or "apache-2.0",
        library_name="lerobot",
        pipeline_tag="robotics",
        tags=sorted(set(tags or []) | {"robotics", "lerobot", "stamo"} | extra_tags),
        model_name=model_type,
        datasets=dataset_repo_id,
    )
    from lerobot_stamo.cards import DOCS_URL, PROJECT_URL

    base = build_card_context(cfg, dataset_meta, config.input_features, config.output_features)
    base |= {"project_url": PROJECT_URL, "docs_url": DOCS_URL}  # the template links back to the docs
    template = files(template_package).joinpath("model_card.md").read_text(encoding="utf-8")
    return ModelCard.from_template(
        card_data, template_str=template, **(base | {"dataset_repo_id": dataset_repo_id} | context)
    )
