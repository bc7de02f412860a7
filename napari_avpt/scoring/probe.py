"""Linear probes on frozen backbone features: the gate a pretrained backbone
must pass before it is shipped.

A probe here is linear in the features, nothing else: a logistic regression
per patch token (does this 16-pixel patch hold lesion?) and one on the mean
token of the image (normal / benign / malignant). Unlike the benchmark's
"linear" method, it has no convolutional decoder and no skip from the raw
pixels, so it measures what the backbone's features carry, which is what
pretraining is for. Features are the tokens of the same blocks the A-VPT
decoder taps, concatenated and standardised on the training set.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .metrics import macro_auc, roc_auc


@torch.no_grad()
def token_features(backbone, examples, n_taps: int = 4, batch_size: int = 16):
    """(patch tokens (N, G*G, n_taps*D), mean tokens (N, n_taps*D),
    lesion share per patch (N, G*G))."""
    from ..engine.preprocess import to_model_image

    depth = len(backbone.blocks)
    taps = sorted({int(round(depth * (i + 1) / n_taps)) - 1 for i in range(n_taps)})
    prefix = backbone.num_prefix_tokens
    patch = backbone.patch_embed.patch_size[0]
    backbone.eval()
    tokens, shares = [], []
    for i in range(0, len(examples), batch_size):
        chunk = examples[i : i + batch_size]
        images = torch.stack([to_model_image(e.image) for e in chunk])
        x = backbone._pos_embed(backbone.patch_embed(images))
        out = []
        for k, block in enumerate(backbone.blocks):
            x = block(x)
            if k in taps:
                out.append(x[:, prefix:])
        tokens.append(torch.cat(out, dim=-1))
        lesion = torch.stack([e.lesion for e in chunk]).float()
        shares.append(F.avg_pool2d(lesion, patch).flatten(1))
    tokens = torch.cat(tokens)
    return tokens, tokens.mean(1), torch.cat(shares)


def _clear(share: torch.Tensor) -> torch.Tensor:
    return (share == 0) | (share >= 0.25)


def fit_logistic(x: torch.Tensor, y: torch.Tensor, n_classes: int, weight_decay: float, steps: int = 100):
    """Multinomial (or binary, n_classes=1) logistic regression by L-BFGS,
    classes weighted inversely to their frequency."""
    torch.manual_seed(0)
    w = torch.zeros(x.shape[1], n_classes, requires_grad=True)
    b = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")
    if n_classes == 1:
        pos = y.float().mean().clamp(1e-3, 1 - 1e-3)
        pos_weight = (1 - pos) / pos

        def loss_fn():
            return F.binary_cross_entropy_with_logits((x @ w + b)[:, 0], y.float(), pos_weight=pos_weight)
    else:
        counts = torch.bincount(y, minlength=n_classes).float().clamp(min=1)
        class_weight = counts.sum() / (n_classes * counts)

        def loss_fn():
            return F.cross_entropy(x @ w + b, y, weight=class_weight)

    def closure():
        opt.zero_grad()
        loss = loss_fn() + weight_decay * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def _whole(examples) -> list:
    return [e for e in examples if not e.id.endswith("#zoom")]


def linear_probe(backbone, train, test, weight_decay: float = 1e-3) -> dict:
    """Patch-level lesion AUC and image-level class AUC / accuracy of linear
    probes trained on `train` examples and scored on `test` examples. The
    views training zooms on a lesion (`data.make_examples`) are left out:
    the probes read images as a whole view shows them."""
    train, test = _whole(train), _whole(test)
    tr_tok, tr_mean, tr_share = token_features(backbone, train)
    te_tok, te_mean, te_share = token_features(backbone, test)
    mu, sd = tr_tok.flatten(0, 1).mean(0), tr_tok.flatten(0, 1).std(0) + 1e-6
    # Patches: lesion when at least a quarter of the patch is lesion (small
    # mammography and MRI lesions cover few whole patches), background when
    # none of it is; patches grazing a lesion's edge are left out.
    keep_tr, keep_te = _clear(tr_share.flatten()), _clear(te_share.flatten())
    x_tr = ((tr_tok - mu) / sd).flatten(0, 1)[keep_tr]
    w, b = fit_logistic(x_tr, tr_share.flatten()[keep_tr] >= 0.25, 1, weight_decay)
    x_te = ((te_tok - mu) / sd).flatten(0, 1)[keep_te]
    patch_scores = (x_te @ w + b)[:, 0].numpy()
    patch_auc = roc_auc(patch_scores, (te_share.flatten()[keep_te] >= 0.25).numpy())
    # Images: mean token -> class.
    m_mu, m_sd = tr_mean.mean(0), tr_mean.std(0) + 1e-6
    labels_tr = torch.tensor([e.label for e in train])
    labels_te = np.array([e.label for e in test])
    wc, bc = fit_logistic((tr_mean - m_mu) / m_sd, labels_tr, 3, weight_decay)
    probs = torch.softmax(((te_mean - m_mu) / m_sd) @ wc + bc, -1).numpy()
    return {
        "lesion_patch_auc": patch_auc,
        "class_auc": macro_auc(probs, labels_te),
        "class_accuracy": float((probs.argmax(1) == labels_te).mean()),
        "n_train": len(train),
        "n_test": len(test),
    }


def probe_gate(
    backbone_weights,
    modalities=("MG", "US", "MR"),
    n_train: int = 60,
    n_test: int = 30,
    img_size: int = 224,
    backbone: str = "vit_tiny_patch16_224",
    seed: int = 0,
) -> dict:
    """The same probes on the pretrained and on a randomly initialised frozen
    backbone, overall and per modality. Training phantoms: seed 1000 and
    up; test phantoms: seed 90_001 (held out). The probes do not look at
    tissue maps, so the phantoms' own (cheap) ones are taken."""
    from ..engine.backbones import create_backbone
    from ..engine.data import phantom_mix

    train = {m: phantom_mix((m,), n_train, 1000, img_size) for m in modalities}
    test = {m: phantom_mix((m,), n_test, 90_001, img_size) for m in modalities}
    result = {}
    for name, weights in (("pretrained", backbone_weights), ("random", None)):
        vit = create_backbone(backbone, img_size, weights=weights, seed=seed)
        result[name] = {"all": linear_probe(vit, sum(train.values(), []), sum(test.values(), []))}
        for m in modalities:
            result[name][m] = linear_probe(vit, train[m], test[m])
    return result
