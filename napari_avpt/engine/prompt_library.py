"""The user's prompt sets: where they are kept, listing, import and export.

Tuned prompt sets live in the user's data folder (`prompts/` under
platformdirs' user data dir for napari-avpt, or `$NAPARI_AVPT_PROMPTS_DIR`),
so the Segment widget can offer them at once and nothing is written into the
current directory. The shipped default set comes first in the list.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import AvptError
from ..io.files import copy_atomic
from ..io.weights import default_prompts
from .checkpoints import read_metadata

DEFAULT_LABEL = "default (shipped)"


def user_prompt_dir(create: bool = True) -> Path:
    if os.environ.get("NAPARI_AVPT_PROMPTS_DIR"):
        folder = Path(os.environ["NAPARI_AVPT_PROMPTS_DIR"])
    else:
        from platformdirs import user_data_dir

        folder = Path(user_data_dir("napari-avpt")) / "prompts"
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def list_prompt_sets() -> list[tuple[str, Path]]:
    """(label, path) of every usable prompt set, the shipped default first."""
    out = []
    try:
        default = default_prompts()
    except AvptError:
        default = None  # a damaged shipped file is reported when it is used, not while listing
    if default is not None:
        out.append((DEFAULT_LABEL, default))
    folder = user_prompt_dir(create=False)
    if folder.is_dir():
        for path in sorted(folder.glob("*.safetensors")):
            if path.name.endswith(".final.safetensors"):
                continue
            out.append((path.stem, path))
    return out


def safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._ -]+", "_", name).strip(" ._")
    if not cleaned:
        raise AvptError("give the prompt set a name (letters, digits, spaces, - or _)")
    return cleaned


def import_prompt_set(source: str | os.PathLike, name: str | None = None) -> Path:
    """Copy a prompt set file (checked: a real napari-avpt prompt set) into
    the user's folder; an existing set of the same name is not overwritten."""
    source = Path(source)
    read_metadata(source)  # raises AvptError for anything else
    target = user_prompt_dir() / f"{safe_name(name or source.stem)}.safetensors"
    if target.exists():
        raise AvptError(f"a prompt set named {target.stem!r} already exists; choose another name")
    copy_atomic(source, target)
    return target


def export_prompt_set(path: str | os.PathLike, destination: str | os.PathLike) -> Path:
    destination = Path(destination)
    if destination.suffix != ".safetensors":
        destination = destination.with_suffix(".safetensors")
    copy_atomic(path, destination)
    return destination
