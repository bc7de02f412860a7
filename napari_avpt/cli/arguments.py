"""Argument types: each refuses a bad value with a message argparse prints."""

from __future__ import annotations

import argparse

SAMPLES = ("mammogram", "ultrasound", "mri")


def probability(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability between 0 and 1")
    return value


def whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{text} must be at least {least}" if least else f"{text} must be 0 or more")
    return value


def positive_int(text: str) -> int:
    return whole(text, 1)


def nonnegative_int(text: str) -> int:
    return whole(text, 0)


def number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return value


def positive_float(text: str) -> float:
    value = number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be greater than 0")
    return value


def nonnegative_float(text: str) -> float:
    value = number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def fraction(text: str) -> float:
    value = number(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} must be at least 0 and below 1")
    return value


def ratio(text: str) -> float:
    value = number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} must lie between 0 and 1")
    return value


def img_size(text: str) -> int:
    value = positive_int(text)
    if value < 32 or value % 16:
        raise argparse.ArgumentTypeError(f"{text}: the input size must be a multiple of 16, at least 32")
    return value


def modality_arg(text: str) -> str:
    from ..model.config import parse_modality

    try:
        return parse_modality(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def modality_list(text: str) -> tuple[str, ...]:
    """`MG,US` (any names `modality_arg` takes) -> ("MG", "US")."""
    names = [part for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one modality: MG, US or MR")
    return tuple(dict.fromkeys(modality_arg(name) for name in names))


def size_arg(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 512x416 or 48x144x176, not {text!r}") from None
    if not values or any(v < 16 for v in values):
        raise argparse.ArgumentTypeError(f"every size must be at least 16 pixels: {text!r}")
    return values
