"""The `napari-avpt` command line.

Errors the user can fix are printed on one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import __version__
from .errors import AvptError

SAMPLES = ("mammogram", "ultrasound", "mri")


def _size(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 512x416 or 48x144x176, not {text!r}") from None
    if not values or any(v < 16 for v in values):
        raise argparse.ArgumentTypeError(f"every size must be at least 16 pixels: {text!r}")
    return values


def cmd_phantoms(args) -> int:
    from tqdm import tqdm

    from .phantoms.formats import write_dataset

    expected_dims = 3 if args.format == "duke" else 2
    if args.size is not None and len(args.size) != expected_dims:
        raise AvptError(f"--size for {args.format} needs {expected_dims} numbers")
    if args.n < 1:
        raise AvptError("--n must be at least 1")
    bar = tqdm(total=args.n, desc=f"{args.format} phantoms", unit="image", disable=args.quiet)

    def progress(done, total):
        bar.update(done - bar.n)

    start = time.perf_counter()
    try:
        out = write_dataset(args.format, args.n, args.seed, args.out, args.size, progress)
    except FileExistsError as e:
        raise AvptError(f"{e}: choose a new --out folder (nothing was overwritten)") from None
    bar.close()
    print(f"wrote {args.n} {args.format} phantoms to {out} in {time.perf_counter() - start:.1f} s")
    return 0


def cmd_inspect(args) -> int:
    from .io import read_path

    for path in args.paths:
        start = time.perf_counter()
        images = read_path(path)
        elapsed = time.perf_counter() - start
        for im in images:
            kind = "labels" if im.labels else ("rgb" if im.rgb else "image")
            spacing = " x ".join(f"{s:.4g}" for s in im.spacing)
            print(
                f"{path}: {im.name!r} {kind} {im.data.shape} {im.data.dtype} modality={im.modality} "
                f"spacing_mm=({spacing}) window={tuple(round(w, 1) for w in im.window) if im.window else None} "
                f"laterality={im.meta.get('laterality')} view={im.meta.get('view')}"
            )
        print(f"read in {elapsed:.2f} s")
    return 0


def cmd_demo(args) -> int:
    import napari
    import numpy as np

    viewer = napari.Viewer(title="napari-avpt demo")
    layers = viewer.open_sample("napari-avpt", args.sample)
    viewer.window.add_plugin_dock_widget("napari-avpt", "Breast phantom")
    truth = next((lay for lay in layers if lay.name.endswith("lesion truth")), None)
    if truth is not None and truth.ndim == 3 and truth.data.any():
        # Open a volume on the slice through the lesion, not on an empty one.
        z = int(np.mean(np.nonzero(truth.data)[0]))
        viewer.dims.set_point(0, truth.data_to_world((z, 0, 0))[0])
    if args.screenshot:
        from qtpy.QtWidgets import QApplication

        viewer.window.resize(1400, 900)
        QApplication.processEvents()
        out = Path(args.screenshot)
        out.parent.mkdir(parents=True, exist_ok=True)
        viewer.screenshot(str(out), canvas_only=False)
        viewer.close()
        print(f"saved {out}")
        return 0
    napari.run()
    return 0


def cmd_classical(args) -> int:
    import numpy as np
    from tqdm import tqdm

    from .classical import classical_lesion_mask
    from .metrics import dice
    from .phantoms import MAKERS

    for modality in args.modality:
        scores = []
        for i in tqdm(range(args.n), desc=f"classical {modality}", disable=args.quiet):
            phantom = MAKERS[modality](args.seed + i, label=("benign", "malignant")[i % 2])
            scores.append(dice(classical_lesion_mask(phantom.image, modality), phantom.lesion > 0))
        mean, sd = np.mean(scores), np.std(scores)
        print(f"{modality}: classical threshold+blob lesion Dice {mean:.3f} +- {sd:.3f} (n={args.n})")
    return 0


def cmd_info(args) -> int:
    import napari
    import torch

    device = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    print(f"napari-avpt {__version__}")
    print(f"napari {napari.__version__}, torch {torch.__version__}, device {device}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="napari-avpt", description=__doc__)
    parser.add_argument("--version", action="version", version=f"napari-avpt {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("phantoms", help="write a synthetic dataset in INbreast, BUSI or Duke layout")
    p.add_argument("--format", required=True, choices=("inbreast", "busi", "duke"))
    p.add_argument("--n", type=int, required=True, help="number of images (Duke: patients)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, type=Path, help="new folder to create")
    p.add_argument("--size", type=_size, default=None, help="image size, e.g. 512x416 (Duke: 48x144x176)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_phantoms)

    p = sub.add_parser("inspect", help="read files or DICOM folders and print what napari will show")
    p.add_argument("paths", nargs="+", type=Path)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("demo", help="open napari with a sample image and the plugin's widgets")
    p.add_argument("--sample", choices=SAMPLES, default="mammogram")
    p.add_argument("--screenshot", type=Path, default=None, help="save a screenshot of the window and exit")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("classical", help="lesion Dice of the non-learned threshold+blob segmenter on phantoms")
    p.add_argument("--modality", nargs="+", choices=("MG", "US", "MR"), default=["MG", "US", "MR"])
    p.add_argument("--n", type=int, default=30, help="phantoms per modality (half benign, half malignant)")
    p.add_argument("--seed", type=int, default=10_000, help="first seed (held out from training seeds)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_classical)

    p = sub.add_parser("info", help="versions and the compute device")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AvptError as e:
        print(f"napari-avpt: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("napari-avpt: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
