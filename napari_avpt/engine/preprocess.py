"""Input normalisation and geometry, written down once for training and
inference alike.

Normalisation per modality: mammograms use their display window (the DICOM
VOI window when the reader found one, else robust percentiles inside the
breast); ultrasound and MRI use percentile scaling (1st-99th). A contrast
MRI with its pre-contrast volume is given as the subtraction (post - pre,
`subtraction`). The result is in [0, 1]. Images are cropped to the breast
(mammography, ultrasound frame), padded to a square (aspect ratio kept,
never squashed) and resized to the model's input size; `Fit` maps model
outputs back to the input grid (`views` chooses the crops).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import AvptError

MEAN, STD = 0.5, 0.25  # the [0, 1] image is standardised with these before the ViT


def normalize(image: np.ndarray, modality: str, window: tuple[float, float] | None = None, mask=None) -> np.ndarray:
    img = np.asarray(image)
    if window is not None and window[1] > window[0]:
        lo, hi = window
    else:
        values = img[mask] if mask is not None and mask.any() else img
        if values.size > 1_000_000:
            values = values.ravel()[:: values.size // 500_000]
        lo, hi = np.percentile(values, [1, 99] if modality != "MG" else [0.5, 99.8])
    # One float32 copy, scaled in place: a 512x512x160 volume is 170 MB a copy.
    out = np.array(img, np.float32)
    out -= np.float32(lo)
    out /= np.float32(max(float(hi - lo), 1e-6))
    return np.clip(out, 0, 1, out=out)


# The subtraction's white point: the pre-contrast volume's bright tissue
# (its 99th percentile), so that enhancement reads on one scale whatever
# else enhances. The subtraction's own percentiles depend on how much
# enhances (heart, vessels, parenchyma: 1-2 % of a volume): its 99th fell
# on noise in some phantoms and its 99.5th on the heart, which left lesions
# mid-gray in some volumes and white in others.
PRE_PERCENTILE = 99.0


def subtraction(post: np.ndarray, pre: np.ndarray) -> np.ndarray:
    """A post-contrast volume minus its pre-contrast one, in [0, 1]:
    enhancement from 0 (none; negative differences are noise or motion) to
    the pre-contrast volume's `PRE_PERCENTILE`. What DCE-MRI is read on: a
    lesion enhances, glandular tissue of the same brightness on the
    post-contrast image mostly does not."""
    post, pre = np.asarray(post), np.asarray(pre)
    if post.shape != pre.shape:
        raise AvptError(
            f"the pre-contrast volume is {pre.shape} but the post-contrast one is {post.shape}: they must match"
        )
    out = np.array(post, np.float32)
    out -= pre
    np.maximum(out, 0, out=out)
    values = pre.ravel()[:: max(1, pre.size // 2_000_000)]
    # A blank pre-contrast volume gives no scale: `normalize` then uses the subtraction's own percentiles.
    return normalize(out, "MR", window=(0.0, float(np.percentile(values, PRE_PERCENTILE))))


def model_volume(volume: np.ndarray, modality: str, pre: np.ndarray | None = None) -> np.ndarray:
    """What the model sees of a volume, normalised as a whole: the
    subtraction when the pre-contrast volume is given, else the volume."""
    return normalize(volume, modality) if pre is None else subtraction(volume, pre)


@dataclass
class Fit:
    """Where the model's square input came from in the original image."""

    box: tuple[int, int, int, int]  # r0, r1, c0, c1 in the input image
    side: int  # side of the padded square (pixels of the input image)
    pad: tuple[int, int]  # rows, cols of padding before the crop in the square
    size: int  # model input size
    shape: tuple[int, int]  # input image shape

    def to_model(self, array: np.ndarray, order: str = "bilinear") -> torch.Tensor:
        """(C, H, W) or (H, W) array on the input grid -> (C, size, size) tensor."""
        a = np.asarray(array, np.float32)
        if a.ndim == 2:
            a = a[None]
        r0, r1, c0, c1 = self.box
        square = np.zeros((a.shape[0], self.side, self.side), np.float32)
        square[:, self.pad[0] : self.pad[0] + r1 - r0, self.pad[1] : self.pad[1] + c1 - c0] = a[:, r0:r1, c0:c1]
        t = torch.from_numpy(square)[None]
        mode = "nearest" if order == "nearest" else "bilinear"
        kwargs = {} if mode == "nearest" else {"align_corners": False, "antialias": self.side > self.size}
        return F.interpolate(t, size=(self.size, self.size), mode=mode, **kwargs)[0]

    def to_box(self, maps: torch.Tensor) -> np.ndarray:
        """(C, size, size) model-grid maps -> (C, r1 - r0, c1 - c0): the part
        of the input grid this view covers."""
        up = F.interpolate(maps[None].float(), size=(self.side, self.side), mode="bilinear", align_corners=False)[0]
        r0, r1, c0, c1 = self.box
        return up[:, self.pad[0] : self.pad[0] + r1 - r0, self.pad[1] : self.pad[1] + c1 - c0].numpy()

    def to_input(self, maps: torch.Tensor, fill: float = 0.0) -> np.ndarray:
        """(C, size, size) model-grid maps -> (C, H, W) on the input grid."""
        r0, r1, c0, c1 = self.box
        out = np.full((maps.shape[0],) + tuple(self.shape), fill, np.float32)
        out[:, r0:r1, c0:c1] = self.to_box(maps)
        return out


def to_model_image(normalized: torch.Tensor, channels: int = 3) -> torch.Tensor:
    """(1, S, S) in [0, 1] -> (channels, S, S) standardised."""
    return ((normalized - MEAN) / STD).expand(channels, -1, -1).contiguous()
