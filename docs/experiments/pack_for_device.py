"""Pack the real images a device run trains on into one tar (git-ignored,
carried by the `device` tool, whose working tree is limited to 64 MiB):
BUS-BRA and mini-MIAS frames of the given folds as WebP (lossy, quality
80 / 90: 15 / 23 KB a frame rather than 66 / 200 KB as PNG), the masks as
1-bit PNG, the CSVs and Info.txt as they are. `unpack_for_device.py`
writes them back in the published layouts, as PNG, for `--data`.

The figures that count are measured here, on the original files
(`bench --part real`); only the training images of a device run pass
through the lossy copy (about what `--strong-augment`'s blur and lower
resolution do to them anyway).

    python docs/experiments/pack_for_device.py --out .carry/real.tar.gz \
        --busbra ../shared/data/bus-bra/BUSBRA --mias ../shared/data/mini-mias/all-mias --folds 2,3,4,5
"""

from __future__ import annotations

import argparse
import io
import tarfile
from pathlib import Path

from PIL import Image

from napari_avpt.io.datasets.busbra import DATA_CSV, FOLDS_CSV, BusBraDataset
from napari_avpt.io.datasets.mias import INFO, MiasDataset


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _encoded(path: Path, **kw) -> bytes:
    out = io.BytesIO()
    image = Image.open(path)
    (image.convert("1") if kw.get("format") == "PNG" else image.convert("L")).save(out, **kw)
    return out.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--busbra", type=Path, required=True)
    ap.add_argument("--mias", type=Path, required=True)
    ap.add_argument("--folds", default="2,3,4,5")
    ap.add_argument("--quality", type=int, default=80, help="WebP quality of the ultrasound frames")
    args = ap.parse_args()
    folds = {int(f) for f in args.folds.split(",")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_name(args.out.name + ".partial")  # renamed when whole: never half a tar
    with tarfile.open(partial, "w:gz") as tar:
        bus = BusBraDataset(args.busbra, folds)
        for name in (DATA_CSV, FOLDS_CSV):
            _add(tar, f"BUSBRA/{name}", (args.busbra / name).read_bytes())
        for i in range(len(bus)):
            image, mask = bus.paths(i)
            webp = _encoded(image, format="WEBP", quality=args.quality, method=6)
            _add(tar, f"BUSBRA/Images/{image.stem}.webp", webp)
            _add(tar, f"BUSBRA/Masks/{mask.name}", _encoded(mask, format="PNG", optimize=True))
        mias = MiasDataset(args.mias, folds)
        _add(tar, f"all-mias/{INFO}", (args.mias / INFO).read_bytes())
        for item in mias.items:
            _add(tar, f"all-mias/{item['id']}.webp", _encoded(item["path"], format="WEBP", quality=90, method=6))
    partial.replace(args.out)
    size = args.out.stat().st_size / 2**20
    print(f"{len(bus)} BUS-BRA frames, {len(mias.items)} mini-MIAS images -> {args.out} ({size:.1f} MiB)")


if __name__ == "__main__":
    main()
