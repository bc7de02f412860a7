"""Where the shipped weights live, and checking them before use.

The project pretrains and ships its own weights (no model hub is reachable
where it is built). They are looked up in `$NAPARI_AVPT_WEIGHTS` when it is
set (and nowhere else then); otherwise in the `weights/` folder of a source
checkout, then the data folder a non-editable
`pip install .` puts them in (`<prefix>/share/napari-avpt/weights`). Every
file listed in `SHA256SUMS` there is verified before it is loaded; a file
that does not match is refused.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from ..errors import AvptError

CHECKSUMS = "SHA256SUMS"
DEFAULT_BACKBONE = "vit_tiny_breast.safetensors"
PHANTOM_BACKBONE = "vit_tiny_mae_phantoms.safetensors"  # MAE on phantoms only: where the default started
DEFAULT_PROMPTS = "avpt_default.safetensors"


def candidate_dirs() -> list[Path]:
    if os.environ.get("NAPARI_AVPT_WEIGHTS"):  # set: the only place looked at
        return [Path(os.environ["NAPARI_AVPT_WEIGHTS"])]
    dirs = []
    dirs.append(Path(__file__).resolve().parents[2] / "weights")
    dirs.append(Path(sys.prefix) / "share" / "napari-avpt" / "weights")
    return dirs


def weights_dir() -> Path | None:
    """The first folder that has a checksum list, or None."""
    for d in candidate_dirs():
        if (d / CHECKSUMS).is_file():
            return d
    return None


def read_checksums(folder: Path) -> dict[str, str]:
    sums = {}
    for line in (folder / CHECKSUMS).read_text().splitlines():
        parts = line.strip().split()
        if len(parts) == 2:
            sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verified(name: str, folder: Path | None = None) -> Path:
    """The path of a shipped weights file after checking its sha256."""
    folder = folder or weights_dir()
    if folder is None:
        raise AvptError("no shipped weights found (weights/SHA256SUMS); train prompts and pass --prompts")
    sums = read_checksums(folder)
    path = folder / name
    if name not in sums:
        raise AvptError(f"{name} is not listed in {folder / CHECKSUMS}")
    if not path.is_file():
        raise AvptError(f"shipped weights {name} are missing from {folder}")
    if sha256_file(path) != sums[name]:
        raise AvptError(f"{path} does not match its checksum: the file is damaged or was changed; refusing to load it")
    return path


def default_prompts() -> Path | None:
    """The default prompt set, verified, or None when none is shipped."""
    folder = weights_dir()
    if folder is None or DEFAULT_PROMPTS not in read_checksums(folder):
        return None
    return verified(DEFAULT_PROMPTS, folder)
