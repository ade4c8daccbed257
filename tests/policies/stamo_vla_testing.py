"""Helpers of the stamo_vla tests: a tiny, randomly initialised SmolVLM-family model written in the Hub layout."""

from pathlib import Path

import torch

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
