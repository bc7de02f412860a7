import json

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from napari_avpt.cli import main
from napari_avpt.engine import backbone_meta, build_model
from napari_avpt.engine.checkpoints import save_prompt_set
from napari_avpt.engine.infer import Segmenter
from napari_avpt.engine.progress import Cancelled
from napari_avpt.errors import AvptError
from napari_avpt.model import ModelConfig
from napari_avpt.phantoms import make_breast_mri, make_mammogram, make_ultrasound
from napari_avpt.phantoms.formats import write_mammogram_dicom


@pytest.fixture(scope="module")
def segmenter():
    model, _ = build_model(ModelConfig(method="avpt", img_size=64))
    return Segmenter(model, "cpu")


def test_image_outputs_are_on_the_input_grid(segmenter):
    ph = make_mammogram(2, label="malignant", shape=(300, 244))
    seg = segmenter.segment_image(ph.image, "MG")
    assert seg.lesion_labels.shape == ph.image.shape and seg.lesion_probability.shape == ph.image.shape
    assert seg.tissue_maps.shape == (3, 300, 244)
    assert set(seg.attention) == {"glandular", "fatty", "ductal", "lesion"}
    assert all(a.shape == ph.image.shape for a in seg.attention.values())
    assert sum(seg.class_probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    # Priors live in the breast: the air beside it has no tissue.
    assert seg.tissue_labels()[ph.tissue == 0].mean() < 0.2


def test_large_image_is_processed_on_a_reduced_copy(segmenter):
    big = make_mammogram(1, label="benign", shape=(1500, 1250)).image
    seg = segmenter.segment_image(big, "MG")
    assert seg.lesion_probability.shape == big.shape and seg.tissue_maps.shape == (3, 1500, 1250)


def test_volume_inference_returns_the_volume_shape(segmenter):
    ph = make_breast_mri(1, label="malignant", shape=(10, 48, 56))
    done = []
    seg = segmenter.segment_volume(ph.image, "MR", batch_size=4, progress=lambda p: done.append((p.done, p.total)))
    assert seg.lesion_labels.shape == ph.image.shape and seg.tissue_maps.shape == (3, 10, 48, 56)
    assert done[-1] == (10, 10) and len(done) == 3
    along_cols = segmenter.segment_volume(np.moveaxis(ph.image, 0, 2), "MR", axis=2, batch_size=5)
    assert along_cols.lesion_labels.shape == (48, 56, 10)
    with pytest.raises(Cancelled):
        segmenter.segment_volume(ph.image, "MR", batch_size=2, cancel=lambda: True)
    with pytest.raises(AvptError, match="unknown modality"):
        segmenter.segment_volume(ph.image, "CT")


def test_lesions_narrower_than_the_minimum_in_mm_are_left_out(segmenter):
    keep_all = Segmenter(segmenter.model, "cpu", min_lesion_mm=0.0, weak_ratio=0.0)
    segmenter = Segmenter(segmenter.model, "cpu", min_lesion_mm=5.0, weak_ratio=0.0)
    prob = np.zeros((40, 40), np.float32)
    prob[5:8, 5:8] = 0.9  # 9 px of 0.5 mm: 2.25 mm², less than a 5 mm disc (19.6 mm²)
    prob[20:30, 20:30] = 0.7  # 100 px: 25 mm²
    labels = segmenter._instances(prob, 0.5, (0.5, 0.5), "US")
    assert labels.max() == 1 and labels[25, 25] == 1 and labels[6, 6] == 0
    assert segmenter._instances(prob, 0.5, None, "US").max() == 2  # pixel size unknown: only the 4-pixel floor
    assert segmenter._instances(prob, 0.8, None, "US").max() == 1  # the threshold applies first
    assert keep_all._instances(prob, 0.5, (0.5, 0.5), "US").max() == 2  # 0: no limit
    vol = np.zeros((10, 10, 10), np.float32)
    vol[1:3, 1:3, 1] = 0.9  # 4 voxels of 8 mm³: 32 mm³, less than a 5 mm ball (65 mm³)
    vol[5:8, 5:8, 5:8] = 0.9  # 27 voxels
    labels = segmenter._instances(vol, 0.5, (2.0, 2.0, 2.0), "MR")
    assert labels.max() == 1 and labels[6, 6, 6] == 1
    assert keep_all._instances(vol, 0.5, (2.0, 2.0, 2.0), "MR").max() == 2


def test_the_default_minimum_lesion_size_is_the_modalitys():
    model, _ = build_model(ModelConfig(method="avpt", img_size=64))
    default = Segmenter(model, "cpu", weak_ratio=0.0)  # sizes alone
    prob = np.zeros((60, 60), np.float32)
    prob[2:5, 2:5] = 0.9  # 9 px of 0.5 mm: 2.25 mm², under every modality's minimum
    prob[10:16, 10:16] = 0.9  # 36 px: 9 mm², over a 3 mm disc (7.1 mm²), under a 5 mm one (19.6 mm²)
    prob[30:40, 30:40] = 0.9  # 100 px: 25 mm²
    kept = {m: default._instances(prob, 0.5, (0.5, 0.5), m).max() for m in ("US", "MG", "MR")}
    assert kept == {"US": 2, "MG": 1, "MR": 1}
    assert default._instances(prob, 0.5, None, "MG").max() == 3  # no pixel size: no limit in mm


def test_regions_much_weaker_than_the_strongest_are_left_out(segmenter):
    # A faint background (mass 0.1 x 3,426 px = 343) sums more than any
    # region: it is not a region, and must not be taken for the strongest.
    prob = np.full((60, 60), 0.1, np.float32)
    prob[2:12, 2:12] = 0.9  # mass 90: the strongest
    prob[30:37, 30:37] = 0.95  # 49 px: mass 46.55, over half the strongest's
    prob[45:50, 45:50] = 0.8  # 25 px: mass 20, under a quarter of it
    one = np.where(prob > 0.5, 0.1, prob)
    one[2:12, 2:12] = 0.9
    assert segmenter.with_options(weak_ratio=1.0)._instances(one, 0.5, None, "US").max() == 1
    kept = {r: segmenter.with_options(weak_ratio=r)._instances(prob, 0.5, None, "US") for r in (0.0, 0.2, 0.5, 1.0)}
    assert {r: int(k.max()) for r, k in kept.items()} == {0.0: 3, 0.2: 3, 0.5: 2, 1.0: 1}
    assert kept[1.0][5, 5] == 1 and not kept[0.5][47, 47]
    # The default is the modality's: ultrasound drops under half the strongest, a mammogram keeps all.
    assert segmenter._instances(prob, 0.5, None, "US").max() == 2
    assert segmenter._instances(prob, 0.5, None, "MG").max() == 3
    # The strongest is chosen among the regions drawn: with the first one
    # outside the breast, the second is the strongest and the third is weak.
    inside = np.ones_like(prob, bool)
    inside[:20, :20] = False
    drawn = segmenter.with_options(weak_ratio=0.5)._instances(prob, 0.5, None, "MG", inside)
    assert drawn.max() == 1 and drawn[33, 33] == 1
    with pytest.raises(AvptError, match="between 0 and 1"):
        segmenter.with_options(weak_ratio=1.5)


def test_regions_that_never_reach_the_minimum_peak_are_left_out(segmenter):
    """`min_peak` (off by default): the threshold draws a region, its peak
    says whether it is kept. The peak is judged before the weak-region
    rule, so a strong but flat region does not make a real one look weak."""
    prob = np.zeros((60, 60), np.float32)
    prob[2:22, 2:22] = 0.7  # mass 280, peak 0.7: flat
    prob[35:45, 35:45] = 0.6
    prob[38:42, 38:42] = 0.99  # mass 65, peak 0.99: under half the flat one's mass
    assert segmenter.min_peak == 0.0
    by_mass = segmenter._instances(prob, 0.5, None, "US")  # by mass, the flat region wins
    assert by_mass.max() == 1 and by_mass[10, 10] == 1
    peaked = segmenter.with_options(min_peak=0.85)
    for modality in ("US", "MG"):
        drawn = peaked._instances(prob, 0.5, None, modality)
        assert drawn.max() == 1 and drawn[40, 40] == 1 and not drawn[10, 10]
    assert peaked.with_options(weak_ratio=0.0)._instances(prob, 0.8, None, "US").max() == 1
    # A peak at or under the threshold limits nothing.
    assert segmenter.with_options(min_peak=0.5, weak_ratio=0.0)._instances(prob, 0.5, None, "US").max() == 2
    seg = peaked.segment_image(np.random.default_rng(0).random((64, 64)).astype(np.float32), "US")
    assert seg.min_peak == 0.85 and segmenter.min_peak == 0.0
    with pytest.raises(AvptError, match="minimum peak must lie between 0 and 1"):
        segmenter.with_options(min_peak=1.5)


def test_options_for_one_run_leave_the_segmenter_as_it_was(segmenter):
    base = Segmenter(segmenter.model, "cpu", threshold={"US": 0.9})
    other = base.with_options(threshold=0.3, min_lesion_mm=4.0)
    assert other.model is base.model  # shared, not copied
    assert (other.threshold, other.min_lesion_mm) == (0.3, 4.0)
    assert (base.threshold, base.min_lesion_mm) == ({"US": 0.9}, None)  # None: each modality's default
    assert base.with_options().threshold == {"US": 0.9}
    with pytest.raises(AvptError, match="between 0 and 1"):
        base.with_options(threshold=1.5)


def test_a_prompt_sets_thresholds_are_used_and_checked(tmp_path):
    from napari_avpt.engine import load_model

    model, sha = build_model(ModelConfig(method="avpt", img_size=64))
    good = save_prompt_set(
        tmp_path / "good.safetensors", model, sha, {**backbone_meta(None, 0), "thresholds": {"MR": 0.9}}
    )
    assert load_model(good)[1]["thresholds"] == {"MR": 0.9}
    bad = save_prompt_set(tmp_path / "bad.safetensors", model, sha, {**backbone_meta(None, 0), "thresholds": {"MR": 7}})
    with pytest.raises(AvptError, match="unreadable lesion thresholds"):
        load_model(bad)
    old = save_prompt_set(tmp_path / "old.safetensors", model, sha, backbone_meta(None, 0))
    assert load_model(old)[1]["thresholds"] == {}  # files from before calibration: 0.5
    # the Segmenter cuts each modality at its own threshold, and says which
    segmenter = Segmenter(model, "cpu", threshold={"MR": 0.9, "US": 0.2})
    frame = np.random.default_rng(0).random((40, 48))
    assert segmenter.segment_image(frame, "US").threshold == 0.2
    assert segmenter.segment_image(frame, "MG").threshold == 0.5
    assert segmenter.segment_volume(np.stack([frame] * 3), "MR").threshold == 0.9


def test_bad_inputs_are_explained(segmenter):
    with pytest.raises(AvptError, match="colour"):
        segmenter.segment_image(np.zeros((20, 20, 3)), "US")
    with pytest.raises(AvptError, match="4D"):
        segmenter.segment_volume(np.zeros((2, 3, 20, 20)), "MR")
    with pytest.raises(AvptError, match="modality"):
        segmenter.segment_image(np.zeros((20, 20)), "CT")


def test_segment_command_writes_what_it_promises(tmp_path, capsys):
    model, sha = build_model(ModelConfig(method="avpt", img_size=64))
    prompts = save_prompt_set(tmp_path / "p.safetensors", model, sha, backbone_meta(None, 0))
    mg = make_mammogram(4, label="malignant", shape=(200, 160))
    dcm = tmp_path / "case.dcm"
    write_mammogram_dicom(mg, dcm, "P", "u")
    nii = tmp_path / "vol.nii.gz"
    from napari_avpt.io.nifti import write_nifti

    vol = make_breast_mri(2, label="benign", shape=(8, 40, 48))
    write_nifti(nii, vol.image, vol.spacing)
    out = tmp_path / "out"
    assert main(["segment", str(dcm), str(nii), "--prompts", str(prompts), "--out", str(out), "--device", "cpu"]) == 0
    for stem, ext in (("case", "png"), ("vol", "nii.gz")):
        for part in (
            "lesions",
            "tissue",
            "attention_glandular",
            "attention_fatty",
            "attention_ductal",
            "attention_lesion",
        ):
            suffix = "tif" if (ext == "png" and part.startswith("attention")) else ext
            assert (out / f"{stem}_{part}.{suffix}").exists(), f"{stem}_{part}.{suffix}"
        assert (out / f"{stem}_overlay.png").exists()
        report = json.loads((out / f"{stem}.json").read_text())
        assert set(report["class_probabilities"]) == {"normal", "benign", "malignant"}
        assert report["lesion_threshold"] == 0.5  # this prompt set carries no calibrated thresholds
    lesions = np.asarray(Image.open(out / "case_lesions.png"))
    assert lesions.shape == (200, 160)
    tissue_vol = nib.load(out / "vol_tissue.nii.gz")
    assert tissue_vol.shape == (48, 40, 8)  # NIfTI stores (col, row, slice)
    assert np.allclose(tissue_vol.header.get_zooms(), vol.spacing[::-1], atol=1e-4)
    assert "case.dcm: " in capsys.readouterr().out


def test_segment_without_prompts_and_without_shipped_weights(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NAPARI_AVPT_WEIGHTS", str(tmp_path / "no-weights-here"))
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(img)
    assert main(["segment", str(img), "--out", str(tmp_path / "o")]) == 2
    assert "--prompts" in capsys.readouterr().err


@pytest.mark.parametrize("factor, shape", [(2, (9, 7)), (5, (1100, 23)), (19, (300, 140))])
def test_banded_upsampling_equals_one_piece(factor, shape):
    import torch.nn.functional as F

    from napari_avpt.engine.work_grid import upsample

    rng = np.random.default_rng(factor)
    small = rng.random((shape[0] // factor, shape[1] // factor)).astype(np.float32)
    t = torch.from_numpy(small)[None, None]
    covered = (small.shape[0] * factor, small.shape[1] * factor)
    whole = F.interpolate(t, size=covered, mode="bilinear", align_corners=False)[0, 0].numpy()
    whole = np.pad(whole, ((0, shape[0] - covered[0]), (0, shape[1] - covered[1])), mode="edge")
    assert np.allclose(upsample(small, shape, factor), whole, atol=1e-6)
    assert upsample(small, shape, factor, np.float16).dtype == np.float16


def test_a_very_large_image_gets_compact_results_that_agree_with_full_ones(monkeypatch):
    from napari_avpt.engine import infer, load_model
    from napari_avpt.io.weights import default_prompts
    from napari_avpt.scoring.metrics import dice

    model, meta = load_model(default_prompts())
    segmenter = Segmenter(model, device="cpu", threshold=meta["thresholds"])
    from napari_avpt.widgets.samples import SAMPLE_SEEDS

    image = make_ultrasound(SAMPLE_SEEDS["US"], label="benign").image
    big = np.kron(image, np.ones((10, 10), image.dtype))  # over COMPACT_PIXELS
    assert big.size > infer.COMPACT_PIXELS
    compact = segmenter.segment_image(big, "US")
    assert compact.lesion_probability.dtype == np.float16 and compact.lesion_labels.dtype == np.uint8
    assert all(a.dtype == np.float16 for a in compact.attention.values())
    assert compact.lesion_labels.shape == big.shape
    monkeypatch.setattr(infer, "COMPACT_PIXELS", 10**12)
    full = segmenter.segment_image(big, "US")
    assert full.lesion_probability.dtype == np.float32
    assert np.abs(full.lesion_probability - compact.lesion_probability).max() < 2e-3
    drawn = full.lesion_labels > 0
    assert drawn.any()  # the shipped model finds this phantom's lesion
    assert dice(compact.lesion_labels > 0, drawn) > 0.97


def test_a_mammograms_lesions_must_lie_mostly_inside_the_breast(segmenter):
    """A region found on the pectoral muscle, a label or the film's edge is
    not a lesion: kept only when at least half of it is in the breast."""
    prob = np.zeros((100, 100), np.float32)
    prob[10:30, 10:30] = 0.9  # in the breast
    prob[60:80, 60:80] = 0.9  # a third in the breast
    prob[60:80, 10:30] = 0.9  # outside
    inside = np.zeros((100, 100), bool)
    inside[:, :50] = True
    inside[60:80, 60:67] = True
    inside[60:80, 10:30] = False
    labels = segmenter._instances(prob, 0.5, None, "MG", inside)
    assert labels.max() == 1 and labels[20, 20] == 1 and not labels[70, 70] and not labels[70, 20]
    assert segmenter._instances(prob, 0.5, None, "MG").max() == 3  # without a breast mask: all three


def test_ultrasound_is_read_with_its_mirror_image_averaged_in():
    """`FLIP_AVERAGE`: on ultrasound the lesion probability of a frame and
    of its mirror image are each other's mirror (each is the mean of both
    readings); without the flip they are not; mammograms are read once."""
    from napari_avpt.engine.infer import FLIP_AVERAGE

    model, _ = build_model(ModelConfig(method="avpt", img_size=64), seed=2)
    frame = make_ultrasound(6, label="malignant", shape=(128, 160)).image
    assert FLIP_AVERAGE == {"MG": False, "US": True, "MR": False}

    def mirrored_alike(seg):
        a = seg.segment_image(frame, "US").lesion_probability
        b = seg.segment_image(frame[:, ::-1].copy(), "US").lesion_probability
        return np.allclose(a, b[:, ::-1], atol=1e-4)

    assert mirrored_alike(Segmenter(model, "cpu"))
    assert not mirrored_alike(Segmenter(model, "cpu", flip_average=False))


def test_a_segmenter_for_a_prompt_set_reads_its_metadata_and_takes_options_over_it():
    from napari_avpt.engine import load_model
    from napari_avpt.io.weights import default_prompts

    model, meta = load_model(default_prompts())
    assert meta["zoom_look"] and meta["class_shape"] is not None  # the shipped set has both
    segmenter = Segmenter.for_set(model, meta, "cpu")
    assert segmenter.threshold == meta["thresholds"]
    assert segmenter.class_shape == meta["class_shape"] and segmenter.zoom_look == meta["zoom_look"]
    assert segmenter.weak_ratio is None and segmenter.min_lesion_mm is None
    chosen = Segmenter.for_set(model, meta, "cpu", threshold=0.3, weak_ratio=0.0, min_lesion_mm=None)
    assert chosen.threshold == 0.3 and chosen.weak_ratio == 0.0 and chosen.min_lesion_mm is None
    assert chosen.zoom_look == meta["zoom_look"]
