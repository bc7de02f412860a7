"""What the model computes is unchanged by reorganising its code: every
method, and the shipped default loaded from its file, against outputs saved
before (tests/model/golden.py says how they were made)."""

import pytest
import torch
from safetensors.torch import load_file

from .golden import GOLDEN, default_outputs, outputs


@pytest.fixture(scope="module")
def saved():
    return load_file(str(GOLDEN))


def test_every_method_computes_what_it_did(saved):
    now = outputs()
    assert set(now) == {k for k in saved if not k.startswith("default/")}
    for key, value in now.items():
        assert torch.allclose(value, saved[key], atol=1e-5, rtol=1e-4), key


def test_the_shipped_default_computes_what_it_did(saved):
    for key, value in default_outputs().items():
        assert torch.allclose(value, saved[key], atol=1e-4, rtol=1e-4), key
