"""Training examples from phantoms, dataset folders or in-memory pairs, all
turned into the same fixed-size tensors (computed once, then augmented)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import AvptError
from ..model.config import CLASS_NAMES, MODALITY_INDEX, modality_code
from .anatomy import breast_mask, labels_to_maps, tissue_maps
from .preprocess import Fit, normalize, subtraction, to_model_image
from .progress import Progress, check_cancel
from .views import MAX_VIEWS, ZOOM_CONTEXT, ZOOM_SHIFT, breast_box, lesion_view, views_for, volume_box


@dataclass
class Example:
    """One view (`views`) of a 2D image or of a volume's slice."""

    image: torch.Tensor  # (1, S, S) in [0, 1]
    tissue: torch.Tensor  # (3, S, S) soft maps: glandular, fatty, ductal
    lesion: torch.Tensor  # (1, S, S) 0/1
    label: int  # index into CLASS_NAMES: normal for a view without the image's lesion
    modality: int  # index from MODALITY_INDEX
    id: str
    group: str = ""  # the 2D image (or slice) the view belongs to: metrics merge its views
    source: str = ""  # the image or volume it came from: train/validation splits keep it whole
    fit: Fit | None = None  # where the view lies in its image


# Modalities whose frames with a lesion also give a view zoomed on it.
ZOOM_MODALITIES = ("US",)
MIN_NEGATIVES = 6  # lesion-free slices taken from each volume, at least
# Of a contrast MRI volume with its pre-contrast phase, the share of slices
# the model is taught on as the post-contrast image alone (the rest as the
# subtraction): users also segment single-phase volumes.
PLAIN_SHARE = 0.5


def make_examples(
    image: np.ndarray,
    modality: str,
    size: int,
    label: str,
    lesion: np.ndarray | None = None,
    tissue_labels: np.ndarray | None = None,
    window: tuple[float, float] | None = None,
    example_id: str = "",
    box: tuple[int, int, int, int] | None = None,
    source: str | None = None,
    model_image: np.ndarray | None = None,
) -> list[Example]:
    """The views of one 2D image (`views.MAX_VIEWS` for its modality, over
    the breast, or over `box` when given). Tissue maps come from
    `tissue_labels` when known (a phantom's truth), else from the classical
    priors of `anatomy`. `model_image`, when given, is what the model sees
    instead of `image` normalised (an MRI subtraction slice, in [0, 1]);
    anatomy and crop still come from `image`. A view without any of the
    image's painted lesion is labelled normal. An ultrasound frame with a
    painted lesion also gives a view zoomed on it (`views.lesion_view`; its
    context and centre drawn from the example's id, so the same each
    time): the Segmenter's second look (`zoom_look.look_again`)."""
    if image.ndim != 2:
        raise AvptError(f"{example_id or 'image'}: expected a 2D gray image, got shape {image.shape}")
    if label not in CLASS_NAMES:
        raise AvptError(f"{example_id}: unknown class {label!r} (normal, benign or malignant)")
    breast = breast_mask(image, modality) if modality == "MG" else None
    if box is None:
        box = breast_box(image, modality, breast)
    norm = normalize(image, modality, window, mask=breast) if model_image is None else model_image
    maps = labels_to_maps(tissue_labels) if tissue_labels is not None else tissue_maps(image, modality)
    painted = lesion is not None and np.any(lesion)
    les = (np.asarray(lesion) > 0).astype(np.float32) if painted else np.zeros(image.shape, np.float32)
    fits = views_for(image.shape, box, size, MAX_VIEWS[modality])
    named = [(fit, example_id if len(fits) == 1 else f"{example_id}#v{v}", example_id) for v, fit in enumerate(fits)]
    if painted and modality in ZOOM_MODALITIES:
        rng = np.random.default_rng(zlib.crc32(example_id.encode()))
        zoom = lesion_view(image.shape, les, size, rng.uniform(*ZOOM_CONTEXT), rng.uniform(-ZOOM_SHIFT, ZOOM_SHIFT, 2))
        if zoom is not None:  # an image of its own for the metrics: its own group
            named.append((zoom, f"{example_id}#zoom", f"{example_id}#zoom"))
    out = []
    for fit, view_id, group in named:
        view_lesion = (fit.to_model(les) > 0.5).float()
        view_label = label if not painted or view_lesion.any() else "normal"
        out.append(
            Example(
                image=fit.to_model(norm),
                tissue=fit.to_model(maps),
                lesion=view_lesion,
                label=CLASS_NAMES.index(view_label),
                modality=MODALITY_INDEX[modality],
                id=view_id,
                group=group,
                source=source or example_id,
                fit=fit,
            )
        )
    return out


def volume_examples(
    volume: np.ndarray,
    modality: str,
    size: int,
    label: str,
    lesion: np.ndarray | None = None,
    tissue_labels: np.ndarray | None = None,
    negatives: float = 1.0,
    rng: np.random.Generator | None = None,
    example_id: str = "",
    pre: np.ndarray | None = None,
    plain_share: float = 0.0,
) -> list[Example]:
    """Slices of a volume along its first (acquisition) axis: every slice
    with lesion, plus `negatives` as many lesion-free slices (class normal),
    at least MIN_NEGATIVES. Most slices a model segments show no lesion:
    with few lesion-free slices in training (a lesion-free volume gave one)
    it learns that every slice has one, and draws lesions on two thirds of
    a volume's slices. The volume is normalised as a whole, so slices keep
    their relative brightness; every slice is cropped to the same box.
    With `pre` (the pre-contrast volume) the model sees the subtraction,
    except on a random `plain_share` of the slices, which it sees as the
    volume alone (so one prompt set serves MRI with and without a
    pre-contrast volume)."""
    rng = rng or np.random.default_rng(0)
    norm = normalize(volume, modality)  # anatomy always comes from the volume itself
    sub = subtraction(volume, pre) if pre is not None else None
    box = volume_box(volume, modality)
    has = np.zeros(volume.shape[0], bool) if lesion is None else np.asarray(lesion).reshape(volume.shape[0], -1).any(1)
    pos = np.flatnonzero(has)
    # Negatives from the middle of the volume (the breasts), away from the lesion.
    middle = np.arange(volume.shape[0] // 6, volume.shape[0] - volume.shape[0] // 6)
    neg_pool = np.setdiff1d(middle, np.arange(pos.min() - 2, pos.max() + 3) if pos.size else [])
    n_neg = max(int(round(negatives * len(pos))), MIN_NEGATIVES)
    neg = rng.choice(neg_pool, size=min(n_neg, len(neg_pool)), replace=False) if neg_pool.size else []
    out = []
    for z in sorted([*pos.tolist(), *list(neg)]):
        seen = sub if sub is not None and rng.random() >= plain_share else None
        out += make_examples(
            norm[z],
            modality,
            size,
            label if has[z] else "normal",
            None if lesion is None else lesion[z],
            None if tissue_labels is None else tissue_labels[z],
            window=(0.0, 1.0),
            example_id=f"{example_id}#z{z}" + ("s" if seen is not None else ""),
            box=box,
            source=example_id,
            model_image=None if seen is None else seen[z],
        )
    return out


def numbered_phantom(modality: str, seed: int, i: int):
    """Phantom number `i` of the set `seed`: classes in turn normal, benign,
    malignant. `phantom_examples` and `bench.segmenter_dice` both draw
    from it, so held-out views and whole held-out images are the same
    phantoms."""
    from ..phantoms import MAKERS

    return MAKERS[modality](seed * 100_003 + i, label=CLASS_NAMES[i % 3])


def phantom_examples(modality: str, n: int, seed: int, size: int, tissue: str = "truth") -> list[Example]:
    """Examples from `n` fresh phantoms (classes in turn: normal, benign,
    malignant). `tissue` is 'truth' (the phantom's own tissue map) or
    'anatomy' (the classical priors, as on real images)."""
    from ..phantoms import MAKERS

    if modality not in MAKERS:
        raise AvptError(f"unknown modality {modality!r}: choose MG (mammogram), US (ultrasound) or MR (MRI)")
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        label = CLASS_NAMES[i % 3]
        ph = numbered_phantom(modality, seed, i)
        truth = ph.tissue if tissue == "truth" else None
        if ph.image.ndim == 3:
            pre = (ph.phases or {}).get("pre")
            out += volume_examples(
                ph.image,
                modality,
                size,
                label,
                ph.lesion,
                truth,
                rng=rng,
                example_id=f"{modality}{i}",
                pre=pre,
                plain_share=PLAIN_SHARE,
            )
        else:
            out += make_examples(ph.image, modality, size, label, ph.lesion, truth, example_id=f"{modality}{i}")
    return out


def phantom_mix(modalities, n: int, seed: int, size: int, tissue: str = "truth") -> list[Example]:
    """Examples of `n` phantoms of each modality; a quarter as many MRI
    volumes (at least 2), as each gives a dozen or more slices."""
    out = []
    for m in modalities:
        out += phantom_examples(m, n if m != "MR" else max(n // 4, 2), seed, size, tissue)
    return out


def sample_examples(s, size: int, tissue: str = "truth") -> list[Example]:
    """The examples of one `io.datasets.Sample`, from the cache when it has
    them (`example_cache`). Its views and slices carry the sample's patient
    as their `source`, so that train/validation splits keep patients whole."""
    from . import example_cache

    truth = s.tissue if tissue == "truth" else None
    pre = s.meta.get("phases", {}).get("pre") if s.image.ndim == 3 else None
    target = s.lesion_target()
    settings = {"id": s.id, "patient": s.meta.get("patient"), "modality": s.modality, "label": s.label}
    settings |= {"size": size, "tissue": truth is not None, "window": s.meta.get("window")}
    key = example_cache.example_key([s.image, target, truth, pre], settings)
    cached = example_cache.load(key)
    if cached is not None:
        return cached
    source = s.meta.get("patient") or s.id
    if s.image.ndim == 3:
        # Seeded by the sample itself: the same slices whatever comes before it.
        rng = np.random.default_rng(int(key[:8], 16))
        out = volume_examples(
            s.image,
            s.modality,
            size,
            s.label,
            target,
            truth,
            rng=rng,
            example_id=s.id,
            pre=pre,
            plain_share=PLAIN_SHARE,
        )
        for ex in out:
            ex.source = source
    else:
        window = s.meta.get("window")
        out = make_examples(s.image, s.modality, size, s.label, target, truth, window, s.id, source=source)
        crop = lesion_free_box(target) if s.modality == "US" else None
        if crop is not None:  # a lesion-free view of a frame that has one (BUS-BRA has no lesion-free frame)
            out += make_examples(
                s.image, s.modality, size, "normal", None, truth, window, f"{s.id}#free", box=crop, source=source
            )
    example_cache.quantize(out)
    example_cache.store(key, out)
    return out


FREE_MARGIN = 0.1  # of the frame's larger side: how far a lesion-free crop keeps from the lesion
FREE_MIN_SIDE = 0.35  # of the frame's larger side: the shortest side of a lesion-free crop


def lesion_free_box(lesion: np.ndarray) -> tuple[int, int, int, int] | None:
    """(r0, r1, c0, c1): the largest band of a 2D frame beside its lesion
    (above, below, left or right of it, `FREE_MARGIN` away) whose sides are
    both at least `FREE_MIN_SIDE` of the frame, or None. What the model
    learns lesion-free ultrasound from where a dataset has none."""
    lesion = np.asarray(lesion) > 0
    if not lesion.any():
        return None
    rows, cols = lesion.shape
    big = max(rows, cols)
    margin, min_side = int(FREE_MARGIN * big), FREE_MIN_SIDE * big
    rr, cc = np.nonzero(lesion.any(1))[0], np.nonzero(lesion.any(0))[0]
    top, bottom = rr[0] - margin, rr[-1] + 1 + margin
    left, right = cc[0] - margin, cc[-1] + 1 + margin
    bands = [(0, top, 0, cols), (bottom, rows, 0, cols), (0, rows, 0, left), (0, rows, right, cols)]
    bands = [b for b in bands if b[1] - b[0] >= min_side and b[3] - b[2] >= min_side]
    if not bands:
        return None
    return tuple(int(v) for v in max(bands, key=lambda b: (b[1] - b[0]) * (b[3] - b[2])))


def dataset_examples(
    dataset, size: int, tissue: str = "truth", limit: int | None = None, progress=None, cancel=None
) -> list[Example]:
    """Examples from a loader of `io.datasets`; a `Progress` (task
    "prepare") after each image, `Cancelled` when `cancel()` says stop."""
    out = []
    total = len(dataset) if limit is None else min(limit, len(dataset))
    for i in range(total):
        check_cancel(cancel, f"while preparing image {i + 1} of {total}")
        out += sample_examples(dataset[i], size, tissue)
        if progress is not None:
            progress(Progress("prepare", i + 1, total, unit="image"))
    return out


def check_pairs(pairs) -> None:
    """Cheap checks of in-memory annotations (name, image, labels, class,
    modality) before any work: shapes match, a lesion class has a painted
    lesion, the modality is known, images are 2D or 3D."""
    for name, image, labels, label, modality in pairs:
        img_shape, lab_shape = np.shape(image), np.shape(labels)
        if img_shape != lab_shape:
            raise AvptError(f"the annotation of '{name}' is {lab_shape} but the image is {img_shape}: they must match")
        if label != "normal" and not np.any(labels):
            raise AvptError(f"the annotation of '{name}' is empty: paint the lesion (or mark the image 'normal')")
        if modality not in MODALITY_INDEX:
            raise AvptError(f"the modality of '{name}' is unknown: choose MG, US or MR")
        if len(img_shape) not in (2, 3):
            raise AvptError(f"'{name}' is {len(img_shape)}D: use 2D images or 3D volumes")


def pair_examples(pairs, size: int, pre: dict | None = None) -> list[Example]:
    """Examples from in-memory annotations (what the napari training dock
    passes), checked first by `check_pairs`. `pre` maps a pair's name to
    the pre-contrast volume of its contrast MRI (taught as in
    `volume_examples`: subtraction and plain slices)."""
    check_pairs(pairs)
    pre = pre or {}
    examples = []
    for name, image, labels, label, modality in pairs:
        img, lab = np.asarray(image), np.asarray(labels) > 0
        if img.ndim == 2:
            examples += make_examples(img, modality, size, label, lab, example_id=name)
        else:
            phase = pre.get(name)
            share = PLAIN_SHARE if phase is not None else 0.0
            examples += volume_examples(img, modality, size, label, lab, example_id=name, pre=phase, plain_share=share)
    return examples


def parse_data_spec(
    spec: str, size: int, seed: int = 0, tissue: str = "truth", progress=None, cancel=None
) -> list[Example]:
    """`phantoms:MODALITY:N[:SEED]`, or a dataset folder
    `[MODALITY:]PATH[:folds=1,2][:n=100]`: any layout of `io.datasets` (an
    images + masks folder needs its MODALITY first), `folds=` keeping those
    patient-level folds (BUS-BRA's own, or `io.datasets.folds`), `n=` the
    first N images of them."""
    if spec.startswith("phantoms:"):
        parts = spec.split(":")
        if len(parts) not in (3, 4) or not parts[2].isdigit():
            raise AvptError(f"bad data spec {spec!r}: use phantoms:MG:40 (or phantoms:MG:40:SEED)")
        spec_seed = int(parts[3]) if len(parts) == 4 else seed
        return phantom_examples(modality_code(parts[1]) or parts[1], int(parts[2]), spec_seed, size, tissue)
    dataset, first = open_folder_spec(spec)
    return dataset_examples(dataset, size, tissue, limit=first, progress=progress, cancel=cancel)


def open_folder_spec(spec: str):
    """(the `io.datasets` loader of a folder spec `[MODALITY:]PATH[:folds=..][:n=..]`,
    its `n` or None): what `parse_data_spec` and the benchmarks open."""
    from ..io.datasets import open_dataset

    path, modality, folds, first = folder_spec(spec)
    if not path.exists():
        raise AvptError(f"data {spec!r}: no such folder (or use phantoms:MODALITY:N)")
    return open_dataset(path, folds=folds, modality=modality), first


def folder_spec(spec: str) -> tuple[Path, str | None, set[int] | None, int | None]:
    """`[MODALITY:]PATH[:folds=1,2][:n=100]` -> (path, modality, folds, n), None where not given."""
    modality = folds = first = None
    original = spec
    head, sep, tail = spec.partition(":")
    if sep and modality_code(head) is not None:
        modality, spec = modality_code(head), tail
    while True:
        body, sep, option = spec.rpartition(":")
        if not sep or not option.startswith(("folds=", "n=")):
            break
        key, _, value = option.partition("=")
        try:
            if key == "folds":
                folds = {int(v) for v in value.split(",") if v.strip()}
                if not folds:
                    raise ValueError
            else:
                first = int(value)
                if first < 1:
                    raise ValueError
        except ValueError:
            raise AvptError(f"bad {key} in {original!r}: use folds=1 or folds=2,3,4, and n=100") from None
        spec = body
    return Path(spec), modality, folds, first


class ExampleDataset(Dataset):
    """Tensors for the model, with augmentation when training: a horizontal
    flip, gamma and contrast jitter (images only); with `strong` also what
    differs between scanners and sites: zoom, rotation and shift (image,
    tissue maps and lesion together), blur, speckle-like noise and a lower
    resolution."""

    def __init__(
        self, examples: list[Example], augment: bool = False, seed: int = 0, channels: int = 3, strong: bool = False
    ):
        self.examples, self.augment, self.channels, self.strong = examples, augment, channels, strong
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        ex = self.examples[i]
        image, tissue, lesion = ex.image, ex.tissue, ex.lesion
        if self.augment:
            if self.rng.random() < 0.5:
                image, tissue, lesion = image.flip(-1), tissue.flip(-1), lesion.flip(-1)
            if self.strong:
                image, tissue, lesion = _geometric(image, tissue, lesion, self.rng)
                image = _acquisition(image, self.rng)
            gamma = float(np.exp(self.rng.normal(0, 0.15 if not self.strong else 0.25)))
            gain, offset = float(self.rng.uniform(0.9, 1.1)), float(self.rng.normal(0, 0.03))
            image = (image.clamp(0, 1) ** gamma * gain + offset).clamp(0, 1)
        return {
            "image": to_model_image(image, self.channels),
            "tissue": tissue,
            "lesion": lesion,
            "label": torch.tensor(ex.label),
            "modality": torch.tensor(ex.modality),
        }


def _geometric(image, tissue, lesion, rng):
    """A random zoom (0.8-1.25), rotation (up to 12 degrees) and shift (up to
    8 %) applied to the image, its tissue maps and its lesion alike; what
    leaves the view is lost, what enters it is zero (as the views' padding)."""
    import torch.nn.functional as F

    zoom = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
    angle = float(np.deg2rad(rng.uniform(-12, 12)))
    shift = rng.uniform(-0.08, 0.08, size=2)
    cos, sin = np.cos(angle) / zoom, np.sin(angle) / zoom
    theta = torch.tensor([[cos, -sin, shift[0]], [sin, cos, shift[1]]], dtype=torch.float32)[None]
    stack = torch.cat([image, tissue, lesion])[None]
    grid = F.affine_grid(theta, stack.shape, align_corners=False)
    out = F.grid_sample(stack, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
    return out[:1], out[1:4], (out[4:5] > 0.5).float()


def _acquisition(image, rng):
    """What another scanner or site changes in an image: sharpness (a blur
    or a lower resolution) and noise (multiplicative, as speckle)."""
    import torch.nn.functional as F

    size = image.shape[-1]
    if rng.random() < 0.25:  # a lower resolution, brought back to the view's size
        low = int(size * rng.uniform(0.5, 0.8))
        image = F.interpolate(F.interpolate(image[None], size=low, mode="area"), size=size, mode="bilinear")[0]
    if rng.random() < 0.25:
        sigma = float(rng.uniform(0.5, 1.5))
        radius = int(np.ceil(2 * sigma))
        x = torch.arange(-radius, radius + 1, dtype=torch.float32)
        k = torch.exp(-(x**2) / (2 * sigma**2))
        k = k / k.sum()
        padded = F.pad(image[None], (radius, radius, radius, radius), mode="replicate")
        image = F.conv2d(F.conv2d(padded, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))[0]
    if rng.random() < 0.3:
        noise = torch.from_numpy(rng.normal(1.0, rng.uniform(0.03, 0.12), size=image.shape).astype(np.float32))
        image = image * noise
    return image.clamp(0, 1)
