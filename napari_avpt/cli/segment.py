"""`segment`: files in, lesion labels (and what else was asked) out."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import AvptError
from ..io.files import check_writable_folder


def _load(args):
    from ..engine import load_model
    from ..io.weights import default_prompts

    prompts = args.prompts or default_prompts()
    if prompts is None:
        raise AvptError(
            "no default weights found (weights/SHA256SUMS): pass --prompts FILE (made by `napari-avpt train`)"
        )
    return load_model(prompts, args.backbone_weights)


def cmd_segment(args) -> int:
    from ..engine.infer import Segmenter
    from ..io.results import ResultNames

    # Everything that can be checked is, before the model loads.
    paths = list(dict.fromkeys(Path(p) for p in args.paths))  # the same input twice is segmented once
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise AvptError(f"no such file or folder: {', '.join(missing)}")
    check_writable_folder(args.out)
    names = ResultNames(args.out, args.overwrite)
    names.plan([p for p in paths if not p.is_dir()])
    pre = _pre_contrast(args.pre) if args.pre is not None else None
    model, meta = _load(args)
    segmenter = Segmenter.for_set(
        model,
        meta,
        args.device,
        threshold=args.threshold,
        min_lesion_mm=args.min_lesion_mm,
        weak_ratio=args.weak_ratio,
        min_peak=args.min_peak,
    )
    subtracted, failed = 0, []
    # A batch goes on past an input that fails: its error is printed, the
    # rest are segmented, and the run ends non-zero with a summary.
    for path in paths:
        try:
            subtracted += _segment_path(path, segmenter, pre, names, args)
        except AvptError as e:
            failed.append(path)
            print(f"napari-avpt: error: {path}: {e}", file=sys.stderr)
        except (MemoryError, OSError, ValueError, RuntimeError) as e:
            failed.append(path)
            print(f"napari-avpt: error: {path}: {type(e).__name__}: {e}", file=sys.stderr)
    if pre is not None and not subtracted and not failed:
        raise AvptError(f"--pre {args.pre}: no 3D volume was given to subtract it from")
    if failed:
        done = len(paths) - len(failed)
        print(
            f"napari-avpt: {len(failed)} of {len(paths)} inputs failed ({', '.join(str(p) for p in failed)}); "
            f"results of the other {done} are in {args.out}",
            file=sys.stderr,
        )
        return 2
    return 0


def _segment_path(path: Path, segmenter, pre, names, args) -> int:
    """Segment every image `path` holds and write its results; returns how
    many were segmented on their subtraction with --pre."""
    from ..io import read_path
    from ..io.results import write_segmentation
    from ..model.config import modality_code

    images = read_path(path)
    # A study folder that holds the pre-contrast series: the others are
    # segmented on their subtraction, as the widget does (not with --no-pre).
    found = None if pre is not None or args.no_pre else _pre_series(images)
    subtracted = 0
    for image in images:
        if image.labels or (pre is not None and image.meta.get("source_path") == pre.meta.get("source_path")):
            continue
        this_pre = pre
        if found is not None and image is not found and found.data.shape == image.data.shape:
            this_pre = found
        modality = args.modality or modality_code(image.modality)
        if modality is None:
            raise AvptError(f"unknown modality {image.modality!r}; say it with --modality MG|US|MR")
        gray = not image.rgb
        if not (gray and image.data.ndim in (2, 3)):
            raise AvptError(f"{image.data.ndim}D {'RGB ' if image.rgb else ''}image; need 2D or 3D gray")
        if args.dicom_seg and not image.meta.get("sop_uids"):
            raise AvptError("--dicom-seg: this input was not read from DICOM (a SEG references DICOM images)")
        if image.data.ndim == 3 and this_pre is not None and this_pre.data.shape != image.data.shape:
            raise AvptError(f"the volume is {image.data.shape} but --pre is {this_pre.data.shape}")
        if path.is_dir() or len(images) > 1:  # a series: named once read, with its folders where names repeat
            stem = names.claim(path, image.name, str(image.meta.get("source_path", path)))
        else:
            stem = names.planned[path]
        spacing = image.spacing if image.meta.get("spacing_known", False) else None
        if image.data.ndim == 2:
            window = image.window if modality == "MG" else None
            seg = segmenter.segment_image(image.data, modality, window=window, spacing=spacing)
        else:
            subtracted += pre is not None
            seg = segmenter.segment_volume(
                image.data,
                modality,
                axis=image.meta.get("acquisition_axis", 0),
                spacing=spacing,
                pre=None if this_pre is None else this_pre.data,
            )
        files = write_segmentation(seg, image, args.out, stem=stem, dicom_seg=args.dicom_seg)
        print(
            f"{path}: {seg.predicted_class} ({seg.class_probabilities[seg.predicted_class]:.2f}), "
            f"{int(seg.lesion_labels.max())} lesion(s), {seg.seconds:.2f} s -> {len(files)} files {stem}* in {args.out}"
            + (f" (subtraction of '{this_pre.name}')" if seg.subtraction else "")
        )
    return subtracted


def _pre_series(images):
    """The one gray 3D series among `images` whose DICOM series
    description says it is the pre-contrast phase, else None."""
    from ..io.datasets.duke import the_pre_contrast

    volumes = [im for im in images if not im.labels and not im.rgb and im.data.ndim == 3]
    return the_pre_contrast(volumes, lambda im: str(im.meta.get("SeriesDescription", "")))


def _pre_contrast(path: Path):
    """The one gray 3D volume a `--pre` path holds."""
    from ..io import read_path

    volumes = [im for im in read_path(path) if not im.labels and not im.rgb and im.data.ndim == 3]
    if len(volumes) != 1:
        raise AvptError(f"--pre {path}: expected one 3D volume, found {len(volumes)}")
    return volumes[0]
