import subprocess
import sys

import numpy as np
import pytest

from napari_avpt.cli import main
from napari_avpt.io.datasets import open_dataset


def test_phantoms_command_writes_a_readable_dataset(tmp_path, capsys):
    out = tmp_path / "busi"
    assert main(["phantoms", "--format", "busi", "--n", "3", "--seed", "4", "--out", str(out), "--size", "96x128"]) == 0
    assert "wrote 3 busi phantoms" in capsys.readouterr().out
    dataset = open_dataset(out)
    assert len(dataset) == 3 and dataset[0].image.shape == (96, 128)


def test_phantoms_never_overwrite(tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    code = main(["phantoms", "--format", "inbreast", "--n", "1", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "nothing was overwritten" in err
    assert (out / "precious.txt").read_text() == "keep me" and len(list(out.iterdir())) == 1


def test_bad_size_and_count(tmp_path, capsys):
    assert main(["phantoms", "--format", "duke", "--n", "1", "--out", str(tmp_path / "d"), "--size", "64x64"]) == 2
    assert "needs 3 numbers" in capsys.readouterr().err


def test_inspect_reads_and_reports(tmp_path, capsys):
    out = tmp_path / "ib"
    main(["phantoms", "--format", "inbreast", "--n", "1", "--out", str(out), "--size", "128x104", "--quiet"])
    dcm = next((out / "AllDICOMs").glob("*.dcm"))
    assert main(["inspect", str(dcm)]) == 0
    text = capsys.readouterr().out
    assert "modality=MG" in text and "(128, 104)" in text and "read in" in text


def test_inspect_bad_file_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "scan.dcm"
    bad.write_bytes(b"\x00" * 10)
    proc = subprocess.run(
        [sys.executable, "-m", "napari_avpt.cli", "inspect", str(bad)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "scan.dcm: not a DICOM file" in proc.stderr


def test_classical_baseline_command(capsys):
    assert main(["classical", "--modality", "US", "--n", "2", "--quiet"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("US: classical threshold+blob lesion Dice")
    assert 0.0 <= float(line.split("Dice ")[1].split()[0]) <= 1.0


def test_classical_segmenter_finds_an_obvious_blob():
    from napari_avpt.scoring.classical import classical_lesion_mask
    from napari_avpt.scoring.metrics import dice

    rng = np.random.default_rng(0)
    image = 100 + rng.normal(0, 5, (80, 80))
    yy, xx = np.mgrid[:80, :80]
    disk = (yy - 40) ** 2 + (xx - 30) ** 2 < 8**2
    assert dice(classical_lesion_mask(np.where(disk, 20, image), "US"), disk) > 0.8
    assert dice(classical_lesion_mask(np.where(disk, 200, image), "MG"), disk) > 0.8


@pytest.mark.parametrize("anonymous", [True, False])
def test_atomic_files_are_whole_or_absent(tmp_path, monkeypatch, anonymous):
    """Where the system cannot make a nameless file (not Linux, some
    filesystems), a hidden temporary beside the target is used instead:
    both give ordinary permissions and leave nothing after a failure."""
    import os

    from napari_avpt.io import files

    if not anonymous:
        monkeypatch.setattr(files, "_anonymous_file", lambda folder: None)
    target = tmp_path / "result.json"
    with files.atomic_file(target) as handle:
        handle.write(b"{}")
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    with pytest.raises(RuntimeError), files.atomic_file(target) as handle:
        handle.write(b"half")
        raise RuntimeError("the writer failed")
    assert target.read_bytes() == b"{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_a_killed_folder_writer_leaves_nothing_the_next_one_does_not_sweep(tmp_path):
    import subprocess
    import sys

    from napari_avpt.io.files import atomic_folder

    code = (
        "import os, signal; from napari_avpt.io.files import atomic_folder\n"
        f"with atomic_folder({str(tmp_path / 'a')!r}) as tmp:\n"
        "    (tmp / 'x').write_text('half'); os.kill(os.getpid(), signal.SIGKILL)"
    )
    subprocess.run([sys.executable, "-c", code], check=False)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # SIGKILL cannot be caught
    with atomic_folder(tmp_path / "b") as tmp:
        (tmp / "y").write_text("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_modalities_are_understood_as_users_name_them(tmp_path, capsys):
    from PIL import Image

    from napari_avpt.engine.data import folder_spec
    from napari_avpt.model.config import modality_code
    from napari_avpt.phantoms import make_ultrasound

    named = {"MG": ("MG", "mammogram", "Mammography"), "US": ("us", "Ultrasound"), "MR": ("MR", "mri")}
    for code, names in named.items():
        assert {modality_code(n) for n in names} == {code}
    assert modality_code("CT") is None
    assert folder_spec("mammogram:/data/x:folds=1")[1] == "MG"
    frame = tmp_path / "f.png"
    Image.fromarray(make_ultrasound(4, label="benign", shape=(96, 120)).image).save(frame)
    assert main(["segment", str(frame), "--modality", "ultrasound", "--out", str(tmp_path / "R")]) == 0
    common = ["train", "--img-size", "64", "--epochs", "0", "--quiet", "--device", "cpu"]
    assert main([*common, "--data", "phantoms:ultrasound:2", "--out", str(tmp_path / "p.safetensors")]) == 0
    with pytest.raises(SystemExit):
        main(["segment", str(frame), "--modality", "CT", "--out", str(tmp_path / "R2")])
    assert "choose MG (mammogram), US (ultrasound) or MR (MRI)" in capsys.readouterr().err


def test_demo_refuses_a_missing_image_before_opening_napari(tmp_path, capsys):
    assert main(["demo", "--image", str(tmp_path / "none.png"), "--screenshot", str(tmp_path / "s.png")]) == 2
    assert "no such file" in capsys.readouterr().err and not (tmp_path / "s.png").exists()


def test_info_lists_every_method_with_its_trainable_share(capsys):
    from napari_avpt.model import METHODS

    assert main(["info", "--img-size", "64"]) == 0
    out = capsys.readouterr().out
    for method in METHODS:
        line = next(row for row in out.splitlines() if row.split()[:1] == [method])
        share = float(line.rsplit("=", 1)[1].strip(" %"))
        assert (share == 100.0) == (method == "full") and 0 < share <= 100


def test_eval_scores_a_set_on_annotated_data_as_text_and_json(tmp_path, capsys):
    import json

    from napari_avpt.engine import backbone_meta, build_model
    from napari_avpt.engine.checkpoints import save_prompt_set
    from napari_avpt.model import ModelConfig

    model, sha = build_model(ModelConfig(method="avpt", img_size=64))
    prompts = save_prompt_set(tmp_path / "p.safetensors", model, sha, backbone_meta(None, 0))
    args = ["eval", "--prompts", str(prompts), "--data", "phantoms:US:3:7", "--device", "cpu"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[1].split()[:2] == ["all", "3"] and "US" in text
    assert main([*args, "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n"] == 3 and set(metrics["per_modality"]) == {"US"}
    assert main(["eval", "--prompts", str(tmp_path / "missing.safetensors"), "--data", "phantoms:US:3"]) == 2
