"""Re-run one method's rows of a `napari-avpt bench --part methods fewshot`
report (joint and few-shot, the same sizes and seeds) and write the report
again with the other rows as they were: for a change that touches one
method only. The other rows are not re-measured, and the run record
says so.

Usage: python docs/experiments/rerun_method.py METHOD OLD.json NEW.json NEW.md"""

import json
import sys
from pathlib import Path

from napari_avpt import bench
from napari_avpt.bench.render import render, run_record
from napari_avpt.cli.benchmarks import _progress_row
from napari_avpt.io.files import write_text_atomic


def main() -> None:
    method, old_json, new_json, new_md = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    weights = "weights/vit_tiny_mae_phantoms.safetensors"
    report = json.loads(old_json.read_text())
    parts = (
        ("methods", {"joint": report["methods"]["sizes"]}, ("MG", "US", "MR")),
        ("fewshot", report["fewshot"]["sizes"], None),
    )
    for part, sizes_by, modalities in parts:
        rows = [r for r in report[part]["rows"] if not (r["method"] == method and r["backbone"] == "pretrained")]
        for key, sizes in sizes_by.items():
            mods = modalities or (key,)
            sizes = {**sizes, "seeds": tuple(sizes["seeds"])}
            new = bench.compare_methods(
                methods=(method,),
                modalities=mods,
                backbone_weights=weights,
                include_random_backbone=False,
                progress=_progress_row,
                jobs=2,
                **sizes,
            )
            rows += [r for r in new if r["method"] != "classical"]
        report[part]["rows"] = rows
        report[part]["table"] = bench.summarize_methods(rows)
    command = f"python docs/experiments/rerun_method.py {' '.join(sys.argv[1:])}"
    report["run"] = run_record(f"{command} (the other rows: those of {old_json.name})", backbone=weights)
    write_text_atomic(new_json, json.dumps(report, indent=1, default=str))
    write_text_atomic(new_md, render([(new_json.name, report)]))
    print(f"wrote {new_md}, {new_json}")


if __name__ == "__main__":  # the bench's worker processes are spawned: they import this file
    main()
