import shutil
import subprocess
import sys
from pathlib import Path

import npe2


def test_manifest_validates():
    exe = shutil.which("npe2") or str(Path(sys.executable).parent / "npe2")
    proc = subprocess.run([exe, "validate", "napari-avpt"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_manifest_contributions():
    manifest = npe2.PluginManifest.from_distribution("napari-avpt")
    assert manifest.name == "napari-avpt"
    assert {s.key for s in manifest.contributions.sample_data} == {"mammogram", "ultrasound", "mri"}
    (reader,) = manifest.contributions.readers
    assert reader.accepts_directories and "*.nii.gz" in reader.filename_patterns


def test_get_reader_declines_quickly(tmp_path):
    from napari_avpt.io.reader import get_reader

    txt = tmp_path / "notes.txt"
    txt.write_text("hi")
    assert get_reader(str(txt)) is None
    assert get_reader(str(tmp_path)) is None  # an empty folder: no DICOM
    assert get_reader([str(txt), str(txt)]) is None
    assert callable(get_reader(str(tmp_path / "x.dcm")))
