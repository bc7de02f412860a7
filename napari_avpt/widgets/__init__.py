"""napari dock widgets. Thin: layers in, a call into the library, layers out."""
