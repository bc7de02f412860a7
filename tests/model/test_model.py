import pytest
import torch

from napari_avpt.engine import build_model
from napari_avpt.model import METHODS, ModelConfig
from napari_avpt.model.losses import attention_prior_loss, cross_modal_supcon, segmentation_loss


def test_avpt_budget_with_default_backbone():
    model, _ = build_model(ModelConfig(method="avpt"))
    trainable, total = model.parameter_counts()
    assert trainable / total < 0.02
    assert trainable / total <= 0.015  # the design's aim
    frozen = [n for n, p in model.vit.named_parameters() if p.requires_grad]
    assert frozen == []


@pytest.mark.parametrize("method", METHODS)
def test_forward_shapes_for_every_method(method):
    model, _ = build_model(ModelConfig(method=method, img_size=64))
    x = torch.randn(2, 3, 64, 64)
    tissue = torch.rand(2, 3, 64, 64)
    out = model(x, tissue, torch.tensor([0, 2]), want_attention=True)
    assert out.class_logits.shape == (2, 3) and out.lesion_logits.shape == (2, 1, 64, 64)
    assert out.lesion_attention.shape == (2, 16)
    if method.startswith("avpt"):
        assert out.tissue_attention.shape == (2, 3, 16) and out.tissue_embeddings.shape[:2] == (2, 3)
        assert torch.allclose(out.tissue_attention.sum(-1), torch.ones(2, 3), atol=1e-4)
    else:
        assert out.tissue_attention is None


def test_anatomy_changes_the_prompts_and_no_anatomy_ignores_them():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 64)
    left, right = torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64)
    left[..., :32], right[..., 32:] = 1, 1
    mod = torch.tensor([1])
    with_anatomy, _ = build_model(ModelConfig(method="avpt", img_size=64))
    a = with_anatomy(x, left, mod).class_logits
    b = with_anatomy(x, right, mod).class_logits
    assert not torch.allclose(a, b)
    without, _ = build_model(ModelConfig(method="avpt-no-anatomy", img_size=64))
    assert torch.allclose(without(x, left, mod).class_logits, without(x, right, mod).class_logits)


def test_supcon_uses_other_modalities_only_and_never_nans():
    emb = torch.randn(4, 3, 8, requires_grad=True)
    present = torch.ones(4, 3, dtype=torch.bool)
    one_modality = cross_modal_supcon(emb, torch.tensor([0, 0, 0, 0]), present)
    assert one_modality.item() == 0.0 and not torch.isnan(one_modality)
    two = cross_modal_supcon(emb, torch.tensor([0, 0, 1, 1]), present)
    assert torch.isfinite(two) and two.item() > 0
    two.backward()
    assert emb.grad.abs().sum() > 0
    # Aligned embeddings of the same tissue across modalities give a lower loss.
    base = torch.randn(3, 8)
    aligned = base[None].repeat(4, 1, 1) + 0.01 * torch.randn(4, 3, 8)
    assert cross_modal_supcon(aligned, torch.tensor([0, 0, 1, 1]), present) < two
    nothing = cross_modal_supcon(emb, torch.tensor([0, 1, 2, 0]), torch.zeros(4, 3, dtype=torch.bool))
    assert nothing.item() == 0.0


def test_attention_prior_rewards_attention_inside_the_tissue():
    maps = torch.zeros(1, 3, 4)
    maps[0, 0, :2] = 1
    inside = torch.tensor([[[0.5, 0.5, 0.0, 0.0]] * 3])
    outside = torch.tensor([[[0.0, 0.0, 0.5, 0.5]] * 3])
    present = torch.tensor([[True, False, False]])
    assert attention_prior_loss(inside, maps, present) == pytest.approx(0.0)
    assert attention_prior_loss(outside, maps, present) == pytest.approx(1.0)


def test_segmentation_loss_weighs_a_missed_small_lesion_like_a_large_one():
    target = torch.zeros(3, 1, 64, 64)
    target[0, :, 8:56, 8:56] = 1  # a large lesion, found
    target[1, :, 30:33, 30:33] = 1  # a 9-pixel lesion, missed
    logits = torch.full_like(target, -12.0)
    logits[0, :, 8:56, 8:56] = 12.0
    missed_small = segmentation_loss(logits, target)
    logits[1, :, 30:33, 30:33] = 12.0
    found_both = segmentation_loss(logits, target)
    # Per-image Dice: missing the small one costs about half the Dice term.
    assert missed_small - found_both > 0.4
    # An image without a lesion (index 2) adds no Dice term; predicting nothing there costs ~0.
    assert found_both < 0.05
    only_empty = segmentation_loss(torch.full((2, 1, 8, 8), -12.0), torch.zeros(2, 1, 8, 8))
    assert torch.isfinite(only_empty) and only_empty < 1e-3


def test_the_negative_term_charges_a_false_lesion_on_a_lesion_free_image():
    import torch.nn.functional as F

    target = torch.zeros(1, 1, 64, 64)
    logits = torch.full_like(target, -12.0)
    logits[0, :, 10:16, 10:16] = 6.0  # a confident 36-pixel false lesion: 0.9 % of the image
    plain_bce = F.binary_cross_entropy_with_logits(logits, target)
    assert segmentation_loss(logits, target) == pytest.approx(plain_bce.item())  # off by default
    assert plain_bce < 0.06  # what pixel-averaged BCE alone charges
    assert segmentation_loss(logits, target, negative_weight=1.0) > 3.0  # the top 1 % is that lesion
    clean = torch.full_like(target, -12.0)
    assert segmentation_loss(clean, target, negative_weight=1.0) < 1e-3


@pytest.mark.parametrize("method", ["avpt", "full"])
def test_untrained_model_starts_from_rare_lesions(method):
    # Every method starts from the same "lesions are rare" prior (about 1 % of pixels).
    model, _ = build_model(ModelConfig(method=method, img_size=64))
    with torch.no_grad():
        prob = torch.sigmoid(
            model(torch.randn(2, 3, 64, 64), torch.rand(2, 3, 64, 64), torch.tensor([0, 1])).lesion_logits
        )
    assert 0.002 < prob.mean() < 0.05


def test_every_method_starts_from_the_same_decoder_for_a_seed():
    """Same seed, same lesion decoder, whatever the method adds: in few steps
    the decoder draw decided more than the method did. (A-VPT's fuse has
    its units per modality: each starts as the shared fuse; its FiLM starts
    as identity.)"""
    first, _ = build_model(ModelConfig(method="linear", img_size=64), seed=3)
    first = first.decoder.state_dict()
    for method in METHODS:
        model, _ = build_model(ModelConfig(method=method, img_size=64), seed=3)
        state = model.decoder.state_dict()
        for key, value in first.items():
            k = state[key].shape[0] // value.shape[0]
            assert k in (1, 3) and torch.equal(state[key], value.repeat(k, *[1] * (value.dim() - 1))), (method, key)
    other, _ = build_model(ModelConfig(method="avpt", img_size=64), seed=4)
    assert not torch.equal(other.decoder.lateral[0].weight, first["lateral.0.weight"])


def _fuse_units_passing_gradient(model, images, tissue, modality) -> torch.Tensor:
    """Per hidden unit of the decoder's full-resolution fuse, the share of
    pixels where its activation passes a gradient of at least 0.1."""
    model.eval()
    seen = {}
    # the activation's input: the hidden units that run (a batch of one modality: its own)
    model.decoder.fuse[1].register_forward_pre_hook(lambda m, i: seen.__setitem__("pre", i[0].detach()))
    with torch.no_grad():
        model(images, tissue, modality)
    pre = seen["pre"].requires_grad_(True)
    model.decoder.fuse[1](pre).sum().backward()
    return (pre.grad > 0.1).float().mean(dim=(0, 2, 3))


def test_no_unit_of_the_decoders_fuse_is_silent_from_the_start():
    """A hidden unit silent on every pixel passes no gradient. With the
    first decoder's 4 shared ReLUs two were silent from the start on some
    draws, and the decoder then only learnt to lower the background: a small
    mass never rose above the prior (20 mammograms, 10 epochs: nothing drawn
    on any seed)."""
    from napari_avpt.engine.data import ExampleDataset, phantom_examples
    from napari_avpt.model.heads import SegmentationDecoder

    examples = phantom_examples("MG", 3, seed=5, size=64)
    batch = [ExampleDataset(examples)[i] for i in range(len(examples))]
    images = torch.stack([b["image"] for b in batch])
    tissue, modality = torch.stack([b["tissue"] for b in batch]), torch.stack([b["modality"] for b in batch])
    silent_relu = 0
    for seed in range(8):
        model, _ = build_model(ModelConfig(method="avpt", img_size=64), seed=seed)
        alive = _fuse_units_passing_gradient(model, images, tissue, modality)
        assert len(alive) == 4 and alive.min() > 0.01, (seed, alive)  # the mammograms' own 4
        torch.manual_seed(seed)
        model.decoder = SegmentationDecoder(model.vit.embed_dim, len(model.taps), 16, activation="relu")
        silent_relu += int(_fuse_units_passing_gradient(model, images, tissue, modality).min() < 0.01)
    assert silent_relu > 0  # what the change is for


def _blob_images(n: int, seed: int):
    """32-px images, each with a bright and a dark blob; the lesion is the
    bright one in modality 0 (a mammogram mass) and the dark one in
    modality 1 (an ultrasound mass)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    images, masks, modality = torch.full((n, 3, 32, 32), 0.5), torch.zeros(n, 1, 32, 32), torch.arange(n) % 2
    for i in range(n):
        cy, cx = torch.randint(5, 27, (2,), generator=g).float()
        other = torch.stack([(cy + 16) % 32, (cx + 11) % 32]).clamp(5, 26)
        bright = (yy - cy) ** 2 + (xx - cx) ** 2 < 10
        dark = ((yy - other[0]) ** 2 + (xx - other[1]) ** 2 < 10) & ~bright
        images[i, :, bright], images[i, :, dark] = 0.9, 0.1
        masks[i, 0] = (bright if modality[i] == 0 else dark).float()
    return images, masks, modality


@pytest.mark.parametrize("n_modalities", [0, 3])
def test_the_modality_conditioned_decoder_learns_lesions_of_opposite_contrast(n_modalities):
    """A shared decoder cannot tell a bright mass (mammography) from a dark
    one (ultrasound) when each modality also shows the other kind; with the
    modality code (FiLM) it learns both. In joint training on phantoms the
    shared one learnt ultrasound and drew nothing on mammograms on three
    seeds of five (the conditioned one: also three of five; docs/model.md)."""
    from napari_avpt.model.heads import SegmentationDecoder
    from napari_avpt.model.losses import segmentation_loss
    from napari_avpt.scoring.metrics import dice

    torch.manual_seed(0)
    decoder = SegmentationDecoder(8, 1, 16, n_modalities=n_modalities)
    taps = torch.zeros(16, 4, 8)  # no token evidence: the image and the modality decide
    images, masks, modality = _blob_images(16, seed=1)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=0.03)
    for _ in range(150):
        optimizer.zero_grad()
        segmentation_loss(decoder(taps, (2, 2), images, modality), masks).backward()
        optimizer.step()
    test_images, test_masks, test_modality = _blob_images(16, seed=2)
    with torch.no_grad():
        pred = decoder(taps, (2, 2), test_images, test_modality) > 0
    score = dice(pred.numpy(), test_masks.numpy() > 0)
    assert score > 0.8 if n_modalities else score < 0.7, score


def _findings(n: int, seed: int, lesion: bool = True):
    """Token grids (n, 16, 8) of noisy background patches with one finding
    patch whose class (benign 1 / malignant 2) is in its tokens, and lesion
    logits that mark that patch (on 4-px patches of a 16-px image)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(1, 3, (n,), generator=g)
    tokens = 2.0 * torch.randn(n, 16, 8, generator=g)
    where = torch.randint(0, 16, (n,), generator=g)
    logits = torch.full((n, 1, 16, 16), -8.0)
    direction = torch.tensor([1.0, -1.0] * 4)  # zero mean: a LayerNorm keeps it
    for i in range(n):
        tokens[i, where[i]] = torch.randn(8, generator=g) * 0.3 + direction * (1.0 if labels[i] == 2 else -1.0)
        r, c = divmod(int(where[i]), 4)
        logits[i, 0, r * 4 : r * 4 + 4, c * 4 : c * 4 + 4] = 8.0 if lesion else -8.0
    return tokens, logits, labels


@pytest.mark.parametrize("pool", ["lesion", "image"])
def test_the_class_is_read_from_the_finding_not_from_the_whole_image(pool):
    """A finding's class lives in a few patches; the image's mean token
    drowns it in the texture around it. On phantoms, linear probes of
    frozen features told malignant from benign at AUC 0.99 (US) and 0.67
    (MG) from the lesion's tokens, 0.83 and 0.51 from the mean token
    (docs/model.md). The head reads the tokens pooled by the lesion mask."""
    from napari_avpt.model.heads import ClassificationHead, lesion_pooled
    from napari_avpt.scoring.metrics import roc_auc

    torch.manual_seed(0)
    head = ClassificationHead(8, 3, n_scalars=1)
    optimizer = torch.optim.Adam(head.parameters(), lr=0.03)

    def features(tokens, logits):
        pooled, presence = lesion_pooled(tokens, logits, 4)
        return (pooled, presence) if pool == "lesion" else (tokens.mean(1), presence)

    tokens, logits, labels = _findings(64, seed=1)
    for _ in range(200):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(head(*features(tokens, logits)), labels).backward()
        optimizer.step()
    tokens, logits, labels = _findings(64, seed=2)
    with torch.no_grad():
        score = torch.softmax(head(*features(tokens, logits)), -1)[:, 2]
    auc = roc_auc(score.numpy(), (labels == 2).numpy())
    assert auc > 0.95 if pool == "lesion" else auc < 0.8, auc


def test_lesion_pooling_without_a_finding_is_the_mean_token_and_reports_no_lesion():
    from napari_avpt.model.heads import lesion_pooled

    tokens, logits, _ = _findings(3, seed=3, lesion=False)
    pooled, presence = lesion_pooled(tokens, logits, 4)
    assert torch.allclose(pooled, tokens.mean(1), atol=1e-5)
    assert (presence < 0.01).all()
    tokens, logits, _ = _findings(3, seed=3)
    pooled, presence = lesion_pooled(tokens, logits, 4)
    assert (presence > 0.99).all()
    marked = logits[:, 0, ::4, ::4].flatten(1).argmax(1)
    assert torch.allclose(pooled, tokens[torch.arange(3), marked], atol=0.05)  # the rest weigh 3e-4 each


@pytest.mark.parametrize("class_from", ["lesion-taps", "lesion-final"])
def test_the_class_loss_does_not_redraw_the_lesion_mask(class_from):
    """The lesion probability only weighs the tokens for the class head;
    the class loss reaches the prompts and the head, never the decoder."""
    model, _ = build_model(ModelConfig(method="avpt", img_size=64, class_from=class_from))
    out = model(torch.randn(2, 3, 64, 64), torch.rand(2, 3, 64, 64), torch.tensor([0, 1]))
    torch.nn.functional.cross_entropy(out.class_logits, torch.tensor([1, 2])).backward()
    assert all(p.grad is None or not p.grad.any() for p in model.decoder.parameters())
    assert model.class_head.fc.weight.grad.any() and model.prompts.global_prompts.grad.any()


def test_prompt_sets_saved_before_lesion_pooling_keep_their_class_head():
    from napari_avpt.engine.checkpoints import config_from_saved

    v1 = {
        "method": "avpt",
        "img_size": 64,
        "decoder_activation": "gelu",
        "modality_decoder": True,
        "modality_fuse": True,
    }
    old = config_from_saved(v1, "1")  # format 1 without `class_from`: made before the class head read the lesion
    model, _ = build_model(old)
    assert old.class_from == "image" and model.class_head.fc.in_features == 2 * model.vit.embed_dim


def test_a_per_modality_fuse_gives_each_modality_its_own_units():
    """`modality_fuse`: the modality code picks its own hidden units and
    output, so an ultrasound image's loss cannot move a mammogram's units."""
    cfg = ModelConfig(method="avpt", img_size=32)
    model, _ = build_model(cfg)
    fuse_in = model.decoder.fuse[0]
    assert fuse_in.out_channels == 3 * cfg.fuse_channels and model.decoder.fuse[-1].out_channels == 3
    images, tissue = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    out = model(images, tissue, torch.tensor([1, 1]))  # two ultrasound frames
    assert out.lesion_logits.shape == (2, 1, 32, 32)
    out.lesion_logits.sum().backward()
    per_unit = fuse_in.weight.grad.abs().flatten(1).sum(1).reshape(3, cfg.fuse_channels).sum(1)
    assert per_unit[1] > 0 and per_unit[0] == 0 and per_unit[2] == 0


def _decoder_by_definition(decoder, taps, grid, image, modality):
    """The lesion decoder written out step by step, as its docstrings
    describe it: what the folded computation must equal."""
    b, n_taps = taps.shape[0], len(decoder.lateral)
    per_tap = taps.unflatten(-1, (n_taps, -1)).unbind(2)
    x = sum(lat(t.transpose(1, 2).reshape(b, -1, *grid)) for lat, t in zip(decoder.lateral, per_tap))
    for stage in decoder.stages:
        x = stage(x)
    film = decoder.film(modality).split(decoder.film_sizes, 1)
    scale, shift, fuse_scale, fuse_shift = (f[:, :, None, None] for f in film)
    x = decoder.reduce(x * (1 + scale) + shift)
    x = torch.nn.functional.interpolate(x, size=image.shape[-2:], mode="bilinear", align_corners=False)
    joined = torch.cat([x, decoder.skip(image.mean(1, keepdim=True))], dim=1) * (1 + fuse_scale) + fuse_shift
    every = decoder.fuse(joined)  # (B, modalities, H, W): each modality's output from its own units
    return every.gather(1, modality.view(-1, 1, 1, 1).expand(-1, 1, *every.shape[-2:]))


def test_the_folded_decoder_computes_its_definition():
    """FiLM, `reduce` and the fuse's 1x1 convolution are folded into
    per-image weights for speed: the result must be the step-by-step one,
    for a batch of mixed modalities and for each image alone."""
    from napari_avpt.model.heads import SegmentationDecoder

    torch.manual_seed(3)
    decoder = SegmentationDecoder(24, 2, 8, n_modalities=3, fuse_per_modality=True)
    with torch.no_grad():
        for p in decoder.parameters():
            p.add_(torch.randn_like(p) * 0.2)  # FiLM away from identity, the modalities' units apart
        taps, image, modality = torch.randn(4, 9, 48), torch.randn(4, 3, 24, 24), torch.tensor([2, 0, 1, 0])
        expected = _decoder_by_definition(decoder, taps, (3, 3), image, modality)
        assert expected.std() > 0.1
        torch.testing.assert_close(decoder(taps, (3, 3), image, modality), expected, atol=1e-4, rtol=1e-4)
        for i in range(4):
            alone = decoder(taps[i : i + 1], (3, 3), image[i : i + 1], modality[i : i + 1])
            torch.testing.assert_close(alone, expected[i : i + 1], atol=1e-4, rtol=1e-4)


def test_a_one_modality_batch_runs_only_its_own_fuse_units_with_the_same_result():
    model, _ = build_model(ModelConfig(method="avpt", img_size=32), seed=2)
    with torch.no_grad():
        for p in [*model.decoder.fuse.parameters(), model.decoder.film.weight]:
            p.add_(torch.randn_like(p) * 0.1)  # the modalities' units and FiLM differ
        x, t, codes = torch.randn(4, 3, 32, 32), torch.rand(4, 3, 32, 32), [0, 1, 2, 1]
        mixed = model(x, t, torch.tensor(codes)).lesion_logits  # every unit runs, each image picks its own
        alone = torch.cat(
            [model(x[i : i + 1], t[i : i + 1], torch.tensor([c])).lesion_logits for i, c in enumerate(codes)]
        )
    torch.testing.assert_close(alone, mixed, atol=1e-5, rtol=0)


def test_a_per_modality_fuse_starts_where_the_shared_fuse_starts():
    """The per-modality units are copies of the shared fuse's draw, and
    building them spends no random draws: every later initialisation
    (prompts, class head) is the shared-fuse decoder's, and for any one
    modality the two decoders give the same lesion logits."""
    from napari_avpt.model.heads import SegmentationDecoder

    def built(per_modality):
        torch.manual_seed(5)
        decoder = SegmentationDecoder(24, 2, 8, n_modalities=3, fuse_per_modality=per_modality)
        return decoder, torch.rand(4)  # the next draw: what the prompts would start from

    (own, after_own), (shared, after_shared) = built(True), built(False)
    assert torch.equal(after_own, after_shared)
    theirs = shared.state_dict()
    rest = {k: v for k, v in own.state_dict().items() if not k.startswith("fuse.")}
    assert rest and all(torch.equal(v, theirs[k]) for k, v in rest.items())
    taps, image = torch.randn(2, 9, 48), torch.randn(2, 3, 24, 24)
    with torch.no_grad():
        for code in range(3):
            m = torch.tensor([code, code])
            torch.testing.assert_close(own(taps, (3, 3), image, m), shared(taps, (3, 3), image, m), atol=1e-5, rtol=0)


def test_a_baseline_can_have_avpts_modality_conditioned_decoder():
    """`baseline_modality_decoder`: the benchmark's one-decoder comparison.
    The baseline's decoder is then A-VPT's, drawn the same for a seed, so
    that only the prompts differ; off by default and for saved sets."""
    avpt, _ = build_model(ModelConfig(method="avpt", img_size=32), seed=4)
    for method in ("vpt-deep", "linear"):
        plain, _ = build_model(ModelConfig(method=method, img_size=32), seed=4)
        assert plain.decoder.film is None and plain.decoder.n_fused == 1
        same, _ = build_model(ModelConfig(method=method, img_size=32, baseline_modality_decoder=True), seed=4)
        assert same.decoder.film is not None and same.decoder.n_fused == 3
        theirs = avpt.decoder.state_dict()
        assert all(torch.equal(v, theirs[k]) for k, v in same.decoder.state_dict().items())
        assert {f"decoder.{k}" for k in theirs} <= same.set_names  # trained and saved with the set
        x, t = torch.randn(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
        assert same(x, t, torch.tensor([0, 1])).lesion_logits.shape == (2, 1, 32, 32)
    from napari_avpt.engine.checkpoints import config_from_saved

    v1 = {"method": "vpt-deep", "decoder_activation": "gelu", "modality_decoder": True, "modality_fuse": True}
    assert config_from_saved(v1, "1").conditions_decoder is False  # a saved baseline keeps its shared decoder


@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_under_bfloat16_autocast(method):
    """CUDA runs under bf16 autocast (`engine.device.autocast`); the same
    autocast on the CPU catches an op that mixes bf16 and float32 (the
    gated tissue prompts' lerp did, and A-VPT could not train on a GPU)."""
    model, _ = build_model(ModelConfig(method=method, img_size=64))
    images, tissue = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    modality = torch.tensor([0, 1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(images, tissue, modality, want_attention=True)
    loss = out.lesion_logits.float().mean() + out.class_logits.float().mean()
    loss.backward()
    assert torch.isfinite(loss)
    assert any(p.grad is not None for p in model.parameters() if p.requires_grad)
