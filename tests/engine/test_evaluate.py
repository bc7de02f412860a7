import numpy as np
import pytest
import torch

from napari_avpt.engine.data import Example
from napari_avpt.engine.evaluate import CANDIDATES, calibrate_thresholds, global_dice, summarize, threshold_for

S = 48


def _halo_examples(n: int, modality: int = 1):
    """n images with a disc lesion, and the probabilities of an
    over-confident model: 1 inside, 0.8 on a 3-pixel ring around it."""
    yy, xx = np.mgrid[:S, :S]
    examples, probs = [], []
    for i in range(n):
        r = 5 + i
        d = np.hypot(yy - 24, xx - 20 - i)
        lesion = (d <= r).astype(np.float32)
        prob = np.where(d <= r, 1.0, np.where(d <= r + 3, 0.8, 0.05)).astype(np.float32)
        examples.append(
            Example(
                image=torch.zeros(1, S, S),
                tissue=torch.zeros(3, S, S),
                lesion=torch.from_numpy(lesion)[None],
                label=1,
                modality=modality,
                id=f"{modality}-{i}",
            )
        )
        probs.append(prob)
    return examples, np.stack(probs), np.tile([[0.2, 0.6, 0.2]], (n, 1))


def test_calibration_finds_the_threshold_above_the_halo():
    examples, lesion_prob, class_prob = _halo_examples(4)
    assert summarize(examples, lesion_prob, class_prob)["dice"] < 0.8  # the halo costs Dice at 0.5
    thresholds = calibrate_thresholds(examples, lesion_prob)
    assert thresholds == {"US": 0.8}  # the lowest threshold that drops the ring (prob > t)
    assert summarize(examples, lesion_prob, class_prob, thresholds)["dice"] == pytest.approx(1.0)


def test_calibration_keeps_one_half_on_too_few_images_and_per_modality():
    few, lesion_prob, _ = _halo_examples(2)
    assert calibrate_thresholds(few, lesion_prob) == {"US": 0.5}
    mg, mg_prob, _ = _halo_examples(3, modality=0)
    good = mg_prob.copy()
    good[good == 0.8] = 0.05  # a calibrated model: nothing to correct
    us, us_prob, _ = _halo_examples(3)
    thresholds = calibrate_thresholds(mg + us, np.concatenate([good, us_prob]))
    assert thresholds == {"MG": 0.5, "US": 0.8}
    assert set(CANDIDATES) >= {0.05, 0.1, 0.15, 0.3, 0.5, 0.8, 0.95}


def test_calibration_reaches_down_to_an_under_confident_model():
    """Early in training a small lesion's probability rises to about 0.1,
    the background stays near 0.02: the calibrated threshold goes down to
    it instead of keeping 0.5 and drawing nothing."""
    examples, lesion_prob, class_prob = _halo_examples(4)
    shy = np.where(lesion_prob == 1.0, 0.12, 0.02).astype(np.float32)
    assert summarize(examples, shy, class_prob)["dice"] == 0.0
    thresholds = calibrate_thresholds(examples, shy)
    assert thresholds == {"US": 0.1}  # the candidate closest to 0.5 that keeps the lesion
    assert summarize(examples, shy, class_prob, thresholds)["dice"] == pytest.approx(1.0)


def test_calibration_and_metrics_count_lesions_drawn_on_lesion_free_images():
    examples, lesion_prob, class_prob = _halo_examples(4)
    free, free_prob, free_class = _halo_examples(4)
    for i, e in enumerate(free):
        e.lesion.zero_()
        e.id = f"free-{i}"
    free_prob = np.where(free_prob == 1.0, 0.9, free_prob)  # a confident false lesion, and its halo
    all_examples = examples + free
    probs = np.concatenate([lesion_prob, free_prob])
    m = summarize(all_examples, probs, np.concatenate([class_prob, free_class]), 0.5)
    assert m["clean"] == 0.0 and m["per_modality"]["US"]["clean"] == 0.0 and m["global_dice"] < 0.6
    # 0.8 is enough for the halo (Dice alone would stop there) but still draws the false lesions
    assert calibrate_thresholds(all_examples, probs) == {"US": 0.9}
    free_prob = np.where(free_prob == 0.9, 0.85, free_prob)
    probs = np.concatenate([lesion_prob, free_prob])
    assert calibrate_thresholds(all_examples, probs) == {"US": 0.85}  # the lowest that does both
    m = summarize(all_examples, probs, np.concatenate([class_prob, free_class]), {"US": 0.85})
    assert m["dice"] == pytest.approx(1.0) and m["clean"] == 1.0 and m["global_dice"] == pytest.approx(1.0)


def test_global_dice_counts_false_lesions_by_area_and_empty_predictions_as_zero():
    lesion = np.zeros((10, 10), bool)
    lesion[2:4, 2:4] = True
    empty = np.zeros((10, 10), bool)
    assert global_dice([(lesion, lesion), (empty, empty)]) == 1.0
    assert global_dice([(empty, lesion), (empty, empty)]) == 0.0  # drawing nothing is not rewarded
    speck, blob = empty.copy(), empty.copy()
    speck[0, 0] = True
    blob[5:9, 5:9] = True
    assert global_dice([(lesion, lesion), (speck, empty)]) > global_dice([(lesion, lesion), (blob, empty)])
    assert global_dice([(empty, empty)]) is None


def test_threshold_for_a_number_a_mapping_or_nothing():
    assert threshold_for(None, "MG") == 0.5
    assert threshold_for(0.7, "MR") == 0.7
    assert threshold_for({"MR": 0.9}, "MR") == 0.9 and threshold_for({"MR": 0.9}, "US") == 0.5


def test_calibrate_command_rewrites_only_the_thresholds(tmp_path, capsys):
    from napari_avpt.cli import main
    from napari_avpt.engine import backbone_meta, build_model, load_model
    from napari_avpt.engine.checkpoints import read_metadata, save_prompt_set
    from napari_avpt.model import ModelConfig

    model, sha = build_model(ModelConfig(method="avpt", img_size=64))
    source = save_prompt_set(
        tmp_path / "p.safetensors", model, sha, {**backbone_meta(None, 0), "thresholds": {"US": 0.9, "MG": 0.7}}
    )
    before = source.read_bytes()
    out = tmp_path / "calibrated.safetensors"
    args = ["calibrate", "--prompts", str(source), "--data", "phantoms:US:6:5", "--out", str(out), "--device", "cpu"]
    assert main(args) == 0
    assert source.read_bytes() == before  # the source is left alone
    meta = read_metadata(out)
    # An untrained set draws nothing at any threshold: a tie, so 0.5; MG was not in the data and keeps its own.
    assert meta["thresholds"] == {"US": 0.5, "MG": 0.7}
    assert "phantoms:US:6:5" in meta["calibration"]
    calibrated, _ = load_model(out)
    for (name, a), b in zip(model.state_dict().items(), calibrated.state_dict().values()):
        assert torch.equal(a, b), name
    assert "0.90" in capsys.readouterr().out  # the old threshold is shown beside the new
