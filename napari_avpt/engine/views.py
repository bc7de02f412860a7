"""Views: the square pieces of an image that the model sees, and how their
outputs are put back together.

The model's input is 224 pixels a side, its tokens 16. A mammogram's mass
(a few millimetres) or an MRI lesion squashed into one view covers one or
two tokens, so the breast's bounding box is covered by a grid of up to
`MAX_VIEWS[modality]` square tiles instead: a mammogram's breast (near
square) by 2 x 2 tiles, the two breasts of an axial MRI slice (a wide
band) by two tiles side by side, an ultrasound frame (its lesions are
large) by one. Tiles overlap evenly; their outputs are averaged where they
overlap, and an image's class comes from the tiles that show a lesion.

Training sees those tiles, and the lesion and class are read from them.
For an image's attention maps the Segmenter adds the tiles halfway
between them (`dense=True`, same side and zoom) and blends all of them
with weights that fall off towards each tile's edges: where two tiles
merely meet, each tile's own scale (its attention is a softmax over its
own patches) made visible seams.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .anatomy import breast_mask
from .preprocess import Fit

MAX_VIEWS = {"MG": 4, "US": 1, "MR": 2}
MAX_ZOOM = 3.0  # a tile is never smaller than size / MAX_ZOOM input pixels


def breast_box(image: np.ndarray, modality: str, mask: np.ndarray | None = None, margin: float = 0.04):
    """(r0, r1, c0, c1): the breast with a margin, or the whole image when
    no breast is found (or it is implausibly small). `image` is 2D; for a
    volume pass its maximum projection along the slice axis."""
    rows, cols = image.shape
    if mask is None:
        mask = np.asarray(image) > 0 if modality == "US" else breast_mask(image, modality)
    if mask.sum() < 0.02 * rows * cols:
        return 0, rows, 0, cols
    rr, cc = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    mr, mc = int(margin * rows), int(margin * cols)
    return (
        int(max(rr[0] - mr, 0)),
        int(min(rr[-1] + 1 + mr, rows)),
        int(max(cc[0] - mc, 0)),
        int(min(cc[-1] + 1 + mc, cols)),
    )


def volume_box(volume: np.ndarray, modality: str) -> tuple[int, int, int, int]:
    """One crop box for every slice of a volume: the breasts on the
    maximum projection along the slice axis."""
    step = max(1, volume.shape[0] // 32)  # a projection of every few slices finds the same outline
    return breast_box(np.asarray(volume[::step]).max(axis=0), modality)


def _grid(h: int, w: int, max_views: int, min_side: int) -> tuple[int, int, int]:
    """(tiles down, tiles across, tile side): the grid of at most
    `max_views` square tiles covering h x w with the smallest side, but no
    smaller than `min_side`; more tiles only for a side at least a fifth
    smaller (each tile costs a model forward)."""
    best = (1, 1, max(h, w))
    grids = sorted((ny * nx, ny, nx) for ny in range(1, max_views + 1) for nx in range(1, max_views // ny + 1))
    for _, ny, nx in grids:
        side = max(math.ceil(h / ny), math.ceil(w / nx))
        if min_side <= side < 0.8 * best[2]:
            best = (ny, nx, side)
    return best


def _starts(lo: int, length: int, n: int, side: int) -> list[int]:
    """Evenly spaced tile starts covering [lo, lo + length); one tile
    longer than the span is centred on it."""
    if n == 1 or length <= side:
        return [lo - (side - length) // 2]
    return [lo + round(i * (length - side) / (n - 1)) for i in range(n)]


def views_for(shape: tuple[int, int], box, size: int, max_views: int = 1, dense: bool = False) -> list[Fit]:
    """Square tiles over `box` of an image of `shape`; each is a `Fit`
    (zero padding outside the box, as a single padded view has). `dense`:
    along each axis with n > 1 tiles, 2n - 1 of the same side (each pair
    of neighbours gets one halfway between them)."""
    r0, r1, c0, c1 = box
    h, w = r1 - r0, c1 - c0
    ny, nx, side = _grid(h, w, max_views, min(math.ceil(size / MAX_ZOOM), max(h, w)))
    if dense:
        ny, nx = 2 * ny - 1, 2 * nx - 1
    fits = []
    for tr in _starts(r0, h, ny, side):
        for tc in _starts(c0, w, nx, side):
            # The tile's square, clipped to the breast box; the rest is padding.
            a0, a1 = max(tr, r0), min(tr + side, r1)
            b0, b1 = max(tc, c0), min(tc + side, c1)
            fits.append(Fit((a0, a1, b0, b1), side, (a0 - tr, b0 - tc), size, tuple(shape)))
    return fits


def _feather(size: int) -> torch.Tensor:
    """(1, S, S) weights of a view's pixels when views are blended: 1 at the
    centre, falling off towards the edges (a Gaussian of sd S / 8, as in
    nnU-Net's sliding windows; at a corner about 1e-7, not 0, so that a
    pixel only one view sees keeps that view's value). Not clamped: a floor
    would make the views equal near the box's corners, and their borders
    visible again."""
    from scipy.signal.windows import gaussian

    g = gaussian(size, std=size / 8)
    return torch.from_numpy(np.outer(g, g).astype(np.float32))[None]


def merge_maps(fits: list[Fit], maps: torch.Tensor, fill: float = 0.0, feather: bool = False) -> np.ndarray:
    """(V, C, S, S) model-grid maps of the views -> (C, H, W) on the input
    grid, averaged where views overlap (`feather`: weighted towards each
    view's centre, for the dense views of inference); `fill` where no view
    looks."""
    total = np.zeros((maps.shape[1],) + fits[0].shape, np.float32)
    count = np.zeros(fits[0].shape, np.float32)
    weight = _feather(maps.shape[-1]) if feather else None
    for fit, m in zip(fits, maps):
        r0, r1, c0, c1 = fit.box
        w = fit.to_box(weight)[0] if feather else 1.0
        total[:, r0:r1, c0:c1] += fit.to_box(m) * w
        count[r0:r1, c0:c1] += w
    seen = count > 0
    total[:, seen] /= count[seen]
    total[:, ~seen] = fill
    return total


def merge_class(probs: np.ndarray, lesion_mass: np.ndarray) -> np.ndarray:
    """An image's class probabilities from its views' (V, K): weighted by
    the lesion each view finds, plain mean when none finds one."""
    probs, mass = np.asarray(probs, np.float64), np.asarray(lesion_mass, np.float64)
    weights = mass if mass.sum() > 0 else np.ones(len(probs))
    return (probs * weights[:, None]).sum(0) / weights.sum()


def fit_for(image: np.ndarray, modality: str, size: int, mask: np.ndarray | None = None) -> Fit:
    """One view of the whole breast (mammograms, ultrasound frames) or of
    the whole image (MRI slices): what MAE pretraining sees."""
    rows, cols = image.shape
    box = breast_box(image, modality, mask) if modality in ("MG", "US") else (0, rows, 0, cols)
    return views_for(image.shape, box, size)[0]


# A second, zoomed look at an ultrasound lesion: a square view of about
# this many times the lesion's longer side, centred on it, so that a small
# lesion covers more of the 14 x 14 tokens. Training adds one such view
# per frame with a lesion (`data.make_examples`), its context and centre
# varied within these bounds, since at inference the view is placed on the
# lesion the first look drew, which is rarely the true one's size.
ZOOM_CONTEXT = (1.8, 3.5)
ZOOM_LOOK_CONTEXT = 2.5  # the Segmenter's zoomed view (`zoom_look`): the middle of that range
ZOOM_SHIFT = 0.25  # of the lesion's longer side: how far training moves the view's centre
ZOOM_MIN_SHARE = 0.3  # of the frame's longer side: the smallest zoomed view
ZOOM_MAX_SHARE = 0.9  # a view this close to the whole frame adds nothing: none is made


def lesion_view(shape, lesion: np.ndarray, size: int, context: float, shift=(0.0, 0.0)) -> Fit | None:
    """A square view of `context` times the longer side of `lesion` (a 2D
    mask on an image of `shape`, not empty), centred on it (moved by
    `shift` times that side), kept inside the image where it fits and
    zero-padded where it does not; None when it would be nearly the whole
    image (`ZOOM_MAX_SHARE`)."""
    rows, cols = shape
    rr, cc = np.nonzero(np.asarray(lesion).any(1))[0], np.nonzero(np.asarray(lesion).any(0))[0]
    extent = max(rr[-1] - rr[0] + 1, cc[-1] - cc[0] + 1)
    side = int(round(max(context * extent, ZOOM_MIN_SHARE * max(rows, cols))))
    if side >= ZOOM_MAX_SHARE * max(rows, cols):
        return None
    starts = []
    for lo, hi, s, n in ((rr[0], rr[-1], shift[0], rows), (cc[0], cc[-1], shift[1], cols)):
        start = int(round((lo + hi + 1) / 2 + s * extent - side / 2))
        starts.append(min(max(start, 0), n - side) if side <= n else -((side - n) // 2))
    tr, tc = starts
    a0, a1, b0, b1 = max(tr, 0), min(tr + side, rows), max(tc, 0), min(tc + side, cols)
    return Fit((a0, a1, b0, b1), side, (a0 - tr, b0 - tc), size, tuple(shape))
