"""Anatomy-guided prompt generation: tissue region embeddings -> prompts."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def region_weights(tissue: torch.Tensor, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Tissue maps (B, T, H, W) pooled to the token grid.

    Returns (weights, pooled): per-token weights of each tissue normalised to
    sum to 1 over the tokens, and the pooled maps themselves in [0, 1], both
    (B, T, N). An absent tissue has all-zero weights.
    """
    pooled = F.adaptive_avg_pool2d(tissue, grid).flatten(2)  # (B, T, N)
    weights = pooled / pooled.sum(dim=-1, keepdim=True).clamp_min(1e-6)
    return weights, pooled


class TissuePromptGenerator(nn.Module):
    """Shared low-rank map (LayerNorm, D -> r) of each tissue's region
    embedding, plus learned tissue and modality codes, then a per-layer
    up-projection (r -> D): `per_tissue` prompts per tissue and layer."""

    def __init__(self, dim: int, depth: int, rank: int, n_tissues: int = 3, per_tissue: int = 2, n_modalities: int = 3):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.down = nn.Linear(dim, rank)
        self.tissue_code = nn.Parameter(torch.zeros(n_tissues, per_tissue, rank))
        self.modality_code = nn.Parameter(torch.zeros(n_modalities, rank))
        self.up = nn.Parameter(torch.zeros(depth, rank, dim))
        self.up_bias = nn.Parameter(torch.zeros(depth, dim))
        nn.init.trunc_normal_(self.tissue_code, std=0.5)
        nn.init.trunc_normal_(self.modality_code, std=0.1)
        nn.init.trunc_normal_(self.up, std=0.02)

    def codes(self, modality: torch.Tensor) -> torch.Tensor:
        """Tissue plus modality codes (B, T, per_tissue, r): the same at every
        block, so added once per forward."""
        return self.tissue_code[None] + self.modality_code[modality][:, None, None, :]

    def forward(self, regions: torch.Tensor, codes: torch.Tensor, layer: int) -> torch.Tensor:
        """regions (B, T, D), codes from `codes` -> prompts (B, T * per_tissue, D)."""
        z = self.down(self.norm(regions))[:, :, None, :] + codes  # (B, T, m, r)
        prompts = F.linear(F.gelu(z), self.up[layer].T, self.up_bias[layer])  # (B, T, m, D)
        return prompts.flatten(1, 2)


# -- what each method puts before the blocks ---------------------------------
#
# One small module per kind of prompt, so that the block loop of `AVPT`
# reads the same for every method: `begin` prepares a forward (per-image
# state), `tokens` gives a block's prompts (or None: keep the ones in the
# sequence). A prompt set's tensors are these modules' (`prompts.*`).


class NoPrompts(nn.Module):
    """linear and full fine-tuning: the ViT as it is."""

    n_tissue = 0  # leading prompts that are tissue prompts

    def begin(self, images: torch.Tensor, tissue, modality) -> dict:
        return {}

    def tokens(self, layer: int, state: dict, patches: torch.Tensor, previous) -> torch.Tensor | None:
        return None


class StaticPrompts(NoPrompts):
    """VPT: `count` learned tokens before each of the first `layers` blocks
    (all of them for VPT-deep, the first for VPT-shallow, whose later blocks
    keep what the previous one left)."""

    def __init__(self, layers: int, count: int, dim: int):
        super().__init__()
        self.tokens_per_layer = nn.Parameter(torch.zeros(layers, count, dim))
        nn.init.trunc_normal_(self.tokens_per_layer, std=0.02)

    def tokens(self, layer, state, patches, previous):
        if layer >= len(self.tokens_per_layer):
            return None
        return self.tokens_per_layer[layer].expand(patches.shape[0], -1, -1)


class AnatomyPrompts(NoPrompts):
    """A-VPT: before every block, tissue prompts generated from the patch
    tokens the tissue maps weight (one region embedding per tissue), the
    previous block's carried in through a learned gate,
    P = sigmoid(g) * P_out + (1 - sigmoid(g)) * P_new, and a few static
    global prompts beside them (VPT-deep style)."""

    def __init__(
        self,
        dim: int,
        depth: int,
        rank: int,
        n_tissues: int,
        per_tissue: int,
        n_global: int,
        gate_init: float,
        grid: tuple[int, int],
        anatomy: bool = True,
        carry: bool = True,
    ):
        super().__init__()
        self.n_tissues, self.grid, self.anatomy, self.carry = n_tissues, grid, anatomy, carry
        self.n_tissue = n_tissues * per_tissue
        self.generator = TissuePromptGenerator(dim, depth, rank, n_tissues, per_tissue)
        self.gates = nn.Parameter(torch.full((depth,), gate_init))
        self.global_prompts = nn.Parameter(torch.zeros(depth, n_global, dim))
        nn.init.trunc_normal_(self.global_prompts, std=0.02)

    def begin(self, images, tissue, modality):
        if modality is None:
            raise ValueError("A-VPT needs the modality of each image")
        if not self.anatomy or tissue is None:  # no anatomy: one region, the whole image
            tissue = images.new_ones(images.shape[0], self.n_tissues, *images.shape[-2:])
        weights, on_grid = region_weights(tissue.to(images.dtype), self.grid)
        # The same at every block: computed once per forward.
        return {
            "weights": weights,
            "on_grid": on_grid,
            "codes": self.generator.codes(modality),
            "gates": torch.sigmoid(self.gates),
        }

    def tokens(self, layer, state, patches, previous):
        fresh = self.generator(state["weights"] @ patches, state["codes"], layer)
        if previous is not None and self.carry:  # the tissue prompts that left the previous block, gated in
            # lerp is outside autocast's casts: under bf16 the three must agree
            carried, gate = previous[:, : self.n_tissue].to(fresh.dtype), state["gates"][layer].to(fresh.dtype)
            fresh = torch.lerp(fresh, carried, gate)
        return torch.cat([fresh, self.global_prompts[layer].expand(patches.shape[0], -1, -1)], dim=1)
