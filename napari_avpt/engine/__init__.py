"""Training, evaluation, inference and checkpoints. No Qt here: long work
takes a `progress` callback and a `cancel` check, never a widget."""

from __future__ import annotations

from ..model import AVPT, ModelConfig
from .backbones import create_backbone, state_sha256


def build_model(cfg: ModelConfig, backbone_weights=None, hub: bool = False, seed: int = 0) -> tuple[AVPT, str]:
    """The model for `cfg` on its backbone, and the backbone's sha256 (what
    prompt sets are tied to)."""
    vit = create_backbone(cfg.backbone, cfg.img_size, backbone_weights, hub=hub, seed=seed)
    sha = state_sha256(vit)
    return AVPT(vit, cfg), sha
