"""An on-disk cache of prepared training examples (anatomy priors, crops,
resizing), so that the second run over a folder of thousands of images
starts at once.

One safetensors file per image (no pickle), keyed by the image's decoded
pixels, its lesion truth, its class, the settings (input size, tissue
source, the pre-contrast phase) and the source of the code that prepares
examples: a change to that code never serves a stale example. Image and
tissue maps are kept as float16 whether they come from the cache or were
just computed, so a first and a second run train on the same numbers.

The cache lives in platformdirs' user cache dir for napari-avpt, or in
`$NAPARI_AVPT_CACHE`; `NAPARI_AVPT_CACHE=off` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from functools import cache
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from ..io.files import write_bytes_atomic
from .preprocess import Fit

ENV = "NAPARI_AVPT_CACHE"


def cache_dir() -> Path | None:
    value = os.environ.get(ENV)
    if value and value.lower() == "off":
        return None
    if value:
        return Path(value)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("napari-avpt")) / "examples"


@cache
def _code_hash() -> str:
    """The source of the code that shapes an example: the modules of
    anatomy priors, normalisation and views, and data.py's functions that
    make examples (not the rest of data.py: its augmentation and spec
    parsing do not change what is cached)."""
    import inspect

    from . import anatomy, data, preprocess, views

    h = hashlib.sha256()
    for module in (anatomy, preprocess, views):
        h.update(Path(module.__file__).read_bytes())
    for fn in (data.make_examples, data.volume_examples, data.sample_examples, data.lesion_free_box):
        h.update(inspect.getsource(fn).encode())
    h.update(
        repr(
            (data.MIN_NEGATIVES, data.PLAIN_SHARE, data.FREE_MARGIN, data.FREE_MIN_SIDE, data.ZOOM_MODALITIES)
        ).encode()
    )
    return h.hexdigest()[:16]


def example_key(arrays: list, settings: dict) -> str:
    """A key for the examples of one image: its arrays and the settings."""
    h = hashlib.sha256(_code_hash().encode())
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def quantize(examples: list) -> list:
    """Images and tissue maps rounded to float16 (what the cache keeps)."""
    for ex in examples:
        ex.image = ex.image.half().float()
        ex.tissue = ex.tissue.half().float()
    return examples


def load(key: str):
    """The cached examples of `key`, or None."""
    from .data import Example

    folder = cache_dir()
    path = folder / key[:2] / f"{key}.safetensors" if folder else None
    if path is None or not path.is_file():
        return None
    try:
        tensors = load_file(path)
        with safe_open(path, "pt") as f:
            views = json.loads(f.metadata()["views"])
    except (SafetensorError, OSError, KeyError, ValueError):
        return None  # a damaged entry is recomputed
    out = []
    for i, v in enumerate(views):
        fit = v.pop("fit")
        out.append(
            Example(
                image=tensors["image"][i].float(),
                tissue=tensors["tissue"][i].float(),
                lesion=tensors["lesion"][i].float(),
                fit=None if fit is None else Fit(**{k: tuple(x) if isinstance(x, list) else x for k, x in fit.items()}),
                **v,
            )
        )
    return out


def store(key: str, examples: list) -> None:
    folder = cache_dir()
    if folder is None or not examples:
        return
    tensors = {
        "image": torch.stack([e.image for e in examples]).half(),
        "tissue": torch.stack([e.tissue for e in examples]).half(),
        "lesion": torch.stack([e.lesion for e in examples]).to(torch.uint8),
    }
    views = [
        {
            "label": e.label,
            "modality": e.modality,
            "id": e.id,
            "group": e.group,
            "source": e.source,
            "fit": None if e.fit is None else asdict(e.fit),
        }
        for e in examples
    ]
    try:
        write_bytes_atomic(
            folder / key[:2] / f"{key}.safetensors", safetensors_bytes(tensors, metadata={"views": json.dumps(views)})
        )
    except OSError:
        pass  # a cache that cannot be written only costs time
