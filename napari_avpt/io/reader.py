"""The npe2 reader contribution: `get_reader(path)` -> a reader function.

`get_reader` answers quickly and never raises: None for what this plugin
does not read. A file it claims but cannot decode gives a one-line napari
notification and no layer (napari's "null layer" sentinel), never a
traceback.
"""

from __future__ import annotations

from ..errors import AvptError
from . import can_read, read_path


def get_reader(path):
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    try:
        return read_layers if can_read(path) else None
    except Exception:  # a reader must never break napari's open dialog
        return None


def read_layers(path, stack: bool = False):
    if isinstance(path, (list, tuple)):
        path = path[0]
    try:
        images = read_path(path)
        for image in images:
            for problem in image.meta.pop("folder_warnings", []):
                from napari.utils.notifications import show_warning

                show_warning(f"skipped: {problem}")
        return [image.layer_data() for image in images]
    except AvptError as e:
        from napari.utils.notifications import show_error

        show_error(str(e))
        return [(None,)]
