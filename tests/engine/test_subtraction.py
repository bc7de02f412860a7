"""Contrast MRI with its pre-contrast phase: the model sees the subtraction
(post - pre), in training, in the Segmenter and on the command line."""

import json

import numpy as np
import pytest
import torch

from napari_avpt.cli import main
from napari_avpt.engine import backbone_meta, build_model
from napari_avpt.engine.checkpoints import save_prompt_set
from napari_avpt.engine.data import phantom_examples, volume_examples
from napari_avpt.engine.infer import Segmenter
from napari_avpt.engine.preprocess import normalize, subtraction
from napari_avpt.errors import AvptError
from napari_avpt.io.nifti import write_nifti
from napari_avpt.model import ModelConfig
from napari_avpt.phantoms import make_breast_mri

SIZE = 64


def test_subtraction_shows_enhancement_not_brightness():
    rng = np.random.default_rng(0)
    pre = rng.normal(300, 10, (6, 40, 40)).clip(0)
    pre[:, 5:15, 5:15] = 900  # bright before contrast, does not enhance
    post = pre + rng.normal(0, 10, pre.shape)
    post[:, 25:35, 25:35] += 600  # enhances
    sub = subtraction(post, pre)
    assert sub.min() >= 0 and sub.max() <= 1
    # Scaled on the pre-contrast volume's bright tissue (900): +600 is 2/3.
    assert sub[:, 27:33, 27:33].mean() == pytest.approx(600 / 900, abs=0.05)
    assert sub[:, 7:13, 7:13].mean() < 0.05  # brightest on the post image, dark on the subtraction
    assert normalize(post, "MR")[:, 7:13, 7:13].mean() > 0.9
    with pytest.raises(AvptError, match="must match"):
        subtraction(post, pre[:5])


def test_volume_examples_see_the_subtraction_or_the_plain_volume():
    ph = make_breast_mri(5, label="malignant", shape=(24, 64, 72))
    pre = ph.phases["pre"]
    kw = {"example_id": "mr", "rng": np.random.default_rng(1)}
    plain = volume_examples(ph.image, "MR", SIZE, "malignant", ph.lesion, **kw)
    kw["rng"] = np.random.default_rng(1)
    sub = volume_examples(ph.image, "MR", SIZE, "malignant", ph.lesion, pre=pre, **kw)
    assert [e.group for e in plain] == [e.group[:-1] for e in sub]  # the same slices, marked "s"
    lesion = [(p, s) for p, s in zip(plain, sub) if p.lesion.any()]
    assert lesion
    for p, s in lesion:
        # Anatomy and crop come from the volume itself either way; the image differs.
        assert torch_equal(p.tissue, s.tissue) and p.fit.box == s.fit.box
        assert not torch_equal(p.image, s.image)
        # On the post image the lesion is as bright as the brightest 1 % of
        # the rest (glands); on the subtraction it is several times brighter.
        m = s.lesion[0] > 0
        assert _contrast(p, m) < 1.5 < 2.5 < _contrast(s, m)
    half = volume_examples(ph.image, "MR", SIZE, "malignant", ph.lesion, pre=pre, plain_share=0.5, example_id="mr")
    forms = {e.group.endswith("s") for e in half}
    assert forms == {True, False}


def test_mri_phantom_examples_mix_subtraction_and_plain_slices():
    examples = phantom_examples("MR", 2, seed=3, size=SIZE)
    subtracted = [e.group.endswith("s") for e in examples]
    assert any(subtracted) and not all(subtracted)


def _contrast(example, mask) -> float:
    image = example.image[0]
    return float(image[mask].mean() / torch.quantile(image[~mask], 0.99))


def torch_equal(a, b) -> bool:
    return bool((a == b).all())


@pytest.fixture(scope="module")
def segmenter():
    model, _ = build_model(ModelConfig(method="avpt", img_size=SIZE))
    return Segmenter(model, "cpu")


def test_segment_volume_with_its_pre_contrast_phase(segmenter):
    ph = make_breast_mri(2, label="malignant", shape=(8, 48, 56))
    pre = ph.phases["pre"]
    plain = segmenter.segment_volume(ph.image, "MR")
    sub = segmenter.segment_volume(ph.image, "MR", pre=pre)
    assert sub.subtraction and not plain.subtraction
    assert sub.lesion_labels.shape == ph.image.shape
    assert not np.allclose(sub.lesion_probability, plain.lesion_probability)
    np.testing.assert_array_equal(sub.tissue_maps, plain.tissue_maps)  # anatomy from the volume
    moved = segmenter.segment_volume(np.moveaxis(ph.image, 0, 2), "MR", axis=2, pre=np.moveaxis(pre, 0, 2))
    np.testing.assert_allclose(np.moveaxis(moved.lesion_probability, 2, 0), sub.lesion_probability, atol=1e-5)
    with pytest.raises(AvptError, match="must match"):
        segmenter.segment_volume(ph.image, "MR", pre=pre[:, :-1])
    with pytest.raises(AvptError, match="4D"):
        segmenter.segment_volume(ph.image, "MR", pre=np.stack([pre, pre]))


def test_segment_command_takes_a_pre_contrast_volume(tmp_path, capsys):
    model, sha = build_model(ModelConfig(method="avpt", img_size=SIZE))
    prompts = save_prompt_set(tmp_path / "p.safetensors", model, sha, backbone_meta(None, 0))
    ph = make_breast_mri(2, label="benign", shape=(8, 40, 48))
    post, pre = tmp_path / "post.nii.gz", tmp_path / "pre.nii.gz"
    write_nifti(post, ph.image, ph.spacing)
    write_nifti(pre, ph.phases["pre"], ph.spacing)
    args = ["segment", str(post), "--prompts", str(prompts), "--device", "cpu"]
    assert main([*args, "--pre", str(pre), "--out", str(tmp_path / "sub")]) == 0
    assert json.loads((tmp_path / "sub" / "post.json").read_text())["model_input"] == "subtraction"
    assert "(subtraction of 'pre')" in capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    assert json.loads((tmp_path / "plain" / "post.json").read_text())["model_input"] == "image"
    # A pre-contrast volume on another grid is refused before anything is written.
    other = tmp_path / "other.nii.gz"
    write_nifti(other, ph.phases["pre"][:, :-2], ph.spacing)
    assert main([*args, "--pre", str(other), "--out", str(tmp_path / "bad")]) == 2
    assert "--pre" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "post.json").exists()


def test_painted_volumes_with_their_pre_contrast_phase_are_taught_on_the_subtraction():
    from napari_avpt.engine.data import pair_examples

    ph = make_breast_mri(5, label="malignant", shape=(24, 64, 72))
    pairs = [("post", ph.image, ph.lesion, "malignant", "MR"), ("alone", ph.image, ph.lesion, "malignant", "MR")]
    examples = pair_examples(pairs, SIZE, pre={"post": ph.phases["pre"]})
    forms = {(e.source, e.group.endswith("s")) for e in examples}
    assert forms == {("post", True), ("post", False), ("alone", False)}


def test_segment_command_finds_a_study_folders_pre_contrast_series(tmp_path, capsys):
    from napari_avpt.phantoms.formats import write_duke_patient

    model, sha = build_model(ModelConfig(method="avpt", img_size=SIZE))
    prompts = save_prompt_set(tmp_path / "p.safetensors", model, sha, backbone_meta(None, 0))
    ph = make_breast_mri(3, label="malignant", shape=(6, 32, 40))
    folder = tmp_path / "Breast_MRI_001"
    write_duke_patient(ph, folder, "Breast_MRI_001", "u")
    args = ["segment", str(folder), "--prompts", str(prompts), "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    inputs = {p.stem: json.loads(p.read_text())["model_input"] for p in (tmp_path / "out").glob("*.json")}
    assert len(inputs) == 5  # every series, the pre-contrast one too (on its own)
    assert sorted(inputs.values()).count("subtraction") == 4
    assert "subtraction of 'ax dyn pre'" in capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "alone"), "--no-pre"]) == 0
    alone = {json.loads(p.read_text())["model_input"] for p in (tmp_path / "alone").glob("*.json")}
    assert alone == {"image"}
