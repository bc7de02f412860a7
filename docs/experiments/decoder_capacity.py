"""How much ultrasound lesion Dice the decoder's size holds back: the shipped
A-VPT set's block taps are computed once (prompts and backbone frozen, no
augmentation) for BUS-BRA frames, and lesion decoders of several sizes are
trained on them alone, then scored per frame on validation patients at the
shipped ultrasound threshold. Run from the repository root:

    .venv/bin/python docs/experiments/decoder_capacity.py ../shared/data/bus-bra/BUSBRA 12
    (the BUS-BRA folder, then epochs per decoder)
"""

import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from napari_avpt.engine import load_model
from napari_avpt.engine.data import dataset_examples, open_folder_spec
from napari_avpt.engine.preprocess import to_model_image
from napari_avpt.io.weights import default_prompts
from napari_avpt.model.heads import SegmentationDecoder
from napari_avpt.model.losses import segmentation_loss


class ImagePyramid(nn.Module):
    """A few strided convolutions of the gray image: features at 1/2, 1/4
    and 1/8 of the input, where a 16-pixel token grid has none."""

    def __init__(self, widths=(8, 16, 32)):
        super().__init__()
        layers, c = [], 1
        for w in widths:
            layers.append(nn.Sequential(nn.Conv2d(c, w, 3, stride=2, padding=1), nn.GroupNorm(4, w), nn.GELU()))
            c = w
        self.layers = nn.ModuleList(layers)

    def forward(self, gray):
        out, x = [], gray
        for layer in self.layers:
            x = layer(x)
            out.append(x)
        return out  # 1/2, 1/4, 1/8


class PyramidDecoder(nn.Module):
    """Token taps -> 1x1 -> upsampled stage by stage, joined at 1/8 and 1/4
    and 1/2 by the image pyramid's features (U-Net style), then a 3x3 head."""

    def __init__(self, dim, n_taps, channels=32, widths=(8, 16, 32)):
        super().__init__()
        self.lateral = nn.Linear(dim * n_taps, channels)
        self.pyramid = ImagePyramid(widths)
        self.joins = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels + w, channels, 3, padding=1), nn.GroupNorm(4, channels), nn.GELU())
            for w in reversed(widths)
        )
        self.out = nn.Conv2d(channels, 1, 3, padding=1)
        nn.init.constant_(self.out.bias, -4.6)

    def forward(self, taps, grid, image, modality=None):
        b = taps.shape[0]
        x = self.lateral(taps).transpose(1, 2).reshape(b, -1, *grid)
        feats = self.pyramid(image.mean(1, keepdim=True))
        for join, f in zip(self.joins, reversed(feats)):
            x = F.interpolate(x, size=f.shape[-2:], mode="bilinear", align_corners=False)
            x = join(torch.cat([x, f], dim=1))
        x = F.interpolate(x, size=image.shape[-2:], mode="bilinear", align_corners=False)
        return self.out(x)


@torch.no_grad()
def cached(model, examples, batch=32):
    taps, images, lesions, mods = [], [], [], []
    for i in range(0, len(examples), batch):
        part = examples[i : i + batch]
        x = torch.stack([to_model_image(e.image.float()) for e in part])
        t = torch.stack([e.tissue.float() for e in part])
        m = torch.tensor([e.modality for e in part])
        f = model.forward_features(x, t, m)
        taps.append(f.taps.half())
        images.append(x[:, :1].half())
        lesions.append(torch.stack([e.lesion.float() for e in part]).bool())
        mods.append(m)
    return torch.cat(taps), torch.cat(images), torch.cat(lesions), torch.cat(mods)


@torch.no_grad()
def score(decoder, data, grid, threshold, batch=64):
    taps, images, lesions, mods = data
    dices, clean = [], []
    for i in range(0, len(taps), batch):
        x = images[i : i + batch].float().expand(-1, 3, -1, -1)
        prob = torch.sigmoid(decoder(taps[i : i + batch].float(), grid, x, mods[i : i + batch]))
        pred, true = prob[:, 0] > threshold, lesions[i : i + batch, 0]
        for p, t in zip(pred, true):
            if t.any():
                dices.append(float(2 * (p & t).sum() / (p.sum() + t.sum())))
            else:
                clean.append(not p.any())
    return float(np.mean(dices)), float(np.mean(clean))


def fit(decoder, train, val, grid, threshold, epochs, lr=2e-3, batch=16):
    taps, images, lesions, mods = train
    opt = torch.optim.AdamW([p for p in decoder.parameters() if p.requires_grad], lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(taps) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(0)
    best = (0.0, 0.0, 0)
    for epoch in range(epochs):
        decoder.train()
        order = torch.randperm(len(taps), generator=gen)
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            x = images[idx].float().expand(-1, 3, -1, -1)
            logits = decoder(taps[idx].float(), grid, x, mods[idx])
            target = lesions[idx].float()
            loss = segmentation_loss(logits, target, 0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        decoder.eval()
        d, c = score(decoder, val, grid, threshold)
        print(f"  epoch {epoch + 1}: validation Dice {d:.3f}, lesion-free views clean {c:.0%}", flush=True)
        best = max(best, (d, c, epoch + 1))
    return best


def main(folder, epochs):
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model, meta = load_model(default_prompts())
    model.eval()
    threshold = float(meta["thresholds"]["US"])
    grid = model.grid
    start = time.perf_counter()
    train_ex = dataset_examples(open_folder_spec(f"{folder}:folds=3,4,5")[0], 224, "anatomy")
    val_ex = dataset_examples(open_folder_spec(f"{folder}:folds=2")[0], 224, "anatomy")
    train, val = cached(model, train_ex), cached(model, val_ex)
    print(f"{len(train_ex)} training, {len(val_ex)} validation views; taps in {time.perf_counter() - start:.0f} s")
    dim, n_taps = model.vit.embed_dim, len(model.taps)
    d, c = score(model.decoder, val, grid, threshold)
    print(f"shipped decoder: validation Dice {d:.3f}, lesion-free views clean {c:.0%}", flush=True)
    per_modality = {"n_modalities": 3, "fuse_per_modality": True}
    variants = {
        "shipped, trained on": lambda: model.decoder,
        "shipped size, fresh": lambda: SegmentationDecoder(dim, n_taps, 16, 16, 8, 3, 4, **per_modality),
        "4x wider, fresh": lambda: SegmentationDecoder(dim, n_taps, 16, 64, 16, 3, 16, **per_modality),
        "image pyramid (U-Net style)": lambda: PyramidDecoder(dim, n_taps),
    }
    for name, make in variants.items():
        torch.manual_seed(0)
        decoder = make()
        for p in decoder.parameters():
            p.requires_grad = True
        n = sum(p.numel() for p in decoder.parameters())
        t0 = time.perf_counter()
        print(f"{name} ({n:,} parameters):", flush=True)
        d, c, e = fit(decoder, train, val, grid, threshold, epochs)
        seconds = time.perf_counter() - t0
        print(f"{name}: best validation Dice {d:.3f} (epoch {e}), clean {c:.0%}, {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
