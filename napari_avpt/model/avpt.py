"""A-VPT: anatomy-guided visual prompt tuning on a frozen timm ViT.

Read top to bottom, `AVPT.forward` is the method:

1. the image becomes patch tokens (+ CLS, + position embeddings) in the
   frozen ViT;
2. before every block, the tissue maps (glandular, fatty, ductal) pooled to
   the token grid weight the patch tokens entering the block into one region
   embedding per tissue;
3. a shared low-rank generator turns them (with tissue and modality codes)
   into prompt tokens for this block;
4. the prompts that left the previous block are carried in through a learned
   gate: P = sigmoid(g) * P_out + (1 - sigmoid(g)) * P_new;
5. a few static global prompts sit beside them (VPT-deep style);
6. heads: the class from CLS and the mean tissue prompt, the lesion mask from
   a light decoder over several block taps plus a full-resolution skip.

The same class runs the baselines (VPT-deep, VPT-shallow, linear probe,
full fine-tuning) and the ablations, chosen by `ModelConfig.method`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import MODALITY_INDEX, ModelConfig
from .heads import ClassificationHead, SegmentationDecoder, lesion_pooled
from .prompts import TissuePromptGenerator, region_weights

N_TISSUES = 3


@dataclass
class ModelOutput:
    class_logits: torch.Tensor  # (B, 3)
    lesion_logits: torch.Tensor  # (B, 1, H, W)
    tissue_embeddings: torch.Tensor | None  # (B, T, D), A-VPT only
    tissue_attention: torch.Tensor | None  # (B, T, N) attention of each tissue's prompts over patches
    lesion_attention: torch.Tensor | None  # (B, N) attention of CLS over patches
    tissue_on_grid: torch.Tensor | None  # (B, T, N) pooled tissue maps
    grid: tuple[int, int]


class AVPT(nn.Module):
    def __init__(self, vit: nn.Module, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.vit = vit
        dim, depth = vit.embed_dim, len(vit.blocks)
        self.grid = tuple(vit.patch_embed.grid_size)
        self.prefix = vit.num_prefix_tokens
        self.taps = sorted({int(round(depth * (i + 1) / cfg.n_taps)) - 1 for i in range(cfg.n_taps)})
        for p in self.vit.parameters():
            p.requires_grad = cfg.method == "full"
        if cfg.tune_layernorm and cfg.method != "full":
            for m in self.vit.modules():
                if isinstance(m, nn.LayerNorm):
                    for p in m.parameters():
                        p.requires_grad = True
        # The lesion decoder is drawn first, so that every method starts from
        # the same decoder for the same seed: with few steps, which decoder
        # draw a run gets decided more than the method (a draw on which
        # VPT-deep failed too made A-VPT fail one few-shot seed in three).
        patch = vit.patch_embed.patch_size[0]
        self.decoder = SegmentationDecoder(
            dim,
            len(self.taps),
            patch,
            cfg.decoder_channels,
            cfg.skip_channels,
            vit.patch_embed.proj.in_channels,
            cfg.fuse_channels,
            cfg.decoder_activation,
            len(MODALITY_INDEX) if cfg.conditions_decoder else 0,
            cfg.modality_fuse,
        )
        if cfg.is_avpt:
            self.generator = TissuePromptGenerator(dim, depth, cfg.rank, N_TISSUES, cfg.prompts_per_tissue)
            self.gates = nn.Parameter(torch.full((depth,), cfg.gate_init))
            self.global_prompts = nn.Parameter(torch.zeros(depth, cfg.global_prompts, dim))
            nn.init.trunc_normal_(self.global_prompts, std=0.02)
            if cfg.tissue_shift:
                self.shift_scale = nn.Parameter(torch.zeros(depth, N_TISSUES, 1))
            if cfg.tissue_attention:
                self.attention_alpha = nn.Parameter(torch.full((depth, N_TISSUES), cfg.tissue_attention_init))
        elif cfg.method in ("vpt-deep", "vpt-shallow"):
            layers = depth if cfg.method == "vpt-deep" else 1
            self.vpt_prompts = nn.Parameter(torch.zeros(layers, cfg.vpt_prompts, dim))
            nn.init.trunc_normal_(self.vpt_prompts, std=0.02)
        self.patch = patch
        head_dim = dim * 2 if cfg.is_avpt else dim
        pooled_dim = {"image": 0, "lesion-final": dim, "lesion-taps": dim * len(self.taps)}[cfg.class_from]
        self.class_head = ClassificationHead(head_dim + pooled_dim, 3, n_scalars=1 if pooled_dim else 0)
        # What a prompt set of this method stores, even when one run trains
        # only part of it (a new class head on prompts kept as they are).
        self.set_names = frozenset(n for n, p in self.named_parameters() if p.requires_grad)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.cfg.method != "full":
            self.vit.eval()  # frozen backbone: dropout and the like stay off
        return self

    def forward(
        self,
        images: torch.Tensor,
        tissue: torch.Tensor | None = None,
        modality: torch.Tensor | None = None,
        want_attention: bool = False,
    ) -> ModelOutput:
        """images (B, C, H, W) normalised; tissue (B, 3, H, W) soft maps in
        [0, 1] (glandular, fatty, ductal); modality (B,) indices (MG 0,
        US 1, MR 2)."""
        cfg, vit = self.cfg, self.vit
        b = images.shape[0]
        x = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(images))))
        tissue_w = tissue_grid = None
        if cfg.is_avpt:
            if modality is None:
                raise ValueError("A-VPT needs the modality of each image")
            if not cfg.uses_anatomy or tissue is None:
                tissue = torch.ones(b, N_TISSUES, *images.shape[-2:], device=images.device, dtype=images.dtype)
            tissue_w, tissue_grid = region_weights(tissue.to(images.dtype), self.grid)
        n_tissue_prompts = N_TISSUES * cfg.prompts_per_tissue
        if cfg.is_avpt:  # the same at every block: computed once
            gates, codes = torch.sigmoid(self.gates), self.generator.codes(modality)
            on_patches = tissue_grid.transpose(1, 2)  # (B, N, T): how much of each patch is each tissue
        # The sequence is kept as it leaves each block, [prefix, prompts,
        # patches], with `n_in` prompts: the next block's prompts replace
        # them in one concatenation (these small per-block ops are what the
        # prompts cost beside the ViT's own).
        n_in = 0
        taps = []
        attention = None
        depth = len(vit.blocks)
        p = self.prefix
        for layer, block in enumerate(vit.blocks):
            patches = x[:, p + n_in :]
            extra = []
            if cfg.is_avpt:
                fresh = self.generator(tissue_w @ patches, codes, layer)
                if n_in and cfg.carries_prompts:  # the tissue prompts that left the previous block, gated in
                    fresh = torch.lerp(fresh, x[:, p : p + n_tissue_prompts], gates[layer])
                extra = [fresh, self.global_prompts[layer].expand(b, -1, -1)]
                if cfg.tissue_shift:
                    per_tissue = fresh.unflatten(1, (N_TISSUES, -1)).mean(2) * self.shift_scale[layer]
                    patches = torch.baddbmm(patches, on_patches, per_tissue)
            elif cfg.method == "vpt-deep":
                extra = [self.vpt_prompts[layer].expand(b, -1, -1)]
            elif cfg.method == "vpt-shallow" and layer == 0:
                extra = [self.vpt_prompts[0].expand(b, -1, -1)]  # later blocks keep what the previous one left
            if extra:
                seq = torch.cat([x[:, :p], *extra, patches], dim=1)
                n_in = sum(e.shape[1] for e in extra)
            else:
                seq = x
            mask = None
            if cfg.is_avpt and cfg.tissue_attention:
                mask = _tissue_bias(on_patches, self.attention_alpha[layer], cfg.prompts_per_tissue, p, n_in)
            if want_attention and layer == depth - 1:
                attention = _attention_weights(block, seq, mask)
            x = block(seq, attn_mask=mask)
            if layer in self.taps:
                taps.append(x[:, p + n_in :])
        x = vit.norm(x)
        cls = x[:, 0]
        tissue_emb = None
        if cfg.is_avpt:  # the tissue prompts that left the last block
            tissue_emb = x[:, p : p + n_tissue_prompts].reshape(b, N_TISSUES, cfg.prompts_per_tissue, -1).mean(2)
            cls = torch.cat([cls, tissue_emb.mean(1)], dim=-1)
        tissue_att = lesion_att = None
        if attention is not None:
            patch_cols = slice(p + n_in, None)
            lesion_att = attention[:, 0, patch_cols]
            if cfg.is_avpt:
                rows = attention[:, p : p + n_tissue_prompts, patch_cols]
                tissue_att = rows.reshape(b, N_TISSUES, cfg.prompts_per_tissue, -1).mean(2)
                tissue_att = tissue_att / tissue_att.sum(-1, keepdim=True).clamp_min(1e-6)
            lesion_att = lesion_att / lesion_att.sum(-1, keepdim=True).clamp_min(1e-6)
        taps = torch.cat(taps, dim=-1)  # (B, N, n_taps * D): read by the decoder and the class head
        lesion_logits = self.decoder(taps, self.grid, images, modality)
        presence = None
        if cfg.class_from != "image":
            if cfg.class_from == "lesion-final":
                tokens = x[:, p + n_in :]
            else:  # each tap normalised per token: the residual stream grows with depth
                tokens = F.layer_norm(taps.unflatten(-1, (len(self.taps), -1)), x.shape[-1:]).flatten(2)
            # Detached: the class loss pulling on every tapped block moved the
            # prompts away from the lesion (few-shot MRI Dice 0.24 -> 0.17).
            pooled, presence = lesion_pooled(tokens.detach(), lesion_logits, self.patch)
            cls = torch.cat([cls, pooled], dim=-1)
        return ModelOutput(
            class_logits=self.class_head(cls, presence),
            lesion_logits=lesion_logits,
            tissue_embeddings=tissue_emb,
            tissue_attention=tissue_att,
            lesion_attention=lesion_att,
            tissue_on_grid=tissue_grid,
            grid=self.grid,
        )

    def parameter_counts(self) -> tuple[int, int]:
        """(trainable, total) parameters."""
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return trainable, total


def _tissue_bias(
    on_patches: torch.Tensor, alpha: torch.Tensor, per_tissue: int, prefix: int, n_in: int
) -> torch.Tensor:
    """Additive attention bias (B, 1, S, S) between patches and the tissue
    prompts, which sit right after the prefix: alpha_t * (share of tissue t
    in the patch - 1), both ways; zero elsewhere."""
    b, n, _ = on_patches.shape
    s = prefix + n_in + n
    between = ((on_patches - 1) * alpha).repeat_interleave(per_tissue, dim=2)  # (B, N, T * m)
    bias = on_patches.new_zeros(b, 1, s, s)
    cols = slice(prefix, prefix + between.shape[2])
    bias[:, 0, prefix + n_in :, cols] = between
    bias[:, 0, cols, prefix + n_in :] = between.transpose(1, 2)
    return bias


def _attention_weights(block: nn.Module, seq: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Head-averaged attention probabilities (B, S, S) of a timm ViT block.

    timm's blocks use fused attention that never forms the matrix, so it is
    recomputed here from the block's own projections, for the block whose
    maps are shown.
    """
    attn = block.attn
    y = block.norm1(seq)
    b, s, _ = y.shape
    qkv = attn.qkv(y).reshape(b, s, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k = attn.q_norm(qkv[0]), attn.k_norm(qkv[1])
    logits = (q * attn.scale) @ k.transpose(-2, -1)
    weights = F.softmax(logits if mask is None else logits + mask, dim=-1)
    return weights.mean(1)
