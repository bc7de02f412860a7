"""Self-supervised pretraining of the backbone (masked autoencoding, MAE)
on a stream of phantoms of all three modalities.

No model hub is reachable where this project is built, so the default
frozen backbone is made here: a pool of phantom images (mammograms, ultrasound
frames and MRI slices with random densities, views, findings and noise) is
generated once, random crops of it are masked (75 % of the patches) and a
small decoder learns to fill them in from what the ViT encoder saw (He et
al. 2022). Only the encoder is kept, saved as timm-compatible safetensors.
The run is budgeted in minutes, saves its weights atomically every few
minutes, and uses a GPU when there is one.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save as safetensors_bytes
from timm.layers import build_sincos2d_pos_embed
from timm.models.vision_transformer import Block
from torch import nn

from ..io.files import write_bytes_atomic, write_text_atomic
from .backbones import create_backbone, state_sha256
from .device import autocast, resolve_device
from .preprocess import normalize
from .progress import CancelFn, Cancelled, Progress, ProgressFn
from .views import fit_for


@dataclass
class PretrainConfig:
    backbone: str = "vit_tiny_patch16_224"
    img_size: int = 224
    pool_mg: int = 400
    pool_us: int = 400
    pool_mr_volumes: int = 40
    mr_slices_per_volume: int = 10
    mask_ratio: float = 0.75
    batch_size: int = 64
    lr: float = 1.5e-4 * 64 / 256 * 4
    weight_decay: float = 0.05
    minutes: float = 60.0
    max_epochs: int = 10_000
    steps: int | None = None  # set: exactly this many steps, schedule by steps (reproducible); else by minutes
    save_every_minutes: float = 5.0
    decoder_dim: int = 128
    decoder_depth: int = 2
    seed: int = 0
    device: str = "auto"


def phantom_pool(cfg: PretrainConfig, progress: ProgressFn | None = None) -> torch.Tensor:
    """Phantom images at `cfg.img_size`, uint8 (N, S, S): breast crops of
    mammograms and ultrasound frames, and MRI slices through the breasts."""
    from ..phantoms import make_breast_mri, make_mammogram, make_ultrasound

    rng = np.random.default_rng(cfg.seed)
    size = cfg.img_size
    images = []

    def add(image: np.ndarray, modality: str) -> None:
        fit = fit_for(image, modality, size)
        norm = normalize(image, modality)
        images.append((fit.to_model(norm)[0].clamp(0, 1) * 255).to(torch.uint8))

    for i in range(cfg.pool_mg):
        shape = (int(rng.integers(384, 768)),) * 1
        add(make_mammogram(50_000 + cfg.seed * 10_000 + i, shape=(shape[0], int(shape[0] * 0.81))).image, "MG")
        if progress:
            progress(Progress("phantoms", i + 1, cfg.pool_mg, unit="image", label="MG"))
    for i in range(cfg.pool_us):
        add(make_ultrasound(60_000 + cfg.seed * 10_000 + i).image, "US")
        if progress:
            progress(Progress("phantoms", i + 1, cfg.pool_us, unit="image", label="US"))
    for i in range(cfg.pool_mr_volumes):
        ph = make_breast_mri(70_000 + cfg.seed * 10_000 + i, shape=(48, 160, 192))
        phase = ph.phases[str(rng.choice(list(ph.phases)))]
        norm = normalize(phase, "MR")
        for z in rng.choice(np.arange(8, phase.shape[0] - 8), cfg.mr_slices_per_volume, replace=False):
            add(norm[z] * 1000, "MR")
        if progress:
            progress(Progress("phantoms", i + 1, cfg.pool_mr_volumes, unit="image", label="MR"))
    return torch.stack(images)


class MaskedAutoencoder(nn.Module):
    """A timm ViT encoder with a light MAE decoder."""

    def __init__(self, encoder: nn.Module, decoder_dim: int = 128, decoder_depth: int = 2):
        super().__init__()
        self.encoder = encoder
        dim = encoder.embed_dim
        self.patch = encoder.patch_embed.patch_size[0]
        grid = encoder.patch_embed.grid_size
        self.grid = tuple(grid)
        n = grid[0] * grid[1]
        self.decoder_embed = nn.Linear(dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        pos = build_sincos2d_pos_embed(list(grid), dim=decoder_dim)  # (N, dim), fixed
        pos = torch.cat([torch.zeros(1, decoder_dim), pos.reshape(-1, decoder_dim)])  # the CLS slot gets none
        self.register_buffer("decoder_pos", pos[None], persistent=False)
        self.decoder_blocks = nn.ModuleList([Block(decoder_dim, 4, qkv_bias=True) for _ in range(decoder_depth)])
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        in_chans = encoder.patch_embed.proj.in_channels
        self.decoder_pred = nn.Linear(decoder_dim, self.patch**2 * in_chans)
        self.n_patches = n
        nn.init.normal_(self.mask_token, std=0.02)

    def patchify(self, images: torch.Tensor) -> torch.Tensor:
        b, c, h, w = images.shape
        p = self.patch
        x = images.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, (h // p) * (w // p), p * p * c)

    def forward(self, images: torch.Tensor, mask_ratio: float) -> torch.Tensor:
        enc = self.encoder
        b = images.shape[0]
        x = enc._pos_embed(enc.patch_embed(images))  # (B, 1 + N, D)
        cls, patches = x[:, :1], x[:, 1:]
        keep = int(self.n_patches * (1 - mask_ratio))
        noise = torch.rand(b, self.n_patches, device=images.device)
        shuffle = noise.argsort(dim=1)
        restore = shuffle.argsort(dim=1)
        visible = torch.gather(patches, 1, shuffle[:, :keep, None].expand(-1, -1, patches.shape[-1]))
        x = torch.cat([cls, visible], dim=1)
        for block in enc.blocks:
            x = block(x)
        x = self.decoder_embed(enc.norm(x))
        mask_tokens = self.mask_token.expand(b, self.n_patches - keep, -1)
        seq = torch.cat([x[:, 1:], mask_tokens], dim=1)
        seq = torch.gather(seq, 1, restore[:, :, None].expand(-1, -1, seq.shape[-1]))
        x = torch.cat([x[:, :1], seq], dim=1) + self.decoder_pos
        for block in self.decoder_blocks:
            x = block(x)
        pred = self.decoder_pred(self.decoder_norm(x))[:, 1:]
        target = self.patchify(images)
        target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
        mask = torch.ones(b, self.n_patches, device=images.device)
        mask[:, :keep] = 0
        mask = torch.gather(mask, 1, restore)
        loss = ((pred - target) ** 2).mean(-1)
        return (loss * mask).sum() / mask.sum()


def _augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random resized crops and flips of uint8 (B, S, S) -> float (B, 3, S, S)
    standardised like the model's inputs."""
    from .preprocess import MEAN, STD

    b, s, _ = batch.shape
    x = batch.float()[:, None] / 255.0
    scale = torch.empty(b).uniform_(0.35, 1.0, generator=generator).sqrt()
    shift = (1 - scale)[:, None] * (torch.rand(b, 2, generator=generator) * 2 - 1)
    theta = torch.zeros(b, 2, 3)
    flip = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0)
    theta[:, 0, 0], theta[:, 1, 1] = scale * flip, scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, (b, 1, s, s), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    gamma = torch.exp(torch.randn(b, 1, 1, 1, generator=generator) * 0.2)
    x = x.clamp(0, 1) ** gamma
    return ((x - MEAN) / STD).expand(-1, 3, -1, -1).contiguous()


def pretrain(
    cfg: PretrainConfig,
    out: str | Path,
    pool: torch.Tensor | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> dict:
    """Run MAE pretraining for `cfg.minutes`; returns a summary. The encoder
    is saved to `out` (timm state-dict keys, safetensors) every
    `cfg.save_every_minutes` and at the end, with a JSON log beside it.
    A `Progress` after each step and epoch; when `cancel()` says stop, the
    encoder so far is saved and `Cancelled` raised with the summary."""
    out = Path(out)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    if pool is None:
        pool = phantom_pool(cfg)
    encoder = create_backbone(cfg.backbone, cfg.img_size, seed=cfg.seed)
    model = MaskedAutoencoder(encoder, cfg.decoder_dim, cfg.decoder_depth).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay)
    generator = torch.Generator().manual_seed(cfg.seed)
    steps_per_epoch = max(len(pool) // cfg.batch_size, 1)
    start = time.perf_counter()
    budget = cfg.minutes * 60
    last_save = start
    log = {"config": asdict(cfg), "pool": len(pool), "epochs": []}
    step = 0
    epoch = 0

    def lr_at(elapsed: float) -> float:
        # Warm-up over the first 5 %, then cosine; of the steps when they are
        # fixed (the same run on any machine), else of the time budget.
        done = step / cfg.steps if cfg.steps else elapsed / budget
        warm = min(1.0, done / 0.05)
        return cfg.lr * max(warm, 1e-3) * 0.5 * (1 + math.cos(math.pi * min(done, 1.0)))

    def save(final: bool = False) -> None:
        state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
        meta = {"recipe": "MAE on napari-avpt phantoms", "config": json.dumps(asdict(cfg)), "steps": str(step)}
        write_bytes_atomic(out, safetensors_bytes(state, metadata=meta))
        log["sha256_state"] = state_sha256(encoder)
        log["final"] = final
        write_text_atomic(out.with_suffix(".json"), json.dumps(log, indent=1))

    done = cancelled = False
    while not done and epoch < cfg.max_epochs:
        epoch += 1
        order = torch.randperm(len(pool), generator=generator)
        losses = []
        model.train()
        for i in range(steps_per_epoch):
            elapsed = time.perf_counter() - start
            out_of_budget = step >= cfg.steps if cfg.steps else elapsed > budget
            cancelled = cancel is not None and cancel()
            if out_of_budget or cancelled:
                done = True
                break
            for group in optimizer.param_groups:
                group["lr"] = lr_at(elapsed)
            batch = _augment(pool[order[i * cfg.batch_size : (i + 1) * cfg.batch_size]], generator).to(device)
            with autocast(device):
                loss = model(batch, cfg.mask_ratio)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            losses.append(loss.item())
            if progress:
                progress(Progress("pretrain", step, cfg.steps or None, epoch=epoch, loss=losses[-1], seconds=elapsed))
            if time.perf_counter() - last_save > cfg.save_every_minutes * 60:
                save()
                last_save = time.perf_counter()
        if losses:
            log["epochs"].append(
                {"epoch": epoch, "loss": float(np.mean(losses)), "seconds": time.perf_counter() - start}
            )
            if progress:
                e = log["epochs"][-1]
                progress(
                    Progress("pretrain", epoch, None, unit="epoch", epoch=epoch, loss=e["loss"], seconds=e["seconds"])
                )
    save(final=True)
    summary = {"steps": step, "epochs": epoch, "seconds": time.perf_counter() - start, "out": str(out)}
    if cancelled:
        raise Cancelled(f"cancelled after {step} steps (the encoder so far is saved)", summary)
    return summary
