import pytest
import torch

from napari_avpt import bench


def test_model_speed_reports_a_ratio():
    r = bench.model_speed(repeats=2, batch=1, img_size=64)
    assert r["plain_vit_ms"] > 0 and r["avpt_ms"] > 0
    assert r["ratio"] == r["avpt_ms"] / r["plain_vit_ms"]


def test_prior_dice_covers_every_tissue_and_modality():
    r = bench.prior_dice(n=1)
    assert set(r) == {"MG", "US", "MR"}
    for scores in r.values():
        assert set(scores) == {"breast", "fatty", "glandular", "ductal"}
        assert all(0.0 <= v <= 1.0 for v in scores.values())
        assert scores["breast"] > 0.5


def test_quick_method_benchmark_covers_every_method(tmp_path):
    import json

    from napari_avpt.cli import main
    from napari_avpt.model import METHODS

    out, report = tmp_path / "bench.json", tmp_path / "bench.md"
    args = ["bench", "--part", "methods", "fewshot", "--quick", "--json", str(out), "--report", str(report)]
    assert main(args) == 0
    data = json.loads(out.read_text())
    rows = data["methods"]["rows"]
    assert {row["method"] for row in rows} == set(METHODS) | {"classical"}
    for row in rows:
        if row["method"] != "classical":
            assert 0.0 <= row["all"]["dice"] <= 1.0 and row["trainable"] > 0 and row["train_seconds"] > 0
    fewshot = data["fewshot"]["rows"]
    assert {(r["method"], next(m for m in ("MG", "US", "MR") if m in r)) for r in fewshot} == {
        (m, mod) for m in ("avpt", "vpt-deep", "linear", "full") for mod in ("MG", "US", "MR")
    }
    text = report.read_text()
    assert "| random | avpt |" in text and "## Phantoms: few-shot" in text
    assert data["run"]["command"] in text and data["run"]["date"]  # the run says how to measure it again


def test_methods_run_side_by_side_give_the_same_rows():
    sizes = {"methods": ["linear"], "modalities": ("US",), "seeds": (0,), "n_train": 3, "n_test": 2, "epochs": 1}
    one = bench.compare_methods(img_size=64, **sizes)
    two = bench.compare_methods(img_size=64, jobs=2, **sizes)
    assert [r["backbone"] for r in one] == [r["backbone"] for r in two] == ["random", "none"]
    # Same data, seeds and training; only the thread count differs (last-bit differences at most).
    assert one[0]["US"]["dice"] == pytest.approx(two[0]["US"]["dice"], abs=0.02)
    assert one[0]["US"]["accuracy"] == pytest.approx(two[0]["US"]["accuracy"], abs=0.01)


def test_whole_images_through_the_segmenter_are_scored_per_image(tmp_path):
    from napari_avpt.engine import backbone_meta, build_model
    from napari_avpt.engine.checkpoints import save_prompt_set
    from napari_avpt.model import ModelConfig

    model, sha = build_model(ModelConfig(method="avpt", img_size=64))
    with torch.no_grad():
        model.decoder.fuse[-1].bias.fill_(10.0)  # draws a lesion everywhere
    prompts = save_prompt_set(tmp_path / "p.safetensors", model, sha, backbone_meta(None, 0))
    r = bench.segmenter_dice(prompts, modalities=("US",), n=3)["US"]
    # phantoms in turn normal, benign, malignant: two with a lesion, one without
    assert r["n"] == 3 and r["with_lesion"] == 2
    assert r["clean"] == 0.0  # the lesion-free frame is covered
    assert 0.0 < r["dice"] < 0.5 and r["over_0.7"] == 0  # a whole-frame lesion overlaps but is far too big


def test_the_same_decoder_option_reaches_the_benchmarks_baseline_rows():
    sizes = {"methods": ["vpt-deep"], "modalities": ("MG", "US"), "seeds": (0,), "n_train": 3, "n_test": 2}
    own = bench.compare_methods(img_size=64, epochs=1, **sizes)
    same = bench.compare_methods(img_size=64, epochs=1, same_decoder=True, **sizes)
    # FiLM (48 per modality) and 4 more fuse units per extra modality: trained, so counted
    assert same[0]["trainable"] > own[0]["trainable"]
    assert 0.0 <= same[0]["all"]["dice"] <= 1.0


def test_a_benchmark_row_can_set_more_model_fields():
    """`task["config"]` (docs/experiments/anatomy_variants.py) reaches the model: one more global prompt
    per block is trained."""
    task = {
        "modalities": ("US",),
        "seed": 0,
        "n_train": 3,
        "n_test": 2,
        "epochs": 1,
        "img_size": 64,
        "tissue": "anatomy",
        "same_decoder": False,
        "backbone": "random",
        "weights": None,
        "method": "avpt",
    }
    plain = bench.methods._method_run(task)
    wider = bench.methods._method_run({**task, "config": {"global_prompts": 3}})
    assert wider["trainable"] - plain["trainable"] == 12 * 192  # one more global prompt per block
