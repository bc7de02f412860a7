"""The linear-probe gate on frozen features."""

from safetensors.torch import save_file

from napari_avpt.engine.backbones import create_backbone
from napari_avpt.engine.data import phantom_examples
from napari_avpt.scoring.probe import linear_probe, probe_gate


def test_probe_finds_ultrasound_lesions_in_frozen_features():
    vit = create_backbone("vit_tiny_patch16_224", 96, seed=0)
    train = phantom_examples("US", 9, 1000, 96)
    test = phantom_examples("US", 6, 90_001, 96)
    r = linear_probe(vit, train, test)
    assert r["n_train"] == 9 and r["n_test"] == 6
    # Large, dark ultrasound masses: even random frozen features separate them.
    assert r["lesion_patch_auc"] > 0.7
    assert 0.0 <= r["class_auc"] <= 1.0 and 0.0 <= r["class_accuracy"] <= 1.0


def test_probe_gate_compares_pretrained_and_random(tmp_path):
    weights = tmp_path / "other.safetensors"
    vit = create_backbone("vit_tiny_patch16_224", 64, seed=7)
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(weights))
    r = probe_gate(weights, n_train=4, n_test=4, img_size=64)
    assert set(r) == {"pretrained", "random"}
    for per in r.values():
        assert set(per) == {"all", "MG", "US", "MR"}
    # Different backbones give different features, hence different probes.
    assert r["pretrained"]["all"]["class_auc"] != r["random"]["all"]["class_auc"] or (
        r["pretrained"]["all"]["lesion_patch_auc"] != r["random"]["all"]["lesion_patch_auc"]
    )
