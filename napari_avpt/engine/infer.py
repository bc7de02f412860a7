"""Inference on 2D images of any size and on volumes, with every output on
the input's own grid.

A 2D image is cropped to the breast (never a whole 3000 x 2500 mammogram
squashed blindly) and covered by the square views of `views` (2 x 2 for a
mammogram, one per breast for MRI), each resized to the model's input; a
volume is run slice by slice in batches along its acquisition axis, every
slice with the same views, and stacked back. Outputs: lesion instances
(connected components), lesion probability, class probabilities, the
tissue maps used as the anatomy prior, and attention maps (one per tissue
prompt, and the lesion's: CLS attention) resampled to the input grid.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import AvptError
from ..model import AVPT
from ..model.config import CLASS_NAMES, MODALITY_INDEX, modality_code
from .anatomy import TISSUE_ORDER, breast_mask, labels_to_maps, maps_to_labels, tissue_maps
from .device import autocast, resolve_device
from .evaluate import Thresholds, threshold_for
from .lesion_choice import region_scores
from .lesion_class import ShapeFit, lesion_features, malignant_share, strongest_lesion
from .lesion_regions import draw_regions
from .preprocess import model_volume, normalize, to_model_image
from .progress import CancelFn, Progress, ProgressFn, check_cancel
from .views import MAX_VIEWS, breast_box, merge_class, merge_maps, views_for, volume_box
from .work_grid import downsample, labels_on_input, upsample
from .zoom_look import look_again

WORK_SIDE = 640
# The smallest lesion drawn by default, per modality, in mm (the diameter
# of a disc, or a ball in a volume, of the same size), where the pixel size
# is known: most false lesions of the shipped prompts are specks. Chosen on
# held-out phantoms of seed 90002, checked on 90001 (docs/model.md): on
# 90001, lesion-free images left clean MG 4 -> 7 of 10, US 1 -> 6, MRI
# 1 -> 2 of 4, lesion Dice -0.008 / -0.001 / +0.02. 5 mm is also the size
# under which BI-RADS calls an MRI enhancement a focus; for ultrasound 5 mm
# cost Dice on 90002 (0.62 -> 0.55), 3 mm did not.
MIN_LESION_MM = {"MG": 5.0, "US": 3.0, "MR": 5.0}
# A region is drawn only if its probability mass (the lesion probability
# summed over it) is at least this share of the image's strongest region's
# (0: every region). On BUS-BRA validation frames, which hold one lesion
# each, the default drew more than one region on 81 % of them: dark ducts,
# fat lobules and shadows beside the mass (docs/experiments/NOTES.md).
WEAK_RATIO = {"MG": 0.0, "US": 0.5, "MR": 0.0}
# The lesion and class averaged with those of the mirrored view (twice the
# model's time). On BUS-BRA fold 2 (the choosing patients) ultrasound Dice
# 0.651 -> 0.665 and AUC 0.827 -> 0.834; on mini-MIAS fold 2 false lesions
# per image rose 0.26 -> 0.30 with the same masses found: ultrasound only.
FLIP_AVERAGE = {"MG": False, "US": True, "MR": False}


# Above this many pixels (about 4000 x 4000) an image's maps are kept as
# float16 and its lesions found on the model's working grid, then drawn on
# the input grid: a 12000 x 12000 frame would otherwise need a dozen
# float32 and int64 copies of itself (16 GB).
COMPACT_PIXELS = 16_000_000


@dataclass
class Segmentation:
    lesion_labels: np.ndarray  # int32, 0 background, 1..n one id per lesion
    lesion_probability: np.ndarray  # float32 in [0, 1]
    class_probabilities: dict[str, float]
    tissue_maps: np.ndarray  # (3, ...) soft maps, TISSUE_ORDER
    attention: dict[str, np.ndarray] = field(default_factory=dict)  # per tissue prompt + "lesion"
    seconds: float = 0.0
    threshold: float = 0.5  # the lesion probability threshold the labels were cut at
    weak_ratio: float = 0.0  # regions under this share of the strongest one's probability mass were left out
    min_peak: float = 0.0  # regions whose probability stayed under this everywhere were left out
    subtraction: bool = False  # the model saw post - pre (a pre-contrast volume was given)
    class_from: str = "class head"  # or "class head and lesion shape" (`lesion_class`)
    ranked_by: str = "probability mass"  # or "lesion choice": what ranked regions for weak_ratio (`lesion_choice`)

    @property
    def predicted_class(self) -> str:
        return max(self.class_probabilities, key=self.class_probabilities.get)

    def settings(self) -> dict:
        """How this result was read, as the `segment` JSON report and the
        lesions layer's metadata both record it."""
        return {
            "class_from": self.class_from,
            "lesion_threshold": self.threshold,
            "weak_region_ratio": self.weak_ratio,
            "lesion_min_peak": self.min_peak,
            "regions_ranked_by": self.ranked_by,
            "model_input": "subtraction" if self.subtraction else "image",
        }

    def tissue_labels(self) -> np.ndarray:
        """0 outside, 1 fatty, 2 glandular, 3 ductal."""
        return maps_to_labels(self.tissue_maps)

    def lesion_sizes(self, spacing) -> dict[int, float]:
        """Area (mm², 2D) or volume (mm³, 3D) of each lesion."""
        unit = float(np.prod(spacing[-self.lesion_labels.ndim :]))
        counts = np.bincount(self.lesion_labels.ravel())
        return {i: float(counts[i] * unit) for i in range(1, len(counts)) if counts[i]}


def _blend_attention(views, maps: torch.Tensor) -> np.ndarray:
    """One image's attention from its views' (V, 1, S, S), on its grid,
    scaled so that 1 is the most attended place."""
    merged = merge_maps(views, maps, feather=len(views) > 1)[0]
    return merged / max(float(merged.max()), 1e-8)


def _modality(name: str) -> str:
    code = modality_code(name)
    if code is None:
        raise AvptError(f"unknown modality {name!r}: choose MG (mammogram), US (ultrasound) or MR (MRI)")
    return code


def _ratio(value: float, what: str = "weak-region ratio") -> float:
    if not 0.0 <= value <= 1.0:
        raise AvptError(f"the {what} must lie between 0 and 1, not {value}")
    return float(value)


def _check_gray(image: np.ndarray, ndim: int) -> None:
    if image.ndim == ndim + 1 and image.shape[-1] in (3, 4):
        raise AvptError("this is a colour (RGB) image; A-VPT needs a gray image (convert it or pick one channel)")
    if image.ndim != ndim:
        raise AvptError(f"expected a {ndim}D image, got {image.ndim}D with shape {image.shape}")


class Segmenter:
    """A model on a device, ready to segment images and volumes."""

    def __init__(
        self,
        model: AVPT,
        device: str = "auto",
        threshold: Thresholds | None = None,
        min_lesion_px: int = 4,
        min_lesion_mm: float | None = None,
        weak_ratio: float | None = None,
        min_peak: float = 0.0,
        class_shape: ShapeFit | None = None,
        flip_average: bool | None = None,
        zoom_look: dict[str, float] | None = None,
        lesion_choice: ShapeFit | None = None,
    ):
        """`threshold`: the lesion threshold, one number or one per modality
        (a prompt set's calibrated ones, `thresholds_from`); 0.5 where none
        is given. Lesions narrower than `min_lesion_mm` (the diameter of a
        disc, or a ball in a volume, of the same size; None: the modality's
        `MIN_LESION_MM`; 0: no limit) are not drawn when the pixel size is
        known; `min_lesion_px` always applies. Regions whose probability
        mass is under `weak_ratio` times the strongest one's are not drawn
        (None: the modality's `WEAK_RATIO`; 0: all are), nor those whose
        probability stays under `min_peak` everywhere (`lesion_regions`; 0,
        or any value up to the threshold: no such limit). `class_shape` (a
        prompt set's `lesion_class.ShapeFit`, as `load_model` reads it):
        benign vs malignant from the class head and the strongest drawn
        lesion's shape, in images of its modality. `flip_average`: the
        mirrored views' lesion and class averaged in (None: the modality's
        `FLIP_AVERAGE`). `zoom_look`: per modality, the context of the
        second, zoomed look at the strongest lesion of a 2D image (a prompt
        set's metadata, as `load_model` reads it; none where absent).
        `lesion_choice` (a prompt set's `lesion_choice`): regions of its
        modality ranked by that fit instead of by probability mass."""
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.size = model.cfg.img_size
        self.threshold, self.min_lesion_px, self.min_lesion_mm = threshold, min_lesion_px, min_lesion_mm
        self.weak_ratio = None if weak_ratio is None else _ratio(weak_ratio)
        self.min_peak = _ratio(min_peak, "minimum peak")
        self.class_shape = class_shape
        self.flip_average = flip_average
        self.zoom_look = dict(zoom_look or {})
        self.lesion_choice = lesion_choice

    @classmethod
    def for_set(cls, model: AVPT, meta: dict, device: str = "auto", **options) -> Segmenter:
        """A Segmenter reading a prompt set as its metadata says (`meta`, as
        `load_model` returns it): its calibrated thresholds, class-from-shape
        fit, zoomed look and lesion choice. `options` are the constructor's; one given as
        None keeps the set's (or the default)."""
        settings = {k: meta.get(k) for k in ("class_shape", "zoom_look", "lesion_choice")}
        settings["threshold"] = meta["thresholds"]
        settings.update({k: v for k, v in options.items() if v is not None})
        return cls(model, device, **settings)

    def with_options(
        self,
        threshold: float | None = None,
        min_lesion_mm: float | None = None,
        weak_ratio: float | None = None,
        min_peak: float | None = None,
    ) -> Segmenter:
        """The same model with another lesion threshold (one for every
        modality), minimum lesion size in mm (0: none), weak-region ratio
        (0: keep all) or minimum peak (0: none); None keeps this one's. A
        shallow copy: the model is shared, not copied."""
        other = copy.copy(self)
        if threshold is not None:
            if not 0.0 < threshold < 1.0:
                raise AvptError(f"the lesion threshold must lie between 0 and 1, not {threshold}")
            other.threshold = float(threshold)
        if min_lesion_mm is not None:
            other.min_lesion_mm = max(float(min_lesion_mm), 0.0)
        if weak_ratio is not None:
            other.weak_ratio = _ratio(weak_ratio)
        if min_peak is not None:
            other.min_peak = _ratio(min_peak, "minimum peak")
        return other

    @torch.no_grad()
    def _forward(self, images: torch.Tensor, tissue: torch.Tensor, modality: str):
        """Lesion probabilities (N, S, S), class probabilities (N, 3) and raw
        attention maps {name: (N, 1, S, S)} of a batch of views."""
        mod = torch.full((images.shape[0],), MODALITY_INDEX[modality], dtype=torch.long, device=self.device)
        with autocast(self.device):
            out = self.model(images.to(self.device), tissue.to(self.device), mod, want_attention=True)
        grid = out.grid
        lesion = torch.sigmoid(out.lesion_logits.float())[:, 0].cpu()
        probs = torch.softmax(out.class_logits.float(), -1).cpu()
        if FLIP_AVERAGE[modality] if self.flip_average is None else self.flip_average:  # mirrored views averaged in
            with autocast(self.device):
                flipped = self.model(images.flip(-1).to(self.device), tissue.flip(-1).to(self.device), mod)
            lesion = 0.5 * (lesion + torch.sigmoid(flipped.lesion_logits.float())[:, 0].cpu().flip(-1))
            probs = 0.5 * (probs + torch.softmax(flipped.class_logits.float(), -1).cpu())
        maps = {}
        if out.tissue_attention is not None:
            maps.update({t: out.tissue_attention[:, i] for i, t in enumerate(TISSUE_ORDER)})
        maps["lesion"] = out.lesion_attention
        up = {}
        for name, att in maps.items():
            att = att.float().reshape(-1, 1, *grid)
            up[name] = F.interpolate(att, size=(self.size, self.size), mode="bilinear", align_corners=False).cpu()
        return lesion, probs, up

    def _merge(self, fits, lesion, probs, att, threshold: float, start: int = 0):
        """One image's views (rows start.. of the batch) -> lesion
        probability, class probabilities and attention on its grid;
        attention scaled so 1 = the most attended place."""
        rows = slice(start, start + len(fits))
        prob = merge_maps(fits, lesion[rows, None])[0]
        mass = (lesion[rows] > threshold).flatten(1).sum(1).numpy()
        attention = {name: _blend_attention(fits, a[rows]) for name, a in att.items()}
        return prob, merge_class(probs[rows].numpy(), mass), attention

    def _min_size(self, spacing, ndim: int, modality: str) -> int:
        """The smallest lesion drawn, in pixels or voxels."""
        d = MIN_LESION_MM[modality] if self.min_lesion_mm is None else self.min_lesion_mm
        if spacing is None or d <= 0:
            return self.min_lesion_px
        size = math.pi / 6 * d**3 if ndim == 3 else math.pi / 4 * d**2
        return max(self.min_lesion_px, int(size / float(np.prod(spacing[-ndim:]))))

    def _weak_ratio(self, modality: str) -> float:
        return WEAK_RATIO[modality] if self.weak_ratio is None else self.weak_ratio

    def _chooses(self, modality: str) -> bool:
        """Whether the set's lesion choice ranks this modality's regions."""
        return getattr(self.lesion_choice, "modality", "") == modality

    def _rank(self, prob, image, modality: str):
        """The set's lesion choice as `(labels, ids) -> scores` on `prob` and
        `image`, or None (rank by probability mass) where it has none for
        the modality or no image is given."""
        if not self._chooses(modality) or image is None:
            return None
        fit = self.lesion_choice
        return lambda labels, ids: region_scores(fit, labels, prob, image, ids)

    def _instances(self, prob, threshold: float, spacing, modality: str, inside=None, image=None) -> np.ndarray:
        """Lesions: the regions above the threshold that `lesion_regions`
        draws, with this Segmenter's minimum size, peak and weak-region
        ratio for the modality, ranked by the set's `lesion_choice` where it
        has one for the modality and `image` is given, and, given `inside`
        (a mammogram's breast), lying mostly inside it."""
        size, rank = self._min_size(spacing, prob.ndim, modality), self._rank(prob, image, modality)
        return draw_regions(prob, threshold, size, inside, self.min_peak, self._weak_ratio(modality), rank)

    def _with_shape(self, class_probs, labels, prob, image, modality: str) -> tuple[dict, str]:
        """The class probabilities, with benign vs malignant from the class
        head and the strongest lesion's shape where the prompt set has a
        fit for this modality and a lesion is drawn; the normal share stays
        the head's."""
        probs = {c: float(p) for c, p in zip(CLASS_NAMES, class_probs)}
        fit = self.class_shape
        if fit is None or fit.modality != modality or not labels.any():
            return probs, "class head"
        features = lesion_features(malignant_share(probs), strongest_lesion(labels, prob), image)
        malignant = fit.malignancy(features)
        rest = probs["benign"] + probs["malignant"]
        probs["benign"], probs["malignant"] = rest * (1.0 - malignant), rest * malignant
        return probs, "class head and lesion shape"

    def segment_image(
        self,
        image: np.ndarray,
        modality: str,
        tissue: np.ndarray | None = None,
        window: tuple[float, float] | None = None,
        spacing: tuple[float, ...] | None = None,
    ) -> Segmentation:
        """A 2D image; `tissue` is a known tissue label image (else the
        classical priors are computed); `spacing` its pixel size in mm,
        when known."""
        start = time.perf_counter()
        modality = _modality(modality)
        image = np.asarray(image)
        _check_gray(image, 2)
        # Priors, crop and model input come from a copy of at most
        # WORK_SIDE pixels a side: the model sees 224 pixels anyway, and a
        # full-field mammogram (3000 x 2500) stays fast.
        work, factor = downsample(image, WORK_SIDE)
        breast = breast_mask(work, modality) if modality == "MG" else None
        box = breast_box(work, modality, breast)
        fits = views_for(work.shape, box, self.size, MAX_VIEWS[modality])
        # The attention maps are read from these tiles and the ones halfway
        # between them, blended (`views.py`): tiles that merely meet left
        # seams in the heatmaps. The lesion and the class come from the
        # training tiles alone: on the blend the mammogram sample's lesion
        # Dice fell from 0.72 to 0.56 (its thresholds were calibrated on them).
        views = views_for(work.shape, box, self.size, MAX_VIEWS[modality], dense=True)
        own = [[v.box for v in views].index(f.box) for f in fits]
        if tissue is not None:
            maps = labels_to_maps(np.asarray(tissue)[::factor, ::factor][: work.shape[0], : work.shape[1]])
        else:
            maps = tissue_maps(work, modality)
        # Without a window, a mammogram is scaled on the breast's own
        # percentiles, as in training (`data.make_examples`).
        norm = normalize(work, modality, window, mask=breast)
        x = torch.stack([to_model_image(v.to_model(norm)) for v in views])
        t = torch.stack([v.to_model(maps) for v in views])
        threshold = threshold_for(self.threshold, modality)
        lesion, probs, att = self._forward(x, t, modality)
        prob, class_probs, _ = self._merge(fits, lesion[own], probs[own], {}, threshold)
        # A mammogram's lesions lie in the breast (the pectoral muscle left
        # out); a mask that found almost nothing is not trusted.
        inside = breast if breast is not None and breast.mean() > 0.05 else None
        work_spacing = None if spacing is None else tuple(float(s) * factor for s in spacing)
        if self.zoom_look.get(modality, 0.0) > 0:  # a second look, zoomed on the lesion (`zoom_look`)
            loose = self.with_options(weak_ratio=0.0, min_peak=0.0)  # every candidate; the rules judge both looks
            regions = loose._instances(prob, threshold, work_spacing, modality, inside)
            read = lambda x, t: self._forward(x, t, modality)[0]  # noqa: E731
            # The look goes to the region the set's lesion choice ranks first (else of most mass).
            rank = self._rank(prob, work, modality)
            look_again(prob, regions, norm, maps, self.size, self.zoom_look[modality], read, rank)
        attention = {name: _blend_attention(views, a) for name, a in att.items()}
        compact = image.size > COMPACT_PIXELS
        dtype = np.float16 if compact else np.float32
        full = lambda a: upsample(a, image.shape, factor, dtype)  # noqa: E731
        if compact:
            work_labels = self._instances(prob, threshold, work_spacing, modality, inside, work)
            prob = full(prob)
            labels = labels_on_input(prob, work_labels, factor, threshold)
        else:
            prob = full(prob)
            if inside is not None and factor > 1:
                inside = full(inside.astype(np.float32)) > 0.5
            labels = self._instances(prob, threshold, spacing, modality, inside, image)
        attention = {k: full(v) for k, v in attention.items()}
        maps = np.stack([full(m) for m in maps]) if factor > 1 else maps
        class_probabilities, class_from = self._with_shape(class_probs, labels, prob, image, modality)
        return Segmentation(
            lesion_labels=labels,
            lesion_probability=prob,
            threshold=threshold,
            weak_ratio=self._weak_ratio(modality),
            min_peak=self.min_peak,
            class_probabilities=class_probabilities,
            class_from=class_from,
            ranked_by="lesion choice" if self._chooses(modality) else "probability mass",
            tissue_maps=maps,
            attention=attention,
            seconds=time.perf_counter() - start,
        )

    def segment_volume(
        self,
        volume: np.ndarray,
        modality: str = "MR",
        axis: int = 0,
        batch_size: int = 8,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
        spacing: tuple[float, ...] | None = None,
        pre: np.ndarray | None = None,
    ) -> Segmentation:
        """A 3D volume, slice-batched along `axis` (its acquisition axis);
        `spacing` its voxel size in mm, when known. `pre`: the pre-contrast
        volume of a contrast MRI (same grid); the model then sees the
        subtraction, which separates an enhancing lesion from glandular
        tissue of the same brightness (anatomy still comes from `volume`)."""
        modality = _modality(modality)
        threshold = threshold_for(self.threshold, modality)
        start = time.perf_counter()
        volume = np.asarray(volume)
        if volume.ndim == 4:
            raise AvptError(
                f"this volume is 4D {volume.shape} (several time points or phases); choose one 3D volume first"
            )
        _check_gray(volume, 3)
        vol = np.moveaxis(volume, axis, 0)
        if pre is not None:
            pre = np.asarray(pre)
            _check_gray(pre, 3)
            pre = np.moveaxis(pre, axis, 0)
        norm = model_volume(vol, modality, pre)
        n = vol.shape[0]
        fits = views_for(vol.shape[1:], volume_box(vol, modality), self.size, MAX_VIEWS[modality])
        v = len(fits)
        lesion = np.zeros(vol.shape, np.float32)
        maps = np.zeros((3,) + vol.shape, np.float16)  # soft maps only become labels: half precision is plenty
        attention = {}
        slice_probs, slice_mass = [], []
        for lo in range(0, n, batch_size):
            check_cancel(cancel, f"at slice {lo} of {n}")
            hi = min(lo + batch_size, n)
            batch_maps = [tissue_maps(vol[z], modality) for z in range(lo, hi)]
            x = torch.stack([to_model_image(f.to_model(norm[z])) for z in range(lo, hi) for f in fits])
            t = torch.stack([f.to_model(m) for m in batch_maps for f in fits])
            les, probs, att = self._forward(x, t, modality)
            for i, z in enumerate(range(lo, hi)):
                lesion[z], class_probs, slice_att = self._merge(fits, les, probs, att, threshold, start=i * v)
                maps[:, z] = batch_maps[i]
                for k, a in slice_att.items():
                    attention.setdefault(k, np.zeros(vol.shape, np.float32))[z] = a
                slice_probs.append(class_probs)
                slice_mass.append(float((lesion[z] > threshold).sum()))
            if progress is not None:
                progress(Progress("segment", hi, n, unit="slice", seconds=time.perf_counter() - start))
        # The volume's class: from the slices that show a lesion, if any.
        class_probs = merge_class(np.array(slice_probs), np.array(slice_mass))
        back = lambda a: np.moveaxis(a, 0, axis)  # noqa: E731
        return Segmentation(
            lesion_labels=back(self._instances(lesion, threshold, spacing, modality)),
            threshold=threshold,
            weak_ratio=self._weak_ratio(modality),
            min_peak=self.min_peak,
            subtraction=pre is not None,
            lesion_probability=back(lesion),
            class_probabilities={c: float(p) for c, p in zip(CLASS_NAMES, class_probs)},
            tissue_maps=np.moveaxis(maps, 1, axis + 1),
            attention={k: back(v) for k, v in attention.items()},
            seconds=time.perf_counter() - start,
        )
