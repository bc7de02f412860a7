import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_avpt.engine import build_model, load_model
from napari_avpt.engine.checkpoints import load_prompt_set, model_config_from, read_metadata, save_prompt_set
from napari_avpt.engine.data import make_examples, phantom_examples
from napari_avpt.engine.evaluate import CANDIDATES
from napari_avpt.engine.lesion_choice import REGION_FEATURES
from napari_avpt.engine.lesion_class import ShapeFit
from napari_avpt.engine.progress import Cancelled
from napari_avpt.engine.train import TrainConfig, _score, parameter_groups, split_examples, train
from napari_avpt.errors import AvptError
from napari_avpt.model import METHODS, ModelConfig

SIZE = 64


@pytest.fixture(scope="module")
def examples():
    return phantom_examples("US", 6, seed=3, size=SIZE) + phantom_examples("MG", 6, seed=3, size=SIZE)


def _step_losses(model, examples, **cfg):
    losses = []
    config = TrainConfig(augment=False, val_fraction=0.0, **cfg)
    result = train(
        model,
        examples,
        config,
        val_examples=examples[:2],
        progress=lambda p: losses.append(p.loss) if p.unit == "step" else None,
    )
    return losses, result


@pytest.mark.parametrize("method", METHODS)
def test_a_few_steps_lower_the_loss(examples, method):
    model, _ = build_model(ModelConfig(method=method, img_size=SIZE))
    lr = 3e-4 if method == "full" else 1e-2
    fixed = examples[:4]
    losses, result = _step_losses(model, fixed, epochs=12, batch_size=4, lr=lr, lr_full=lr, patience=100)
    assert result.status == "finished" and len(losses) == 12
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) * 0.9, losses


def test_full_fine_tuning_moves_its_new_heads_at_the_prompt_rate(examples):
    """The backbone at lr_full, the freshly initialised heads at lr: at the
    backbone's rate the heads stayed at their initialisation and full
    fine-tuning drew no lesion in the benchmark."""
    model, _ = build_model(ModelConfig(method="full", img_size=SIZE))
    cfg = TrainConfig(lr=1e-2, lr_full=1e-4)
    groups = parameter_groups(model, cfg)
    by_lr = {g["lr"]: sum(p.numel() for p in g["params"]) for g in groups}
    backbone = sum(p.numel() for p in model.vit.parameters())
    assert by_lr == {1e-4: backbone, 1e-2: model.parameter_counts()[1] - backbone}
    bias = model.decoder.fuse[-1].bias.detach().clone()
    patch = model.vit.patch_embed.proj.weight.detach().clone()
    _step_losses(model, examples[:4], epochs=3, batch_size=4, lr=1e-2, lr_full=1e-4, patience=100)
    head_step = (model.decoder.fuse[-1].bias.detach() - bias).abs().max().item()
    backbone_step = (model.vit.patch_embed.proj.weight.detach() - patch).abs().max().item()
    assert head_step > 5 * backbone_step and head_step > 1e-2, (head_step, backbone_step)


def test_prompt_methods_train_only_their_own_parameters():
    model, _ = build_model(ModelConfig(method="vpt-deep", img_size=SIZE))
    (group,) = parameter_groups(model, TrainConfig())
    assert sum(p.numel() for p in group["params"]) == model.parameter_counts()[0]
    assert not any(p is q for p in group["params"] for q in model.vit.parameters())


def test_validation_split_is_never_empty(examples):
    for n in (2, 3, 10):
        train_part, val_part = split_examples(examples[:n], 0.01, seed=0)
        assert len(val_part) >= 1 and len(train_part) >= 1 and len(train_part) + len(val_part) == n
    assert split_examples(examples[:1], 0.5, 0) == (examples[:1], [])


def test_validation_holds_out_the_same_share_of_each_modality(examples):
    for seed in range(5):
        _, val_part = split_examples(examples, 0.34, seed=seed)  # 6 US + 6 MG images
        held = {e.source or e.id: e.modality for e in val_part}  # a mammogram comes as several views
        assert sorted(held.values()) == [0, 0, 1, 1]


def test_best_final_and_stats_are_kept_apart(tmp_path, examples):
    model, sha = build_model(ModelConfig(method="avpt", img_size=SIZE))
    out = tmp_path / "prompts.safetensors"
    result = train(model, examples, TrainConfig(epochs=2, batch_size=4), out, sha)
    assert out.exists() and result.final_path.exists() and result.final_path != out
    stats = (tmp_path / "prompts.stats.json").read_text()
    assert '"epoch": 2' in stats and '"train_loss"' in stats
    meta = read_metadata(out)
    assert meta["method"] == "avpt" and meta["backbone_sha256"] == sha and meta["kind"] == "best"
    # lesion thresholds calibrated on the validation images, kept with the prompts
    assert meta["thresholds"] == result.thresholds and set(result.thresholds) <= {"US", "MG"}
    assert all(t in CANDIDATES for t in result.thresholds.values())
    assert read_metadata(result.final_path)["kind"] == "final"
    # a new set is saved in today's format and rebuilt with today's decoder
    saved = model_config_from(out)
    assert meta["format_version"] == "2" and saved.fuse_channels == 4 and saved.conditions_decoder
    assert saved.class_from == "lesion-taps"


def test_checkpoint_round_trip_and_refusals(tmp_path, examples):
    model, sha = build_model(ModelConfig(method="avpt", img_size=SIZE))
    with torch.no_grad():
        model.prompts.gates.fill_(0.75)
        model.prompts.generator.up.normal_()
    path = save_prompt_set(tmp_path / "p.safetensors", model, sha, {"backbone_seed": "0"})
    fresh, sha2 = build_model(ModelConfig(method="avpt", img_size=SIZE))
    assert sha2 == sha  # same seed, same backbone
    load_prompt_set(path, fresh, sha2)
    assert torch.equal(fresh.prompts.gates, model.prompts.gates)
    assert torch.equal(fresh.prompts.generator.up, model.prompts.generator.up)
    reloaded, _ = load_model(path)
    assert torch.equal(reloaded.prompts.generator.up, model.prompts.generator.up)

    other, other_sha = build_model(ModelConfig(method="avpt", img_size=SIZE), seed=1)
    with pytest.raises(AvptError, match="backbone weights differ"):
        load_prompt_set(path, other, other_sha)
    deep, deep_sha = build_model(ModelConfig(method="vpt-deep", img_size=SIZE))
    with pytest.raises(AvptError, match="method avpt"):
        load_prompt_set(path, deep, deep_sha)
    bigger, big_sha = build_model(ModelConfig(method="avpt", img_size=96))
    with pytest.raises(AvptError, match="image size 64"):
        load_prompt_set(path, bigger, big_sha)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x80\x04pickle? no thanks")
    with pytest.raises(AvptError, match="not a safetensors prompt set"):
        read_metadata(junk)
    with pytest.raises(AvptError, match="no pickles"):
        build_model(ModelConfig(img_size=SIZE), backbone_weights=tmp_path / "vit.pth")


def test_a_prompt_set_without_some_of_the_models_tensors_is_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    model, sha = build_model(ModelConfig(method="avpt", img_size=SIZE))
    path = save_prompt_set(tmp_path / "p.safetensors", model, sha)
    meta = read_metadata(path)
    tensors = {k: v for k, v in load_file(str(path)).items() if not k.startswith("decoder.fuse")}
    flat = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata=flat)  # a file from an older decoder
    fresh, _ = build_model(ModelConfig(method="avpt", img_size=SIZE))
    with pytest.raises(AvptError, match="lacks 4 of this model's trained tensors"):
        load_prompt_set(tmp_path / "old.safetensors", fresh, sha)


def test_the_best_epoch_weighs_each_modality_alike():
    # many good ultrasound images and a failing MRI: pooled over images it looks fine
    many_good = {"global_dice": 0.81, "per_modality": {"US": {"global_dice": 0.9}, "MR": {"global_dice": 0.0}}}
    # both at 0.6: pooled 0.6, below the first, but better for the modality that was failing
    balanced = {"global_dice": 0.6, "per_modality": {"US": {"global_dice": 0.6}, "MR": {"global_dice": 0.6}}}
    assert _score(balanced) > _score(many_good)
    assert _score({"per_modality": {"US": {"global_dice": 0.5}}}) == pytest.approx(0.5)
    assert _score({"accuracy": 1.0, "per_modality": {"US": {"global_dice": None}}}) == pytest.approx(0.1)


def test_the_best_epoch_can_be_chosen_on_some_modalities_alone():
    # MRI (a few phantom volumes) best at the first epoch, the real modalities at the second
    first = {"accuracy": 0.5, "per_modality": {"US": {"global_dice": 0.5, "accuracy": 0.5}, "MR": {"global_dice": 0.9}}}
    second = {
        "accuracy": 0.5,
        "per_modality": {"US": {"global_dice": 0.6, "accuracy": 0.7}, "MR": {"global_dice": 0.3}},
    }
    assert _score(first) > _score(second)
    assert _score(second, ("US",)) > _score(first, ("US",))
    assert _score(second, ("US",)) == pytest.approx(0.6 + 0.07)
    # a named modality missing from one epoch's metrics does not count for it
    assert _score(first, ("US", "MG")) == pytest.approx(0.5 + 0.05)


def test_training_keeps_the_epoch_best_on_the_chosen_modality(examples):
    model, _ = build_model(ModelConfig(method="avpt", img_size=SIZE))
    val = phantom_examples("US", 3, seed=8, size=SIZE) + phantom_examples("MG", 3, seed=8, size=SIZE)
    cfg = TrainConfig(epochs=4, batch_size=4, augment=False, patience=100, choose_on=("MG",))
    result = train(model, examples, cfg, val_examples=val)
    scores = [_score(r["val"], ("MG",)) for r in result.history]
    assert result.best_epoch == 1 + int(np.argmax(scores))
    assert result.best_metrics == result.history[result.best_epoch - 1]["val"]


@pytest.mark.parametrize(
    ("choose_on", "message"),
    [(("MR",), "has no MR images to choose the epoch on [(]it has MG, US[)]"), (("CT",), "unknown modality CT")],
)
def test_choosing_the_epoch_on_a_modality_the_validation_lacks_is_refused_before_training(examples, choose_on, message):
    model, _ = build_model(ModelConfig(method="avpt", img_size=SIZE))
    steps = []
    cfg = TrainConfig(epochs=1, batch_size=4, augment=False, choose_on=choose_on)
    with pytest.raises(AvptError, match=message):
        train(model, examples, cfg, val_examples=examples[:2] + examples[-2:], progress=steps.append)
    assert steps == []


def test_train_command_reads_the_modalities_to_choose_on(tmp_path, capsys):
    from napari_avpt.cli import main

    out = tmp_path / "set.safetensors"
    args = ["train", "--data", "phantoms:US:3", "--val-data", "phantoms:US:2:5", "--epochs", "1"]
    args += ["--img-size", "32", "--batch-size", "2", "--quiet", "--out", str(out)]
    assert main([*args, "--choose-on", "ultrasound,US"]) == 0
    assert json.loads(read_metadata(out)["train_config"])["choose_on"] == ["US"]
    with pytest.raises(SystemExit) as bad:
        main([*args, "--overwrite", "--choose-on", "CT"])
    assert bad.value.code == 2 and "unknown modality 'CT'" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--choose-on", "MG"]) != 0
    assert "has no MG images to choose the epoch on" in capsys.readouterr().err


def test_train_command_can_start_from_a_prompt_set(tmp_path, capsys):
    from napari_avpt.cli import main
    from napari_avpt.engine import backbone_meta

    # on a backbone other than the default random one (seed 1, not 0), so the
    # new set must record the init's backbone to be loadable
    model, sha = build_model(ModelConfig(method="avpt", img_size=SIZE), seed=1)
    with torch.no_grad():
        model.prompts.gates.fill_(0.75)  # a fresh model starts at -2
    init = save_prompt_set(tmp_path / "init.safetensors", model, sha, backbone_meta(None, 1))
    out = tmp_path / "tuned.safetensors"
    common = ["train", "--data", "phantoms:US:4", "--img-size", str(SIZE), "--epochs", "1", "--batch-size", "2"]
    common += ["--lr", "1e-12", "--init", str(init), "--out", str(out), "--quiet", "--device", "cpu"]
    assert main(common) == 0
    tuned, meta = load_model(out)
    assert torch.allclose(tuned.prompts.gates, torch.full_like(tuned.prompts.gates, 0.75))
    assert meta["backbone_seed"] == "1" and meta["init"] == "init.safetensors"
    assert meta["class_shape"] is None  # the init has no class-from-shape fit: none is made up
    # A fit of the init's is carried over to the tuned set.
    from napari_avpt.engine.checkpoints import with_metadata
    from napari_avpt.engine.lesion_class import ShapeFit

    fit = ShapeFit("US", (0.0,) * 5, (1.0,) * 5, (0.3, 0.4, 0.6, -0.2, -0.3), -0.9)
    shaped = with_metadata(init, tmp_path / "shaped.safetensors", {"class_shape": fit.to_json()})
    carried = tmp_path / "carried.safetensors"
    swap = {str(init): str(shaped), str(out): str(carried)}
    assert main([swap.get(a, a) for a in common]) == 0
    carried_meta = load_model(carried)[1]
    assert carried_meta["class_shape"] == fit and "shaped.safetensors" in carried_meta["class_shape_data"]
    assert main([*common, "--method", "vpt-deep", "--overwrite"]) == 2
    assert "is a avpt set" in capsys.readouterr().err
    # a second run onto the same --out is refused before any work, the set kept
    # as it was (even with --epochs 0); --overwrite replaces it
    before = {p.name: p.read_bytes() for p in tmp_path.glob("tuned*")}
    assert len(before) == 3  # the best, .final and .stats.json
    assert main([*common, "--epochs", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tuned.safetensors exists" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in tmp_path.glob("tuned*")} == before
    assert main([*common, "--overwrite"]) == 0


def test_the_class_head_alone_can_be_retrained_without_moving_what_is_drawn(tmp_path, capsys):
    """`train --init SET --tune class-head --class-from lesion-taps`: a new
    class head on a set's prompts (how the default got its lesion-pooled
    head); every other tensor, the lesions drawn, the set's calibrated
    thresholds and its lesion choice stay as they were; its class fit,
    made for the old head, is not carried over."""
    from safetensors.torch import load_file

    from napari_avpt.cli import main
    from napari_avpt.engine import with_class_head

    model, sha = build_model(ModelConfig(method="avpt", img_size=SIZE, class_from="image"), seed=1)
    with torch.no_grad():
        model.prompts.gates.fill_(0.75)
    thresholds = {"US": 0.7, "MG": 0.35}
    n = len(REGION_FEATURES)
    choice = ShapeFit("US", (0.0,) * n, (1.0,) * n, (0.5,) * n, 0.0, REGION_FEATURES)
    shape = ShapeFit("US", (0.0,) * 5, (1.0,) * 5, (0.5,) * 5, 0.0)
    extra = {"backbone_seed": "1", "thresholds": thresholds, "lesion_choice": choice.to_json()}
    init = save_prompt_set(tmp_path / "init.safetensors", model, sha, {**extra, "class_shape": shape.to_json()})
    out = tmp_path / "reheaded.safetensors"
    args = ["train", "--data", "phantoms:US:6", "--data", "phantoms:MG:4", "--img-size", str(SIZE), "--epochs", "2"]
    args += ["--batch-size", "4", "--init", str(init), "--tune", "class-head", "--class-from", "lesion-taps"]
    args += ["--out", str(out), "--quiet", "--device", "cpu"]
    assert main(args) == 0
    before, after = load_file(str(init)), load_file(str(out))
    kept = {k for k in before if not k.startswith("class_head.")}
    assert kept and kept < set(after)
    assert all(torch.equal(before[k], after[k]) for k in kept)
    start = with_class_head(model, "lesion-taps", seed=0).class_head.state_dict()
    assert after["class_head.fc.weight"].shape == start["fc.weight"].shape != before["class_head.fc.weight"].shape
    assert not torch.allclose(after["class_head.fc.weight"], start["fc.weight"])  # the head did train
    tuned, meta = load_model(out)
    assert tuned.cfg.class_from == "lesion-taps" and meta["tune"] == "class-head"
    assert meta["thresholds"] == thresholds  # not re-fitted on the run's validation images
    assert meta["lesion_choice"] == choice and meta["class_shape"] is None
    fresh, _ = build_model(ModelConfig(method="avpt", img_size=SIZE, class_from="lesion-taps"))
    assert tuned.parameter_counts() == fresh.parameter_counts()
    images = torch.rand(2, 3, SIZE, SIZE)
    tissue, modality = torch.rand(2, 3, SIZE, SIZE), torch.tensor([0, 1])
    with torch.no_grad():
        assert torch.equal(tuned(images, tissue, modality).lesion_logits, model(images, tissue, modality).lesion_logits)
    assert main([a for a in args if a not in ("--init", str(init))] + ["--overwrite"]) == 2
    assert "--tune class-head needs --init" in capsys.readouterr().err


def test_the_heads_can_be_retrained_on_a_sets_prompts_from_a_new_decoder(tmp_path, capsys):
    """`train --init SET --tune heads --new-decoder`: a newly drawn lesion
    decoder and the class head trained on the set's prompts, which stay as
    they were; the lesions change, so the thresholds are calibrated anew."""
    from safetensors.torch import load_file

    from napari_avpt.cli import main

    model, sha = build_model(ModelConfig(method="avpt", img_size=SIZE), seed=1)
    meta = {"backbone_seed": "1", "thresholds": {"US": 0.123}}  # off the calibration grid
    init = save_prompt_set(tmp_path / "init.safetensors", model, sha, meta)
    out = tmp_path / "heads.safetensors"
    args = ["train", "--data", "phantoms:US:6", "--img-size", str(SIZE), "--epochs", "2", "--batch-size", "4"]
    args += ["--init", str(init), "--tune", "heads", "--new-decoder", "--out", str(out), "--quiet", "--device", "cpu"]
    assert main(args) == 0
    before, after = load_file(str(init)), load_file(str(out))
    assert set(before) == set(after)
    prompts = [k for k in before if not k.startswith(("decoder.", "class_head."))]
    assert prompts and all(torch.equal(before[k], after[k]) for k in prompts)
    for part in ("decoder.", "class_head."):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(part))
    torch.manual_seed(0)  # the draw --new-decoder starts from (--seed 0): training moved it
    drawn = model.new_decoder().state_dict()
    assert any(not torch.equal(drawn[k], after[f"decoder.{k}"]) for k in drawn)
    _, meta = load_model(out)
    assert meta["tune"] == "heads" and meta["new_decoder"]
    assert meta["thresholds"]["US"] != 0.123  # calibrated again: a calibrated threshold is on the grid
    assert main([a for a in args if a not in ("--init", str(init))] + ["--overwrite"]) == 2
    assert "--tune heads needs --init" in capsys.readouterr().err
    no_init = [a for a in args if a not in ("--init", str(init), "--tune", "heads")]
    assert main([*no_init, "--overwrite"]) == 2
    assert "--new-decoder redraws" in capsys.readouterr().err


def test_a_sets_decoder_split_per_modality_and_tuned_on_ultrasound_leaves_the_other_modalities_as_they_were(
    tmp_path, capsys
):
    """`train --init SET --tune decoder --decoder-per-modality --new-decoder`
    on ultrasound alone: the ultrasound decoder is drawn anew and trained;
    the mammogram and MRI ones are the set's shared decoder, unchanged, and
    so are their lesions and thresholds; the prompts and class head too."""
    from safetensors.torch import load_file

    from napari_avpt.cli import main

    model, sha = build_model(ModelConfig(method="avpt", img_size=SIZE), seed=1)
    meta = {"backbone_seed": "1", "thresholds": {"MG": 0.123, "US": 0.123}}  # off the calibration grid
    init = save_prompt_set(tmp_path / "init.safetensors", model, sha, meta)
    out = tmp_path / "split.safetensors"
    args = ["train", "--data", "phantoms:US:6", "--img-size", str(SIZE), "--epochs", "2", "--batch-size", "4"]
    args += ["--init", str(init), "--tune", "decoder", "--decoder-per-modality", "--new-decoder"]
    args += ["--out", str(out), "--quiet", "--device", "cpu"]
    assert main(args) == 0
    before, after = load_file(str(init)), load_file(str(out))
    shared = {k[len("decoder.") :]: v for k, v in before.items() if k.startswith("decoder.")}
    for code, name in enumerate(("MG", "US", "MR")):
        mine = {k: after[f"decoder.parts.{code}.{k}"] for k in shared}
        same = all(torch.equal(mine[k], shared[k]) for k in shared)
        assert same == (name != "US"), name
    rest = [k for k in before if not k.startswith("decoder.")]
    assert rest and all(torch.equal(before[k], after[k]) for k in rest)
    split, meta = load_model(out)
    assert split.cfg.decoder_per_modality and meta["new_decoder"] == "US" and meta["tune"] == "decoder"
    assert meta["thresholds"]["MG"] == 0.123 and meta["thresholds"]["US"] != 0.123
    # What the set draws: on a mammogram as the starting set did, on ultrasound not.
    images, tissue = torch.rand(2, 3, SIZE, SIZE), torch.rand(2, 3, SIZE, SIZE)
    for code, same in ((0, True), (1, False)):
        mod = torch.full((2,), code)
        with torch.no_grad():
            a = model.eval()(images, tissue, mod).lesion_logits
            b = split.eval()(images, tissue, mod).lesion_logits
        assert torch.allclose(a, b, atol=1e-5) == same
    # A mixed batch draws each image with its modality's decoder.
    mixed = torch.tensor([0, 1])
    with torch.no_grad():
        both = split(images, tissue, mixed).lesion_logits
        alone = [split(images[i : i + 1], tissue[i : i + 1], mixed[i : i + 1]).lesion_logits for i in range(2)]
    assert torch.allclose(both, torch.cat(alone), atol=1e-5)
    head_only = [a if a != "decoder" else "class-head" for a in args if a != "--new-decoder"]
    assert main([*head_only, "--overwrite"]) == 2
    assert "--decoder-per-modality changes the lesion decoder" in capsys.readouterr().err


def test_train_command_sets_a_new_sets_fuse_width(tmp_path, capsys):
    from napari_avpt.cli import main

    out = tmp_path / "wide.safetensors"
    args = ["train", "--data", "phantoms:US:4", "--img-size", str(SIZE), "--epochs", "1", "--batch-size", "2"]
    args += ["--fuse-channels", "16", "--out", str(out), "--quiet", "--device", "cpu"]
    assert main(args) == 0
    model, _ = load_model(out)
    assert model.cfg.fuse_channels == 16 and model.decoder.fuse[0].out_channels == 3 * 16  # per modality
    assert main([*args, "--init", str(out), "--overwrite"]) == 2
    assert "--init keeps the set's own" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([a if a != "16" else "0" for a in args])
    assert "0 must be at least 1" in capsys.readouterr().err


def test_training_the_class_head_alone_leaves_the_rest_trainable_afterwards(examples):
    model, _ = build_model(ModelConfig(method="avpt", img_size=SIZE))
    decoder = model.decoder.fuse[-1].bias.detach().clone()
    head = model.class_head.fc.weight.detach().clone()
    _step_losses(model, examples[:4], epochs=2, batch_size=4, patience=100, tune="class-head")
    assert torch.equal(model.decoder.fuse[-1].bias, decoder)
    assert not torch.allclose(model.class_head.fc.weight, head)
    assert all(p.requires_grad for n, p in model.named_parameters() if n in model.set_names)
    with pytest.raises(AvptError, match="unknown tune"):
        train(model, examples, TrainConfig(tune="prompts"))


def test_cancel_stops_within_one_step_and_leaves_a_valid_checkpoint(tmp_path, examples):
    model, sha = build_model(ModelConfig(method="avpt", img_size=SIZE))
    steps = []
    out = tmp_path / "c.safetensors"
    with pytest.raises(Cancelled) as stopped:
        train(
            model,
            examples,
            TrainConfig(epochs=50, batch_size=2),
            out,
            sha,
            progress=lambda p: steps.append(p) if p.unit == "step" else None,
            cancel=lambda: len(steps) >= 3,
        )
    result = stopped.value.result  # what was complete comes back with the cancel
    assert result.status == "cancelled" and len(steps) == 3
    assert [(p.task, p.done, p.epoch) for p in steps] == [("train", i, 1) for i in (1, 2, 3)]
    fresh, sha2 = build_model(ModelConfig(method="avpt", img_size=SIZE))
    load_prompt_set(out, fresh, sha2)
    load_prompt_set(result.final_path, fresh, sha2)


def test_nan_loss_stops_and_keeps_the_last_good_prompts(tmp_path, examples):
    [bad] = make_examples(np.full((40, 40), np.nan, np.float32), "US", SIZE, "benign", example_id="nan")
    bad.image[:] = float("nan")
    model, sha = build_model(ModelConfig(method="avpt", img_size=SIZE))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = train(
        model, [bad] * 4, TrainConfig(epochs=3, batch_size=2), tmp_path / "n.safetensors", sha, val_examples=[bad]
    )
    assert result.status == "diverged" and "diverged" in result.message
    for stats in tmp_path.glob("*.stats.json"):  # NaN is not JSON: a diverged loss is written as null
        json.loads(stats.read_text(), parse_constant=lambda c, name=stats.name: pytest.fail(f"{c} in {name}"))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(torch.isfinite(v).all() for v in after.values())


def test_training_is_deterministic(examples):
    results = []
    for _ in range(2):
        model, _ = build_model(ModelConfig(method="avpt", img_size=SIZE))
        train(model, examples, TrainConfig(epochs=1, batch_size=4, seed=5))
        results.append(model.prompts.generator.up.detach().clone())
    assert torch.equal(results[0], results[1])


def test_two_process_ddp_on_cpu(tmp_path):
    out = tmp_path / "ddp.safetensors"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        "-m",
        "napari_avpt.cli",
        "train",
        "--data",
        "phantoms:US:4",
        "--method",
        "avpt",
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--img-size",
        "64",
        "--out",
        str(out),
        "--quiet",
        "--device",
        "cpu",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=Path(__file__).parents[2])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert out.exists() and math.isfinite(float(read_metadata(out)["epoch"]))
    load_model(out)


def test_pair_examples_from_painted_arrays():
    from napari_avpt.engine.data import pair_examples
    from napari_avpt.phantoms import make_breast_mri, make_ultrasound

    us = make_ultrasound(1, label="malignant", shape=(96, 120))
    mr = make_breast_mri(1, label="malignant", shape=(12, 48, 56))
    examples = pair_examples(
        [
            ("frame", us.image, us.lesion, "malignant", "US"),
            ("volume", mr.image, mr.lesion, "malignant", "MR"),
            ("clean", us.image, np.zeros_like(us.lesion), "normal", "US"),
        ],
        SIZE,
    )
    assert examples[0].lesion.sum() > 0 and examples[0].label == 2
    assert any(e.id.startswith("volume#z") for e in examples) and examples[-1].label == 0
    with pytest.raises(AvptError, match="must match"):
        pair_examples([("f", us.image, us.lesion[:-1], "benign", "US")], SIZE)
    with pytest.raises(AvptError, match="is empty"):
        pair_examples([("f", us.image, np.zeros_like(us.lesion), "benign", "US")], SIZE)
    with pytest.raises(AvptError, match="modality"):
        pair_examples([("f", us.image, us.lesion, "benign", None)], SIZE)


def test_a_time_budget_sets_the_epochs_and_ends_the_schedule_with_them(examples):
    """With `minutes`, the epochs are those that fit: too short a budget for
    more than one stops after the first, and the epochs reported to the
    progress callback are the ones that fit; a budget that holds them all
    changes nothing (the schedule's end: `test_the_schedule_follows_a_changed_total`)."""
    model, _ = build_model(ModelConfig(method="avpt", img_size=SIZE))
    planned = []
    cfg = TrainConfig(epochs=6, batch_size=4, patience=100, minutes=1e-5)
    result = train(
        model,
        examples,
        cfg,
        val_examples=examples[:2],
        progress=lambda p: planned.append(p.epochs) if p.unit == "epoch" else None,
    )
    assert result.status == "finished" and len(result.history) == 1 and "time budget" in result.message
    assert planned == [1]
    model2, _ = build_model(ModelConfig(method="avpt", img_size=SIZE))
    full = train(
        model2, examples, TrainConfig(epochs=2, batch_size=4, patience=100, minutes=60), val_examples=examples[:2]
    )
    assert len(full.history) == 2 and full.message == "trained 2 epochs"


def test_the_schedule_follows_a_changed_total():
    from napari_avpt.engine.schedule import WarmupCosine

    schedule = WarmupCosine(1000)
    assert schedule(500) > 0.4
    schedule.total = 500
    assert schedule(499) < 1e-4


def test_the_starting_prompts_are_kept_when_no_epoch_beats_them(tmp_path, examples):
    """`score_start`: the start is scored on the validation images first;
    epochs that do no better (here: a learning rate of 0 moves nothing)
    leave it the best, saved as it was; without it, epoch 1 is taken."""
    model, sha = build_model(ModelConfig(method="avpt", img_size=SIZE))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    out = tmp_path / "kept.safetensors"
    cfg = TrainConfig(epochs=2, batch_size=4, lr=0.0, patience=100, score_start=True, augment=False)
    result = train(model, examples, cfg, out, sha, val_examples=examples[:4])
    assert result.best_epoch == 0 and "starting prompts" in result.message
    kept, meta = load_model(out)
    assert str(meta["epoch"]) == "0" and meta["metrics"] and set(meta["thresholds"]) <= {"MG", "US", "MR"}
    for k, v in kept.state_dict().items():
        assert torch.equal(v, start[k]), k
    model2, _ = build_model(ModelConfig(method="avpt", img_size=SIZE))
    plain = train(model2, examples, dataclasses.replace(cfg, score_start=False), val_examples=examples[:4])
    assert plain.best_epoch == 1


def test_the_epochs_a_budget_holds():
    from napari_avpt.engine.schedule import epochs_that_fit

    assert epochs_that_fit(1.0, 100, 2, 20.0) == 6  # 10 s an epoch, 60 s
    assert epochs_that_fit(1.0, 4, 2, 20.0) == 4  # at most --epochs
    assert epochs_that_fit(0.01, 100, 2, 20.0) == 2  # at least those done
    assert epochs_that_fit(1.0, 7, 1, 0.0) == 7  # an epoch too fast to time
