"""The Segmenter's second look at a 2D image's lesion, zoomed on it.

The first look reads the whole frame at the model's 224 pixels, where a
lesion of 4 % of an ultrasound frame covers about 3 x 3 of the 14 x 14
tokens. The second reads the strongest region the first look drew (of
most probability mass, or ranked first by the set's lesion choice where
it has one: `lesion_choice`) from a view of `views.ZOOM_LOOK_CONTEXT`
times its longer side centred on it (`views.lesion_view`), and averages
the two lesion probabilities inside that view before the lesions are
drawn. Only for prompt sets taught such views (their metadata
`zoom_look`, which training writes when its examples had them:
`data.ZOOM_MODALITIES`); on a set that never saw one, the zoomed view
drew worse lesions (docs/experiments/NOTES.md).
"""

from __future__ import annotations

import numpy as np
import torch

from .preprocess import to_model_image
from .views import lesion_view

ZOOM_WEIGHT = 0.5  # the zoomed look's share of the mean inside its view
ZOOM_REGIONS = 1  # how many of the first look's strongest regions are looked at again


def look_again(prob, regions, norm, maps, size: int, context: float, read, rank=None) -> None:
    """Inside views zoomed on the `ZOOM_REGIONS` strongest of `regions`
    (the lesion ids the first look drew from `prob`, before the weak-region
    rule, which then judges both looks), `prob` becomes the mean of both
    looks, in place (the zoomed ones averaged where their views overlap).
    All on the Segmenter's working grid: `norm` and `maps` are its model
    image and tissue maps, `size` the model's input side, and `read(x, t)`
    the model's lesion probability (V, S, S) of views (V, 3, S, S) with
    their tissue maps. Nothing changes where none is drawn or a view would
    be nearly the whole image. The strongest are those of most probability
    mass, or of the highest `rank(regions, ids)` (one score per region id
    of `ids`: a set's lesion choice) where given."""
    if not regions.any():
        return
    ids = np.unique(regions[regions > 0])
    if rank is None:
        score = np.bincount(regions.ravel(), weights=prob.ravel())[ids]
    else:
        score = np.asarray(rank(regions, ids), np.float64)
    strongest = [int(i) for i in ids[np.argsort(score)[::-1][:ZOOM_REGIONS]]]
    fits = [f for i in strongest if (f := lesion_view(prob.shape, regions == i, size, context)) is not None]
    if not fits:
        return
    zoomed = read(
        torch.stack([to_model_image(f.to_model(norm)) for f in fits]), torch.stack([f.to_model(maps) for f in fits])
    )
    total, count = np.zeros_like(prob), np.zeros_like(prob)
    for f, z in zip(fits, zoomed):
        r0, r1, c0, c1 = f.box
        total[r0:r1, c0:c1] += f.to_box(z[None])[0]
        count[r0:r1, c0:c1] += 1
    seen = count > 0
    prob[seen] += ZOOM_WEIGHT * (total[seen] / count[seen] - prob[seen])
