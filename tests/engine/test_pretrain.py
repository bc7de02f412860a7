import numpy as np
import pytest
import torch

from napari_avpt.engine.backbones import create_backbone, state_sha256
from napari_avpt.engine.pretrain import PretrainConfig, phantom_pool, pretrain


def test_mae_pretraining_learns_and_saves_a_loadable_backbone(tmp_path):
    cfg = PretrainConfig(
        img_size=64,
        pool_mg=3,
        pool_us=3,
        pool_mr_volumes=1,
        mr_slices_per_volume=2,
        batch_size=8,
        minutes=10,
        max_epochs=25,
        lr=2e-3,
    )
    pool = phantom_pool(cfg)
    assert pool.shape == (8, 64, 64) and pool.dtype == torch.uint8
    losses = []
    out = tmp_path / "vit.safetensors"
    summary = pretrain(cfg, out, pool=pool, progress=lambda p: p.unit == "step" and losses.append(p.loss))
    assert summary["steps"] == 25 and out.exists() and out.with_suffix(".json").exists()
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    trained = create_backbone(img_size=64, weights=out)
    assert state_sha256(trained) != state_sha256(create_backbone(img_size=64))
    assert create_backbone(img_size=96, weights=out).pos_embed.shape == (1, 37, 192)  # resampled


def test_fixed_steps_give_the_same_backbone_twice(tmp_path):
    cfg = PretrainConfig(img_size=32, pool_mg=2, pool_us=2, pool_mr_volumes=1, mr_slices_per_volume=2, batch_size=4)
    cfg.steps = 3
    pool = phantom_pool(cfg)
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    assert pretrain(cfg, a, pool=pool)["steps"] == 3
    assert pretrain(cfg, b, pool=pool)["steps"] == 3
    assert state_sha256(create_backbone(img_size=32, weights=a)) == state_sha256(
        create_backbone(img_size=32, weights=b)
    )
    assert state_sha256(create_backbone(img_size=32, weights=a)) != state_sha256(create_backbone(img_size=32))


def test_cancel_keeps_the_encoder_so_far_and_says_so(tmp_path):
    from napari_avpt.engine.progress import Cancelled

    cfg = PretrainConfig(img_size=32, pool_mg=2, pool_us=2, pool_mr_volumes=1, mr_slices_per_volume=2, batch_size=4)
    cfg.steps = 50
    steps = []
    out = tmp_path / "vit.safetensors"
    with pytest.raises(Cancelled) as stopped:
        pretrain(
            cfg,
            out,
            pool=phantom_pool(cfg),
            progress=lambda p: p.unit == "step" and steps.append(p),
            cancel=lambda: len(steps) >= 2,
        )
    assert stopped.value.result["steps"] == 2 and out.exists()  # saved, loadable
    assert create_backbone(img_size=32, weights=out) is not None
