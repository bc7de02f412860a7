import plistlib

import numpy as np
import pytest
from PIL import Image

from napari_avpt.errors import AvptError
from napari_avpt.io.datasets import BusiDataset, DukeDataset, InbreastDataset, open_dataset
from napari_avpt.io.datasets.inbreast import birads_to_class
from napari_avpt.phantoms.formats import generate, write_dataset

SIZES = {"inbreast": (160, 130), "busi": (128, 160), "duke": (20, 64, 72)}


@pytest.mark.parametrize("fmt", ["inbreast", "busi", "duke"])
def test_phantom_dataset_round_trip(tmp_path, fmt):
    n = 3 if fmt != "duke" else 2
    out = write_dataset(fmt, n, seed=1, out=tmp_path / fmt, size=SIZES[fmt])
    dataset = open_dataset(out)
    assert type(dataset) is {"inbreast": InbreastDataset, "busi": BusiDataset, "duke": DukeDataset}[fmt]
    truth = generate(fmt, n, seed=1, size=SIZES[fmt])
    assert len(dataset) == n
    by_class = sorted(truth, key=lambda p: ("normal", "benign", "malignant").index(p.label))
    expected = truth if fmt != "busi" else by_class  # BUSI lists class folders in order
    for sample, phantom in zip(dataset, expected):
        assert sample.label == phantom.label
        assert np.array_equal(sample.image, phantom.image)
        assert sample.spacing == pytest.approx(phantom.spacing, rel=1e-6)
        assert np.array_equal(sample.tissue, phantom.tissue)
        target = sample.lesion_target().astype(bool)
        lesion = phantom.lesion > 0
        if lesion.any():
            dice = 2 * (target & lesion).sum() / (target.sum() + lesion.sum())
            assert dice > (0.98 if fmt != "duke" else 0.99), dice
        else:
            assert not target.any()
    if fmt == "duke":
        sample = dataset[0]
        # The box is the lesion's bounding box (1-based inclusive on disk).
        z, r, c = np.nonzero(truth[0].lesion)
        assert sample.lesion_boxes == [((z.min(), z.max() + 1), (r.min(), r.max() + 1), (c.min(), c.max() + 1))]
        assert sample.meta["available_phases"] == ["pre", "post_1", "post_2", "post_3", "post_4"]


def test_inbreast_rois_and_birads(tmp_path):
    out = write_dataset("inbreast", 3, seed=2, out=tmp_path / "ib", size=SIZES["inbreast"])
    xml = next((out / "AllXML").glob("*.xml"))
    rois = plistlib.loads(xml.read_bytes())["Images"][0]["ROIs"]
    rois.append({"Name": "Calcification", "NumberOfPoints": 1, "Point_px": ["(12.5, 30.25)"]})
    xml.write_bytes(plistlib.dumps({"Images": [{"ImageIndex": 0, "NumberOfROIs": len(rois), "ROIs": rois}]}))
    dataset = InbreastDataset(out)
    sample = next(s for s in dataset if s.id == xml.stem)
    assert {"name": "Calcification", "points": [(30.25, 12.5)]} in sample.meta["points"]
    assert sample.lesion_mask.any()
    assert [birads_to_class(b) for b in ("1", "2", "3", "4a", "4C", "5", "6")] == [
        "normal",
        "benign",
        "benign",
        "malignant",
        "malignant",
        "malignant",
        "malignant",
    ]
    with pytest.raises(AvptError):
        birads_to_class("0")


def test_busi_masks_are_or_merged_whatever_their_mode(tmp_path):
    folder = tmp_path / "Dataset_BUSI_with_GT" / "malignant"
    folder.mkdir(parents=True)
    image = np.random.default_rng(0).integers(0, 255, (30, 40), dtype=np.uint8)
    Image.fromarray(np.stack([image] * 3, -1)).save(folder / "malignant (1).png")
    m1 = np.zeros((30, 40), np.uint8)
    m1[2:6, 2:6] = 255
    m2 = np.zeros((30, 40, 4), np.uint8)
    m2[20:25, 30:35] = (255, 255, 255, 255)
    Image.fromarray(m1).save(folder / "malignant (1)_mask.png")
    Image.fromarray(m2).save(folder / "malignant (1)_mask_1.png")
    Image.fromarray(image).save(folder / "malignant (10).png")  # (10) must not take (1)'s masks
    dataset = open_dataset(tmp_path)  # finds the dataset folder inside
    assert [s.id for s in dataset] == ["malignant/malignant (1)", "malignant/malignant (10)"]
    first, tenth = dataset[0], dataset[1]
    assert np.array_equal(first.image, image)
    assert first.lesion_mask.sum() == 16 + 25
    assert tenth.lesion_mask.sum() == 0
    assert first.spacing == (1.0, 1.0) and not first.meta["spacing_known"]


def test_busi_mask_of_wrong_size(tmp_path):
    folder = tmp_path / "benign"
    folder.mkdir()
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(folder / "benign (1).png")
    Image.fromarray(np.zeros((12, 10), np.uint8)).save(folder / "benign (1)_mask.png")
    with pytest.raises(AvptError, match="mask.png is 10x12 but its image is 10x10"):
        BusiDataset(tmp_path)[0]


def test_unknown_layouts_are_refused(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(AvptError, match="not a dataset folder .INbreast, BUSI, Duke, BUS-BRA, mini-MIAS"):
        open_dataset(tmp_path)
    with pytest.raises(AvptError, match="not an INbreast folder"):
        InbreastDataset(tmp_path)
    with pytest.raises(AvptError, match="not a Duke folder"):
        DukeDataset(tmp_path)
    (tmp_path / "Annotation_Boxes.xlsx").write_bytes(b"not a workbook")
    with pytest.raises(AvptError, match="not an Excel workbook"):
        DukeDataset(tmp_path)
