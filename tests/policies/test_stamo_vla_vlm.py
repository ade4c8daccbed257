"""The `vlm` trunk of stamo_vla on a tiny random SmolVLM written by path (offline, CPU)."""

import pytest
import torch
from lerobot.processor import TokenizerProcessorStep, TransitionKey
from lerobot.processor.converters import create_transition
from lerobot.utils.constants import OBS_LANGUAGE_ATTENTION_MASK, OBS_LANGUAGE_TOKENS

from lerobot_stamo.policies.stamo_vla.configuration_stamo_vla import StamoVLAConfig
from lerobot_stamo.policies.stamo_vla.vlm import VLMTrunk
from lerobot_stamo.stand_ins import write_tiny_smolvlm

STATE_DIM = 3
NUM_QUERIES = 4
TASKS = ["pick up the red cube and place it in the bowl", "push the blue square"]


@pytest.fixture(scope="module")
def vlm_path(tmp_path_factory) -> str:
    return str(write_tiny_smolvlm(tmp_path_factory.mktemp("tiny_smolvlm")))


@pytest.fixture
def make_trunk(vlm_path):
    """Builds a VLMTrunk on the tiny SmolVLM (float32, all 4 layers); keyword arguments override config fields."""

    def make(state_dim: int = STATE_DIM, seed: int = 0, **overrides) -> VLMTrunk:
        fields = {"vlm_path": vlm_path, "vlm_dtype": "float32", "vlm_num_layers": None, **overrides}
        config = StamoVLAConfig(
            backbone="vlm", chunk_size=NUM_QUERIES, n_action_steps=NUM_QUERIES, device="cpu", **fields
        )
        torch.manual_seed(seed)
        return VLMTrunk(config, state_dim, NUM_QUERIES)

    return make


def tokenize(vlm_path: str, tasks: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens and mask exactly as LeRobot's pipeline makes them with the VLM's own tokenizer."""
    step = TokenizerProcessorStep(tokenizer_name=vlm_path, max_length=max_length, padding="max_length")
    observation = step(create_transition(observation={}, complementary_data={"task": tasks}))[
        TransitionKey.OBSERVATION
    ]
    return observation[OBS_LANGUAGE_TOKENS], observation[OBS_LANGUAGE_ATTENTION_MASK]


def inputs(vlm_path: str, max_length: int = 16, seed: int = 0) -> tuple:
    """Two cameras (one not square: resized with padding), a state and two padded instructions."""
    g = torch.Generator().manual_seed(seed)
    images = [torch.rand(2, 3, 48, 64, generator=g), torch.rand(2, 3, 64, 64, generator=g)]
    state = torch.randn(2, STATE_DIM, generator=g)
    return images, state, *tokenize(vlm_path, TASKS, max_length)


def grad_norm(param: torch.nn.Parameter) -> float:
    return 0.0 if param.grad is None else param.grad.abs().sum().item()


def test_lora_trunk_outputs_and_gradients(make_trunk, vlm_path):
    trunk = make_trunk()  # defaults: LoRA on q/k/v/o, frozen vision tower
    images, state, tokens, mask = inputs(vlm_path)
    assert not mask.all(), "the two instructions must be padded differently"
    out = trunk(images, state, tokens, mask)
    assert out.shape == (2, NUM_QUERIES, trunk.hidden_size) and trunk.hidden_size == 64
    assert out.dtype == torch.float32 and torch.isfinite(out).all()

    out.square().mean().backward()
    params = dict(trunk.named_parameters())
    lora_b = [p for name, p in params.items() if "lora_B" in name]
    assert len(lora_b) == 4 * 4  # 4 layers x q/k/v/o
    assert all(p.requires_grad and grad_norm(p) > 0 for p in lora_b)  # lora_A's grads are 0 while B is 0
    assert grad_norm(trunk.queries) > 0 and grad_norm(trunk.state_proj.weight) > 0
    trainable = {name for name, p in params.items() if p.requires_grad}
    assert all("lora_" in name or name.startswith(("queries", "state_proj")) for name in trainable)
    frozen = [*trunk.vision.parameters(), *trunk.connector.parameters()]
    assert all(not p.requires_grad and p.grad is None for p in frozen)
    assert trunk.training and not trunk.vision.training and not trunk.connector.training


def test_full_finetuning_trains_language_model_and_vision(make_trunk, vlm_path):
    trunk = make_trunk(use_lora=False, freeze_vision_encoder=False)
    assert not any("lora_" in name for name, _ in trunk.named_parameters())
    trunk(*inputs(vlm_path)).square().mean().backward()
    lm = trunk.language_model
    for param in (
        lm.layers[0].self_attn.q_proj.weight,
        lm.layers[-1].mlp.down_proj.weight,
        lm.embed_tokens.weight,
    ):
        assert param.requires_grad and grad_norm(param) > 0
    assert grad_norm(trunk.vision.embeddings.patch_embedding.weight) > 0
    assert grad_norm(trunk.connector.modality_projection.proj.weight) > 0
    assert trunk.vision.training


def test_padding_does_not_change_queries(make_trunk, vlm_path):
    trunk = make_trunk().eval()
    images, state, tokens, mask = inputs(vlm_path, max_length=16)
    _, _, long_tokens, long_mask = inputs(vlm_path, max_length=24)
    assert long_mask.shape[1] == 24 and torch.equal(long_mask.sum(1), mask.sum(1))
    with torch.no_grad():
        short = trunk(images, state, tokens, mask)
        long = trunk(images, state, long_tokens, long_mask)
        # Garbage in the padded slots is invisible too.
        noisy = trunk(images, state, long_tokens.masked_fill(~long_mask, 7), long_mask)
    torch.testing.assert_close(long, short, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(noisy, short, atol=1e-5, rtol=1e-4)


def test_attention_is_bidirectional_and_reads_every_input(make_trunk, vlm_path):
    trunk = make_trunk().eval()
    images, state, tokens, mask = inputs(vlm_path)
    with torch.no_grad():
        base = trunk(images, state, tokens, mask)
        trunk.queries[-1] += 1.0  # the last query changes the first one: not causal
        assert not torch.allclose(trunk(images, state, tokens, mask)[:, 0], base[:, 0])
        trunk.queries[-1] -= 1.0
        assert not torch.allclose(trunk(images, state + 1.0, tokens, mask), base)
        assert not torch.allclose(trunk([images[0].flip(-1), images[1]], state, tokens, mask), base)
        other_tokens, other_mask = tokenize(vlm_path, list(reversed(TASKS)), 16)
        assert not torch.allclose(trunk(images, state, other_tokens, other_mask), base)


def test_no_state_token(make_trunk, vlm_path):
    trunk = make_trunk(state_dim=0)
    assert trunk.state_proj is None
    images, _, tokens, mask = inputs(vlm_path)
    assert trunk(images, None, tokens, mask).shape == (2, NUM_QUERIES, trunk.hidden_size)


def test_bfloat16_vlm_keeps_new_layers_float32(make_trunk, vlm_path):
    trunk = make_trunk(vlm_dtype="bfloat16")
    assert trunk.vision.embeddings.patch_embedding.weight.dtype == torch.bfloat16
    assert trunk.language_model.base_model.model.layers[0].mlp.up_proj.weight.dtype == torch.bfloat16
    trainable = [p for p in trunk.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)  # queries, state_proj, LoRA
    out = trunk(*inputs(vlm_path))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    out.square().mean().backward()
    assert grad_norm(trunk.queries) > 0 and grad_norm(trunk.state_proj.weight) > 0


def test_vlm_num_layers_cuts_the_language_model(make_trunk, vlm_path):
    trunk = make_trunk(vlm_num_layers=2, use_lora=False)
    assert len(trunk.language_model.layers) == 2 and trunk.language_model.config.num_hidden_layers == 2
    assert trunk(*inputs(vlm_path)).shape == (2, NUM_QUERIES, trunk.hidden_size)
    with pytest.raises(ValueError, match="vlm_num_layers"):
        make_trunk(vlm_num_layers=5)


def test_gradient_checkpointing_matches_plain_backward(make_trunk, vlm_path):
    grads = []
    for checkpointing in (False, True):
        trunk = make_trunk(gradient_checkpointing=checkpointing, seed=1)
        assert trunk.language_model.base_model.model.gradient_checkpointing is checkpointing
        trunk(*inputs(vlm_path)).square().mean().backward()
        grads.append({n: p.grad for n, p in trunk.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys()
    for name, grad in grads[1].items():
        torch.testing.assert_close(grad, grads[0][name], msg=name)


def test_state_dict_round_trip_through_safetensors(make_trunk, vlm_path, tmp_path):
    from safetensors.torch import load_model, save_model

    trained = make_trunk(vlm_num_layers=3, seed=1).eval()
    with torch.no_grad():
        for param in trained.parameters():
            if param.requires_grad:
                param.add_(0.1 * torch.randn_like(param))  # lora_B starts at 0: make the adapters matter
    save_model(trained, str(tmp_path / "trunk.safetensors"))
    fresh = make_trunk(vlm_num_layers=3, seed=2).eval()
    load_model(fresh, str(tmp_path / "trunk.safetensors"))
    with torch.no_grad():
        torch.testing.assert_close(fresh(*inputs(vlm_path)), trained(*inputs(vlm_path)))


@pytest.mark.parametrize("path", ["nobody/missing-tiny-vlm", "/nonexistent/folder/vlm"])
def test_missing_vlm_gives_a_clear_error(make_trunk, path):
    with pytest.raises(OSError) as info:
        make_trunk(vlm_path=path)
    message = str(info.value)
    assert path in message
    last_line = message.splitlines()[-1]
    assert "--policy.vlm_path" in last_line and "online" in last_line
