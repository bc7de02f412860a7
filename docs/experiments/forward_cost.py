"""Forward time of A-VPT's head and decoder variants against the plain
frozen ViT, interleaved in one process (batch 8, 2 threads, best of 10
after a warm-up), so that the machine's drift between runs cancels out.
Session 9 (docs/benchmarks-speed.md).

Usage: python docs/experiments/forward_cost.py"""

import time

import torch

from napari_avpt.engine import build_model
from napari_avpt.model import ModelConfig
from napari_avpt.model.config import LEGACY

torch.set_num_threads(2)
x, tissue, modality = torch.randn(8, 3, 224, 224), torch.rand(8, 3, 224, 224), torch.zeros(8, dtype=torch.long)
variants = {
    "shipped default's design (4-ReLU fuse, CLS-only class head)": dict(LEGACY),
    "16-GELU fuse, shared decoder, CLS-only class head": dict(
        fuse_channels=16, class_from="image", modality_decoder=False, modality_fuse=False
    ),
    "+ FiLM decoder": dict(fuse_channels=16, class_from="image", modality_fuse=False),
    "+ lesion-pooled class head (a new set in session 9)": dict(fuse_channels=16, modality_fuse=False),
    "the same with a shared 4-GELU fuse": dict(modality_fuse=False),
    "4 GELU units per modality (a new set since session 10)": {},
}
weights = "weights/vit_tiny_mae_phantoms.safetensors"
models = {name: build_model(ModelConfig(method="avpt", **kw), weights)[0].eval() for name, kw in variants.items()}
vit = next(iter(models.values())).vit
times = {name: [] for name in [*models, "plain frozen ViT"]}
with torch.inference_mode():
    for _ in range(11):
        for name, model in models.items():
            start = time.perf_counter()
            model(x, tissue, modality)
            times[name].append(time.perf_counter() - start)
        start = time.perf_counter()
        vit.forward_features(x)
        times["plain frozen ViT"].append(time.perf_counter() - start)
plain = min(times["plain frozen ViT"][1:])
for name, t in times.items():
    print(f"{name}: {min(t[1:]) / 8 * 1000:.1f} ms/image, x{min(t[1:]) / plain:.2f}")
