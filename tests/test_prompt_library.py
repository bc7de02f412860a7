import pytest

from napari_avpt.engine import backbone_meta, build_model, prompt_library
from napari_avpt.engine.checkpoints import read_metadata, save_prompt_set
from napari_avpt.errors import AvptError
from napari_avpt.model import ModelConfig


@pytest.fixture
def library(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_AVPT_PROMPTS_DIR", str(tmp_path / "lib"))
    return tmp_path / "lib"


@pytest.fixture
def prompt_file(tmp_path):
    model, sha = build_model(ModelConfig(method="avpt", img_size=64))
    return save_prompt_set(tmp_path / "shared set.safetensors", model, sha, backbone_meta(None, 0))


def test_import_list_export(library, prompt_file, tmp_path):
    imported = prompt_library.import_prompt_set(prompt_file, "Colleague's set!")
    assert imported.parent == library and imported.name == "Colleague_s set.safetensors"
    assert ("Colleague_s set", imported) in prompt_library.list_prompt_sets()
    exported = prompt_library.export_prompt_set(imported, tmp_path / "out" / "for_bob")
    assert exported.suffix == ".safetensors" and read_metadata(exported)["method"] == "avpt"
    with pytest.raises(AvptError, match="already exists"):
        prompt_library.import_prompt_set(prompt_file, "Colleague's set!")


def test_import_refuses_what_is_not_a_prompt_set(library, tmp_path):
    junk = tmp_path / "weights.safetensors"
    junk.write_bytes(b"\x80\x04\x95 a pickle pretending")
    with pytest.raises(AvptError, match="not a safetensors prompt set"):
        prompt_library.import_prompt_set(junk)
    assert not any(library.glob("*.safetensors"))
    with pytest.raises(AvptError, match="give the prompt set a name"):
        prompt_library.safe_name(" ./ ")
