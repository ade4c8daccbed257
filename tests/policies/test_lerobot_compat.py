"""Saving and publishing under the LeRobot after 0.6.1 (its main branch), emulated on the installed 0.6.1.

LeRobot main's `PreTrainedPolicy` has no `save_pretrained` of its own (`HubMixin.save_pretrained` calls
`_save_pretrained(save_directory)`, without `state_dict`), and `lerobot-train` publishes with
`publish_trained_model`: `policy.push_to_hub(...)` (one commit of what `save_pretrained` writes), then a card from
the free `lerobot.common.train_utils.generate_model_card(config, cfg, dataset_meta)`. The tests put stand-ins
with those signatures in place and check that both policies still save, load bit-exact, upload their pictures
and render their own card.
"""

from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from lerobot.common import train_utils
from lerobot.configs.default import DatasetConfig
from lerobot.configs.train import TrainPipelineConfig
from lerobot.policies.pretrained import PreTrainedPolicy
from lerobot.utils.constants import ACTION, OBS_STATE
from safetensors.torch import save_model
from test_stamo_vla_model import make_policy, raw_batch, tiny_config

from lerobot_stamo.policies.stamo import StamoPolicy
from lerobot_stamo.policies.stamo_vla import StamoVLAPolicy

GENERIC_CARD = "A generic LeRobot card"


@pytest.fixture
def main_save_path(monkeypatch) -> list[Path]:
    """`PreTrainedPolicy` with main's save signature; returns the folders its `_save_pretrained` wrote."""
    saved: list[Path] = []

    def _save_pretrained(self, save_directory: Path) -> None:  # main's signature: no `state_dict`
        self.config._save_pretrained(save_directory)
        save_model(self, str(save_directory / "model.safetensors"))
        saved.append(save_directory)

    if "save_pretrained" in vars(PreTrainedPolicy):  # 0.6.1's (main keeps HubMixin's)
        monkeypatch.delattr(PreTrainedPolicy, "save_pretrained")
    monkeypatch.setattr(PreTrainedPolicy, "_save_pretrained", _save_pretrained)
    return saved


@pytest.fixture
def hub(monkeypatch) -> list[dict[str, str]]:
    """A mocked Hub: `HfApi.create_repo` / `upload_folder` record each commit's files (name -> text or '<binary>')."""
    commits: list[dict[str, str]] = []

    def create_repo(self, repo_id, **kwargs):
        return type("RepoUrl", (), {"repo_id": repo_id})()

    def upload_folder(self, *, folder_path, allow_patterns=None, **kwargs):
        files = {}
        for path in Path(folder_path).rglob("*"):
            if path.is_file() and (allow_patterns is None or any(path.match(p) for p in allow_patterns)):
                files[path.name] = path.read_text() if path.suffix in (".md", ".json") else "<binary>"
        commits.append(files)
        return type("Commit", (), {"repo_url": type("Url", (), {"url": "https://huggingface.co/x"})()})()

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return commits


def publish_like_main(policy: PreTrainedPolicy, cfg: TrainPipelineConfig, monkeypatch) -> str:
    """The model commit and the card of LeRobot main's `publish_trained_model`; returns the card's text."""

    def lerobot_card(model_cfg, cfg=None, dataset_meta=None):  # main's free function, offline; 0.6.1 has none
        return ModelCard(f"---\nlibrary_name: lerobot\n---\n{GENERIC_CARD} for {model_cfg.type}")

    monkeypatch.setattr(train_utils, "generate_model_card", lerobot_card, raising=False)
    policy.push_to_hub(policy.config.repo_id, private=None, ignore_patterns=["*.tmp", "*.log"])
    return str(train_utils.generate_model_card(policy.config, cfg=cfg, dataset_meta=None))


def train_config(policy: PreTrainedPolicy, dataset_repo_id: str) -> TrainPipelineConfig:
    return TrainPipelineConfig(dataset=DatasetConfig(repo_id=dataset_repo_id), policy=policy.config, steps=10)


def trained_stamo(make_tiny_config, square_batch) -> StamoPolicy:
    torch.manual_seed(0)
    config = make_tiny_config(repo_id="someone/stamo-tiny", reconstruction_num_inference_steps=2)
    policy = StamoPolicy(config)
    policy.train()
    policy.forward(square_batch)  # fixes the reconstruction frames
    return policy.eval()


def test_stamo_saves_and_loads_with_mains_signature(main_save_path, make_tiny_config, square_batch, tmp_path):
    policy = trained_stamo(make_tiny_config, square_batch)
    policy.save_pretrained(tmp_path)
    assert main_save_path == [tmp_path]
    assert all((tmp_path / name).is_file() for name in ("reconstructions.png", "reconstruction_metrics.json"))
    loaded = StamoPolicy.from_pretrained(tmp_path)
    for name, tensor in policy.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name


def test_stamo_vla_saves_and_loads_with_mains_signature(main_save_path, tmp_path):
    policy = make_policy()
    policy.save_pretrained(tmp_path)
    assert main_save_path == [tmp_path]
    loaded = StamoVLAPolicy.from_pretrained(tmp_path)
    batch = {k: v for k, v in raw_batch(b=2).items() if k != ACTION}
    assert torch.equal(policy.predict_action_chunk(batch), loaded.predict_action_chunk(batch))


def test_stamo_publish_like_main_uploads_pictures_and_its_card(
    main_save_path, hub, make_tiny_config, square_batch, monkeypatch
):
    policy = trained_stamo(make_tiny_config, square_batch)
    card = publish_like_main(policy, train_config(policy, "someone/squares"), monkeypatch)
    assert len(hub) == 1
    model_files = {"config.json", "model.safetensors", "reconstructions.png", "reconstruction_metrics.json"}
    assert model_files <= hub[0].keys()
    assert GENERIC_CARD not in card
    for text in ("StaMo", "PSNR", "reconstructions.png", "someone/squares", "Steps: 10"):
        assert text in card, text


def test_stamo_vla_publish_like_main_renders_its_card(main_save_path, hub, monkeypatch):
    policy = make_policy(repo_id="someone/stamo-vla-tiny")
    card = publish_like_main(policy, train_config(policy, "someone/pickcube"), monkeypatch)
    assert {"config.json", "model.safetensors"} <= set(hub[0])
    for text in ("World-model target: `state`", "someone/pickcube", "Steps: 10"):
        assert text in card, text
    # A config that was not pushed by one of these policies keeps LeRobot's card.
    assert "World-model target" not in str(train_utils.generate_model_card(make_policy().config))


def test_save_extras_only_on_the_main_process(make_tiny_config, square_batch, tmp_path, monkeypatch):
    """Under several processes LeRobot main calls `save_pretrained` on every rank: only rank 0 writes extras."""
    import lerobot_stamo.policies.pretrained as pretrained

    policy = trained_stamo(make_tiny_config, square_batch)
    monkeypatch.setattr(pretrained, "_is_main_process", lambda: False)
    policy.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and not (tmp_path / "reconstructions.png").exists()


def test_stamo_vla_delta_indices_per_modality():
    """LeRobot main loads frames t and t+k of the cameras (online targets) but only frame t of the state."""
    online = tiny_config(stamo_path="someone/stamo", future_horizon=2, labelled=False)
    assert online.image_observation_delta_indices == online.observation_delta_indices == [0, 2]
    assert online.state_observation_delta_indices == [0]
    labelled = tiny_config()  # targets from the dataset's columns: no time axis at all
    assert labelled.image_observation_delta_indices is labelled.state_observation_delta_indices is None

    policy = make_policy()
    batch = raw_batch()
    with_time_axis = batch | {OBS_STATE: batch[OBS_STATE][:, None]}  # (B, 1, 6), as main collates it
    torch.manual_seed(0)
    loss, _ = policy.forward(batch)
    torch.manual_seed(0)
    assert torch.equal(policy.forward(with_time_axis)[0], loss)
