"""Synthetic B-mode breast ultrasound frames (linear probe, BUSI-like).

Layers from the skin down: skin line, subcutaneous fat in lobules walled by
Cooper's ligaments, the fibroglandular layer with ducts, retromammary fat,
pectoral muscle and sometimes a rib. Each tissue has an echogenicity and an
attenuation; the image is speckle from random scatterers convolved with a
pulse, attenuated along depth and partly corrected by time-gain
compensation, then log-compressed to 8 bits. So solid masses cast posterior
shadows (malignant) or enhancement (cysts, fibroadenomas) as they do on a
real scanner, and hypoechoic fat lobules look like masses at first glance.
Some frames have burned-in calipers and text, as in BUSI.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage as ndi
from scipy.signal import fftconvolve
from scipy.spatial import cKDTree

from .breast import (
    CLASSES,
    TISSUE_DUCT,
    TISSUE_FAT,
    TISSUE_GLAND,
    LesionShape,
    duct_tree,
    glandular_field,
    lesion_mask,
    pick_lesion_site,
    rotation_2d,
    smooth_noise,
)
from .record import Phantom

TGC_PER_MM = 0.06  # what the scanner assumes tissue attenuates (relative units)


def make_ultrasound(
    seed: int = 0,
    label: str | None = None,
    shape: tuple[int, int] = (384, 480),
    spacing: float = 0.1,
    calipers: bool | None = None,
) -> Phantom:
    """One ultrasound frame; anything left None is drawn from `seed`."""
    rng = np.random.default_rng(seed)
    label = label or str(rng.choice(CLASSES))
    if label not in CLASSES:
        raise ValueError(f"unknown label {label!r}")
    rows, cols = shape
    top, bottom = int(rows * 0.08), int(rows * 0.96)
    left, right = int(cols * 0.07), int(cols * 0.93)
    h, w = bottom - top, right - left
    px = 1.0 / spacing
    zz, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    depth = zz * spacing

    def boundary(mean_mm: float, wobble_mm: float) -> np.ndarray:
        line = ndi.gaussian_filter1d(rng.standard_normal(w), w / 8, mode="reflect")
        return mean_mm + wobble_mm * line / (line.std() + 1e-9)

    z_skin = rng.uniform(1.5, 2.5)
    z1 = boundary(z_skin + rng.uniform(3, 9), 1.5)
    z2 = z1 + boundary(rng.uniform(9, 18), 2.0).clip(4, None)
    z3 = z2 + rng.uniform(2, 5)
    z4 = z3 + rng.uniform(5, 9)
    skin = depth < z_skin
    sub_fat = (depth >= z_skin) & (depth < z1)
    layer = (depth >= z1) & (depth < z2)
    retro_fat = (depth >= z2) & (depth < z3)
    muscle = (depth >= z3) & (depth < z4)
    chest = depth >= z4

    echo = np.zeros((h, w), np.float32)
    atten = np.full((h, w), 0.06, np.float32)
    echo[skin] = 0.9
    # Fat lobules: Voronoi cells of random seeds; cell walls are ligaments.
    fat = sub_fat | retro_fat
    seeds = np.column_stack([rng.uniform(0, h, 60), rng.uniform(0, w, 60)])
    warp = [1.5 * px * smooth_noise((h, w), w / 25, rng) for _ in range(2)]  # curved walls
    pts = np.column_stack([(zz + warp[0])[fat], (xx + warp[1])[fat]])
    d, _ = cKDTree(seeds).query(pts, k=2)
    wall = (d[:, 1] - d[:, 0]) < 0.5 * px
    lobule_echo = rng.uniform(0.18, 0.35, len(pts))  # hypoechoic: mass look-alikes
    fat_echo = np.where(wall, 0.95, lobule_echo)
    echo[fat] = fat_echo
    atten[fat] = np.where(wall & (rng.random(len(pts)) < 0.25), 0.2, 0.04)  # ligament shadows
    gland_soft, gland = glandular_field(layer, np.zeros((h, w), np.float32), rng.uniform(0.6, 0.9), rng, beta=2.6)
    echo[layer] = np.where(gland[layer], 0.55 + 0.35 * gland_soft[layer], 0.3)
    atten[layer] = 0.07
    ducts = np.zeros((h, w), bool)
    mid = float(np.median((z1 + z2) / 2)) * px
    if rng.random() < 0.7:
        side = rng.choice([0.0, w - 1.0])
        ducts = duct_tree(
            (h, w),
            np.array([mid, side]),
            np.array([0.0, 1.0 if side == 0 else -1.0]),
            rng,
            length_px=w * 0.8,
            radius_px=rng.uniform(0.4, 1.0) * px,
            n_trunks=2,
            within=layer,
        )
        walls = ndi.binary_dilation(ducts, iterations=max(int(0.3 * px), 1)) & ~ducts & layer
        echo[walls] = 0.9
        echo[ducts] = 0.04
        atten[ducts] = 0.01
    striation = 0.5 + 0.25 * np.sin(2 * np.pi * depth / rng.uniform(1.0, 1.8) + 0.2 * smooth_noise((h, w), 8, rng))
    echo[muscle] = striation[muscle]
    echo[chest] = 0.35
    if rng.random() < 0.3:  # a rib: bright cortex, nothing behind it
        rib = ((xx - rng.uniform(0.2, 0.8) * w) / (6 * px)) ** 2 + ((depth - z4 - 4) / 3) ** 2 < 1
        echo[rib] = 0.2
        echo[rib & ~ndi.binary_erosion(rib, iterations=max(int(0.6 * px), 1))] = 1.0
        atten[rib] = 3.0

    lesion = np.zeros((h, w), np.uint8)
    kind = "none"
    if label != "normal":
        kind = "malignant" if label == "malignant" else str(rng.choice(["cyst", "fibroadenoma"]))
        diameter = rng.uniform(5, 20) if label == "benign" else rng.uniform(7, 22)
        r = min(diameter / 2 * px, 0.2 * h, 0.2 * w)
        if kind == "malignant":  # taller than wide, spiculated
            axes = np.array([r, r / rng.uniform(1.05, 1.5)])
            irregular, spicules, spicule_len = rng.uniform(0.15, 0.35), int(rng.integers(4, 12)), rng.uniform(0.4, 0.9)
        else:  # wider than tall, parallel to the skin
            axes = np.array([r * rng.uniform(0.45, 0.8), r])
            irregular, spicules, spicule_len = (0.0 if kind == "cyst" else 0.06), 0, 0.0
        site = pick_lesion_site(gland, ducts, layer, float(axes.max()), rng)
        site[0] = np.clip(site[0], axes[0] + z_skin * px + 2, h - axes[0] - 2)
        m = lesion_mask(
            (h, w),
            LesionShape(site, axes, rotation_2d(rng.normal(0, 0.15)), irregular, spicules, spicule_len),
            rng,
        )
        m &= depth > z_skin
        lesion[m] = 1
        if kind == "cyst":
            echo[m], atten[m] = 0.02, 0.005
        elif kind == "fibroadenoma":
            echo[m], atten[m] = rng.uniform(0.15, 0.35), 0.03
        else:
            hetero = 0.5 + 0.5 * np.abs(smooth_noise((h, w), 2, rng))
            echo[m] = (rng.uniform(0.08, 0.25) * hetero)[m]
            atten[m] = rng.uniform(0.06, 0.15)
            halo = ndi.binary_dilation(m, iterations=max(int(1.2 * px), 1)) & ~m
            echo[halo] = np.maximum(echo[halo], 0.8)

    # Scatterers -> pulse -> envelope, with attenuation and TGC along depth.
    gain = np.exp(-2 * np.cumsum(atten, axis=0) * spacing) * np.exp(2 * TGC_PER_MM * depth)
    amplitude = echo * gain
    kz = np.arange(-int(0.6 * px) - 1, int(0.6 * px) + 2) * spacing
    kx = np.arange(-int(1.2 * px) - 1, int(1.2 * px) + 2) * spacing
    pulse = np.exp(-(kz[:, None] ** 2) / (2 * 0.18**2) - kx[None, :] ** 2 / (2 * 0.35**2))
    # Three independent looks averaged, as spatial compounding does on a scanner.
    envelope = sum(
        np.abs(fftconvolve((rng.standard_normal((h, w)) + 1j * rng.standard_normal((h, w))) * amplitude, pulse, "same"))
        for _ in range(3)
    )
    envelope /= np.quantile(envelope, 0.995) + 1e-9
    db = 20 * np.log10(envelope + 1e-4)
    frame = np.clip((db + 40) / 40, 0, 1) ** 1.2 * 255

    image = np.zeros(shape, np.uint8)
    image[top:bottom, left:right] = frame.astype(np.uint8)
    tissue = np.zeros(shape, np.uint8)
    t = np.zeros((h, w), np.uint8)
    t[fat] = TISSUE_FAT
    t[layer] = TISSUE_FAT
    t[layer & gland] = TISSUE_GLAND
    t[ducts] = TISSUE_DUCT
    t[lesion > 0] = TISSUE_GLAND
    tissue[top:bottom, left:right] = t
    lesion_full = np.zeros(shape, np.uint8)
    lesion_full[top:bottom, left:right] = lesion

    if calipers is None:
        calipers = label != "normal" and rng.random() < 0.35
    image = _burn_in(image, lesion_full if calipers else None, (top, left, bottom, right), px, rng)
    return Phantom(
        image=image,
        tissue=tissue,
        lesion=lesion_full,
        label=label,
        spacing=(spacing, spacing),
        modality="US",
        meta={"lesion_kind": kind, "calipers": bool(calipers), "seed": seed},
    )


def _burn_in(image, lesion, box, px, rng) -> np.ndarray:
    """Scanner text, a depth scale and, when `lesion` is given, caliper
    crosses at its extremes: what BUSI frames carry."""
    top, left, bottom, right = box
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    draw.text((left + 2, 1), f"L12-5 {rng.integers(7, 12)}.0MHz  G{rng.integers(40, 70)}", fill=220)
    for mm in range(0, int((bottom - top) / px), 5):
        y = top + int(mm * px)
        draw.point([(right + 3, y), (right + 4, y)], fill=200)
    if lesion is not None and lesion.any():
        ys, xs = np.nonzero(lesion)
        arm = max(int(0.8 * px), 3)
        ends = [(xs.min(), ys[xs.argmin()]), (xs.max(), ys[xs.argmax()]), (xs[ys.argmin()], ys.min())]
        for x, y in ends:
            draw.line([(x - arm, y), (x + arm, y)], fill=255)
            draw.line([(x, y - arm), (x, y + arm)], fill=255)
    return np.asarray(canvas, dtype=np.uint8).copy()
