"""Light heads on the frozen ViT: lesion class and lesion mask."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ClassificationHead(nn.Module):
    def __init__(self, in_dim: int, n_classes: int = 3):
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.fc = nn.Linear(in_dim, n_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(features))


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
    on the token grid, doubled in resolution stage by stage, and fused with
    a small full-resolution skip from the image itself (16-pixel tokens lose
    spiculated margins; the skip brings them back)."""

    def __init__(
        self, dim: int, n_taps: int, patch: int, channels: int = 16, skip_channels: int = 8, in_chans: int = 3
    ):
        super().__init__()
        self.lateral = nn.ModuleList([nn.Conv2d(dim, channels, 1) for _ in range(n_taps)])
        n_stages = max(int(round(torch.log2(torch.tensor(float(patch))).item())), 1)
        self.stages = nn.ModuleList([_UpBlock(channels) for _ in range(n_stages)])
        self.skip = nn.Sequential(nn.Conv2d(in_chans, skip_channels, 3, padding=1), nn.GELU())
        self.fuse = nn.Sequential(
            nn.Conv2d(channels + skip_channels, skip_channels, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(skip_channels, 1, 1),
        )

    def forward(self, taps: list[torch.Tensor], grid: tuple[int, int], image: torch.Tensor) -> torch.Tensor:
        b, _, d = taps[0].shape
        x = sum(lat(t.transpose(1, 2).reshape(b, d, *grid)) for lat, t in zip(self.lateral, taps))
        for stage in self.stages:
            x = stage(x)
        if x.shape[-2:] != image.shape[-2:]:
            x = F.interpolate(x, size=image.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([x, self.skip(image)], dim=1))
