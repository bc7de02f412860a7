"""The Segmenter's working grid: an image of any size brought down to at
most `infer.WORK_SIDE` pixels a side by an integer factor, and maps and
lesions brought back up to the input's own grid, in bands, so that a very
large frame never exists as several float32 copies of itself."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi


def downsample(image: np.ndarray, max_side: int) -> tuple[np.ndarray, int]:
    """Block-mean downsampling by an integer factor so the longer side is at
    most `max_side` (factor 1: the image itself)."""
    factor = int(np.ceil(max(image.shape) / max_side))
    if factor <= 1:
        return image, 1
    rows, cols = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    blocks = np.asarray(image[:rows, :cols], np.float32).reshape(rows // factor, factor, cols // factor, factor)
    return blocks.mean(axis=(1, 3)), factor


def upsample(array: np.ndarray, shape: tuple[int, int], factor: int, dtype=np.float32) -> np.ndarray:
    """Undo `downsample`: bilinear back to the covered area, then the few
    leftover rows and columns take the values of the edge. Done in bands
    of rows (each with a row of context either side, so the result is the
    same as in one piece): a 12000 x 12000 frame's maps never exist as
    float32 copies."""
    if factor == 1:
        return np.asarray(array, dtype)
    h, w = array.shape
    out = np.empty(shape, dtype)
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    step = max(1, 2048 // factor)  # input rows per band
    for a in range(0, h, step):
        b = min(a + step, h)
        lo, hi = max(a - 1, 0), min(b + 1, h)
        up = F.interpolate(
            t[None, None, lo:hi], size=((hi - lo) * factor, w * factor), mode="bilinear", align_corners=False
        )[0, 0]
        band = up[(a - lo) * factor : (b - lo) * factor].numpy()
        out[a * factor : b * factor, : w * factor] = band
        out[a * factor : b * factor, w * factor :] = band[:, -1:]
    out[h * factor :] = out[h * factor - 1]
    return out


def labels_on_input(prob: np.ndarray, work_labels: np.ndarray, factor: int, threshold: float) -> np.ndarray:
    """Lesion ids on the input grid: the input-grid probability above the
    threshold, each pixel taking the id of the working-grid lesion it lies
    on or next to (none where no lesion is within a working pixel)."""
    dtype = np.uint8 if work_labels.max() < 256 else np.uint16 if work_labels.max() < 65536 else np.int32
    out = np.zeros(prob.shape, dtype)
    if not work_labels.any():
        return out
    dist, (ii, jj) = ndi.distance_transform_edt(work_labels == 0, return_indices=True)
    nearest = np.where(dist <= 1.5, work_labels[ii, jj], 0).astype(dtype)
    cols = np.minimum(np.arange(prob.shape[1]) // factor, nearest.shape[1] - 1)
    for r0 in range(0, prob.shape[0], 2048):
        r1 = min(r0 + 2048, prob.shape[0])
        rows = np.minimum(np.arange(r0, r1) // factor, nearest.shape[0] - 1)
        out[r0:r1] = np.where(prob[r0:r1] > threshold, nearest[rows][:, cols], 0)
    return out
