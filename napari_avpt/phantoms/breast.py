"""Building blocks shared by the breast phantoms of every modality.

Everything here works on n-dimensional arrays (2D for mammography and
ultrasound, 3D for MRI) and in pixel units; the modality modules convert
millimetres to pixels with their spacing, so that a phantom looks the same
at any resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

TISSUE_OUTSIDE, TISSUE_FAT, TISSUE_GLAND, TISSUE_DUCT = 0, 1, 2, 3
TISSUE_NAMES = {0: "outside", 1: "fatty", 2: "glandular", 3: "ductal"}
CLASSES = ("normal", "benign", "malignant")

# Glandular share of the breast per BI-RADS density category (a: almost
# entirely fatty ... d: extremely dense).
DENSITY_FRACTION = {"a": (0.08, 0.22), "b": (0.25, 0.45), "c": (0.50, 0.68), "d": (0.72, 0.88)}


def power_law_noise(shape, beta: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-variance noise with a 1/f^beta power spectrum.

    Breast parenchyma is well described by such noise (beta close to 3 in
    mammography, Burgess et al.), which is why thresholding it gives
    realistic fibroglandular patterns.
    """
    freqs = np.meshgrid(*[np.fft.fftfreq(n) for n in shape], indexing="ij", sparse=True)
    f2 = sum(f * f for f in freqs)
    f2[(0,) * len(shape)] = np.inf
    amplitude = f2 ** (-beta / 4.0)
    field = np.fft.ifftn(np.fft.fftn(rng.standard_normal(shape)) * amplitude).real
    field -= field.mean()
    return (field / (field.std() + 1e-12)).astype(np.float32)


def smooth_noise(shape, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-smoothed white noise rescaled to unit variance.

    Wide kernels are applied on a coarser grid and interpolated back: the
    field is smooth anyway, and volumes stay fast to make.
    """
    factor = max(int(sigma // 3), 1)
    coarse_shape = tuple(max(-(-n // factor), 2) for n in shape)
    field = ndi.gaussian_filter(rng.standard_normal(coarse_shape, dtype=np.float32), sigma / factor, mode="wrap")
    if factor > 1:
        field = ndi.zoom(field, [n / c for n, c in zip(shape, coarse_shape)], order=1, grid_mode=True, mode="grid-wrap")
        field = field[tuple(slice(0, n) for n in shape)]
    return field / (field.std() + 1e-12)


def wide_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; kernels wider than a few pixels run on a decimated copy
    (the result is smooth, so nothing is lost) to keep full-size images fast."""
    factor = max(int(sigma // 4), 1)
    if factor == 1:
        return ndi.gaussian_filter(image, sigma)
    small = ndi.zoom(np.asarray(image, np.float32), 1 / factor, order=1, grid_mode=True, mode="nearest")
    small = ndi.gaussian_filter(small, sigma / factor)
    out = ndi.zoom(small, [n / m for n, m in zip(image.shape, small.shape)], order=1, grid_mode=True, mode="nearest")
    return out[tuple(slice(0, n) for n in image.shape)]


def bounding_box(mask: np.ndarray, pad: int = 0) -> tuple[slice, ...]:
    """Slices around the True part of `mask`, grown by `pad` pixels."""
    idx = np.argwhere(mask)
    if idx.size == 0:
        return tuple(slice(0, 0) for _ in mask.shape)
    lo = np.maximum(idx.min(0) - pad, 0)
    hi = np.minimum(idx.max(0) + pad + 1, mask.shape)
    return tuple(slice(a, b) for a, b in zip(lo, hi))


def glandular_field(
    breast: np.ndarray, prior: np.ndarray, fraction: float, rng: np.random.Generator, beta: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    """Fibroglandular tissue inside `breast`.

    `prior` (same shape) raises the odds of gland where anatomy puts it
    (behind the nipple, away from the skin and the chest wall). Returns a soft
    glandular fraction in [0, 1] and its binary mask covering `fraction` of
    the breast.
    """
    field = power_law_noise(breast.shape, beta, rng) + prior
    inside = field[breast]
    if inside.size == 0:
        zero = np.zeros(breast.shape, np.float32)
        return zero, zero.astype(bool)
    threshold = np.quantile(inside, 1.0 - fraction)
    soft = 1.0 / (1.0 + np.exp(-(field - threshold) / 0.25))
    soft = np.where(breast, soft, 0.0).astype(np.float32)
    return soft, (field > threshold) & breast


def draw_tube(mask: np.ndarray, points: np.ndarray, radii: np.ndarray) -> None:
    """Set to True every pixel within `radii[i]` of the polyline `points` (n-D)."""
    shape = np.array(mask.shape)
    for p0, p1, r in zip(points[:-1], points[1:], radii[:-1]):
        lo = np.maximum(np.floor(np.minimum(p0, p1) - r - 1).astype(int), 0)
        hi = np.minimum(np.ceil(np.maximum(p0, p1) + r + 2).astype(int), shape)
        if np.any(hi <= lo):
            continue
        grids = np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij", sparse=True)
        seg = p1 - p0
        length2 = float(seg @ seg) or 1e-9
        t = sum((g - a) * s for g, a, s in zip(grids, p0, seg)) / length2
        t = np.clip(t, 0.0, 1.0)
        d2 = sum((g - (a + t * s)) ** 2 for g, a, s in zip(grids, p0, seg))
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        mask[box] |= d2 <= r * r


def duct_tree(
    shape,
    nipple: np.ndarray,
    inward: np.ndarray,
    rng: np.random.Generator,
    length_px: float,
    radius_px: float,
    n_trunks: int = 6,
    within: np.ndarray | None = None,
) -> np.ndarray:
    """A branching duct system that starts at the nipple and runs `inward`.

    Each of the `n_trunks` lactiferous ducts walks away from the nipple with
    a little wander, branches now and then, and thins at each branching.
    """
    ndim = len(shape)
    mask = np.zeros(shape, bool)
    inward = inward / np.linalg.norm(inward)
    step = max(length_px / 40.0, 1.0)

    def random_dir(base, spread):
        d = base + spread * rng.standard_normal(ndim)
        return d / (np.linalg.norm(d) + 1e-9)

    stack = [(nipple.astype(float), random_dir(inward, 0.7), length_px, radius_px, 0) for _ in range(n_trunks)]
    while stack:
        start, direction, remaining, radius, depth = stack.pop()
        pts, radii = [start], [radius]
        pos = start.copy()
        walked = 0.0
        while walked < remaining:
            direction = random_dir(direction, 0.18)
            pos = pos + step * direction
            walked += step
            if np.any(pos < 0) or np.any(pos >= np.array(shape) - 1):
                break
            pts.append(pos.copy())
            radii.append(radius)
            if depth < 4 and rng.random() < 0.06 and remaining - walked > 4 * step:
                branch_dir = random_dir(direction, 0.9)
                stack.append((pos.copy(), branch_dir, (remaining - walked) * 0.7, radius * 0.75, depth + 1))
        if len(pts) > 1:
            draw_tube(mask, np.array(pts), np.array(radii))
    if within is not None:
        mask &= within
    return mask


@dataclass
class LesionShape:
    """Parameters of one lesion, in pixels of the phantom's grid."""

    center: np.ndarray
    semi_axes: np.ndarray
    rotation: np.ndarray  # orthonormal matrix, rows are the lesion's axes
    irregularity: float  # 0 = smooth ellipsoid, ~0.35 = lobulated/irregular
    spicules: int
    spicule_length: float  # in units of the mean radius


def random_rotation(ndim: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((ndim, ndim)))
    return q * np.sign(np.diag(r))


def rotation_2d(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def lesion_mask(shape, lesion: LesionShape, rng: np.random.Generator, spacing=None) -> np.ndarray:
    """Rasterise a star-shaped lesion: an ellipsoid whose radius wobbles with
    direction (irregular, lobulated margins) plus thin spicules for
    malignant lesions.

    `lesion.center` is in pixels; `semi_axes` and the rotation are in the
    physical units of `spacing` (pixels when it is None), so that a lesion
    keeps its shape on anisotropic grids.
    """
    ndim = len(shape)
    spacing = np.ones(ndim) if spacing is None else np.asarray(spacing, float)
    reach = float(lesion.semi_axes.max()) * (1.0 + lesion.irregularity + lesion.spicule_length) + 2 * spacing.max()
    lo = np.maximum(np.floor(lesion.center - reach / spacing).astype(int), 0)
    hi = np.minimum(np.ceil(lesion.center + reach / spacing + 1).astype(int), np.array(shape))
    mask = np.zeros(shape, bool)
    if np.any(hi <= lo):
        return mask
    grids = np.meshgrid(*[np.arange(a, b, dtype=np.float32) for a, b in zip(lo, hi)], indexing="ij")
    offsets = np.stack([(g - c) * s for g, c, s in zip(grids, lesion.center, spacing)], axis=-1)
    local = offsets @ lesion.rotation.T  # coordinates along the lesion's axes
    scaled = local / lesion.semi_axes
    rho = np.linalg.norm(scaled, axis=-1)
    unit = scaled / np.maximum(rho[..., None], 1e-6)
    wobble = np.zeros(rho.shape, np.float32)
    if lesion.irregularity > 0:
        n_waves = 6
        for _ in range(n_waves):
            w = rng.standard_normal(ndim)
            w /= np.linalg.norm(w)
            freq = rng.uniform(1.0, 4.0)
            amp = lesion.irregularity * rng.uniform(0.3, 1.0) / np.sqrt(n_waves / 2)
            wobble += amp * np.cos(freq * np.pi * (unit @ w) + rng.uniform(0, 2 * np.pi))
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    mask[box] = rho <= 1.0 + wobble
    if lesion.spicules:
        mean_r = float(np.mean(lesion.semi_axes))
        for _ in range(lesion.spicules):
            d = rng.standard_normal(ndim)
            d /= np.linalg.norm(d)
            length = mean_r * lesion.spicule_length * rng.uniform(0.5, 1.0)
            start = lesion.center + d * mean_r * 0.6 / spacing
            end = lesion.center + d * (mean_r + length) / spacing
            pts = np.linspace(start, end, 6) + rng.normal(0, 0.4, (6, ndim))
            radii = np.linspace(max(mean_r * 0.07 / spacing.min(), 0.8), 0.5, 6)
            draw_tube(mask, pts, radii)
    return mask


def pick_lesion_site(
    gland: np.ndarray, ducts: np.ndarray, breast: np.ndarray, margin_px: float, rng: np.random.Generator
) -> np.ndarray:
    """A lesion centre in glandular tissue near a duct (where carcinomas and
    fibroadenomas arise), at least `margin_px` inside the breast (the image
    border counts as outside: no lesion is cut by the frame)."""
    from scipy.spatial import cKDTree

    padded = np.pad(breast, 1)
    edge = np.argwhere(padded & ~ndi.binary_erosion(padded)) - 1
    edge_tree = cKDTree(edge) if len(edge) else None
    duct_pts = np.argwhere(ducts)
    duct_tree_ = cKDTree(duct_pts) if len(duct_pts) else None
    for pool in (gland & breast, breast):
        idx = np.flatnonzero(pool)
        if idx.size == 0:
            continue
        pick = rng.choice(idx, size=min(idx.size, 400), replace=False)
        pts = np.column_stack(np.unravel_index(pick, breast.shape)).astype(float)
        inside = edge_tree.query(pts)[0] > margin_px if edge_tree is not None else np.ones(len(pts), bool)
        if duct_tree_ is not None:
            near = duct_tree_.query(pts)[0] < 3 * max(margin_px / 2, 2)
            if np.any(inside & near):
                return pts[np.flatnonzero(inside & near)[0]]
        if np.any(inside):
            return pts[np.flatnonzero(inside)[0]]
    idx = np.argwhere(breast)
    return idx[len(idx) // 2].astype(float) if len(idx) else (np.array(breast.shape) - 1) / 2.0


def lesion_profile(mask: np.ndarray) -> np.ndarray:
    """A dome-shaped thickness profile inside `mask` (1 at the core, 0 at the
    margin), used to project a lesion's extra attenuation."""
    out = np.zeros(mask.shape, np.float32)
    if not mask.any():
        return out
    box = bounding_box(mask, pad=1)
    dist = ndi.distance_transform_edt(mask[box])
    out[box] = np.sqrt(dist / dist.max())
    return out
