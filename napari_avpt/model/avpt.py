"""A-VPT: anatomy-guided visual prompt tuning on a frozen timm ViT.

Read top to bottom, `AVPT.forward_features` and `AVPT.forward_head` are
the method (the prompts of each method are small modules in `prompts.py`):

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

import copy
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .config import MODALITY_INDEX, ModelConfig
from .heads import ClassificationHead, ModalityDecoders, SegmentationDecoder, lesion_pooled
from .prompts import AnatomyPrompts, NoPrompts, StaticPrompts

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


@dataclass
class Features:
    """What `AVPT.forward_features` leaves for the heads."""

    tokens: torch.Tensor  # (B, S, D) the last block's sequence, normalised: [prefix, prompts, patches]
    taps: torch.Tensor  # (B, N, n_taps * D) patch tokens of the tapped blocks
    n_prompts: int  # prompts in `tokens`, after the prefix
    attention: torch.Tensor | None  # (B, S, S) the last block's, when asked for
    tissue_on_grid: torch.Tensor | None  # (B, T, N)


def prompts_for(cfg: ModelConfig, dim: int, depth: int, grid: tuple[int, int]) -> NoPrompts:
    """The prompts of a method: anatomy-guided (A-VPT and its ablations),
    static (VPT), or none (linear, full)."""
    if cfg.is_avpt:
        return AnatomyPrompts(
            dim,
            depth,
            cfg.rank,
            N_TISSUES,
            cfg.prompts_per_tissue,
            cfg.global_prompts,
            cfg.gate_init,
            grid,
            anatomy=cfg.uses_anatomy,
            carry=cfg.carries_prompts,
        )
    if cfg.method in ("vpt-deep", "vpt-shallow"):
        return StaticPrompts(depth if cfg.method == "vpt-deep" else 1, cfg.vpt_prompts, dim)
    return NoPrompts()


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
        # The lesion decoder is drawn first, so that every method starts from
        # the same decoder for the same seed: with few steps, which decoder
        # draw a run gets decided more than the method (a draw on which
        # VPT-deep failed too made A-VPT fail one few-shot seed in three).
        self.patch = vit.patch_embed.patch_size[0]
        self.decoder = self.new_decoder()
        self.prompts = prompts_for(cfg, dim, depth, self.grid)
        head_dim = dim * 2 if cfg.is_avpt else dim
        pooled_dim = {"image": 0, "lesion-final": dim, "lesion-taps": dim * len(self.taps)}[cfg.class_from]
        self.class_head = ClassificationHead(head_dim + pooled_dim, 3, n_scalars=1 if pooled_dim else 0)
        # What a prompt set of this method stores, even when one run trains
        # only part of it (a new class head on prompts kept as they are).
        self.set_names = frozenset(n for n, p in self.named_parameters() if p.requires_grad)

    def new_decoder(self) -> SegmentationDecoder | ModalityDecoders:
        """A freshly drawn lesion decoder of this model's shape (from torch's
        random state): one, or one per modality, drawn in the modalities' order."""
        if self.cfg.decoder_per_modality:
            return ModalityDecoders([self._one_decoder() for _ in MODALITY_INDEX])
        return self._one_decoder()

    def redraw_decoder(self, modalities=None) -> None:
        """Draw the lesion decoder anew (from torch's random state): all of
        it, or with one decoder per modality only those of `modalities`
        (codes such as "US"; the others are kept as they are)."""
        if not self.cfg.decoder_per_modality or modalities is None:
            self.decoder = self.new_decoder()
            return
        for name in modalities:
            self.decoder.parts[MODALITY_INDEX[name]] = self._one_decoder()

    def split_decoder(self) -> None:
        """One lesion decoder per modality from the shared one, each starting
        as a copy of it (what every modality draws is unchanged until
        trained); the set's tensors are renamed to match. Nothing to do when
        the decoder is split already."""
        if self.cfg.decoder_per_modality:
            return
        shared = self.decoder
        self.decoder = ModalityDecoders([copy.deepcopy(shared) for _ in MODALITY_INDEX])
        self.cfg = replace(self.cfg, decoder_per_modality=True)
        others = {n for n in self.set_names if not n.startswith("decoder.")}
        self.set_names = frozenset(others | {"decoder." + n for n, _ in self.decoder.named_parameters()})

    def _one_decoder(self) -> SegmentationDecoder:
        cfg, vit = self.cfg, self.vit
        return SegmentationDecoder(
            vit.embed_dim,
            len(self.taps),
            self.patch,
            cfg.decoder_channels,
            cfg.skip_channels,
            vit.patch_embed.proj.in_channels,
            cfg.fuse_channels,
            n_modalities=len(MODALITY_INDEX) if cfg.conditions_decoder else 0,
            fuse_per_modality=True,
        )

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
        features = self.forward_features(images, tissue, modality, want_attention)
        return self.forward_head(features, images, modality)

    def forward_features(self, images, tissue=None, modality=None, want_attention: bool = False) -> Features:
        """The frozen ViT with the method's prompts before its blocks."""
        vit, p = self.vit, self.prefix
        x = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(images))))
        state = self.prompts.begin(images, tissue, modality)
        # The sequence is kept as it leaves each block, [prefix, prompts,
        # patches], with `n_in` prompts: the next block's prompts replace
        # them in one concatenation (these small per-block ops are what the
        # prompts cost beside the ViT's own).
        n_in, taps, attention = 0, [], None
        last = len(vit.blocks) - 1
        for layer, block in enumerate(vit.blocks):
            patches = x[:, p + n_in :]
            new = self.prompts.tokens(layer, state, patches, x[:, p : p + n_in] if n_in else None)
            if new is not None:
                x = torch.cat([x[:, :p], new, patches], dim=1)
                n_in = new.shape[1]
            if want_attention and layer == last:
                attention = _attention_weights(block, x)
            x = block(x)
            if layer in self.taps:
                taps.append(x[:, p + n_in :])
        return Features(vit.norm(x), torch.cat(taps, dim=-1), n_in, attention, state.get("on_grid"))

    def forward_head(self, f: Features, images: torch.Tensor, modality=None) -> ModelOutput:
        """The class, the lesion map and the attention maps from the features."""
        p, n_tissue = self.prefix, self.prompts.n_tissue
        b, x = f.tokens.shape[0], f.tokens
        cls = x[:, 0]
        tissue_emb = None
        if n_tissue:  # the tissue prompts that left the last block
            tissue_emb = x[:, p : p + n_tissue].reshape(b, N_TISSUES, n_tissue // N_TISSUES, -1).mean(2)
            cls = torch.cat([cls, tissue_emb.mean(1)], dim=-1)
        tissue_att = lesion_att = None
        if f.attention is not None:
            patch_cols = slice(p + f.n_prompts, None)
            lesion_att = f.attention[:, 0, patch_cols]
            if n_tissue:
                rows = f.attention[:, p : p + n_tissue, patch_cols]
                tissue_att = rows.reshape(b, N_TISSUES, n_tissue // N_TISSUES, -1).mean(2)
                tissue_att = tissue_att / tissue_att.sum(-1, keepdim=True).clamp_min(1e-6)
            lesion_att = lesion_att / lesion_att.sum(-1, keepdim=True).clamp_min(1e-6)
        lesion_logits = self.decoder(f.taps, self.grid, images, modality)
        presence = None
        if self.cfg.class_from != "image":
            if self.cfg.class_from == "lesion-final":
                tokens = x[:, p + f.n_prompts :]
            else:  # each tap normalised per token: the residual stream grows with depth
                tokens = F.layer_norm(f.taps.unflatten(-1, (len(self.taps), -1)), x.shape[-1:]).flatten(2)
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
            tissue_on_grid=f.tissue_on_grid,
            grid=self.grid,
        )

    def parameter_counts(self) -> tuple[int, int]:
        """(trainable, total) parameters."""
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return trainable, total


def _attention_weights(block: nn.Module, seq: torch.Tensor) -> torch.Tensor:
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
    weights = F.softmax(logits, dim=-1)
    return weights.mean(1)
