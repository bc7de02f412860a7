"""Keep triton out of the imports of torch and timm (engine/__init__.py says why)."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager


@contextmanager
def without_triton():
    """While inside, `import triton` fails (a None entry in sys.modules);
    afterwards the entry is removed again, so the rest of the process sees
    the world as it was."""
    if "triton" in sys.modules or os.environ.get("NAPARI_AVPT_ALLOW_TRITON") == "1":
        yield
        return
    sys.modules["triton"] = None
    try:
        yield
    finally:
        if "triton" in sys.modules and sys.modules["triton"] is None:
            del sys.modules["triton"]
