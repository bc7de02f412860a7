"""Training, evaluation, inference and checkpoints. No Qt here: long work
takes a `progress` callback (given `progress.Progress` updates) and a
`cancel` check (`progress.Cancelled` when it says stop), never a widget."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

# timm imports torchvision, which imports torch's compiler stack, which
# imports triton if it is installed. Triton carries its own LLVM, and loading
# it into a process that already has Mesa's software OpenGL (napari on a
# machine without a GPU driver: VMs, remote desktops, Xvfb) crashes the
# process. napari-avpt never compiles kernels, so triton is kept out while
# torch and timm are first imported here (not if something imported it
# already, or with NAPARI_AVPT_ALLOW_TRITON=1), and put back afterwards:
# other plugins in napari's process may still import it themselves.
from .._triton import without_triton

with without_triton():
    import timm  # noqa: F401  (imported here, under the guard; backbones uses it)
    import torch  # noqa: F401

from ..errors import AvptError
from ..model import AVPT, ModelConfig
from .backbones import create_backbone, seeded, state_sha256
from .checkpoints import load_prompt_set, model_config_from, read_metadata, thresholds_from, zoom_look_from
from .lesion_choice import REGION_FEATURES
from .lesion_class import ShapeFit


def build_model(cfg: ModelConfig, backbone_weights=None, hub: bool = False, seed: int = 0) -> tuple[AVPT, str]:
    """The model for `cfg` on its backbone, and the backbone's sha256 (what
    prompt sets are tied to)."""
    vit = create_backbone(cfg.backbone, cfg.img_size, backbone_weights, hub=hub, seed=seed)
    sha = state_sha256(vit)
    with seeded(seed):  # the prompts and heads start the same for the same seed
        model = AVPT(vit, cfg)
    return model, sha


def with_class_head(model: AVPT, class_from: str, seed: int = 0) -> AVPT:
    """`model` with a fresh class head that reads `class_from`
    (`ModelConfig.class_from`); every other tensor, the lesion decoder and
    the prompts among them, is kept as it is. For re-training the class of a
    prompt set (such as the shipped default) without moving what it draws."""
    if class_from == model.cfg.class_from:
        return model
    with seeded(seed):
        new = AVPT(model.vit, replace(model.cfg, class_from=class_from))
    kept = {k: v for k, v in model.state_dict().items() if not k.startswith("class_head.")}
    missing, unexpected = new.load_state_dict(kept, strict=False)
    assert not unexpected and all(k.startswith("class_head.") for k in missing), (missing, unexpected)
    return new.to(next(model.parameters()).device)


def backbone_meta(backbone_weights=None, seed: int = 0, hub: bool = False) -> dict:
    """What a prompt set records to rebuild its backbone."""
    if backbone_weights is not None:
        return {"backbone_weights": Path(backbone_weights).name}
    if hub:
        return {"backbone_hub": "1"}
    return {"backbone_seed": str(seed)}


def backbone_meta_of(meta: dict) -> dict:
    """The backbone record of a loaded set's metadata, for a set tuned from it."""
    return {k: meta[k] for k in ("backbone_weights", "backbone_hub", "backbone_seed") if k in meta}


def load_model(prompts, backbone_weights=None) -> tuple[AVPT, dict]:
    """Rebuild the model a prompt set was trained with and load it. The
    backbone comes from `backbone_weights`, else the weights file named in
    the prompt set (looked up beside it), else the seeded random backbone it
    records; a mismatch is refused."""
    prompts = Path(prompts)
    meta = read_metadata(prompts)
    cfg = model_config_from(prompts)
    candidates = [backbone_weights]
    if backbone_weights is None and meta.get("backbone_weights"):
        from ..io.weights import verified, weights_dir

        name = meta["backbone_weights"]
        shipped = weights_dir()
        candidates = []
        if shipped is not None and (shipped / name).exists():
            candidates.append(verified(name, shipped))  # checksum first: a changed file is refused
        if (prompts.parent / name).exists() and prompts.parent.resolve() != (shipped and shipped.resolve()):
            candidates.append(prompts.parent / name)  # a backbone of the user's that has the shipped one's name
        if not candidates:
            raise AvptError(f"{prompts.name} needs the backbone weights {name} (--backbone-weights)")
    hub = backbone_weights is None and meta.get("backbone_hub") == "1"
    for i, weights in enumerate(candidates):
        model, sha = build_model(cfg, weights, hub=hub, seed=int(meta.get("backbone_seed", 0)))
        if sha == meta.get("backbone_sha256") or i == len(candidates) - 1:
            break
    load_prompt_set(prompts, model, sha)  # refuses a backbone it was not tuned on
    meta["thresholds"] = thresholds_from(meta)
    meta["zoom_look"] = zoom_look_from(meta)
    meta["class_shape"] = ShapeFit.from_meta(meta.get("class_shape"), prompts.name)
    choice = meta.get("lesion_choice")
    meta["lesion_choice"] = ShapeFit.from_meta(choice, prompts.name, REGION_FEATURES, "lesion_choice")
    return model, meta


__all__ = ["backbone_meta", "build_model", "create_backbone", "load_model", "state_sha256", "with_class_head"]
