"""Synthetic bilateral dynamic contrast-enhanced breast MRI (Duke-like).

Axial slices of a prone patient: both breasts anterior (top of the image),
the chest wall, pectoral muscle, lungs and an enhancing heart behind them.
The sequence is a fat-saturated T1: fat dark, glands intermediate. Five
phases (pre, post_1..post_4) follow contrast kinetics: lesions enhance with a
persistent, plateau or washout curve, glandular tissue shows background
parenchymal enhancement (minimal to marked, patchy), vessels and the heart
light up early. A coil bias field and Rician noise finish it. Array order is
(slice, row, col) = (inferior->superior, anterior->posterior,
right->left), the radiological axial view.
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
    bounding_box,
    duct_tree,
    glandular_field,
    lesion_mask,
    lesion_profile,
    pick_lesion_site,
    random_rotation,
    smooth_noise,
)
from .record import Phantom

PHASES = ("pre", "post_1", "post_2", "post_3", "post_4")
PHASE_MINUTES = np.array([0.0, 1.5, 3.0, 4.5, 6.0])
FOV_MM, COVERAGE_MM = 340.0, 176.0
KINETICS = ("persistent", "plateau", "washout")


def enhancement_curve(kind: str, peak: float, minutes: np.ndarray = PHASE_MINUTES) -> np.ndarray:
    """Relative enhancement over time for the three BI-RADS curve types."""
    t = np.asarray(minutes, float)
    if kind == "persistent":
        return peak * (1 - np.exp(-t / 4.0)) / (1 - np.exp(-6.0 / 4.0))
    if kind == "plateau":
        return peak * (1 - np.exp(-t / 0.6))
    if kind == "washout":
        return peak * (1 - np.exp(-t / 0.5)) * np.where(t > 1.5, 1 - 0.06 * (t - 1.5), 1.0)
    raise ValueError(f"unknown kinetics {kind!r}")


def make_breast_mri(
    seed: int = 0,
    label: str | None = None,
    density: str | None = None,
    shape: tuple[int, int, int] = (64, 192, 224),
    kinetics: str | None = None,
) -> Phantom:
    """One DCE-MRI phantom (five phases); anything left None is drawn from `seed`."""
    rng = np.random.default_rng(seed)
    label = label or str(rng.choice(CLASSES))
    density = density or str(rng.choice(list("abcd"), p=[0.15, 0.35, 0.35, 0.15]))
    if label not in CLASSES or density not in DENSITY_FRACTION:
        raise ValueError(f"unknown label/density: {label!r}, {density!r}")
    if kinetics is None:
        p = [0.8, 0.2, 0.0] if label != "malignant" else [0.1, 0.3, 0.6]
        kinetics = str(rng.choice(KINETICS, p=p))
    n_z, n_y, n_x = shape
    s_xy = FOV_MM / n_x
    s_z = COVERAGE_MM / n_z
    spacing = (s_z, s_xy, s_xy)
    z = ((np.arange(n_z) - n_z / 2) * s_z)[:, None, None].astype(np.float32)
    y = (np.arange(n_y) * s_xy)[None, :, None].astype(np.float32)
    x = ((np.arange(n_x) - n_x / 2) * s_xy)[None, None, :].astype(np.float32)

    # Chest wall and torso.
    y_cw = n_y * s_xy * rng.uniform(0.55, 0.62) + 12 * (x / 170) ** 2
    torso = ((x / 165) ** 2 + ((y - y_cw - 80) / 95) ** 2 <= 1) & (y >= y_cw)
    torso = np.broadcast_to(torso, shape) & (np.abs(z) < COVERAGE_MM)
    cavity = (x / 120) ** 2 + ((y - y_cw - 85) / 65) ** 2 <= 1
    heart = ((x - 25) / 34) ** 2 + ((y - y_cw - 75) / 26) ** 2 + (z / 45) ** 2 <= 1
    muscle = torso & (y < y_cw + 14) & ~cavity

    # Two breasts hanging anteriorly from the chest wall.
    breasts = np.zeros(shape, bool)
    nipples = {}
    for side, sign in (("R", -1), ("L", 1)):
        xc = sign * rng.uniform(70, 95)
        rx, ry, rz = rng.uniform(50, 72), rng.uniform(55, 95), rng.uniform(50, 70)
        ry = min(ry, float(y_cw.min()) - 8)
        b = ((x - xc) / rx) ** 2 + ((y - y_cw) / ry) ** 2 + (z / rz) ** 2 <= 1
        b = b & (y < y_cw)
        breasts |= b
        nipple_y = float((y_cw.min() - ry) / s_xy) + 1
        nipples[side] = np.array([n_z / 2, max(nipple_y, 1.0), xc / s_xy + n_x / 2])
    skin = breasts & ~ndi.binary_erosion(breasts, iterations=max(int(round(1.5 / s_xy)), 1))
    inner = breasts & ~skin
    box = bounding_box(inner, pad=2)
    depth_in = np.zeros(shape, np.float32)
    depth_in[box] = ndi.distance_transform_edt(inner[box], sampling=spacing)
    prior = np.where(depth_in > 6, 0.8, -1.5).astype(np.float32)
    soft_gland, gland = glandular_field(inner, prior, rng.uniform(*DENSITY_FRACTION[density]), rng)
    ducts = np.zeros(shape, bool)
    vessels = np.zeros(shape, bool)
    for nip in nipples.values():
        length = float(y_cw.min()) / s_xy * 0.5
        ducts |= duct_tree(shape, nip, np.array([0.0, 1.0, 0.0]), rng, length, max(0.8 / s_xy, 0.6), 5, inner)
        start = nip + np.array([rng.uniform(-10, 10), length * 1.4, np.sign(nip[2] - n_x / 2) * 25])
        start = np.clip(start, 0, np.array(shape) - 1)
        vessels |= duct_tree(shape, start, np.array([0.0, -1.0, 0.0]), rng, length, max(1.2 / s_xy, 0.7), 2, inner)

    laterality = str(rng.choice(["L", "R"]))
    lesion = np.zeros(shape, np.uint8)
    if label != "normal":
        diameter = rng.uniform(8, 20) if label == "benign" else rng.uniform(10, 35)
        r = diameter / 2
        axes = r * np.array([1.0, rng.uniform(0.7, 1.0), rng.uniform(0.7, 1.0)])
        side_x = (x[0, 0] > 0) if laterality == "L" else (x[0, 0] <= 0)
        side_mask = inner & side_x[None, None, :]
        rot = random_rotation(3, rng)
        shape_ = LesionShape(
            center=pick_lesion_site(gland & side_mask, ducts, side_mask, r * 0.8 / s_xy, rng),
            semi_axes=axes,
            rotation=rot,
            irregularity=0.05 if label == "benign" else rng.uniform(0.18, 0.35),
            spicules=0 if label == "benign" else int(rng.integers(4, 10)),
            spicule_length=0.0 if label == "benign" else rng.uniform(0.5, 1.0),
        )
        lesion[lesion_mask(shape, shape_, rng, spacing) & inner] = 1

    # Pre-contrast fat-saturated T1 signal and per-tissue enhancement.
    pre = np.zeros(shape, np.float32)
    pre[torso] = 0.12  # subcutaneous fat of the torso, saturated
    pre[muscle] = 0.4
    pre[torso & np.broadcast_to(cavity, shape)] = 0.03  # lungs
    pre[torso & heart] = 0.3
    pre[breasts] = 0.12
    pre[gland] = (0.28 + 0.1 * soft_gland)[gland]
    pre[ducts] = 0.3
    pre[vessels] = 0.3
    pre[skin] = 0.45
    enh = np.zeros((len(PHASES),) + shape, np.float32)
    bpe_level = float(rng.choice([0.1, 0.25, 0.5, 0.8], p=[0.3, 0.35, 0.25, 0.1]))
    patchy = np.clip(0.5 + 0.5 * smooth_noise(shape, 3, rng), 0, 1.5)
    bpe = enhancement_curve("persistent", bpe_level)
    early = enhancement_curve("plateau", 2.5) * np.exp(-0.05 * PHASE_MINUTES)
    for t in range(len(PHASES)):
        enh[t][gland] = (bpe[t] * patchy)[gland]
        enh[t][vessels] = early[t]
        enh[t][torso & heart] = early[t] * 0.8
        enh[t][muscle] = 0.3 * bpe[t] / max(bpe_level, 1e-3) * 0.25
    peak = rng.uniform(0.8, 2.5)  # subtle to obvious
    if lesion.any():
        m = lesion > 0
        pre[m] = rng.uniform(0.32, 0.42)
        curve = enhancement_curve(kinetics, peak)
        rim = 1.0 - lesion_profile(m) if label == "malignant" and rng.random() < 0.5 else np.ones(shape, np.float32)
        hetero = np.clip(1 + 0.25 * smooth_noise(shape, 1.5, rng), 0.4, 1.6)
        for t in range(len(PHASES)):
            enh[t][m] = (curve[t] * (0.6 + 0.4 * rim) * hetero)[m]

    bias = np.exp(0.2 * smooth_noise(shape, max(shape) / 6, rng)) * (1 + 0.35 * np.exp(-y / 60.0))
    noise_sd = rng.uniform(0.012, 0.03)
    phases = {}
    for t, name in enumerate(PHASES):
        signal = ndi.gaussian_filter(pre * (1 + enh[t]), (0.3, 0.5, 0.5)) * bias
        real = signal + noise_sd * rng.standard_normal(shape, dtype=np.float32)
        noisy = np.hypot(real, noise_sd * rng.standard_normal(shape, dtype=np.float32))
        phases[name] = np.clip(noisy * 1000, 0, 65535).astype(np.uint16)

    tissue = np.zeros(shape, np.uint8)
    tissue[inner] = TISSUE_FAT
    tissue[gland] = TISSUE_GLAND
    tissue[ducts] = TISSUE_DUCT
    tissue[lesion > 0] = TISSUE_GLAND
    return Phantom(
        image=phases["post_1"],
        tissue=tissue,
        lesion=lesion,
        label=label,
        spacing=spacing,
        modality="MR",
        meta={
            "laterality": laterality,
            "density": density,
            "kinetics": kinetics if label != "normal" else None,
            "bpe": bpe_level,
            "phase_minutes": PHASE_MINUTES.tolist(),
            "seed": seed,
        },
        phases=phases,
    )
