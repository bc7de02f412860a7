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
