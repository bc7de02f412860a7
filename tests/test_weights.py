import pytest

from napari_avpt import weights
from napari_avpt.errors import AvptError


def _ship(folder, name, content: bytes):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content)
    (folder / weights.CHECKSUMS).write_text(f"{weights.sha256_file(folder / name)}  {name}\n")


def test_verified_file_loads_and_tampered_file_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "w"
    _ship(folder, "a.safetensors", b"0123456789" * 100)
    monkeypatch.setenv("NAPARI_AVPT_WEIGHTS", str(folder))
    assert weights.weights_dir() == folder
    assert weights.verified("a.safetensors") == folder / "a.safetensors"
    data = bytearray((folder / "a.safetensors").read_bytes())
    data[10] ^= 1
    (folder / "a.safetensors").write_bytes(bytes(data))
    with pytest.raises(AvptError, match="does not match its checksum"):
        weights.verified("a.safetensors")
    with pytest.raises(AvptError, match="not listed"):
        weights.verified("other.safetensors")


def test_no_default_prompts_without_a_listed_file(tmp_path, monkeypatch):
    folder = tmp_path / "w"
    _ship(folder, "backbone.safetensors", b"x")
    monkeypatch.setenv("NAPARI_AVPT_WEIGHTS", str(folder))
    assert weights.default_prompts() is None
