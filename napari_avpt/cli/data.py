"""`phantoms`, `inspect` and `info`: data to try the plugin on, and what a file holds."""

from __future__ import annotations

import time

from .. import __version__
from ..errors import AvptError
from ..io.files import check_writable_folder


def cmd_phantoms(args) -> int:
    from tqdm import tqdm

    from ..phantoms.formats import write_dataset

    expected_dims = 3 if args.format == "duke" else 2
    if args.size is not None and len(args.size) != expected_dims:
        raise AvptError(f"--size for {args.format} needs {expected_dims} numbers")
    check_writable_folder(args.out)
    if args.out.exists() and any(args.out.iterdir()):
        raise AvptError(
            f"{args.out} already exists and is not empty: choose a new --out folder (nothing was overwritten)"
        )
    bar = tqdm(total=args.n, desc=f"{args.format} phantoms", unit="image", disable=args.quiet)

    def progress(p):
        bar.update(p.done - bar.n)

    start = time.perf_counter()
    try:
        out = write_dataset(args.format, args.n, args.seed, args.out, args.size, progress)
    except FileExistsError as e:
        raise AvptError(f"{e}: choose a new --out folder (nothing was overwritten)") from None
    bar.close()
    print(f"wrote {args.n} {args.format} phantoms to {out} in {time.perf_counter() - start:.1f} s")
    return 0


def cmd_inspect(args) -> int:
    from ..io import read_path

    for path in args.paths:
        start = time.perf_counter()
        images = read_path(path)
        elapsed = time.perf_counter() - start
        for im in images:
            for problem in im.meta.pop("folder_warnings", []):
                print(f"{path}: skipped: {problem}")
            kind = "labels" if im.labels else ("rgb" if im.rgb else "image")
            spacing = " x ".join(f"{s:.4g}" for s in im.spacing)
            print(
                f"{path}: {im.name!r} {kind} {im.data.shape} {im.data.dtype} modality={im.modality} "
                f"spacing_mm=({spacing}) window={tuple(round(w, 1) for w in im.window) if im.window else None} "
                f"laterality={im.meta.get('laterality')} view={im.meta.get('view')}"
            )
        print(f"read in {elapsed:.2f} s")
    return 0


def cmd_info(args) -> int:
    import napari
    import torch

    from ..engine import build_model
    from ..engine.device import resolve_device
    from ..model import METHODS, ModelConfig

    print(f"napari-avpt {__version__} (napari {napari.__version__}, torch {torch.__version__})")
    print(f"device: {resolve_device(args.device)}")
    print(f"backbone: {args.backbone} at {args.img_size} px")
    for method in METHODS:
        model, _ = build_model(ModelConfig(method=method, backbone=args.backbone, img_size=args.img_size))
        trainable, total = model.parameter_counts()
        print(
            f"  {method:16s} trainable {trainable:>9,d} of {total:>10,d} parameters = {100 * trainable / total:6.2f} %"
        )
    return 0
