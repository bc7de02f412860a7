"""The package stays readable: small modules, each in the room it serves."""

from pathlib import Path

import napari_avpt

ROOT = Path(napari_avpt.__file__).parent
# Beside the packages (cli, bench, engine, io, model, phantoms, scoring,
# widgets) only what every room shares.
TOP_LEVEL = {"__init__.py", "errors.py", "_triton.py"}


def test_no_module_is_over_500_lines():
    long = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py") if (n := len(p.read_text().splitlines())) > 500}
    assert not long, long


def test_only_shared_modules_sit_beside_the_packages():
    assert {p.name for p in ROOT.glob("*.py")} == TOP_LEVEL
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages == {"bench", "cli", "engine", "io", "model", "phantoms", "scoring", "widgets"}
