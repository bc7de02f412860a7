"""Creating the frozen timm ViT backbone: random (seeded), from a local
safetensors file, or from the hub only when the user names a hub model."""

from __future__ import annotations

import hashlib
import threading
from contextlib import contextmanager
from pathlib import Path

import timm
import torch

from ..errors import AvptError

# torch's random generator is one for the whole process: a seeded start
# (a random backbone, new prompts) made in one thread while another thread
# draws from it would differ from the same seed's start elsewhere. The
# docks build models in worker threads; these sections take turns.
SEEDED = threading.RLock()


@contextmanager
def seeded(seed: int):
    """torch's generator at `seed` inside, as it was outside, one thread at a time."""
    with SEEDED, torch.random.fork_rng():
        torch.manual_seed(seed)
        yield


def create_backbone(
    name: str = "vit_tiny_patch16_224",
    img_size: int = 224,
    weights: str | Path | None = None,
    hub: bool = False,
    seed: int = 0,
) -> torch.nn.Module:
    """A timm VisionTransformer without classifier.

    `weights` is a local .safetensors file, its position embeddings
    resampled to `img_size` (`_from_file`); pickled checkpoints are refused (loading one
    runs arbitrary code). `hub=True` downloads the named model's weights
    (needs a network). Neither: a randomly initialised backbone, the same
    for the same seed.
    """
    kwargs = {"num_classes": 0, "img_size": img_size}
    # Under the lock whatever the source: timm draws random initial weights
    # before it loads a file's, and those draws would shift a seeded start
    # being made in another thread.
    with SEEDED:
        return _create(name, weights, hub, seed, kwargs)


def _create(name, weights, hub, seed, kwargs):
    try:
        if weights is not None:
            path = Path(weights)
            if path.suffix != ".safetensors":
                raise AvptError(f"backbone weights must be a .safetensors file (no pickles are loaded): {path.name}")
            if not path.exists():
                raise AvptError(f"backbone weights not found: {path}")
            return _from_file(name, path, kwargs)
        if hub:
            return timm.create_model(name, pretrained=True, **kwargs)
        with seeded(seed):
            return timm.create_model(name, pretrained=False, **kwargs)
    except AvptError:
        raise
    except RuntimeError as e:  # wrong file for this architecture
        raise AvptError(f"cannot build backbone {name}: {str(e).splitlines()[0]}") from None
    except Exception as e:  # unknown model names, network errors
        raise AvptError(f"cannot build backbone {name}: {e}") from None


def _from_file(name: str, path: Path, kwargs: dict) -> torch.nn.Module:
    """The model with a file's weights, loaded here rather than by timm's
    `pretrained_cfg_overlay` (whose reading of a file differs between timm
    versions): the architecture's own `checkpoint_filter_fn` resamples the
    position embeddings to `img_size`, and every tensor must fit."""
    import sys

    from safetensors import SafetensorError
    from safetensors.torch import load_file

    model = timm.create_model(name, pretrained=False, **kwargs)
    try:
        state = load_file(path)
    except (SafetensorError, OSError) as e:
        raise AvptError(f"cannot read backbone weights {path.name}: {e}") from None
    filter_fn = getattr(sys.modules[type(model).__module__], "checkpoint_filter_fn", None)
    if filter_fn is not None:
        state = filter_fn(state, model)
    own = model.state_dict()
    head = str(getattr(model, "pretrained_cfg", {}).get("classifier") or "head") + "."
    state = {k: v for k, v in state.items() if k in own or not k.startswith(head)}  # no classifier here
    model.load_state_dict(state)
    return model


def state_sha256(module: torch.nn.Module) -> str:
    """A fingerprint of a module's weights (names, shapes and values)."""
    h = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        h.update(key.encode())
        t = value.detach().cpu().contiguous()
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()
