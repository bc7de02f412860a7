"""napari-avpt: anatomy-guided visual prompt tuning (A-VPT) for breast
images, as a napari plugin, a Python library and a command line."""

__version__ = "0.1.0"
