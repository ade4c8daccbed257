"""Stand-in models and data, made offline: what the tests, the benchmarks and the demo train and load instead
of Hub weights and datasets (the Hub folder layout, written with `save_pretrained`).

- `record_square_dataset`: a LeRobotDataset of two cameras filming coloured squares that move;
- `tiny_stamo_checkpoint`: a tiny `stamo` checkpoint for those cameras (its parts from
  `policies/stamo/tiny.py`, which writes the tiny pretrained DINOv2 / SD3 folders);
- `write_tiny_smolvlm`: a tiny, randomly initialised SmolVLM-family model and processor (for `stamo_vla`'s
  `vlm` backbone).
"""

import json
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from lerobot.utils.constants import ACTION, OBS_IMAGES, OBS_STATE

if TYPE_CHECKING:
    from lerobot_stamo.policies.stamo import StamoPolicy

CAMERAS = (f"{OBS_IMAGES}.front", f"{OBS_IMAGES}.wrist")
DATASET_REPO_ID = "local/stamo_squares"
IMAGE_HW = 64
TINY_PRESET = Path(__file__).resolve().parent / "configs" / "stamo_tiny.json"


def tiny_policy_fields() -> dict:
    """The model sizes of the `policy` section of configs/stamo_tiny.json (without the pretrained paths)."""
    fields = json.loads(TINY_PRESET.read_text())["policy"]
    return {k: v for k, v in fields.items() if k not in ("type", "backbone", "decoder_path", "push_to_hub")}


def square_frame(t: float, color: tuple[int, int, int], size: int = IMAGE_HW) -> np.ndarray:
    """A (H, W, 3) uint8 frame with a coloured square at a position moving with `t` in [0, 1]."""
    frame = np.full((size, size, 3), 30, dtype=np.uint8)
    side = size // 4
    x = int(t * (size - side))
    y = int((1 - t) * (size - side) * 0.5 + size * 0.2)
    frame[y : y + side, x : x + side] = color
    return frame


def record_square_dataset(root: Path, episodes: int = 2, frames: int = 10):
    """Records a LeRobotDataset v3 (images stored as PNG, not video) and returns it."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    features = {
        CAMERAS[0]: {
            "dtype": "image",
            "shape": (IMAGE_HW, IMAGE_HW, 3),
            "names": ["height", "width", "channels"],
        },
        CAMERAS[1]: {
            "dtype": "image",
            "shape": (IMAGE_HW, IMAGE_HW, 3),
            "names": ["height", "width", "channels"],
        },
        OBS_STATE: {"dtype": "float32", "shape": (6,), "names": [f"j{i}" for i in range(6)]},
        ACTION: {"dtype": "float32", "shape": (6,), "names": [f"j{i}" for i in range(6)]},
    }
    ds = LeRobotDataset.create(DATASET_REPO_ID, fps=10, features=features, root=root, use_videos=False)
    colors = [(220, 40, 40), (40, 200, 60)]
    for ep in range(episodes):
        for i in range(frames):
            t = i / (frames - 1)
            joints = np.full(6, t, dtype=np.float32) + ep
            ds.add_frame(
                {
                    CAMERAS[0]: square_frame(t, colors[ep % 2]),
                    CAMERAS[1]: square_frame(1 - t, colors[(ep + 1) % 2]),
                    OBS_STATE: joints,
                    ACTION: joints + 0.1,
                    "task": "move the square",
                }
            )
        ds.save_episode()
    ds.finalize()
    return ds


class TinyCheckpoint(NamedTuple):
    """What `tiny_stamo_checkpoint` wrote: the checkpoint folder, the policy it holds and its part folders."""

    path: Path
    policy: "StamoPolicy"
    parts: dict[str, str]


def tiny_stamo_checkpoint(
    root: Path, seed: int = 0, train_batch: dict | None = None, image_hw: int = IMAGE_HW
) -> TinyCheckpoint:
    """Writes a tiny `stamo` checkpoint for two `image_hw` x `image_hw` cameras (`CAMERAS`) with `save_pretrained`.

    Args:
        root: Output folder; gets `parts/` (tiny DINOv2 + SD3 folders) and `pretrained_model/`.
        seed: Seed of the parts and of the policy's random initialisation.
        train_batch: If given, the policy takes 2 AdamW steps on it before it is saved, so its weights
            differ from any fresh initialisation.
        image_hw: Size of the cameras' frames.

    Returns:
        The checkpoint folder, the (eval-mode) policy saved there and `{"backbone": ..., "decoder_path": ...}`.
    """
    import torch
    from lerobot.configs.types import FeatureType, PolicyFeature

    from lerobot_stamo.policies.stamo import StamoConfig, StamoPolicy
    from lerobot_stamo.policies.stamo.tiny import write_tiny_pretrained

    root = Path(root)
    parts = write_tiny_pretrained(root / "parts", seed=seed)
    config = StamoConfig(
        **tiny_policy_fields(),
        **parts,
        device="cpu",
        push_to_hub=False,
        reconstruction_on_save=False,
        input_features={k: PolicyFeature(FeatureType.VISUAL, (3, image_hw, image_hw)) for k in CAMERAS},
        output_features={},
    )
    torch.manual_seed(seed)
    policy = StamoPolicy(config)
    if train_batch is not None:
        optimizer = torch.optim.AdamW(policy.get_optim_params(), lr=1e-3)
        for _ in range(2):
            loss, _ = policy.forward(train_batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    path = root / "pretrained_model"
    policy.eval().save_pretrained(path)
    return TinyCheckpoint(path, policy, parts)


def write_paper_size_parts(root: str | Path, seed: int = 0) -> dict[str, str]:
    """Writes DINOv2-with-registers-base and SD3-medium-shaped decoder folders with random weights (the paper's
    compute without its weights, for speed and memory figures).

    Like `tiny.write_tiny_pretrained` (save_pretrained in the Hub layout, loaded by path through the same
    `from_pretrained` calls), with the published architectures of `facebook/dinov2-with-registers-base` and
    `stabilityai/stable-diffusion-3-medium-diffusers`.
    """
    import torch
    from diffusers import AutoencoderKL, SD3Transformer2DModel
    from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    from lerobot_stamo.policies.stamo.tiny import write_scheduler_and_index

    root = Path(root)
    backbone_dir, decoder_dir = root / "dinov2", root / "sd3"
    torch.manual_seed(seed)
    # The config defaults are the base model (768 hidden, 12 layers, patch 14, 4 registers).
    Dinov2WithRegistersModel(Dinov2WithRegistersConfig(image_size=224)).save_pretrained(backbone_dir)
    with torch.device("cpu"):
        transformer = SD3Transformer2DModel(
            sample_size=128,
            patch_size=2,
            in_channels=16,
            num_layers=24,
            attention_head_dim=64,
            num_attention_heads=24,
            joint_attention_dim=4096,
            caption_projection_dim=1536,
            pooled_projection_dim=2048,
            out_channels=16,
            pos_embed_max_size=192,
        )
    # Saved in fp16 like the Hub repo (half the disk); `from_pretrained` loads it back in fp32.
    transformer.to(torch.float16).save_pretrained(decoder_dir / "transformer")
    del transformer
    AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=16,
        norm_num_groups=32,
        sample_size=1024,
        shift_factor=0.0609,
        scaling_factor=1.5305,
        use_quant_conv=False,
        use_post_quant_conv=False,
    ).save_pretrained(decoder_dir / "vae")
    write_scheduler_and_index(decoder_dir)
    return {"backbone": str(backbone_dir), "decoder_path": str(decoder_dir)}


def paper_encoder_checkpoint(root: Path, image_hw: int) -> Path:
    """A `stamo` checkpoint with the paper's encoder sizes and random weights, for two `image_hw` cameras: DINOv2-B/14
    with registers + the 768-d, 6-layer compressor to 2 x 1024 tokens (the real compute of labelling; the decoder
    is the tiny one, unused). Written to `root/ckpt`."""
    import torch
    from lerobot.configs.types import FeatureType, PolicyFeature
    from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    from lerobot_stamo.paths import preset
    from lerobot_stamo.policies.stamo import StamoConfig, StamoPolicy
    from lerobot_stamo.policies.stamo.tiny import write_tiny_pretrained

    root = Path(root)
    torch.manual_seed(0)
    backbone = root / "dinov2_base_random"
    Dinov2WithRegistersModel(Dinov2WithRegistersConfig(image_size=224)).save_pretrained(backbone)
    paper = json.loads(preset("stamo_paper.json").read_text())["policy"]
    encoder_keys = ("compressor_", "compression_", "context_dim", "num_tokens", "token_dim")
    config = StamoConfig(
        **{k: v for k, v in paper.items() if k.startswith(encoder_keys)},
        backbone=str(backbone),
        decoder_path=write_tiny_pretrained(root / "pretrained", seed=0)["decoder_path"],
        project_state=True,
        image_size=224,
        device="cpu",
        push_to_hub=False,
        reconstruction_on_save=False,
        input_features={k: PolicyFeature(FeatureType.VISUAL, (3, image_hw, image_hw)) for k in CAMERAS},
        output_features={},
    )
    StamoPolicy(config).save_pretrained(root / "ckpt")
    return root / "ckpt"


# The special tokens of SmolVLM2 that its processor and LeRobot's SmolVLA read (`tokenizer.image_token_id`, ...).
SMOLVLM_SPECIAL_TOKENS = {
    "fake_image_token": "<fake_token_around_image>",
    "image_token": "<image>",
    "global_image_token": "<global-img>",
    "end_of_utterance_token": "<end_of_utterance>",
}
TRAINING_SENTENCES = (
    "pick up the red cube and place it in the bowl",
    "push the blue square to the left",
    "move the arm to the green target",
    "open the drawer, then close it again",
    "stack the yellow block on top of the red one",
    "User: What do you see in this image? Assistant: A robot arm on a table.",
)


def _tiny_tokenizer():
    """A byte-level BPE tokenizer (400 tokens) trained on a few sentences, with SmolVLM's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<|endoftext|>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *SMOLVLM_SPECIAL_TOKENS.values()]
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(TRAINING_SENTENCES, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|im_start|>",
        eos_token="<end_of_utterance>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
        extra_special_tokens=SMOLVLM_SPECIAL_TOKENS,
    )


def write_tiny_smolvlm(path: Path, image_size: int = 64) -> Path:
    """Writes a tiny random SmolVLM (model, processor, tokenizer) into `path`, in the Hub folder layout.

    `AutoModelForImageTextToText`, `AutoProcessor` and `AutoTokenizer` load it by path, offline: it stands in
    for `HuggingFaceTB/SmolVLM2-500M-Video-Instruct` (a SigLIP-style vision tower, a pixel-shuffle connector and
    a llama language model) at ~0.25 M parameters.

    Args:
        path: The folder to write (created if needed).
        image_size: Side of the vision tower's square input; a multiple of 32 (patch 16, pixel shuffle 2).

    Returns:
        `path`.
    """
    from transformers import (
        SmolVLMConfig,
        SmolVLMForConditionalGeneration,
        SmolVLMImageProcessor,
        SmolVLMProcessor,
        SmolVLMVideoProcessor,
    )

    patch_size, scale_factor = 16, 2
    if image_size % (patch_size * scale_factor):
        raise ValueError(f"`image_size` must be a multiple of {patch_size * scale_factor}, got {image_size}.")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)

    tokenizer = _tiny_tokenizer()
    sizes = {"size": {"longest_edge": image_size}, "max_image_size": {"longest_edge": image_size}}
    processor = SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(**sizes, do_image_splitting=False),
        tokenizer=tokenizer,
        video_processor=SmolVLMVideoProcessor(**sizes),
        image_seq_len=(image_size // patch_size // scale_factor) ** 2,
    )
    config = SmolVLMConfig(
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": patch_size,
        },
        text_config={
            "model_type": "llama",
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "max_position_embeddings": 512,
        },
        scale_factor=scale_factor,
        image_token_id=tokenizer.image_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    SmolVLMForConditionalGeneration(config).save_pretrained(path)
    processor.save_pretrained(path)
    return path
