import pytest
import torch

from napari_avpt.errors import AvptError
from napari_avpt.io import weights


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


def test_a_users_backbone_named_like_the_shipped_one_loads_beside_its_prompt_set(tmp_path):
    """A backbone of one's own, saved under the shipped backbone's file name
    beside the prompt set tuned on it, is used when the shipped one is not
    the backbone the set was tuned on."""
    from safetensors.torch import save_file

    from napari_avpt.engine import backbone_meta, build_model, create_backbone, load_model
    from napari_avpt.engine.checkpoints import save_prompt_set
    from napari_avpt.model import ModelConfig

    mine = tmp_path / weights.DEFAULT_BACKBONE
    vit = create_backbone(seed=7)
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(mine))
    model, sha = build_model(ModelConfig(method="avpt"), mine)
    prompts = save_prompt_set(tmp_path / "mine.safetensors", model, sha, backbone_meta(mine))
    loaded, meta = load_model(prompts)
    assert meta["backbone_sha256"] == sha
    assert all(torch.equal(a, b) for a, b in zip(loaded.vit.state_dict().values(), vit.state_dict().values()))
