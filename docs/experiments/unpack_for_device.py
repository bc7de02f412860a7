"""Unpack `pack_for_device.py`'s tar into the published layouts (BUS-BRA,
mini-MIAS), every image as 8-bit PNG, in parallel processes.

    python docs/experiments/unpack_for_device.py .carry/real.tar.gz /tmp/data
"""

from __future__ import annotations

import sys
import tarfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image


def _to_png(path: Path) -> None:
    Image.open(path).convert("L").save(path.with_suffix(".png"))
    path.unlink()


def main() -> None:
    tar_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    with tarfile.open(tar_path) as tar:
        tar.extractall(out, filter="data")
    webp = sorted(out.rglob("*.webp"))
    with ProcessPoolExecutor() as pool:
        list(pool.map(_to_png, webp, chunksize=32))
    masks = list(out.rglob("Masks/*.png"))
    for m in masks:  # 1-bit back to 0 / 255, as published
        Image.open(m).convert("L").save(m)
    print(f"{len(webp)} images, {len(masks)} masks -> {out}")


if __name__ == "__main__":
    main()
