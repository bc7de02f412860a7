"""The real-data benchmark's scoring, run on files in the real layouts
(written from phantoms), and the export of a fine-tuned backbone."""

import numpy as np
import pytest
import torch

from napari_avpt.bench.real import score_dataset, summarize_scores
from napari_avpt.cli import main
from napari_avpt.engine import build_model, create_backbone, load_model
from napari_avpt.engine.checkpoints import export_backbone
from napari_avpt.engine.data import lesion_free_box, phantom_examples
from napari_avpt.engine.infer import Segmenter
from napari_avpt.engine.train import TrainConfig, train
from napari_avpt.errors import AvptError
from napari_avpt.io.datasets import open_dataset
from napari_avpt.io.weights import default_prompts
from napari_avpt.model import ModelConfig
from napari_avpt.phantoms.formats import write_dataset


class _Drawn:
    """A segmenter whose lesions are given: to check the scoring alone."""

    def __init__(self, drawn):
        self.drawn = drawn

    def segment_image(self, image, modality, window=None, spacing=None):
        from napari_avpt.engine.infer import Segmentation

        labels = self.drawn.pop(0)
        probs = {"normal": 0.2, "benign": 0.5, "malignant": 0.3}
        return Segmentation(labels, labels.astype(np.float32), probs, np.zeros((3, *labels.shape), np.float32))


def test_mias_scores_count_masses_found_false_lesions_and_clean_normals(tmp_path):
    out = write_dataset("mias", 3, seed=4, out=tmp_path / "mias", size=(160, 130))
    dataset = open_dataset(out)
    normal, benign, malignant = (dataset[i] for i in range(3))
    hit = np.zeros((160, 130), np.int32)
    rr, cc = np.nonzero(benign.lesion_mask)
    hit[rr[0], cc[0]] = 1  # one pixel inside the circle: found
    hit[0:3, 0:3] = 2  # far from every circle: a false lesion
    empty = np.zeros((160, 130), np.int32)
    wrong = np.zeros((160, 130), np.int32)
    wrong[0:3, 0:3] = 1  # the malignant mass missed, one false lesion
    result = score_dataset(_Drawn([empty, hit, wrong]), dataset)
    s = result["summary"]
    assert (s["masses"], s["masses_found"]) == (2, 0.5)
    assert s["false_lesions_per_image"] == pytest.approx(2 / 3)
    assert (s["normals"], s["normals_clean"]) == (1, 1.0)
    assert [r["masses_found"] for r in result["images"]] == [0, 1, 0]


def test_summary_auc_is_benign_against_malignant():
    rows = [
        {"label": "benign", "malignancy": 0.2, "predicted": "benign", "dice": 0.5, "iou": 0.3},
        {"label": "malignant", "malignancy": 0.9, "predicted": "malignant", "dice": 0.7, "iou": 0.5},
        {"label": "malignant", "malignancy": 0.1, "predicted": "benign", "dice": 0.9, "iou": 0.8},
    ]
    s = summarize_scores(rows)
    assert s["malignant_auc"] == pytest.approx(0.5) and s["dice"] == pytest.approx(0.7)
    assert s["class_accuracy"] == pytest.approx(2 / 3) and "masses" not in s


def test_the_summary_and_the_page_split_the_figures_by_scanner():
    from napari_avpt.bench.render import render

    rows = [
        {"label": "benign", "malignancy": 0.2, "predicted": "benign", "dice": 0.4, "iou": 0.25, "device": "A"},
        {"label": "malignant", "malignancy": 0.9, "predicted": "malignant", "dice": 0.8, "iou": 0.7, "device": "A"},
        {"label": "malignant", "malignancy": 0.1, "predicted": "benign", "dice": 0.6, "iou": 0.4, "device": "B"},
    ]
    rows[0]["band_clean"], rows[1]["band_clean"] = True, False  # the third frame's lesion left no band
    s = summarize_scores(rows)
    assert set(s["by_device"]) == {"A", "B"} and (s["bands"], s["bands_clean"]) == (2, 0.5)
    a = s["by_device"]["A"]
    assert a == {
        "n": 2,
        "dice": pytest.approx(0.6),
        "iou": pytest.approx(0.475),
        "malignant_auc": 1.0,
        "bands": 2,
        "bands_clean": 0.5,
    }
    assert s["by_device"]["B"]["n"] == 1 and s["by_device"]["B"]["malignant_auc"] is None  # one class only
    assert "by_device" not in summarize_scores(rows[:2])  # one scanner: nothing to split
    run = {"date": "2026-12-02", "command": "napari-avpt bench --part real", "prompts": "p.safetensors"}
    page = render([("real.json", {"real": {"BUSBRA:folds=1": {"summary": s}}, "run": run})])
    assert "BUS-BRA (fold 1) by scanner" in page
    assert "| A | 2 | 0.600 | 0.475 | 1.000 | 1 of 2 (50 %) |" in page and "| B | 1 | 0.600 | 0.400 | – | – |" in page
    assert "was left clean on 1 of 2 (50 %) frames" in page
    assert "lesion-free bands beside the lesions left clean 50 %." in page  # the headline too


def test_bench_real_scores_the_default_on_a_busbra_folder(tmp_path, capsys):
    out = write_dataset("busbra", 6, seed=8, out=tmp_path / "BUSBRA", size=(128, 160))
    assert main(["bench", "--part", "real", "--real-data", f"{out}:folds=1,2", "--json", str(tmp_path / "r.json")]) == 0
    printed = capsys.readouterr().out
    assert "lesion Dice" in printed and "AUC" in printed
    import json

    report = json.loads((tmp_path / "r.json").read_text())["real"][f"{out}:folds=1,2"]
    assert report["summary"]["n"] == 4 and len(report["images"]) == 4
    model, meta = load_model(default_prompts())
    segmenter = Segmenter.for_set(model, meta)  # as segment runs it
    direct = score_dataset(segmenter, open_dataset(out, folds={1, 2}))
    assert [r["dice"] for r in direct["images"]] == [r["dice"] for r in report["images"]]
    # Each frame's lesion-free band, where its lesion leaves one, is segmented too.
    frames = open_dataset(out, folds={1, 2})
    banded = [lesion_free_box(frames[i].lesion_target() > 0) is not None for i in range(len(frames))]
    assert ["band_clean" in r for r in report["images"]] == banded and any(banded)
    assert report["summary"]["bands"] == sum(banded)
    spec = f"{out}:folds=1,2:n=3"  # the first three frames only
    assert main(["bench", "--part", "real", "--quiet", "--real-data", spec, "--json", str(tmp_path / "n.json")]) == 0
    assert json.loads((tmp_path / "n.json").read_text())["real"][spec]["summary"]["n"] == 3


def test_the_benchmark_page_is_rendered_from_saved_runs(tmp_path, capsys):
    out = write_dataset("busbra", 10, seed=9, out=tmp_path / "BUSBRA", size=(128, 160))
    run = tmp_path / "real.json"
    assert main(["bench", "--part", "real", "--quiet", "--real-data", f"{out}:folds=1,2", "--json", str(run)]) == 0
    import json

    saved = json.loads(run.read_text())
    assert saved["run"]["command"].startswith("napari-avpt bench --part real") and saved["run"]["date"]
    page = tmp_path / "benchmarks.md"
    assert main(["bench", "--render", str(run), "--report", str(page)]) == 0
    text = page.read_text()
    dice = saved["real"][f"{out}:folds=1,2"]["summary"]["dice"]
    # the headline and the table carry the saved figure, and the run says how to measure it again
    assert f"lesion Dice {dice:.2f} (target ≥ 0.8)" in text and f"| {dice:.3f} |" in text
    assert saved["run"]["command"] in text and "## The runs" in text
    # the tuning dock's setting: from the default, tuned on the first images of other folds
    tuned = tmp_path / "tuning.json"
    args = ["bench", "--part", "real-tuning", "--quiet", "--train-data", f"{out}:folds=3,4,5", "--frames", "2"]
    assert main([*args, "--epochs", "1", "--real-data", f"{out}:folds=1,2", "--json", str(tuned)]) == 0
    rows = json.loads(tuned.read_text())["real_tuning"]["rows"]
    assert [r["frames"] for r in rows] == [0, 2] and rows[0]["dice"] == dice and rows[1]["seconds"] > 0
    assert main(["bench", "--render", str(run), str(tuned), "--report", str(page)]) == 0
    text = page.read_text()
    assert "## The tuning dock's setting on real images" in text and "Tuning on 2 real annotated images" in text
    # a file that is not a saved run is refused with one line, and the page is left as it was
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    capsys.readouterr()
    assert main(["bench", "--render", str(bad), "--report", str(page)]) == 2
    assert "not a saved benchmark run" in capsys.readouterr().err and page.read_text() == text


def test_a_full_fine_tuning_sets_backbone_exports_and_loads(tmp_path):
    size = 64
    model, sha = build_model(ModelConfig(method="full", img_size=size))
    examples = phantom_examples("US", 3, seed=3, size=size)
    cfg = TrainConfig(epochs=1, batch_size=3, lr_full=1e-3, augment=False, val_fraction=0.0)
    train(model, examples, cfg, out=tmp_path / "full.safetensors", backbone_sha256=sha, val_examples=examples[:1])
    best = load_model(tmp_path / "full.safetensors")[0]
    path = export_backbone(tmp_path / "full.safetensors", tmp_path / "vit.safetensors", recipe="test")
    vit = create_backbone("vit_tiny_patch16_224", size, weights=path)
    for k, v in best.vit.state_dict().items():
        assert torch.equal(vit.state_dict()[k], v), k
    fresh = create_backbone("vit_tiny_patch16_224", size)
    assert not torch.equal(fresh.state_dict()["blocks.0.attn.qkv.weight"], vit.state_dict()["blocks.0.attn.qkv.weight"])
    avpt, _ = build_model(ModelConfig(method="avpt", img_size=size))
    from napari_avpt.engine.checkpoints import save_prompt_set

    save_prompt_set(tmp_path / "avpt.safetensors", avpt, "x")
    with pytest.raises(AvptError, match="only a 'full' set"):
        export_backbone(tmp_path / "avpt.safetensors", tmp_path / "no.safetensors")
    assert main(["export-backbone", str(tmp_path / "full.safetensors"), "--out", str(path)]) == 2  # exists


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_bench_real_methods_trains_each_method_on_drawn_images(tmp_path, capsys, jobs):
    out = write_dataset("busbra", 12, seed=9, out=tmp_path / "BUSBRA", size=(96, 120))
    args = ["bench", "--part", "real-methods", "--train-data", f"{out}:folds=1,2,3", "--real-data", f"{out}:folds=4"]
    args += ["--n-train", "3", "--epochs", "1", "--seeds", "1", "--methods", "avpt", "linear", "--jobs", jobs]
    assert main([*args, "--json", str(tmp_path / "m.json")]) == 0
    import json

    rows = json.loads((tmp_path / "m.json").read_text())["real_methods"]["rows"]
    assert [r["method"] for r in rows] == ["avpt", "linear", "classical"]
    assert all(r["US"]["n"] == 2 for r in rows)  # the two frames of fold 4, no lesion-free crops
    assert rows[-1]["US"]["dice"] is not None and rows[-1]["seed"] is None
    assert "| avpt |" in capsys.readouterr().out.replace("pretrained", "").replace("  ", " ")


def test_real_sets_draw_whole_images_with_their_free_crops(tmp_path):
    from napari_avpt.bench.real import real_sets

    out = write_dataset("busbra", 12, seed=9, out=tmp_path / "BUSBRA", size=(96, 120))
    train, test = real_sets(f"{out}:folds=1,2,3", f"{out}:folds=4", 3, seed=0, size=64)
    groups = {e.group.removesuffix("#free") for e in train}
    assert len(groups) == 3 and all(not e.group.endswith("#free") for e in test)
    again, _ = real_sets(f"{out}:folds=1,2,3", f"{out}:folds=4", 3, seed=1, size=64)
    assert {e.group.removesuffix("#free") for e in again} != groups  # another seed, another draw


def test_a_new_avpt_set_adopts_a_full_sets_decoder(tmp_path):
    from napari_avpt.engine.checkpoints import adopt_decoder, save_prompt_set

    size = 64
    full, _ = build_model(ModelConfig(method="full", img_size=size), seed=1)
    with torch.no_grad():
        for p in full.decoder.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # a decoder unlike any fresh draw
    save_prompt_set(tmp_path / "full.safetensors", full, "x")
    avpt, _ = build_model(ModelConfig(method="avpt", img_size=size), seed=2)
    copied = adopt_decoder(avpt, tmp_path / "full.safetensors")
    assert "decoder.fuse.0.weight" in copied and "decoder.film.weight" not in copied
    taps = torch.randn(2, (size // 16) ** 2, full.decoder.lateral[0].in_channels * len(full.decoder.lateral))
    image = torch.randn(2, 3, size, size)
    with torch.no_grad():
        want = full.decoder(taps, (size // 16, size // 16), image)
        for code in range(3):  # every modality's own fuse units start as the shared one
            got = avpt.decoder(taps, (size // 16, size // 16), image, torch.full((2,), code))
            assert torch.allclose(got, want, atol=1e-5)
    from safetensors.torch import save_file

    save_file({"vit.w": torch.zeros(1)}, str(tmp_path / "vit_only.safetensors"))
    with pytest.raises(AvptError, match="holds no lesion decoder"):
        adopt_decoder(avpt, tmp_path / "vit_only.safetensors")


def test_the_benchmark_page_in_docs_is_the_render_of_its_saved_runs():
    """docs/benchmarks.md is written from docs/benchmarks/*.json, never by hand:
    rendering the runs its first line names gives it back to the byte."""
    import json
    import re
    from pathlib import Path

    from napari_avpt.bench.render import render

    docs = Path(__file__).parents[1] / "docs"
    page = (docs / "benchmarks.md").read_text()
    named = re.search(r"--render ((?:docs/benchmarks/[\w.-]+\.json ?)+)", page).group(1).split()
    runs = [(Path(n).name, json.loads((docs.parent / n).read_text())) for n in named]
    assert {Path(n).name for n in named} == {p.name for p in (docs / "benchmarks").glob("*.json")}
    assert render(runs) == page
