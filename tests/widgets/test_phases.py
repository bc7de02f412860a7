"""Finding a contrast MRI volume's pre-contrast phase among the layers."""

import napari
import numpy as np

from napari_avpt.widgets.phases import pre_contrast_of, same_grid_volumes


def _image(name, shape=(4, 8, 8), **meta):
    return napari.layers.Image(np.zeros(shape, np.uint16), name=name, metadata=meta)


def test_the_pre_contrast_phase_is_found_by_series_description_or_name():
    post = _image("Ax Vibrant 1st pass", SeriesDescription="ax dyn 1st pass")
    pre = _image("series 2", SeriesDescription="ax dyn pre")
    other = _image("T2")
    small = _image("pre small", shape=(4, 8, 6))
    layers = [post, pre, other, small]
    assert same_grid_volumes(layers, post) == [pre, other]
    assert pre_contrast_of(layers, post) is pre
    assert pre_contrast_of(layers, pre) is None  # the pre-contrast phase has nothing to subtract
    sample = [_image("breast MRI pre"), _image("breast MRI")]
    assert pre_contrast_of(sample, sample[1]) is sample[0]
    # Two candidates, or none: the user chooses.
    assert pre_contrast_of([post, pre, _image("pre again")], post) is None
    assert pre_contrast_of([post, other], post) is None
    assert same_grid_volumes(layers, _image("slice", shape=(8, 8))) == []
