"""Prompt sets on disk: safetensors only (never a pickle), written
atomically, with metadata that ties them to their backbone.

A prompt set holds the trainable tensors of a model (prompts, gates, heads;
for full fine-tuning the whole network) and, in the safetensors metadata:
format and version, method, backbone name and the sha256 of the backbone it
was trained on, image size, modalities, tissues, metrics and the model
configuration. Loading refuses a file made for another backbone.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

from .. import __version__
from ..errors import AvptError
from ..io.files import write_bytes_atomic
from ..model import AVPT, ModelConfig
from ..model.config import MODALITY_INDEX
from .anatomy import TISSUE_ORDER

FORMAT = "napari-avpt-prompts"
FORMAT_VERSION = "2"
# Format 1 kept the prompts' tensors at the model's top level and, in its
# configuration, switches of experiments that lost. Its sets are converted
# on load where today's model computes them the same (the shipped default
# among them), as timm's checkpoint filters convert old weights; the rest
# are refused with the reason.
V1_TENSORS = {
    "generator.": "prompts.generator.",
    "gates": "prompts.gates",
    "global_prompts": "prompts.global_prompts",
    "vpt_prompts": "prompts.tokens_per_layer",
}
V1_SWITCHES = ("tissue_shift", "tissue_attention", "tune_layernorm")


def trainable_state(model: AVPT) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k in model.set_names}


def save_prompt_set(path: str | Path, model: AVPT, backbone_sha256: str, extra: dict | None = None) -> Path:
    path = Path(path)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "napari_avpt_version": __version__,
        "method": model.cfg.method,
        "backbone": model.cfg.backbone,
        "backbone_sha256": backbone_sha256,
        "img_size": str(model.cfg.img_size),
        "tissues": ",".join(TISSUE_ORDER),
        "config": json.dumps(model.cfg.to_dict()),
    }
    for key, value in (extra or {}).items():
        meta[key] = value if isinstance(value, str) else json.dumps(value)
    write_bytes_atomic(path, safetensors_bytes(trainable_state(model), metadata=meta))
    return path


def read_metadata(path: str | Path) -> dict:
    """The metadata of a prompt set, JSON fields decoded."""
    path = Path(path)
    if not path.exists():
        raise AvptError(f"prompt set not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
    except Exception as e:  # safetensors raises its own error types on bad headers
        raise AvptError(f"{path.name} is not a safetensors prompt set ({str(e).splitlines()[0]})") from None
    if meta.get("format") != FORMAT:
        raise AvptError(f"{path.name} is not a napari-avpt prompt set")
    for key in ("config", "metrics", "modalities", "history", "thresholds", "zoom_look"):
        if key in meta:
            try:
                meta[key] = json.loads(meta[key])
            except json.JSONDecodeError:
                pass
    return meta


def thresholds_from(meta: dict) -> dict[str, float]:
    """The lesion threshold per modality that training calibrated on its
    validation images ({} for files without them: 0.5 applies)."""
    raw = meta.get("thresholds") or {}
    ok = isinstance(raw, dict) and all(
        k in MODALITY_INDEX and isinstance(v, (int, float)) and 0.0 < v < 1.0 for k, v in raw.items()
    )
    if not ok:
        raise AvptError(f"unreadable lesion thresholds in the prompt set: {str(raw)[:80]}")
    return {k: float(v) for k, v in raw.items()}


def zoom_look_from(meta: dict) -> dict[str, float]:
    """The context of the Segmenter's zoomed second look per modality, for
    the modalities the set was taught zoomed views of (`data.make_examples`);
    {} for sets without (no second look)."""
    raw = meta.get("zoom_look") or {}
    ok = isinstance(raw, dict) and all(
        k in MODALITY_INDEX and isinstance(v, (int, float)) and 1.0 <= v <= 10.0 for k, v in raw.items()
    )
    if not ok:
        raise AvptError(f"unreadable zoom_look metadata in the prompt set: {str(raw)[:80]}")
    return {k: float(v) for k, v in raw.items()}


def zoom_look_taught(carried, examples) -> dict[str, float]:
    """The zoomed second look of a set being trained: the one it was tuned
    from (`carried`, its metadata value) and that of each modality its
    training examples hold zoomed views of (`data.make_examples`)."""
    from .evaluate import MODALITY_NAMES
    from .views import ZOOM_LOOK_CONTEXT

    out = zoom_look_from({"zoom_look": json.loads(carried) if isinstance(carried, str) else carried})
    for e in examples:
        if e.id.endswith("#zoom"):
            out[MODALITY_NAMES[e.modality]] = ZOOM_LOOK_CONTEXT
    return out


def with_metadata(src: str | Path, dst: str | Path, updates: dict[str, str]) -> Path:
    """A copy of the prompt set `src` at `dst` (atomically; it may be `src`)
    with these metadata entries set; its tensors are unchanged."""
    read_metadata(src)  # refuses what is not a prompt set
    with safe_open(str(src), framework="pt") as f:
        raw = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    write_bytes_atomic(dst, safetensors_bytes(tensors, metadata={**raw, **updates}))
    return Path(dst)


def with_thresholds(src: str | Path, dst: str | Path, thresholds: dict[str, float], note: str) -> Path:
    """A copy of the prompt set `src` at `dst` whose lesion thresholds are
    `thresholds`; `note` says where they came from (metadata `calibration`)."""
    meta = read_metadata(src)
    checked = json.dumps(thresholds_from({**meta, "thresholds": thresholds}))
    return with_metadata(src, dst, {"thresholds": checked, "calibration": note})


def model_config_from(path: str | Path) -> ModelConfig:
    meta = read_metadata(path)
    try:
        return config_from_saved(meta["config"], meta.get("format_version", "1"))
    except (KeyError, TypeError, ValueError) as e:
        raise AvptError(f"{Path(path).name}: unreadable model configuration ({e})") from None


def config_from_saved(saved: dict, version: str) -> ModelConfig:
    """The configuration a prompt set was saved with, converted from an
    older format; `AvptError` for a set today's model cannot compute."""
    saved = dict(saved)
    if version == "1":
        saved = _config_v1(saved)
    elif version != FORMAT_VERSION:
        raise AvptError(f"prompt set format {version} is not one this napari-avpt reads (it reads 1 and 2)")
    return ModelConfig(**saved)


def _config_v1(saved: dict) -> dict:
    for switch in V1_SWITCHES:
        if saved.pop(switch, False):
            raise AvptError(f"the set was made with the experimental option {switch}, which napari-avpt no longer has")
    saved.pop("tissue_attention_init", None)
    # A field a format-1 set lacks was made with its first value.
    saved.setdefault("class_from", "image")  # before the class head read the lesion
    method = saved.get("method", "avpt")
    conditioned = method.startswith("avpt") or saved.get("baseline_modality_decoder", False)
    activation = saved.pop("decoder_activation", "relu")
    film = saved.pop("modality_decoder", False)
    per_modality = saved.pop("modality_fuse", False)
    if activation != "gelu" or (conditioned and not (film and per_modality)):
        raise AvptError(
            "the set was made with an earlier lesion decoder (a ReLU fuse, or one not conditioned on the modality) "
            "that napari-avpt no longer builds: tune it again"
        )
    return saved


def _tensors_v1(tensors: dict) -> dict:
    """Format-1 tensor names, as today's model names them."""
    out = {}
    for key, value in tensors.items():
        for old, new in V1_TENSORS.items():
            if key == old or (old.endswith(".") and key.startswith(old)):
                key = new + key[len(old) :] if old.endswith(".") else new
                break
        out[key] = value
    return out


def load_prompt_set(path: str | Path, model: AVPT, backbone_sha256: str) -> dict:
    """Load a prompt set into `model`; refuse it when it was made for another
    backbone, method or image size. Returns the metadata."""
    path = Path(path)
    meta = read_metadata(path)
    problems = []
    if meta.get("backbone") != model.cfg.backbone:
        problems.append(f"backbone {meta.get('backbone')} (this model: {model.cfg.backbone})")
    elif meta.get("backbone_sha256") != backbone_sha256:
        problems.append("backbone weights differ from the ones it was tuned on")
    if meta.get("method") != model.cfg.method:
        problems.append(f"method {meta.get('method')} (this model: {model.cfg.method})")
    if meta.get("img_size") != str(model.cfg.img_size):
        problems.append(f"image size {meta.get('img_size')} (this model: {model.cfg.img_size})")
    if problems:
        raise AvptError(f"{path.name} does not match this model: " + "; ".join(problems))
    expected = {k: v for k, v in model.state_dict().items()}
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if meta.get("format_version", "1") == "1":
        tensors = _tensors_v1(tensors)
    for key, value in tensors.items():
        if key not in expected or expected[key].shape != value.shape:
            here = "absent" if key not in expected else tuple(expected[key].shape)
            raise AvptError(
                f"{path.name} does not match this model's layout (tensor {key}: {tuple(value.shape)} in the file, "
                f"{here} here); it was made by napari-avpt {meta.get('napari_avpt_version', '?')}, "
                f"this is {__version__}: tune it again"
            )
    broken = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if broken:
        raise AvptError(
            f"{path.name} holds values that are not numbers (NaN or infinite) in {len(broken)} tensor(s) "
            f"(first: {broken[0]}): the training that made it diverged; it cannot be used"
        )
    missing = sorted(n for n in model.set_names if n not in tensors)
    if missing:
        raise AvptError(
            f"{path.name} lacks {len(missing)} of this model's trained tensors (first: {missing[0]}); it was made "
            f"by napari-avpt {meta.get('napari_avpt_version', '?')}, this is {__version__}: tune it again"
        )
    model.load_state_dict(tensors, strict=False)
    return meta


def export_backbone(path: str | Path, out: str | Path, recipe: str = "") -> Path:
    """The backbone of a full fine-tuning set (`--method full`) as a plain
    timm state dict in safetensors, to be frozen under new prompts: a
    backbone trained with supervision, then frozen (DESIGN §4, item 8)."""
    path, out = Path(path), Path(out)
    meta = read_metadata(path)
    if meta.get("method") != "full":
        raise AvptError(f"{path.name} is a {meta.get('method')} set: only a 'full' set holds a whole backbone")
    if out.suffix != ".safetensors":
        raise AvptError(f"--out must be a .safetensors file, not {out.name}")
    with safe_open(str(path), framework="pt") as f:
        state = {k[len("vit.") :]: f.get_tensor(k) for k in f.keys() if k.startswith("vit.")}
    if not state:
        raise AvptError(f"{path.name} holds no backbone tensors")
    info = {
        "recipe": recipe or f"supervised: full fine-tuning ({path.name})",
        "source_set": path.name,
        "backbone": str(meta.get("backbone")),
        "data": json.dumps(meta.get("data", "")),
        "epoch": str(meta.get("epoch", "")),
    }
    write_bytes_atomic(out, safetensors_bytes(state, metadata=info))
    return out


def adopt_decoder(model: AVPT, path: str | Path) -> list[str]:
    """Start `model`'s lesion decoder from the one of the set at `path`
    (e.g. the full fine-tuning run whose backbone `model` is frozen on), so
    that new prompts are tuned over a decoder that already reads that
    backbone. A shared fuse is copied into every modality's units of a
    per-modality one (each then starts as it, as `SegmentationDecoder` does);
    FiLM stays at identity. Returns the names copied."""
    with safe_open(str(path), framework="pt") as f:
        theirs = {k: f.get_tensor(k) for k in f.keys() if k.startswith("decoder.")}
    if not theirs:
        raise AvptError(f"{Path(path).name} holds no lesion decoder")
    mine = dict(model.named_parameters())
    k = model.decoder.n_fused
    copied = []
    with torch.no_grad():
        for name, value in theirs.items():
            if name not in mine:
                continue
            target = mine[name]
            if target.shape != value.shape and name.startswith("decoder.fuse.") and k > 1:
                value = value.repeat(k, *([1] * (value.dim() - 1)))
            if target.shape != value.shape:
                shapes = f"{tuple(value.shape)}, here {tuple(target.shape)}"
                raise AvptError(f"{Path(path).name}: decoder tensor {name} is {shapes}")
            target.copy_(value)
            copied.append(name)
    if not copied:  # e.g. a set with one decoder per modality into a new set's shared one
        raise AvptError(f"{Path(path).name}: its lesion decoder is laid out unlike this set's (none of it fits)")
    return copied
