"""Light heads on the frozen ViT: lesion class and lesion mask."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LESION_PRIOR = 0.01  # share of lesion pixels assumed at initialisation


class ClassificationHead(nn.Module):
    """Linear on normalised features; `n_scalars` raw inputs (such as how
    sure the model is that there is a lesion) join after the normalisation,
    so that they are not drowned among hundreds of token features."""

    def __init__(self, in_dim: int, n_classes: int = 3, n_scalars: int = 0):
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.fc = nn.Linear(in_dim + n_scalars, n_classes)

    def forward(self, features: torch.Tensor, scalars: torch.Tensor | None = None) -> torch.Tensor:
        x = self.norm(features)
        if scalars is not None:
            x = torch.cat([x, scalars], dim=-1)
        return self.fc(x)


def lesion_pooled(tokens: torch.Tensor, lesion_logits: torch.Tensor, patch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Patch tokens (B, N, C) averaged with the lesion probability of each
    patch as weight, and the largest patch probability (B, 1): the class of
    a finding is in the finding (margins, shadowing), which a whole-image
    token dilutes. The probability is detached: the class loss must not
    redraw the mask. Where no lesion is found the weights are near uniform
    and the pooled token is close to the image's mean token."""
    prob = F.avg_pool2d(torch.sigmoid(lesion_logits.detach().float()), patch).flatten(1)  # (B, N)
    weights = prob / prob.sum(1, keepdim=True).clamp_min(1e-6)
    pooled = torch.bmm(weights.unsqueeze(1).to(tokens.dtype), tokens).squeeze(1)
    return pooled, prob.amax(1, keepdim=True).to(tokens.dtype)


class _UpBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm = nn.GroupNorm(4, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return F.gelu(self.norm(self.conv(x)))


class SegmentationDecoder(nn.Module):
    """Progressive decoder: 1x1 projections of several block taps are summed
    on the token grid and doubled in resolution stage by stage up to a
    quarter of the input size, then fused at full resolution with a small skip from the
    image itself (16-pixel tokens lose spiculated margins; the skip brings
    them back). The full-resolution part is a few channels wide: it is where
    a CPU spends its time."""

    def __init__(
        self,
        dim: int,
        n_taps: int,
        patch: int,
        channels: int = 16,
        skip_channels: int = 8,
        in_chans: int = 3,
        fuse_channels: int = 4,
        activation: str = "gelu",
        n_modalities: int = 0,
        fuse_per_modality: bool = False,
    ):
        super().__init__()
        self.lateral = nn.ModuleList([nn.Conv2d(dim, channels, 1) for _ in range(n_taps)])
        n_stages = max(round(math.log2(patch)) - 2, 1)
        self.stages = nn.ModuleList([_UpBlock(channels) for _ in range(n_stages)])
        fine = max(skip_channels // 2, 2)
        # GELU where there were ReLUs: a ReLU unit that is silent on every
        # pixel passes no gradient, and with two of four silent from the start
        # (a common draw) the rest learnt to lower the background only, never
        # to raise a small mass above the prior (20 mammograms, 10 epochs drew
        # nothing on any seed). A GELU passes gradient everywhere, so 4 units
        # suffice: 16 cost 6-9 ms per image at full resolution and scored
        # lower few-shot (docs/experiments/NOTES.md).
        act = {"gelu": nn.GELU, "relu": nn.ReLU}[activation]
        self.reduce = nn.Conv2d(channels, fine, 1)
        self.skip = nn.Sequential(nn.Conv2d(1, fine, 3, padding=1), act())
        self.fuse = nn.Sequential(
            nn.Conv2d(2 * fine, fuse_channels, 1), act(), nn.Conv2d(fuse_channels, 1, 3, padding=1)
        )
        # Per modality (with the modality code): each its own hidden units and
        # output, the code picks one. Each starts as the shared fuse's draw, so
        # that every method still starts from the same decoder for a seed.
        self.n_fused = n_modalities if fuse_per_modality and n_modalities > 0 else 1
        if self.n_fused > 1:
            k, shared = self.n_fused, self.fuse
            # Drawn with the random state put back afterwards: these draws are
            # overwritten below, and spending them would shift every later
            # initialisation (prompts, class head) away from the shared-fuse
            # model's, so that one modality would no longer start where a
            # shared fuse starts (few-shot MG fell on one seed of three for it).
            with torch.random.fork_rng(devices=[]):
                self.fuse = nn.Sequential(
                    nn.Conv2d(2 * fine, fuse_channels * k, 1),
                    act(),
                    nn.Conv2d(fuse_channels * k, k, 3, padding=1, groups=k),
                )
            with torch.no_grad():
                for mine, theirs in ((self.fuse[0], shared[0]), (self.fuse[-1], shared[-1])):
                    mine.weight.copy_(theirs.weight.repeat(k, 1, 1, 1))
                    mine.bias.copy_(theirs.bias.repeat(k))
        # Start from "lesion is rare" (probability ~1 %, Lin et al. 2017): at 0.5
        # the first hundreds of steps go into pushing the background down, and
        # small lesions are then never learned.
        nn.init.constant_(self.fuse[-1].bias, -math.log((1 - LESION_PRIOR) / LESION_PRIOR))
        # Per-modality scale and shift (FiLM, Perez et al. 2018) of the token
        # path and of the fuse's input, the image skip included: a mammogram
        # mass is brighter than its surroundings, an ultrasound one darker,
        # and one shared decoder learnt the large dark ultrasound masses
        # first and, on three seeds of five, never drew a mammogram mass
        # (its benefit at the benchmark's budget is not shown: docs/model.md).
        # Starts as identity.
        self.film = None
        if n_modalities > 0:
            self.film_sizes = [channels, channels, 2 * fine, 2 * fine]  # scale, shift; fuse scale, shift
            self.film = nn.Embedding(n_modalities, sum(self.film_sizes))
            nn.init.zeros_(self.film.weight)

    def forward(
        self, taps: torch.Tensor, grid: tuple[int, int], image: torch.Tensor, modality: torch.Tensor | None = None
    ) -> torch.Tensor:
        """taps (B, N, n_taps * D): the blocks' patch tokens side by side;
        image (B, C, H, W); modality (B,) codes -> lesion logits (B, 1, H, W)."""
        b = taps.shape[0]
        # The taps' 1x1 projections, summed, are one projection of the taps
        # side by side, done on the tokens as they are (one matrix product
        # instead of a copy and a convolution per tap).
        weight = torch.cat([lat.weight.flatten(1) for lat in self.lateral], dim=1)
        bias = sum(lat.bias for lat in self.lateral)
        x = F.linear(taps, weight, bias).transpose(1, 2).reshape(b, -1, *grid)
        for stage in self.stages:
            x = stage(x)
        if self.film is not None and modality is None:
            raise ValueError("this decoder is conditioned on the modality: pass the modality codes")
        return self._full_resolution(x, image, modality)

    def _full_resolution(self, x: torch.Tensor, image: torch.Tensor, modality: torch.Tensor | None) -> torch.Tensor:
        """reduce -> upsample -> [joined with the image skip] -> FiLM -> fuse,
        with everything linear before the fuse's activation folded into
        per-image weights: FiLM, `reduce` and the fuse's 1x1 convolution
        become one 16 -> 4 map on the quarter-resolution grid (upsampling
        commutes with mixing channels) and one 4 -> 4 map of the skip, so
        that the full-resolution maps are never scaled, shifted or
        concatenated (0.7 ms of 1.6 per image on 2 cores). Each image's
        modality picks its own fuse units (`n_fused`) in the same products."""
        b, fine = x.shape[0], self.reduce.out_channels
        k, c = self.n_fused, self.fuse[0].out_channels // self.n_fused
        units = modality if k > 1 else torch.zeros(b, dtype=torch.long, device=x.device)
        w_fuse = self.fuse[0].weight.view(k, c, 2 * fine)[units]  # (B, c, 2 fine)
        b_fuse = self.fuse[0].bias.view(k, c)[units]  # (B, c)
        w_reduce, b_reduce = self.reduce.weight.flatten(1), self.reduce.bias  # (fine, C), (fine,)
        if self.film is not None:  # W (x (1 + s) + t) + b = (W diag(1 + s)) x + (W t + b)
            scale, shift, fuse_scale, fuse_shift = self.film(modality).split(self.film_sizes, dim=1)
            b_fuse = b_fuse + (w_fuse @ fuse_shift[:, :, None]).squeeze(-1)
            w_fuse = w_fuse * (1 + fuse_scale)[:, None, :]
            b_reduce = b_reduce + shift @ w_reduce.T  # (B, fine)
            w_reduce = w_reduce * (1 + scale)[:, None, :]  # (B, fine, C)
        w_tokens, w_skip = w_fuse[..., :fine], w_fuse[..., fine:]
        coarse = torch.baddbmm(
            (w_tokens @ b_reduce.expand(b, -1)[:, :, None]) + b_fuse[:, :, None], w_tokens @ w_reduce, x.flatten(2)
        )
        coarse = F.interpolate(
            coarse.view(b, c, *x.shape[-2:]), size=image.shape[-2:], mode="bilinear", align_corners=False
        )
        gray = image.mean(dim=1, keepdim=True)  # the input channels are copies of one gray image
        hidden = torch.baddbmm(coarse.flatten(2), w_skip, self.skip(gray).flatten(2))
        hidden = self.fuse[1](hidden.view(b, c, *image.shape[-2:]))
        # Channels-last: on a CPU, oneDNN's 3x3 convolution over a few
        # channels at full resolution is slower in the default layout.
        hidden = hidden.contiguous(memory_format=torch.channels_last)
        last = self.fuse[-1]  # (k, c, 3, 3): modality j's output from its own c units
        if bool((units == units[0]).all()):
            g = int(units[0])
            return F.conv2d(hidden, last.weight[g : g + 1], last.bias[g : g + 1], padding=1).contiguous()
        out = F.conv2d(hidden, last.weight, last.bias, padding=1).contiguous()
        return out.gather(1, units.view(-1, 1, 1, 1).expand(-1, 1, *out.shape[-2:]))


class ModalityDecoders(nn.Module):
    """One lesion decoder per modality, each image drawn by its modality's
    (`parts[code]`): tuning on one modality's images then leaves what the
    others draw exactly as it was, and no modality shares the decoder's few
    channels with another (a mammogram mass is bright, an ultrasound one
    dark, an MRI one enhancing)."""

    def __init__(self, parts: list[SegmentationDecoder]):
        super().__init__()
        self.parts = nn.ModuleList(parts)

    def forward(
        self, taps: torch.Tensor, grid: tuple[int, int], image: torch.Tensor, modality: torch.Tensor | None = None
    ) -> torch.Tensor:
        if modality is None:
            raise ValueError("this decoder has one part per modality: pass the modality codes")
        codes = modality.unique()
        if len(codes) == 1:  # a whole batch of one modality, as `segment` runs
            return self.parts[int(codes[0])](taps, grid, image, modality)
        out = None
        for code in codes.tolist():
            idx = (modality == code).nonzero()[:, 0]
            logits = self.parts[code](taps[idx], grid, image[idx], modality[idx])
            if out is None:
                out = logits.new_empty(taps.shape[0], *logits.shape[1:])
            out[idx] = logits
        return out
