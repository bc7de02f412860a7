"""Prepared examples are cached on disk, keyed by content and settings;
strong augmentation moves image, tissue and lesion together."""

import numpy as np
import pytest
import torch

from napari_avpt.engine import example_cache
from napari_avpt.engine.data import ExampleDataset, _geometric, dataset_examples
from napari_avpt.phantoms.formats import write_dataset


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(example_cache.ENV, str(folder))
    return folder


def _dataset(tmp_path):
    from napari_avpt.io.datasets import open_dataset

    return open_dataset(write_dataset("busbra", 4, seed=7, out=tmp_path / "BUSBRA", size=(96, 120)))


def test_second_run_reads_the_cache_and_gets_the_same_examples(tmp_path, cache, monkeypatch):
    dataset = _dataset(tmp_path)
    seen = []
    first = dataset_examples(dataset, 64, tissue="anatomy", progress=lambda p: seen.append((p.done, p.total)))
    assert seen == [(1, 2), (2, 2)]
    assert len(list(cache.rglob("*.safetensors"))) == 2  # one file per image
    import napari_avpt.engine.data as data

    def fail(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(data, "make_examples", fail)
    second = dataset_examples(dataset, 64, tissue="anatomy")
    assert [e.id for e in second] == [e.id for e in first]
    for a, b in zip(first, second):
        assert torch.equal(a.image, b.image) and torch.equal(a.tissue, b.tissue) and torch.equal(a.lesion, b.lesion)
        assert (a.label, a.modality, a.group, a.source, a.fit) == (b.label, b.modality, b.group, b.source, b.fit)
    # another input size is another key: computed, not served
    with pytest.raises(AssertionError, match="recomputed"):
        dataset_examples(dataset, 32, tissue="anatomy")


def test_the_key_follows_content_and_a_damaged_entry_is_recomputed(tmp_path, cache):
    a = np.zeros((8, 8), np.uint8)
    b = a.copy()
    b[3, 3] = 1
    settings = {"size": 64}
    assert example_cache.example_key([a], settings) != example_key_of(b, settings)
    assert example_cache.example_key([a], settings) != example_cache.example_key([a], {"size": 32})
    dataset = _dataset(tmp_path)
    dataset_examples(dataset, 64, tissue="anatomy")
    for path in cache.rglob("*.safetensors"):
        path.write_bytes(b"not a safetensors file")
    again = dataset_examples(dataset, 64, tissue="anatomy")
    assert len(again) >= 2 and all(e.image.shape == (1, 64, 64) for e in again)


def example_key_of(array, settings):
    return example_cache.example_key([array], settings)


def test_cache_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv(example_cache.ENV, "off")
    assert example_cache.cache_dir() is None
    examples = dataset_examples(_dataset(tmp_path), 64, tissue="anatomy")
    assert examples and not list(tmp_path.rglob("*.safetensors"))


def test_geometric_augmentation_moves_lesion_with_the_image():
    image = torch.zeros(1, 64, 64)
    image[0, 20:36, 24:44] = 1.0
    tissue = image.expand(3, -1, -1).clone()
    lesion = image.clone()
    rng = np.random.default_rng(3)
    moved = 0
    for _ in range(10):
        im, ti, le = _geometric(image, tissue, lesion, rng)
        assert torch.equal(le, (im > 0.5).float())  # the lesion is where the bright square went
        assert torch.allclose(ti[0], im[0], atol=1e-6)
        moved += not torch.equal(le, lesion)
    assert moved >= 9


def test_strong_augmentation_changes_images_and_keeps_their_range(tmp_path):
    examples = dataset_examples(_dataset(tmp_path), 64, tissue="anatomy")
    light = ExampleDataset(examples, augment=True, seed=0)
    strong = ExampleDataset(examples, augment=True, seed=0, strong=True)
    a, b = light[0], strong[0]
    assert a["image"].shape == b["image"].shape == (3, 64, 64)
    assert not torch.equal(a["image"], b["image"])
    assert b["image"].min() >= (0 - 0.5) / 0.25 - 1e-5 and b["image"].max() <= (1 - 0.5) / 0.25 + 1e-5
    assert set(b["lesion"].unique().tolist()) <= {0.0, 1.0}
