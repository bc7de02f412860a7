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
