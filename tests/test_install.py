"""A non-editable `pip install .` finds the shipped weights (they go to
<prefix>/share/napari-avpt/weights, not into the package)."""

import shutil
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

from napari_avpt.io import weights

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_non_editable_install_finds_and_verifies_the_shipped_weights(tmp_path, monkeypatch):
    # setuptools (the build backend) comes from this environment: the `testing` extra installs it.
    monkeypatch.delenv("NAPARI_AVPT_WEIGHTS", raising=False)
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "napari_avpt", src / "napari_avpt", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "weights", src / "weights")
    # A fresh environment that borrows this one's dependencies (a plain path
    # entry: this checkout's editable-install hook is not carried over).
    env = tmp_path / "env"
    venv.create(env, with_pip=False)
    py = env / "bin" / "python"
    site = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    ).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [py, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", str(src)],
        check=True,
        cwd=tmp_path,
    )
    code = (
        "import napari_avpt, napari_avpt.io.weights as w; from napari_avpt.engine import load_model; "
        "print(napari_avpt.__file__); print(w.weights_dir()); "
        "m, meta = load_model(w.default_prompts()); print(meta['backbone_weights'])"
    )
    out = subprocess.run([py, "-c", code], capture_output=True, text=True, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    module, folder, backbone = out.stdout.split()
    assert module.startswith(str(env)) and "__editable__" not in module
    assert Path(folder) == env / "share" / "napari-avpt" / "weights"
    assert backbone == weights.DEFAULT_BACKBONE
    # the licence travels with the package
    licence = list(env.rglob("napari_avpt-*.dist-info/**/LICENSE*"))
    assert licence and "BSD 3-Clause" in licence[0].read_text()
