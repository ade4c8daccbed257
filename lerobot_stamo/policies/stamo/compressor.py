"""The StaMo compressor: DINOv2 patch tokens -> a few state tokens.

Follows the published design (see `stamo-method.md`, section 1):

1. `num_layers` transformer blocks over the patches (self-attention, cross-attention to the backbone's
   patch features, GEGLU feed-forward), from diffusers' `BasicTransformerBlock`.
2. A linear map splits every patch into a `token_dim` query stream and a `context_dim` context.
3. The query is transposed so its `token_dim` channels become the sequence axis and the patch axis becomes
   the feature axis; a linear layer mixes the patches.
4. The patch axis is compressed progressively (e.g. 256 -> 128 -> 64 -> 16 -> 8 -> 2): each stage is a
   transformer block cross-attending to the context, followed by a linear map to the next length.
5. Transposed back, the state is `(num_tokens, token_dim)`, with no final normalisation.
"""

from diffusers.models.attention import BasicTransformerBlock
from torch import Tensor, nn


def _block(dim: int, head_dim: int, context_dim: int, dropout: float) -> BasicTransformerBlock:
    """A self + cross-attention block of width `dim` with heads of (at most) `head_dim` channels."""
    head_dim = min(head_dim, dim)
    return BasicTransformerBlock(
        dim=dim,
        num_attention_heads=max(1, dim // head_dim),
        attention_head_dim=head_dim,
        dropout=dropout,
        cross_attention_dim=context_dim,
        activation_fn="geglu",
    )


class StamoCompressor(nn.Module):
    """Compresses `(B, num_patches, in_dim)` patch features into `(B, num_tokens, token_dim)` states.

    Args:
        in_dim: Width of the backbone's patch features.
        num_patches: Number of patch tokens the backbone produces at the configured image size.
        dim: Width of the blocks over patches.
        num_layers: Number of blocks over patches.
        num_heads: Heads of the blocks over patches.
        context_dim: Width of the context the compression stages attend to.
        token_dim: Width of a state token.
        num_tokens: Number of state tokens.
        lengths: Intermediate lengths of the patch axis (strictly decreasing, between `num_patches` and
            `num_tokens`).
        stage_head_dim: Head width of the compression blocks.
        dropout: Dropout of every block.
    """

    def __init__(
        self,
        in_dim: int,
        num_patches: int,
        dim: int = 768,
        num_layers: int = 6,
        num_heads: int = 8,
        context_dim: int = 512,
        token_dim: int = 1024,
        num_tokens: int = 2,
        lengths: list[int] | tuple[int, ...] = (128, 64, 16, 8),
        stage_head_dim: int = 64,
        dropout: float = 0.1,
    ):
        super().__init__()
        if lengths and lengths[0] >= num_patches:
            raise ValueError(
                f"The first compression length {lengths[0]} must be below the number of patches "
                f"{num_patches} (image size / patch size squared). Fix `policy.compression_lengths`."
            )
        self.token_dim = token_dim
        self.context_dim = context_dim
        self.in_proj = nn.Linear(in_dim, dim) if in_dim != dim else nn.Identity()
        self.blocks = nn.ModuleList(
            BasicTransformerBlock(
                dim=dim,
                num_attention_heads=num_heads,
                attention_head_dim=dim // num_heads,
                dropout=dropout,
                cross_attention_dim=in_dim,
                activation_fn="geglu",
            )
            for _ in range(num_layers)
        )
        self.split = nn.Linear(dim, token_dim + context_dim)
        self.patch_mix = nn.Linear(num_patches, num_patches)
        sizes = [num_patches, *lengths, num_tokens]
        self.stages = nn.ModuleList(_block(n, stage_head_dim, context_dim, dropout) for n in sizes[:-1])
        self.reduce = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))

    def forward(self, patches: Tensor) -> Tensor:
        """Compresses patch features.

        Args:
            patches: (B, P, in_dim) backbone patch tokens.

        Returns:
            (B, num_tokens, token_dim) state tokens.
        """
        x = self.in_proj(patches)  # (B, P, dim)
        for block in self.blocks:
            x = block(x, encoder_hidden_states=patches)  # (B, P, dim)
        query, context = self.split(x).split([self.token_dim, self.context_dim], dim=-1)
        # query (B, P, token_dim), context (B, P, context_dim)
        x = self.patch_mix(query.transpose(1, 2))  # (B, token_dim, P)
        for stage, reduce in zip(self.stages, self.reduce, strict=True):
            x = stage(x, encoder_hidden_states=context)  # (B, token_dim, L)
            x = reduce(x)  # (B, token_dim, L_next)
        return x.transpose(1, 2)  # (B, num_tokens, token_dim)
