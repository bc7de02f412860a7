"""Losses of A-VPT: classification, lesion segmentation, cross-modal
supervised contrast on tissue embeddings, and the attention prior that keeps
each tissue prompt looking at its own tissue."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss

_dice = DiceLoss(sigmoid=True, batch=False, smooth_nr=1.0, smooth_dr=1.0)


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, negative_weight: float = 0.0) -> torch.Tensor:
    """Dice per image over the images that have a lesion, + BCE over all,
    + `negative_weight` x BCE on the most lesion-like 1 % of the pixels of
    each image without one.

    Per image, so that a 10-pixel mammography mass weighs as much as a
    large ultrasound mass (a Dice over the whole batch is dominated by the
    large ones and lets the model miss small lesions). On a lesion-free
    image the BCE over all pixels barely notices a confident false lesion of
    a few hundred pixels; the top-1 % term does. From scratch at weight 1 it
    taught the model to draw nothing; it is meant for tuning prompts that
    already find lesions."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    has = target.flatten(1).amax(1) > 0
    loss = bce
    if has.any():
        loss = loss + _dice(logits[has], target[has])
    if negative_weight > 0 and not has.all():
        flat = logits[~has].flatten(1)
        top = flat.topk(max(1, flat.shape[1] // 100), dim=1).values
        loss = loss + negative_weight * F.binary_cross_entropy_with_logits(top, torch.zeros_like(top))
    return loss


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    return F.cross_entropy(logits, labels, weight=weights)


def cross_modal_supcon(
    embeddings: torch.Tensor, modality: torch.Tensor, present: torch.Tensor, temperature: float = 0.1
) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020) over tissue embeddings.

    embeddings (B, T, D); the positives of an embedding are the same tissue
    in images of another modality; anchors without any positive are dropped
    (a batch of one modality gives 0, never NaN). `present` (B, T) masks out
    tissues absent from an image.
    """
    b, t, _ = embeddings.shape
    z = F.normalize(embeddings.reshape(b * t, -1), dim=-1)
    tissue_id = torch.arange(t, device=z.device).repeat(b)
    mod = modality.repeat_interleave(t)
    valid = present.reshape(-1).bool()
    z, tissue_id, mod = z[valid], tissue_id[valid], mod[valid]
    if z.shape[0] < 2:
        return embeddings.sum() * 0.0
    logits = z @ z.T / temperature
    self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    positives = (tissue_id[:, None] == tissue_id[None, :]) & (mod[:, None] != mod[None, :])
    has_pos = positives.any(dim=1)
    if not has_pos.any():
        return embeddings.sum() * 0.0
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    log_prob = log_prob.masked_fill(self_mask, 0.0)
    mean_pos = (log_prob * positives).sum(1)[has_pos] / positives.sum(1)[has_pos]
    return -mean_pos.mean()


def attention_prior_loss(attention: torch.Tensor, tissue_on_grid: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """1 - the share of each tissue prompt's attention that falls inside its
    tissue (soft map pooled to the token grid), averaged over present
    tissues. attention and tissue_on_grid are (B, T, N)."""
    inside = (attention * tissue_on_grid).sum(-1)  # (B, T)
    mask = present.to(inside.dtype)
    return ((1 - inside) * mask).sum() / mask.sum().clamp_min(1.0)
