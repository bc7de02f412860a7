"""The command line under bad input and interruption: nothing lost, nothing
cryptic. Results never replace each other or an earlier run's, arguments
are checked before any work, a batch goes on past a bad input, and a run
killed at any moment leaves no half-written file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from napari_avpt.cli import main


def _frame(path, seed=4, shape=(96, 120)):
    from napari_avpt.phantoms import make_ultrasound

    phantom = make_ultrasound(seed, label="benign", shape=shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(phantom.image).save(path)
    return path


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("napari-avpt"), err
    assert "Traceback" not in err
    return lines[0]


def test_same_named_inputs_get_their_own_results_and_nothing_is_replaced(tmp_path, capsys):
    a, b = _frame(tmp_path / "a" / "case.png", seed=4), _frame(tmp_path / "b" / "case.png", seed=5)
    out = tmp_path / "R"
    assert main(["segment", str(a), str(b), "--modality", "US", "--out", str(out)]) == 0
    reports = {p.name: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert set(reports) == {"a_case.json", "b_case.json"}
    assert reports["a_case.json"]["source"] == str(a) and reports["b_case.json"]["source"] == str(b)
    written = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()

    # Running an input again into that folder is refused before the model loads, every file kept.
    assert main(["segment", str(a), "--modality", "US", "--out", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "a_case.json" in line and "--overwrite" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == written
    # with --overwrite its results are replaced where they were
    assert main(["segment", str(b), str(a), "--modality", "US", "--out", str(out), "--overwrite"]) == 0
    assert {p.name for p in out.iterdir()} == set(written)
    # another input of the same name, in a later run, never takes their place
    c = _frame(tmp_path / "c" / "case.png", seed=6)
    assert main(["segment", str(c), "--modality", "US", "--out", str(out)]) == 0
    assert json.loads((out / "case.json").read_text())["source"] == str(c)
    d = _frame(tmp_path / "d" / "a" / "case.png", seed=7)
    assert main(["segment", str(d), "--modality", "US", "--out", str(out)]) == 0
    assert json.loads((out / "d_a_case.json").read_text())["source"] == str(d)
    assert json.loads((out / "a_case.json").read_text())["source"] == str(a)


def test_dicom_series_of_the_same_name_from_two_patients_stay_apart(tmp_path, capsys):
    from napari_avpt.phantoms.formats import write_dataset

    data = write_dataset("duke", 2, 0, tmp_path / "duke", (16, 48, 56))
    first, second = sorted(data.glob("Breast_MRI_*"))  # each: 5 series, described alike in both
    out = tmp_path / "R"
    assert main(["segment", str(first), str(second), "--out", str(out)]) == 0
    sources = [json.loads(p.read_text())["source"] for p in out.glob("*.json")]
    assert len(sources) == 10 and len(set(sources)) == 10


def test_a_batch_goes_on_past_a_bad_file_and_ends_with_a_summary(tmp_path, capsys):
    good1, good2 = _frame(tmp_path / "one.png", 4), _frame(tmp_path / "three.png", 6)
    bad = tmp_path / "two.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "R"
    assert main(["segment", str(good1), str(bad), str(good2), "--modality", "US", "--out", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "two.png" in err[0] and "1 of 3 inputs failed" in err[1]
    assert {p.name for p in out.glob("*.json")} == {"one.json", "three.json"}


@pytest.mark.parametrize(
    "argv, says",
    [
        (["train", "--data", "phantoms:US:2", "--batch-size", "0", "--out", "x.safetensors"], "at least 1"),
        (["train", "--data", "phantoms:US:2", "--lr", "-1", "--out", "x.safetensors"], "greater than 0"),
        (["train", "--data", "phantoms:US:2", "--val-fraction", "2", "--out", "x.safetensors"], "below 1"),
        (["train", "--data", "phantoms:US:2", "--lr", "nan", "--out", "x.safetensors"], "finite"),
        (["train", "--data", "phantoms:US:2", "--img-size", "100", "--out", "x.safetensors"], "multiple of 16"),
        (["segment", "x.png", "--min-lesion-mm", "-2", "--out", "R"], "0 or more"),
        (["segment", "x.png", "--weak-ratio", "1.5", "--out", "R"], "between 0 and 1"),
        (["segment", "x.png", "--min-peak", "-0.1", "--out", "R"], "between 0 and 1"),
        (["phantoms", "--format", "busi", "--n", "0", "--out", "P"], "at least 1"),
        (["pretrain", "--minutes", "0", "--out", "x.safetensors"], "greater than 0"),
    ],
)
def test_numbers_out_of_range_are_refused_by_the_parser(argv, says, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_outputs_that_cannot_be_written_are_refused_before_any_work(tmp_path, capsys):
    frame = _frame(tmp_path / "f.png")
    a_file = tmp_path / "taken.txt"
    a_file.write_text("keep me")
    folder = tmp_path / "folder.safetensors"
    folder.mkdir()
    cases = [
        (["segment", str(frame), "--modality", "US", "--out", str(a_file)], "is a file"),
        (["segment", str(frame), "--modality", "US", "--out", str(a_file / "R")], "is a file"),
        (["segment", str(tmp_path / "missing.png"), "--out", str(tmp_path / "R")], "no such file"),
        (["train", "--data", "phantoms:US:2", "--out", str(folder)], "is a folder"),
        (["train", "--data", "phantoms:US:2", "--out", str(a_file / "x.safetensors")], "is a file"),
        (
            ["train", "--data", "phantoms:US:2", "--init", str(tmp_path / "no.safetensors"), "--out", "y.safetensors"],
            "no such file",
        ),
        (["phantoms", "--format", "busi", "--n", "2", "--out", str(a_file)], "is a file"),
        (["pretrain", "--steps", "1", "--out", str(folder)], "is a folder"),
    ]
    for argv, says in cases:
        start = time.perf_counter()
        assert main(argv) == 2, argv
        assert says in _one_error_line(capsys.readouterr().err), argv
        assert time.perf_counter() - start < 5, argv  # refused before a model or dataset was made
    assert a_file.read_text() == "keep me" and not any(folder.iterdir())
    assert not (tmp_path / "R").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_refused(tmp_path, capsys):
    frame = _frame(tmp_path / "f.png")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(["segment", str(frame), "--modality", "US", "--out", str(locked / "R")]) == 2
        assert "permission denied" in _one_error_line(capsys.readouterr().err)
    finally:
        locked.chmod(0o700)


def test_an_image_over_the_size_limit_is_one_line_everywhere(tmp_path, capsys):
    from napari_avpt.errors import AvptError
    from napari_avpt.io import read_path
    from napari_avpt.io.raster import MAX_PIXELS

    huge = tmp_path / "huge.png"
    side = int(MAX_PIXELS**0.5) + 100
    Image.new("1", (side, side)).save(huge)  # a few kB on disk: a decompression bomb
    with pytest.raises(AvptError, match="megapixels"):
        read_path(huge)
    from napari_avpt.io.reader import get_reader

    assert get_reader(str(huge))(str(huge)) == [(None,)]  # napari: a notification, no layer, no traceback
    for argv in (["inspect", str(huge)], ["segment", str(huge), "--modality", "US", "--out", str(tmp_path / "R")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "megapixels" in err and "Traceback" not in err


def _litter(folder):
    return [p.name for p in folder.rglob(".*")] if folder.exists() else []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_run_killed_at_any_moment_leaves_no_half_written_file(tmp_path, sig):
    frames = [str(_frame(tmp_path / "in" / f"f{i}.png", seed=i, shape=(256, 320))) for i in range(12)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # From start-up (no handler yet) through the model's loading to the writing of results.
    for k, delay in enumerate((2.0, 4.0, 5.0, 6.0, 8.0)):
        out = tmp_path / f"R{k}"
        cmd = [sys.executable, "-m", "napari_avpt.cli", "segment", *frames, "--modality", "US", "--out", str(out)]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (0, -sig, 128 + sig), err
        if proc.returncode == 128 + sig:  # caught (not still starting up): unwound, one line
            assert "terminated" in err and "Traceback" not in err
        assert _litter(out) == []
        # every result that is there is whole
        for report in out.glob("*.json") if out.exists() else []:
            json.loads(report.read_text())
        for png in out.glob("*.png") if out.exists() else []:
            assert np.asarray(Image.open(png)).size > 0


def test_a_prompt_set_with_values_that_are_not_numbers_is_refused(tmp_path):
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    from napari_avpt.engine import load_model
    from napari_avpt.errors import AvptError
    from napari_avpt.io.weights import default_prompts

    with safe_open(str(default_prompts()), framework="pt") as f:
        tensors, meta = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    name = next(k for k in tensors if tensors[k].is_floating_point())
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata=meta)
    with pytest.raises(AvptError, match="not numbers"):
        load_model(bad)
    assert main(["segment", str(_frame(tmp_path / "f.png")), "--prompts", str(bad), "--out", str(tmp_path / "R")]) == 2


def test_training_on_masks_that_are_all_empty_is_refused_or_warned_about(tmp_path, capsys):
    from napari_avpt.phantoms.formats import write_dataset

    folder = write_dataset("folder", 3, 0, tmp_path / "mine", (96, 120))
    for mask in (folder / "masks").iterdir():
        Image.fromarray(np.zeros_like(np.asarray(Image.open(mask)))).save(mask)
    (folder / "labels.csv").unlink(missing_ok=True)  # lesion-free images, as a user's empty masks read
    common = ["train", "--img-size", "64", "--epochs", "0", "--quiet", "--device", "cpu"]
    assert main([*common, "--data", f"US:{folder}", "--out", str(tmp_path / "a.safetensors")]) == 2
    assert "has a lesion in its mask" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "a.safetensors").exists()
    argv = [*common, "--data", f"US:{folder}", "--data", "phantoms:US:2", "--out", str(tmp_path / "b.safetensors")]
    assert main(argv) == 0
    assert "every mask is empty" in capsys.readouterr().err
