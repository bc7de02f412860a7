"""The A-VPT model and its baselines: tensors in, tensors out, no files."""

from .config import METHODS, ModelConfig


def __getattr__(name):
    # The model itself imports torch and timm: loaded when first asked for, so
    # that the configuration (methods, modality names) is light to import.
    if name in ("AVPT", "ModelOutput"):
        from . import avpt

        return getattr(avpt, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["AVPT", "METHODS", "ModelConfig", "ModelOutput"]
