"""The A-VPT model and its baselines: tensors in, tensors out, no files."""

from .avpt import AVPT, ModelOutput
from .config import METHODS, ModelConfig

__all__ = ["AVPT", "METHODS", "ModelConfig", "ModelOutput"]
