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
    assert main(["bench", "--part", "methods", "--quick", "--json", str(out), "--report", str(report)]) == 0
    data = json.loads(out.read_text())["methods"]
    assert {row["method"] for row in data["rows"]} == set(METHODS) | {"classical"}
    for row in data["rows"]:
        if row["method"] != "classical":
            assert 0.0 <= row["all"]["dice"] <= 1.0 and row["trainable"] > 0
    text = report.read_text()
    assert "| random | avpt |" in text and report.with_suffix(".png").exists()
