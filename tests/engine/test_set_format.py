"""Prompt set formats: today's (2) saved and read; format 1 (the shipped
default's) converted on load to the same model, or refused with the reason."""

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from napari_avpt.engine import build_model, load_model
from napari_avpt.engine.checkpoints import V1_TENSORS, read_metadata, save_prompt_set
from napari_avpt.errors import AvptError
from napari_avpt.model import ModelConfig

SIZE = 32


def _as_format_1(path, out, **config_changes):
    """The set at `path` written as format 1 wrote it: the prompts' tensors
    at the model's top level, the decoder and experiment fields in its
    configuration."""
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    back = {new: old for old, new in V1_TENSORS.items()}
    renamed = {}
    for key, value in tensors.items():
        for new, old in back.items():
            if key == new or (new.endswith(".") and key.startswith(new)):
                key = old + key[len(new) :] if new.endswith(".") else old
                break
        renamed[key] = value
    config = json.loads(meta["config"])
    config.update(decoder_activation="gelu", modality_decoder=True, modality_fuse=True, tissue_shift=False)
    config.update(tissue_attention=False, tissue_attention_init=2.0, tune_layernorm=False)
    config.update(config_changes)
    config = {k: v for k, v in config.items() if v is not None}
    meta.update(format_version="1", config=json.dumps(config))
    save_file(renamed, str(out), metadata=meta)
    return out


@pytest.fixture(scope="module")
def saved_sets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sets")
    out = {}
    for method in ("avpt", "vpt-deep"):
        model, sha = build_model(ModelConfig(method=method, img_size=SIZE))
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in model.set_names:
                    p.add_(0.05 * torch.randn_like(p))
        out[method] = save_prompt_set(folder / f"{method}.safetensors", model, sha, {"backbone_seed": "0"})
    return folder, out


@pytest.mark.parametrize("method", ["avpt", "vpt-deep"])
def test_a_format_1_set_loads_as_the_same_model(saved_sets, method):
    folder, sets = saved_sets
    assert read_metadata(sets[method])["format_version"] == "2"
    old = _as_format_1(sets[method], folder / f"{method}_v1.safetensors")
    images, tissue, modality = torch.randn(2, 3, SIZE, SIZE), torch.rand(2, 3, SIZE, SIZE), torch.tensor([0, 1])
    (new_model, _), (old_model, _) = load_model(sets[method]), load_model(old)
    with torch.no_grad():
        a, b = new_model(images, tissue, modality), old_model(images, tissue, modality)
    assert torch.equal(a.lesion_logits, b.lesion_logits) and torch.equal(a.class_logits, b.class_logits)


def test_format_1_sets_today_cannot_compute_are_refused(saved_sets):
    folder, sets = saved_sets
    switch = _as_format_1(sets["avpt"], folder / "shift.safetensors", tissue_shift=True)
    with pytest.raises(AvptError, match="experimental option tissue_shift"):
        load_model(switch)
    first_decoder = _as_format_1(
        sets["avpt"], folder / "relu.safetensors", decoder_activation=None, modality_decoder=None, modality_fuse=None
    )
    with pytest.raises(AvptError, match="earlier lesion decoder"):
        load_model(first_decoder)


def test_a_newer_format_is_refused(saved_sets, tmp_path):
    _, sets = saved_sets
    with safe_open(str(sets["avpt"]), framework="pt") as f:
        meta, tensors = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors, str(tmp_path / "v3.safetensors"), metadata={**meta, "format_version": "3"})
    with pytest.raises(AvptError, match="format 3 is not one this napari-avpt reads"):
        load_model(tmp_path / "v3.safetensors")
