"""Synthetic full-field digital mammograms (CC and MLO views).

The breast is modelled as a compressed slab: a fibroglandular fraction from
thresholded 1/f^3 noise, a duct tree from the nipple, lesions that displace
tissue, and the pectoral muscle in MLO views. The image is an X-ray
projection (Beer-Lambert), blurred, with scatter and Poisson quantum noise,
then log-transformed to a 12- or 14-bit "for presentation" image where dense
tissue is bright (MONOCHROME2). Masses overlap dense tissue with nearly the
same attenuation, which is what makes dense breasts hard.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .breast import (
    CLASSES,
    DENSITY_FRACTION,
    TISSUE_DUCT,
    TISSUE_FAT,
    TISSUE_GLAND,
    LesionShape,
    duct_tree,
    glandular_field,
    lesion_mask,
    lesion_profile,
    pick_lesion_site,
    rotation_2d,
    wide_blur,
)
from .record import Phantom

DETECTOR_HEIGHT_MM = 286.0  # INbreast: 4084 rows of 0.07 mm
MU_FAT, MU_GLAND, MU_CALC = 0.046, 0.080, 1.2  # linear attenuation, 1/mm, ~20 keV


def make_mammogram(
    seed: int = 0,
    label: str | None = None,
    density: str | None = None,
    view: str | None = None,
    laterality: str | None = None,
    shape: tuple[int, int] = (512, 416),
) -> Phantom:
    """One mammogram phantom; anything left None is drawn from `seed`."""
    rng = np.random.default_rng(seed)
    label = label or str(rng.choice(CLASSES))
    density = density or str(rng.choice(list("abcd"), p=[0.15, 0.35, 0.35, 0.15]))
    view = view or str(rng.choice(["CC", "MLO"]))
    laterality = laterality or str(rng.choice(["L", "R"]))
    if label not in CLASSES or density not in DENSITY_FRACTION or view not in ("CC", "MLO"):
        raise ValueError(f"unknown label/density/view: {label!r}, {density!r}, {view!r}")
    rows, cols = shape
    spacing = DETECTOR_HEIGHT_MM / rows
    px = 1.0 / spacing  # pixels per millimetre
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)

    # Outline: a half-ellipse on the chest wall (column 0), wobbly edge.
    cy = rows * (rng.uniform(0.45, 0.55) if view == "CC" else rng.uniform(0.55, 0.65))
    ay = rows * rng.uniform(0.30, 0.40)
    ax = cols * rng.uniform(0.55, 0.80)
    v, u = (yy - cy) / ay, xx / ax
    rho = np.sqrt(u * u + v * v)
    theta = np.arctan2(v, u)
    edge = 1.0 + sum(rng.normal(0, 0.025) * np.cos(k * theta + rng.uniform(0, 6.3)) for k in range(2, 6))
    rho_n = rho / edge
    breast = rho_n <= 1.0
    muscle = np.zeros(shape, bool)
    if view == "MLO":
        # The axillary tail runs up to the top edge beside the chest wall,
        # and the pectoral muscle is a triangle in the upper corner.
        tail = xx < cols * 0.30 * np.clip(1.2 - yy / cy, 0.0, 1.0) + cols * 0.12
        breast |= tail & (yy < cy)
        p_w, p_h = cols * rng.uniform(0.18, 0.32), rows * rng.uniform(0.40, 0.60)
        muscle = (xx / p_w + yy / p_h) < 1.0
    rho_n = np.where(breast & (rho_n > 1.0), 0.99, rho_n)
    dist_out = ndi.distance_transform_edt(breast)
    skin = breast & (dist_out < 1.5 * px)
    parenchyma = breast & ~muscle

    # Glands gather behind the nipple, away from the skin and chest wall.
    prior = 1.4 * np.exp(-(v**2) / 0.35) - 1.5 * np.exp(-dist_out / (6 * px)) - 0.8 * np.exp(-u / 0.08)
    fraction = rng.uniform(*DENSITY_FRACTION[density])
    soft_gland, gland = glandular_field(parenchyma & ~skin, prior.astype(np.float32), fraction, rng)
    nipple = np.array([cy, min(ax * float(edge[int(cy), 0]), cols - 2)])
    ducts = duct_tree(
        shape, nipple, np.array([0.0, -1.0]), rng, length_px=ax * 0.6, radius_px=max(0.7 * px, 0.8), within=parenchyma
    )

    lesion = np.zeros(shape, np.uint8)
    if label != "normal":
        n_lesions = 2 if (label == "malignant" and rng.random() < 0.15) else 1
        for i in range(n_lesions):
            diameter = rng.uniform(6, 22) if label == "benign" else rng.uniform(8, 28)
            r = diameter / 2 * px
            shape_ = LesionShape(
                center=pick_lesion_site(gland, ducts, parenchyma & (lesion == 0), r + 2, rng),
                semi_axes=np.array([r, r * rng.uniform(0.6, 0.95)]),
                rotation=rotation_2d(rng.uniform(0, np.pi)),
                irregularity=0.03 if label == "benign" else rng.uniform(0.12, 0.3),
                spicules=0 if label == "benign" else int(rng.integers(6, 16)),
                spicule_length=0.0 if label == "benign" else rng.uniform(0.8, 1.8),
            )
            lesion[lesion_mask(shape, shape_, rng) & parenchyma & (lesion == 0)] = i + 1

    # Projected attenuation through the compressed breast.
    # Full compressed thickness inside, rounding off over the outer edge.
    rim = 1.0 - np.clip(dist_out / (0.25 * ax), 0.0, 1.0)
    thickness = np.where(breast, rng.uniform(40, 65) * np.sqrt(1.0 - rim**2), 0.0)
    # A dense-looking column is 20-45 % gland by thickness: mean volumetric
    # density ~14 %, as breast CT measures (Yaffe et al. 2009: 13.7 %). At
    # 45-80 % (3x that) half the masses were fainter than the texture around them.
    gfrac = soft_gland * rng.uniform(0.2, 0.45) + 0.1 * ducts
    mu_bg = MU_FAT * (1 - gfrac) + MU_GLAND * gfrac
    path = thickness * mu_bg + skin * 1.5 * (MU_GLAND - MU_FAT)
    if muscle.any():
        muscle_t = np.sqrt(np.clip(1.0 - (xx / p_w + yy / p_h), 0, 1)) * 25.0
        path += np.where(muscle & breast, muscle_t * (0.085 - MU_FAT), 0.0)
    for i in range(1, lesion.max() + 1):
        m = lesion == i
        # From subtle (barely denser than gland) to obvious.
        mu_lesion = MU_GLAND * rng.uniform(1.02, 1.25)
        depth = lesion_profile(m) * np.sqrt(m.sum() / np.pi) * 2 * spacing * rng.uniform(0.8, 1.2)
        path += depth * (mu_lesion - mu_bg)
        if label == "malignant" or rng.random() < 0.2:
            path += _calcifications(m, px, rng, fine=label == "malignant")

    # Detector: scatter, blur, quantum noise, log transform.
    photons = 4000.0 * (spacing / 0.07) ** 2
    primary = photons * np.exp(-path)
    scatter = 0.25 * wide_blur(primary, 15 * px)
    signal = ndi.gaussian_filter(primary + scatter, max(0.08 * px, 0.3))
    counts = np.maximum(rng.poisson(signal).astype(np.float32), 1.0)
    log_att = np.log(photons * 1.25 / counts)
    # "For presentation" processing: take out most of the smooth thickness
    # term (peripheral equalisation) so that fat shows gray and glands white.
    log_att = log_att - 0.8 * wide_blur(thickness, 3 * px) * MU_FAT
    ref = np.quantile(log_att[breast], 0.999) * 1.05 if breast.any() else 1.0
    bits = int(rng.choice([12, 14]))
    image = (np.clip(log_att / ref, 0, 1) ** 0.9 * (2**bits - 1)).astype(np.uint16)

    tissue = np.zeros(shape, np.uint8)
    tissue[parenchyma] = TISSUE_FAT
    tissue[gland & parenchyma] = TISSUE_GLAND
    tissue[ducts & parenchyma] = TISSUE_DUCT
    tissue[(lesion > 0) & (tissue == TISSUE_FAT)] = TISSUE_GLAND
    arrays = [image, tissue, lesion]
    if laterality == "R":  # right breasts face the other way on the detector
        arrays = [np.ascontiguousarray(a[:, ::-1]) for a in arrays]
    image, tissue, lesion = arrays
    return Phantom(
        image=image,
        tissue=tissue,
        lesion=lesion,
        label=label,
        spacing=(spacing, spacing),
        modality="MG",
        meta={"view": view, "laterality": laterality, "density": density, "bits": bits, "seed": seed},
    )


def _calcifications(mass: np.ndarray, px: float, rng: np.random.Generator, fine: bool) -> np.ndarray:
    """Micro-calcifications near a mass: fine pleomorphic clusters for
    malignant lesions, a few coarse ones for benign."""
    extra = np.zeros(mass.shape, np.float32)
    idx = np.argwhere(mass)
    if idx.size == 0:
        return extra
    center = idx.mean(0)
    spread = np.sqrt(len(idx) / np.pi) * 1.3
    n = int(rng.integers(6, 20)) if fine else int(rng.integers(1, 4))
    for _ in range(n):
        p = np.round(center + rng.normal(0, spread / 2, 2)).astype(int)
        if np.all(p >= 0) and np.all(p < mass.shape):
            extra[tuple(p)] += MU_CALC * (0.3 if fine else 1.0) * px
    sigma = max((0.12 if fine else 0.4) * px, 0.5)
    return ndi.gaussian_filter(extra, sigma) * (2 * np.pi * sigma**2) / max(px, 1.0)
