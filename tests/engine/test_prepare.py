"""Examples prepared in parallel processes are those of one process, in the
same order; batches augmented in worker processes differ between workers
and between epochs."""

import torch

from napari_avpt.engine.batches import batch_loader
from napari_avpt.engine.data import phantom_examples
from napari_avpt.engine.distributed import DistContext
from napari_avpt.engine.prepare import prepare_specs
from napari_avpt.engine.train import TrainConfig, train
from napari_avpt.phantoms.formats import write_dataset

SIZE = 64


def _same(a, b):
    assert [(e.id, e.label, e.modality, e.source, e.group) for e in a] == [
        (e.id, e.label, e.modality, e.source, e.group) for e in b
    ]
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.image, y.image) and torch.equal(x.tissue, y.tissue) and torch.equal(x.lesion, y.lesion)
        assert x.fit == y.fit


def test_examples_prepared_by_several_processes_are_those_of_one(tmp_path, monkeypatch):
    folder = write_dataset("busbra", 7, seed=2, out=tmp_path / "busbra", size=(96, 120))
    specs = [str(folder), "phantoms:MG:2:5"]
    monkeypatch.setenv("NAPARI_AVPT_CACHE", str(tmp_path / "cache"))  # empty: the processes compute
    parallel = prepare_specs(specs, SIZE, seed=1, tissue="anatomy", jobs=2)
    assert list((tmp_path / "cache").rglob("*.safetensors")), "the processes fill the cache as one process would"
    monkeypatch.setenv("NAPARI_AVPT_CACHE", "off")
    serial = prepare_specs(specs, SIZE, seed=1, tissue="anatomy", jobs=1)
    assert len(parallel) == 2 and len(parallel[0]) >= 7 and parallel[1]
    for a, b in zip(parallel, serial, strict=True):
        _same(a, b)


def test_batches_augmented_in_worker_processes_differ_and_train():
    # One view, eight times: whatever differs between items is augmentation.
    examples = phantom_examples("US", 8, seed=4, size=SIZE)
    same = [examples[0]] * 8
    cfg = TrainConfig(batch_size=2, workers=2, balance_modalities=False)
    loader = batch_loader(same, cfg, DistContext())
    epochs = [[b["image"] for b in loader] for _ in range(2)]
    assert len(epochs[0]) == 4
    # the two workers' streams are not copies of each other (batch 0 is
    # worker 0's, batch 1 worker 1's; forked unseeded, they would be equal)
    assert not torch.equal(epochs[0][0], epochs[0][1])
    # and a worker's stream goes on in the next epoch rather than starting again
    assert not torch.equal(epochs[0][0], epochs[1][0])

    from napari_avpt.engine import build_model
    from napari_avpt.model import ModelConfig

    model, _ = build_model(ModelConfig(method="avpt", img_size=SIZE))
    result = train(model, examples, TrainConfig(epochs=1, batch_size=4, workers=2), val_examples=examples[:2])
    assert result.status == "finished" and result.history
