"""Outputs of every method on a fixed input, kept to show that reorganising
the model's code leaves what it computes unchanged.

`python -m tests.model.golden` writes tests/model/data/golden_outputs.safetensors
(run it only when a change is meant to alter the outputs, and say so).
"""

from __future__ import annotations

from pathlib import Path

import torch

from napari_avpt.engine import build_model
from napari_avpt.model import METHODS, ModelConfig

GOLDEN = Path(__file__).parent / "data" / "golden_outputs.safetensors"
SIZE = 32  # 2 x 2 tokens: every path of the model runs, the file stays small


def golden_input() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1234)
    images = torch.randn(2, 3, SIZE, SIZE, generator=g)
    tissue = torch.rand(2, 3, SIZE, SIZE, generator=g)
    return images, tissue, torch.tensor([0, 1])


def outputs(configs: dict | None = None) -> dict[str, torch.Tensor]:
    """Each method's outputs on the golden input, keyed `method/field`."""
    images, tissue, modality = golden_input()
    out = {}
    for name, fields in (configs or cases()).items():
        model, _ = build_model(ModelConfig(img_size=SIZE, **fields), seed=7)
        # Non-zero heads and prompts, so that every part moves the outputs.
        with torch.no_grad():
            g = torch.Generator().manual_seed(99)
            for n, p in sorted(model.named_parameters()):
                if p.requires_grad and not n.startswith("vit."):
                    p.add_(0.05 * torch.randn(p.shape, generator=g))
        model.eval()
        with torch.no_grad():
            o = model(images, tissue, modality, want_attention=True)
        out[f"{name}/class_logits"] = o.class_logits
        out[f"{name}/lesion_logits"] = o.lesion_logits
        out[f"{name}/lesion_attention"] = o.lesion_attention
        if o.tissue_attention is not None:
            out[f"{name}/tissue_attention"] = o.tissue_attention
            out[f"{name}/tissue_embeddings"] = o.tissue_embeddings
    return out


def default_outputs() -> dict[str, torch.Tensor]:
    """The shipped default set's outputs (loaded from its file, as a user
    loads it) on a 224-px golden input; the lesion map pooled to 28 x 28."""
    from napari_avpt.engine import load_model
    from napari_avpt.io.weights import default_prompts

    model, _ = load_model(default_prompts())
    g = torch.Generator().manual_seed(4321)
    images, tissue = torch.randn(2, 3, 224, 224, generator=g), torch.rand(2, 3, 224, 224, generator=g)
    model.eval()
    with torch.no_grad():
        o = model(images, tissue, torch.tensor([1, 2]), want_attention=True)
    return {
        "default/class_logits": o.class_logits,
        "default/lesion_pooled": torch.nn.functional.avg_pool2d(o.lesion_logits, 8),
        "default/tissue_attention": o.tissue_attention,
    }


def cases() -> dict[str, dict]:
    c = {m: {"method": m} for m in METHODS}
    c["vpt-deep-same-decoder"] = {"method": "vpt-deep", "baseline_modality_decoder": True}
    c["avpt-class-image"] = {"method": "avpt", "class_from": "image"}
    c["avpt-class-final"] = {"method": "avpt", "class_from": "lesion-final"}
    c["avpt-decoder-per-modality"] = {"method": "avpt", "decoder_per_modality": True}
    return c


if __name__ == "__main__":
    from safetensors.torch import save_file

    GOLDEN.parent.mkdir(exist_ok=True)
    save_file({k: v.contiguous() for k, v in {**outputs(), **default_outputs()}.items()}, str(GOLDEN))
    print(f"wrote {GOLDEN}")
