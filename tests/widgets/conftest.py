import pytest

from napari_avpt.engine import backbone_meta, build_model
from napari_avpt.engine.checkpoints import save_prompt_set
from napari_avpt.model import ModelConfig


@pytest.fixture(autouse=True)
def _workers_finish_within_their_test():
    """The docks load models in background workers (napari's thread pool):
    each test waits for its own, so that none runs on into the next test."""
    yield
    from qtpy.QtCore import QThreadPool

    QThreadPool.globalInstance().waitForDone(120_000)


@pytest.fixture
def library(tmp_path, monkeypatch):
    """An empty prompt library of the user's, in a temporary folder."""
    folder = tmp_path / "prompts"
    folder.mkdir()
    monkeypatch.setenv("NAPARI_AVPT_PROMPTS_DIR", str(folder))
    return folder


@pytest.fixture
def prompt_dir(library):
    """The library holding one small untrained A-VPT prompt set, tiny.safetensors."""
    model, sha = build_model(ModelConfig(method="avpt", img_size=64))
    save_prompt_set(library / "tiny.safetensors", model, sha, backbone_meta(None, 0))
    return library
