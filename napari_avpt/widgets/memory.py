"""Keep Python's full garbage collections off napari's event loop.

With napari, torch, timm and a loaded model, the process tracks some
640,000 objects; a full collection walks them all and froze the viewer for
420-480 ms while a segmentation's result layers were being added. Those
objects live as long as the process, so once a model is loaded they are
moved to the collector's permanent generation (`gc.freeze`): later full
collections walk only what was made since. Objects are still freed by
reference counting; only reference cycles among the frozen ones would stay.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Exempt every object alive now from later full collections (GUI thread)."""
    gc.freeze()
