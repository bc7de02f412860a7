import numpy as np
import pytest
from PIL import Image

from napari_avpt.errors import AvptError
from napari_avpt.io import read_path
from napari_avpt.io.raster import read_raster


def test_png_with_resolution_gives_spacing(tmp_path, small_ultrasound):
    path = tmp_path / "frame.png"
    Image.fromarray(np.stack([small_ultrasound.image] * 3, -1)).save(path, dpi=(254, 254))
    image = read_raster(path)
    assert not image.rgb and np.array_equal(image.data, small_ultrasound.image)
    assert image.spacing == pytest.approx((0.1, 0.1), rel=1e-3) and image.meta["spacing_known"]
    assert image.modality == "US"


def test_png_without_resolution_has_unit_spacing(tmp_path):
    path = tmp_path / "plain.jpg"
    Image.fromarray(np.full((20, 30), 128, np.uint8)).save(path)
    image = read_raster(path)
    assert image.spacing == (1.0, 1.0) and not image.meta["spacing_known"]


def test_busi_mask_opens_as_labels(tmp_path):
    mask = np.zeros((20, 30, 4), np.uint8)
    mask[5:10, 5:12, :3] = 255
    mask[..., 3] = 255
    path = tmp_path / "benign (3)_mask_1.png"
    Image.fromarray(mask).save(path)
    (image,) = read_path(path)
    assert image.labels and image.data.dtype == np.uint8
    assert image.data.sum() == 5 * 7 and image.layer_data()[2] == "labels"


def test_colour_png_stays_rgb(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (8, 9, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "doppler.png")
    image = read_raster(tmp_path / "doppler.png")
    assert image.rgb and image.data.shape == (8, 9, 3)


def test_truncated_png(tmp_path):
    path = tmp_path / "broken.png"
    Image.fromarray(np.zeros((50, 50), np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(AvptError, match=r"broken\.png: not a readable image"):
        read_path(path)


def test_pngs_from_other_software():
    """scikit-image's sample PNGs: gray, colour and 1-bit."""
    from pathlib import Path

    import skimage

    data = Path(skimage.__file__).parent / "data"
    camera = read_raster(data / "camera.png")
    assert camera.data.shape == (512, 512) and not camera.rgb
    astronaut = read_raster(data / "astronaut.png")
    assert astronaut.rgb and astronaut.data.shape == (512, 512, 3)
    horse = read_raster(data / "horse.png")
    assert horse.data.ndim == 2 and horse.data.dtype == np.uint8
