"""Choosing the compute device: CUDA, then Apple MPS, else the CPU."""

from __future__ import annotations

import torch


def resolve_device(preference: str = "auto") -> torch.device:
    if preference and preference != "auto":
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast(device: torch.device):
    """Mixed precision on CUDA (bfloat16), plain float elsewhere."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
