"""The layouts of the real public sets the default weights learn from
(BUS-BRA, mini-MIAS) and a generic images + masks folder, written by the
phantom writers in those exact layouts and read back."""

import numpy as np
import pytest
from PIL import Image

from napari_avpt.engine.data import folder_spec, parse_data_spec
from napari_avpt.engine.train import split_examples
from napari_avpt.errors import AvptError
from napari_avpt.io import read_path
from napari_avpt.io.datasets import BusBraDataset, ImageMaskFolder, MiasDataset, open_dataset
from napari_avpt.io.datasets.folds import fold_of
from napari_avpt.io.datasets.mias import parse_info
from napari_avpt.phantoms.formats import generate, write_dataset

US_SIZE, MG_SIZE = (96, 120), (160, 130)


def test_busbra_round_trip_with_patients_and_folds(tmp_path):
    out = write_dataset("busbra", 9, seed=3, out=tmp_path / "BUSBRA", size=US_SIZE)
    dataset = open_dataset(out)
    assert type(dataset) is BusBraDataset
    truth = [p for p in generate("busbra", 9, seed=3, size=US_SIZE) if p.label != "normal"]
    assert len(dataset) == len(truth) == 6
    for sample, phantom in zip(dataset, truth):
        assert np.array_equal(sample.image, phantom.image)
        assert np.array_equal(sample.lesion_mask > 0, phantom.lesion > 0)
        assert sample.label == phantom.label and sample.modality == "US"
        assert np.array_equal(sample.tissue, phantom.tissue)
    patients = [s.meta["patient"] for s in dataset]
    assert patients[0] == patients[1] != patients[2]  # two frames per case
    assert [s.meta["fold"] for s in dataset] == [1, 1, 2, 2, 3, 3]
    kept = open_dataset(out, folds={2, 3})
    assert [s.id for s in kept] == ["bus_0002-l", "bus_0002-r", "bus_0003-l", "bus_0003-r"]
    with pytest.raises(AvptError, match="no frames .* folds"):
        open_dataset(out, folds={5})


def test_busbra_missing_mask_is_named(tmp_path):
    out = write_dataset("busbra", 3, seed=3, out=tmp_path / "BUSBRA", size=US_SIZE)
    (out / "Masks" / "mask_0001-l.png").unlink()
    with pytest.raises(AvptError, match="mask_0001-l.png"):
        BusBraDataset(out)[0]


def test_mias_pgm_round_trip_circles_from_the_bottom_left(tmp_path):
    out = write_dataset("mias", 3, seed=4, out=tmp_path / "mias", size=MG_SIZE)
    assert sorted(p.name for p in out.glob("*.pgm")) == ["mdb001.pgm", "mdb002.pgm", "mdb003.pgm"]
    dataset = open_dataset(out)
    assert type(dataset) is MiasDataset
    truth = generate("mias", 3, seed=4, size=MG_SIZE)
    for sample, phantom in zip(dataset, truth):
        assert sample.label == phantom.label and sample.modality == "MG"
        assert sample.image.dtype == np.uint8 and sample.image.shape == MG_SIZE
        lesion = phantom.lesion > 0
        if phantom.label == "normal":
            assert not sample.lesion_mask.any()
        else:  # the circle encloses the lesion: only right with y counted from the bottom
            assert (sample.lesion_mask[lesion] > 0).mean() > 0.95
            assert sample.lesion_mask.sum() < 6 * lesion.sum()
    assert dataset[0].meta["patient"] == dataset[1].meta["patient"] != dataset[2].meta["patient"]


def test_mias_rows_calcifications_unplaced_masses_and_headers(tmp_path):
    out = write_dataset("mias", 3, seed=4, out=tmp_path / "mias", size=MG_SIZE)
    info = (out / "Info.txt").read_text().splitlines()
    # a header as in the release, a cluster of calcifications, a mass without a centre
    rows = ["MIAS MiniMammographic Database", "1st column: reference number", *info]
    rows += ["mdb001 F CALC M 40 50 12", "mdb003 F CIRC B"]
    (out / "Info.txt").write_text("\n".join(rows) + "\n")
    Image.open(out / "mdb001.pgm").save(out / "mdb001.png")  # png beside: the first found is read
    (out / "mdb001.pgm").unlink()
    dataset = MiasDataset(out)
    assert dataset.skipped == [("mdb003", "a mass without a centre in Info.txt")]
    first = dataset[0]
    assert first.label == "malignant"  # the calcification's severity counts
    assert [f["class"] for f in first.meta["findings"]] == ["CALC"]
    assert not first.lesion_mask.any()  # a cluster is not a mass: nothing painted
    assert parse_info(out / "Info.txt")["mdb002"]["tissue"] in ("fatty", "fatty-glandular", "dense-glandular")
    (out / "Info.txt").write_text("mdb001 F BLOB B 1 2 3\n")
    with pytest.raises(AvptError, match="unknown class 'BLOB'"):
        MiasDataset(out)


def test_pgm_opens_as_a_mammogram_and_mini_mias_names_get_their_pixel_size(tmp_path):
    pixels = (np.arange(64 * 48) % 251).astype(np.uint8).reshape(64, 48)
    Image.fromarray(pixels).save(tmp_path / "film.pgm")
    (image,) = read_path(tmp_path / "film.pgm")
    assert np.array_equal(image.data, pixels) and image.modality == "MG"
    assert not image.meta["spacing_known"]
    Image.fromarray(np.zeros((1024, 1024), np.uint8)).save(tmp_path / "mdb007.png")
    (mias,) = read_path(tmp_path / "mdb007.png")
    assert mias.modality == "MG" and mias.spacing == (0.2, 0.2) and mias.meta["spacing_known"]
    (mask,) = read_path(_write(tmp_path / "mask_0001-l.png", np.eye(8, dtype=np.uint8) * 255))
    assert mask.labels  # a BUS-BRA mask opens as labels


def _write(path, array):
    Image.fromarray(array).save(path)
    return path


def test_image_mask_folder_needs_its_modality_and_reads_labels(tmp_path):
    out = write_dataset("folder", 4, seed=5, out=tmp_path / "mine", size=US_SIZE)
    with pytest.raises(AvptError, match="--data US:"):
        open_dataset(out)
    dataset = open_dataset(out, modality="US")
    assert type(dataset) is ImageMaskFolder
    truth = generate("folder", 4, seed=5, size=US_SIZE)
    assert [s.label for s in dataset] == [p.label for p in truth]
    assert all(np.array_equal(s.lesion_mask > 0, p.lesion > 0) for s, p in zip(dataset, truth))
    assert dataset[0].meta["patient"] == dataset[1].meta["patient"] == "p1"
    # a mask named with a suffix, of the wrong size
    (out / "masks" / "case_001.png").unlink()
    _write(out / "masks" / "case_001_mask.png", np.zeros((10, 10), np.uint8))
    with pytest.raises(AvptError, match="case_001_mask.png is 10x10"):
        open_dataset(out, modality="US")[0]


def test_data_specs_name_modality_and_folds(tmp_path):
    assert folder_spec("US:/data/mine:folds=1,3:n=5") == (tmp_path.__class__("/data/mine"), "US", {1, 3}, 5)
    assert folder_spec("/data/BUSBRA") == (tmp_path.__class__("/data/BUSBRA"), None, None, None)
    with pytest.raises(AvptError, match="bad folds"):
        folder_spec("/data/BUSBRA:folds=one")
    with pytest.raises(AvptError, match="bad n"):
        folder_spec("/data/BUSBRA:folds=1:n=0")
    out = write_dataset("busbra", 6, seed=3, out=tmp_path / "BUSBRA", size=US_SIZE)
    examples = parse_data_spec(f"{out}:folds=2", 64, tissue="anatomy")
    groups = {_frame(e) for e in examples}
    assert groups == {"bus_0002-l", "bus_0002-r"} and {e.source for e in examples} == {"busbra-2"}
    three = parse_data_spec(f"{out}:folds=1,2:n=3", 64, tissue="anatomy")
    assert {_frame(e) for e in three} == {"bus_0001-l", "bus_0001-r", "bus_0002-l"}
    firsts = parse_data_spec(f"{out}:n=1", 64, tissue="anatomy")
    assert {_frame(e) for e in firsts} == {"bus_0001-l"}
    with pytest.raises(AvptError, match="not MG"):
        parse_data_spec(f"MG:{out}", 64)
    with pytest.raises(AvptError, match="no patient folds"):
        open_dataset(write_dataset("busi", 3, seed=1, out=tmp_path / "busi", size=US_SIZE), folds={1})


def _frame(example) -> str:
    """The frame an example's view comes from (its lesion-free or zoomed view too)."""
    return example.group.removesuffix("#free").removesuffix("#zoom")


def test_splits_keep_a_patient_on_one_side(tmp_path):
    out = write_dataset("busbra", 30, seed=6, out=tmp_path / "BUSBRA", size=US_SIZE)
    examples = parse_data_spec(str(out), 64, tissue="anatomy")
    train, val = split_examples(examples, 0.3, seed=0)
    assert val and train
    assert not {e.source for e in train} & {e.source for e in val}
    assert {e.group for e in train} | {e.group for e in val} == {e.group for e in examples}


def test_folds_depend_on_the_patient_alone():
    assert fold_of("mias-12") == fold_of("mias-12") and 1 <= fold_of("mias-12") <= 5
    counts = np.bincount([fold_of(f"p{i}") for i in range(1000)], minlength=6)[1:]
    assert counts.min() > 150  # about a fifth each


def test_lesion_free_views_of_ultrasound_frames_keep_away_from_the_lesion():
    from napari_avpt.engine.data import CLASS_NAMES, lesion_free_box, sample_examples
    from napari_avpt.io.datasets import Sample

    lesion = np.zeros((100, 160), np.uint8)
    lesion[30:60, 10:50] = 1
    r0, r1, c0, c1 = lesion_free_box(lesion)
    assert (r0, r1, c0, c1) == (0, 100, 66, 160)  # right of the lesion, 16 px (10 %) away
    assert lesion_free_box(np.ones((100, 160))) is None and lesion_free_box(np.zeros((9, 9))) is None
    image = (np.random.default_rng(0).random((100, 160)) * 200).astype(np.uint8)
    sample = Sample("f", image, (1.0, 1.0), "US", "malignant", lesion_mask=lesion, meta={"patient": "p"})
    full, zoom, free = sample_examples(sample, 64, tissue="anatomy")
    assert zoom.id == "f#zoom" and zoom.lesion.mean() > full.lesion.mean()
    assert CLASS_NAMES[full.label] == "malignant" and full.lesion.any()
    assert CLASS_NAMES[free.label] == "normal" and not free.lesion.any() and free.fit.box == (0, 100, 66, 160)
    assert free.source == full.source == "p"
