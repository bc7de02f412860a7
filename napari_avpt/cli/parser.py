"""The argument parser: one sub-command per task, each with its own help."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import __version__
from .arguments import (
    SAMPLES,
    fraction,
    img_size,
    modality_arg,
    modality_list,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    probability,
    ratio,
    size_arg,
)
from .benchmarks import cmd_bench, cmd_classical
from .data import cmd_info, cmd_inspect, cmd_phantoms
from .demo import cmd_demo
from .evaluation import cmd_calibrate, cmd_calibrate_class, cmd_calibrate_regions, cmd_eval
from .segment import cmd_segment
from .training import cmd_export_backbone, cmd_pretrain, cmd_train

DESCRIPTION = (
    "A-VPT for breast images: segment lesions and tissue, tune prompts on your own annotations, "
    "write phantoms, benchmark. Errors you can fix are printed on one line and exit with code 2."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="napari-avpt", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"napari-avpt {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    from ..phantoms.formats import FORMATS

    p = sub.add_parser(
        "phantoms", help="write a synthetic dataset in INbreast, BUSI, Duke, BUS-BRA, mini-MIAS or images+masks layout"
    )
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--n", type=positive_int, required=True, help="number of images (Duke: patients)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, type=Path, help="new folder to create")
    p.add_argument("--size", type=size_arg, default=None, help="image size, e.g. 512x416 (Duke: 48x144x176)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_phantoms)

    p = sub.add_parser("inspect", help="read files or DICOM folders and print what napari will show")
    p.add_argument("paths", nargs="+", type=Path)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("demo", help="open napari with a sample image and the plugin's widgets")
    p.add_argument("--sample", choices=SAMPLES, default="mammogram")
    p.add_argument("--image", type=Path, default=None, help="open this file or DICOM folder instead of a sample")
    p.add_argument(
        "--modality", type=modality_arg, default=None, help="with --image: MG, US or MR, when the file does not say"
    )
    p.add_argument("--screenshot", type=Path, default=None, help="segment, save a screenshot of the window, exit")
    p.add_argument("--tune-screenshot", type=Path, default=None, help="screenshot of the tuning dock mid-run, exit")
    p.add_argument("--prompts", type=Path, default=None, help="prompt set to segment with (default: the shipped one)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("classical", help="lesion Dice of the non-learned threshold+blob segmenter on phantoms")
    p.add_argument(
        "--modality",
        nargs="+",
        type=modality_arg,
        default=["MG", "US", "MR"],
        help="MG, US, MR (or mammogram, ultrasound, MRI)",
    )
    p.add_argument("--n", type=positive_int, default=30, help="phantoms per modality (half benign, half malignant)")
    p.add_argument("--seed", type=int, default=10_000, help="first seed (held out from training seeds)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_classical)

    from ..model import METHODS
    from ..model.config import CLASS_FROM, TUNE

    p = sub.add_parser("pretrain", help="self-supervised (MAE) pretraining of the backbone on phantoms")
    p.add_argument("--out", type=Path, required=True, help="encoder weights (.safetensors); a .json log beside")
    p.add_argument("--overwrite", action="store_true", help="replace --out and its log if they exist")
    p.add_argument("--minutes", type=positive_float, default=60.0)
    p.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help="exactly this many steps instead of --minutes (same file on any machine)",
    )
    p.add_argument("--backbone", default="vit_tiny_patch16_224")
    p.add_argument("--img-size", type=img_size, default=224)
    p.add_argument("--pool-mg", type=nonnegative_int, default=400, help="mammograms in the image pool")
    p.add_argument("--pool-us", type=nonnegative_int, default=400, help="ultrasound frames in the image pool")
    p.add_argument("--pool-mr", type=nonnegative_int, default=40, help="MRI volumes in the pool (10 slices each)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=nonnegative_int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("bench", help="measure speed, end-to-end time, anatomy priors and the classical baseline")
    parts = ("speed", "e2e", "whole", "priors", "classical", "probe", "methods", "fewshot", "ui")
    parts += ("real", "real-probe", "real-methods", "real-tuning")
    p.add_argument("--part", nargs="+", choices=parts, default=["speed", "e2e", "priors"])
    p.add_argument("--quick", action="store_true", help="methods: a few-minute, tiny-sized run")
    p.add_argument("--seeds", type=positive_int, default=3, help="methods: seeds per method")
    p.add_argument("--epochs", type=positive_int, default=12, help="methods: epochs per run")
    p.add_argument("--n-train", type=positive_int, default=30, help="methods: training phantoms per modality")
    p.add_argument(
        "--frames",
        type=positive_int,
        nargs="+",
        default=[20, 100],
        help="real-tuning: annotated images to tune on, one run each",
    )
    p.add_argument("--n-test", type=positive_int, default=15, help="methods: held-out phantoms per modality")
    p.add_argument("--backbone-weights", type=Path, default=None)
    p.add_argument("--report", type=Path, default=None, help="methods: write a markdown report (and a PNG plot)")
    p.add_argument("--repeats", type=positive_int, default=20)
    p.add_argument("--n", type=positive_int, default=8, help="phantoms per modality for priors / classical / whole")
    p.add_argument("--prompts", type=Path, default=None, help="prompt set for e2e, whole and ui (default: shipped)")
    p.add_argument("--threads", type=nonnegative_int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON (a saved run)")
    p.add_argument(
        "--render",
        nargs="+",
        type=Path,
        default=None,
        metavar="RUN.json",
        help="run nothing: write --report from these saved runs (docs/benchmarks.md from docs/benchmarks/*.json)",
    )
    p.add_argument("--jobs", type=positive_int, default=1, help="methods/fewshot: single-threaded runs side by side")
    p.add_argument(
        "--real-data",
        action="append",
        default=None,
        help="real: held-out data to score whole images on, [MODALITY:]PATH[:folds=..] (repeat)",
    )
    p.add_argument("--train-data", default=None, help="real-methods: data the methods train on (PATH[:folds=..])")
    p.add_argument("--quiet", action="store_true", help="real: no progress bar")
    p.add_argument("--probe-train", default=None, help="real-probe: data the probes learn on (PATH[:folds=..])")
    p.add_argument("--probe-test", default=None, help="real-probe: held-out data the probes are scored on")
    p.add_argument(
        "--probe-backbones",
        nargs="+",
        type=Path,
        default=None,
        help="real-probe: backbone weights to compare (a random backbone is always added)",
    )
    p.add_argument(
        "--random-methods",
        nargs="*",
        default=None,
        help="methods: those also run on a random backbone (default all; the flag alone: none)",
    )
    p.add_argument("--methods", nargs="+", default=None, help="methods: which to compare (default all)")
    p.add_argument(
        "--same-decoder",
        action="store_true",
        help="methods/fewshot: the baselines get A-VPT's modality-conditioned lesion decoder too, "
        "so that only the prompts differ",
    )
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "export-backbone", help="the backbone of a full fine-tuning set, as weights to freeze under new prompts"
    )
    p.add_argument("prompts", type=Path, help="a set trained with --method full")
    p.add_argument("--out", type=Path, required=True, help="backbone weights (.safetensors)")
    p.add_argument("--recipe", default="", help="how it was made, kept in the file's metadata")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=cmd_export_backbone)

    p = sub.add_parser("info", help="backbone, parameter counts and trainable share per method, device")
    p.add_argument("--backbone", default="vit_tiny_patch16_224")
    p.add_argument("--img-size", type=img_size, default=224)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_info)

    def model_args(p):
        p.add_argument("--backbone-weights", type=Path, default=None, help="local .safetensors backbone weights")
        p.add_argument("--device", default="auto", help="auto (CUDA, MPS, else CPU), cpu, cuda, cuda:1, ...")

    def fit_parser(name: str, help: str, holding: str, func) -> None:
        """A command that fits something of a prompt set's metadata on annotated
        images through the Segmenter and writes the set with it."""
        p = sub.add_parser(name, help=help)
        p.add_argument("--prompts", type=Path, default=None, help="prompt set (default: the shipped one)")
        p.add_argument(
            "--data",
            action="append",
            required=True,
            help=f"a dataset folder [MODALITY:]PATH[:folds=1,2][:n=N] with {holding}; repeat to mix",
        )
        p.add_argument("--out", type=Path, required=True, help="the prompt set with the fit (may be --prompts)")
        p.add_argument("--modality", choices=("US",), default="US", help="the modality fitted (today ultrasound only)")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        model_args(p)
        p.set_defaults(func=func)

    data_help = (
        "phantoms:MODALITY:N[:SEED], or a dataset folder [MODALITY:]PATH[:folds=1,2] (INbreast, BUSI, Duke, "
        "BUS-BRA, mini-MIAS, or images/ + masks/ with its MODALITY); repeat to mix"
    )
    p = sub.add_parser("train", help="tune prompts (or a baseline) on a dataset or phantoms")
    p.add_argument("--data", action="append", required=True, help=data_help)
    p.add_argument(
        "--val-data",
        action="append",
        default=None,
        help="validation data (same forms as --data), instead of holding out --val-fraction of --data's patients",
    )
    p.add_argument(
        "--strong-augment",
        action="store_true",
        help="also zoom, rotate, shift, blur, add noise and lower the resolution (for real images of many scanners)",
    )
    p.add_argument("--method", choices=METHODS, default="avpt")
    p.add_argument("--epochs", type=nonnegative_int, default=20)
    p.add_argument(
        "--minutes",
        type=positive_float,
        default=None,
        help="a time budget: as many epochs as fit (from the pace of the first two), at most --epochs",
    )
    p.add_argument(
        "--out", type=Path, required=True, help="best checkpoint (.safetensors); .final and .stats.json beside"
    )
    p.add_argument("--overwrite", action="store_true", help="replace --out (and its .final and .stats.json)")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--lr", type=positive_float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-fraction", type=fraction, default=0.2)
    p.add_argument("--patience", type=positive_int, default=10)
    p.add_argument(
        "--choose-on",
        type=modality_list,
        default=(),
        help="modalities whose validation Dice chooses the best epoch, e.g. MG,US (default: all in the "
        "validation set); for a recipe whose MRI is a few phantom volumes",
    )
    p.add_argument("--img-size", type=img_size, default=224)
    p.add_argument("--backbone", default="vit_tiny_patch16_224")
    p.add_argument("--backbone-seed", type=int, default=0, help="seed of a random backbone (no weights given)")
    p.add_argument("--hub", action="store_true", help="download --backbone's pretrained weights (needs a network)")
    p.add_argument("--tissue", choices=("truth", "anatomy"), default="truth", help="tissue maps: known truth or priors")
    p.add_argument("--lambda-supcon", type=nonnegative_float, default=0.1)
    p.add_argument("--lambda-attention", type=nonnegative_float, default=0.1)
    p.add_argument(
        "--lambda-negative",
        type=nonnegative_float,
        default=0.0,
        help="weight of the false-lesion term on lesion-free images",
    )
    p.add_argument("--init", type=Path, default=None, help="start from this prompt set (e.g. the shipped default)")
    p.add_argument(
        "--decoder-from",
        type=Path,
        default=None,
        help="start the lesion decoder from this set's (e.g. the full fine-tuning run that made --backbone-weights)",
    )
    p.add_argument(
        "--tune",
        choices=TUNE,
        default="all",
        help="what to train: all of the method's parameters; or, with --init, its heads (the lesion decoder "
        "and the class head) on the set's prompts as they are, the lesion decoder alone, or the class head "
        "alone, so that the lesions drawn and their thresholds stay as they were",
    )
    p.add_argument(
        "--new-decoder",
        action="store_true",
        help="with --init: start from a newly drawn lesion decoder instead of the set's (drawn from --seed); "
        "with one decoder per modality, only the decoders of the modalities in --data are drawn anew",
    )
    p.add_argument(
        "--decoder-per-modality",
        action="store_true",
        help="one lesion decoder per modality, each starting as the set's shared one: what this run learns "
        "from one modality's images leaves the others' lesions as they were",
    )
    p.add_argument(
        "--class-from",
        choices=CLASS_FROM,
        default=None,
        help="what the class head reads beside CLS: the whole image, or the tokens under the drawn lesion "
        "(last block or the decoder's taps; the default for new sets). With --init, a different choice "
        "starts a new class head",
    )
    p.add_argument(
        "--fuse-channels",
        type=positive_int,
        default=None,
        help="hidden units of the lesion decoder's full-resolution fuse (default 4; A-VPT has that many "
        "per modality, docs/model.md)",
    )
    p.add_argument("--threads", type=nonnegative_int, default=0, help="CPU threads for torch (0: torch's default)")
    p.add_argument(
        "--jobs", type=positive_int, default=1, help="processes that prepare the examples (the same examples, sooner)"
    )
    p.add_argument(
        "--workers",
        type=nonnegative_int,
        default=0,
        help="processes that augment the training batches (0: in this one; a GPU needs several to be kept busy)",
    )
    p.add_argument("--quiet", action="store_true")
    model_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("segment", help="segment images or volumes and write the results")
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True, help="folder for the results (made if missing)")
    p.add_argument("--overwrite", action="store_true", help="replace results an earlier run left in --out")
    p.add_argument(
        "--dicom-seg",
        action="store_true",
        help="also write the lesions as a DICOM SEG referencing the DICOM series or image they segment (for a PACS)",
    )
    p.add_argument("--prompts", type=Path, default=None)
    p.add_argument(
        "--modality",
        type=modality_arg,
        default=None,
        help="MG, US or MR (mammogram, ultrasound, MRI), when the file does not say",
    )
    p.add_argument(
        "--threshold",
        type=probability,
        default=None,
        help="lesion probability threshold (default: the prompt set's, calibrated per modality in training; else 0.5)",
    )
    p.add_argument(
        "--min-lesion-mm",
        type=nonnegative_float,
        default=None,
        help="leave out lesions narrower than this many mm (equivalent diameter; pixel size known); "
        "default: MG 5, US 3, MR 5; 0: keep all",
    )
    p.add_argument(
        "--weak-ratio",
        type=ratio,
        default=None,
        help="leave out regions whose probability mass is under this share of the strongest region's "
        "(0: keep all, 1: the strongest alone); default: US 0.5, MG and MR 0",
    )
    p.add_argument(
        "--min-peak",
        type=ratio,
        default=None,
        help="leave out regions whose lesion probability stays under this everywhere inside them: fewer "
        "false lesions on lesion-free images, and weakly found lesions missed (default 0, or any value up "
        "to the threshold: keep all)",
    )
    p.add_argument(
        "--pre",
        type=Path,
        default=None,
        help="the pre-contrast volume (file or DICOM series folder) of the contrast MRI volumes given: "
        "the model then sees the subtraction post - pre (a DICOM study folder's own pre-contrast series is "
        "used without it)",
    )
    p.add_argument(
        "--no-pre",
        action="store_true",
        help="segment every volume alone, even when its folder holds the pre-contrast series",
    )
    model_args(p)
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser(
        "calibrate",
        help="set a prompt set's lesion thresholds, per modality, on annotated data it was not trained on",
    )
    p.add_argument("--prompts", type=Path, default=None, help="prompt set (default: the shipped one)")
    p.add_argument("--data", action="append", required=True, help=data_help)
    p.add_argument("--out", type=Path, required=True, help="the prompt set with the new thresholds (may be --prompts)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tissue", choices=("truth", "anatomy"), default="anatomy")
    model_args(p)
    p.set_defaults(func=cmd_calibrate)

    fit_parser(
        "calibrate-class",
        "fit benign vs malignant from the class head and the drawn lesion's shape, on labelled images "
        "the prompt set was not trained on (ultrasound)",
        "benign and malignant images",
        cmd_calibrate_class,
    )
    fit_parser(
        "calibrate-regions",
        "fit which of an image's drawn regions is the lesion (probabilities, size, place, darkness, shape), "
        "on images with lesion masks the prompt set was not trained on (ultrasound)",
        "lesion masks",
        cmd_calibrate_regions,
    )

    p = sub.add_parser("eval", help="Dice, IoU, AUC and accuracy of a prompt set on data")
    p.add_argument("--prompts", type=Path, default=None, help="prompt set (default: the shipped one)")
    p.add_argument("--data", action="append", required=True, help=data_help)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--tissue",
        choices=("truth", "anatomy"),
        default="anatomy",
        help="tissue maps: the classical priors, as on a user's image (default), or a phantom's truth",
    )
    p.add_argument(
        "--threshold", type=probability, default=None, help="lesion threshold (default: the prompt set's, else 0.5)"
    )
    p.add_argument("--json", action="store_true")
    model_args(p)
    p.set_defaults(func=cmd_eval)
    return parser
