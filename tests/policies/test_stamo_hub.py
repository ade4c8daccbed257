"""push_to_hub of a trained stamo against a mocked HfApi: the uploaded files and the StaMo model card."""

from pathlib import Path
from unittest.mock import MagicMock, patch

from lerobot.configs.default import DatasetConfig
from lerobot.configs.train import TrainPipelineConfig

from lerobot_stamo.cards import DOCS_URL
from lerobot_stamo.policies.stamo import StamoPolicy


def test_push_model_to_hub_uploads_weights_card_and_reconstructions(make_tiny_config, square_batch):
    config = make_tiny_config(repo_id="someone/stamo-tiny", reconstruction_num_inference_steps=2)
    policy = StamoPolicy(config)
    policy.train()
    policy.forward(square_batch)  # fixes the reconstruction frames
    cfg = TrainPipelineConfig(dataset=DatasetConfig(repo_id="someone/squares"), policy=config, steps=10)

    uploaded: dict[str, str] = {}

    def fake_upload_folder(*, folder_path, allow_patterns, **kwargs):
        for path in Path(folder_path).rglob("*"):
            if path.is_file() and any(path.match(p) for p in allow_patterns):
                uploaded[path.name] = path.read_text() if path.suffix in (".md", ".json") else "<binary>"
        return MagicMock(repo_url=MagicMock(url="https://huggingface.co/someone/stamo-tiny"))

    with patch("lerobot_stamo.policies.stamo.modeling_stamo.HfApi") as api_cls:
        api = api_cls.return_value
        api.create_repo.return_value = MagicMock(repo_id="someone/stamo-tiny")
        api.upload_folder.side_effect = fake_upload_folder
        policy.push_model_to_hub(cfg)

    api.create_repo.assert_called_once_with(repo_id="someone/stamo-tiny", private=None, exist_ok=True)
    assert api.upload_folder.call_args.kwargs["repo_id"] == "someone/stamo-tiny"
    assert {
        "config.json",
        "model.safetensors",
        "train_config.json",
        "README.md",
        "reconstructions.png",
        "reconstruction_metrics.json",
    } <= set(uploaded)
    card = uploaded["README.md"]
    for text in (
        f"{DOCS_URL}/stamo.md",  # the card links back to the docs
        "StaMo",
        "2 x 32",
        "someone/squares",
        "PSNR",
        "SSIM",
        "reconstructions.png",
        "Steps: 10",
        'StamoPolicy.from_pretrained("someone/stamo-tiny")',
        "stamo_vla",
    ):
        assert text in card, text
    assert "library_name: lerobot" in card and "- stamo" in card


def test_model_card_without_training_info(make_tiny_config):
    card = StamoPolicy(make_tiny_config()).generate_model_card("x/y", "stamo", None, None)
    assert "No reconstructions were computed" in str(card) and "x/y" in str(card)
