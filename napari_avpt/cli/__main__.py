"""`python -m napari_avpt.cli`."""

from . import main

raise SystemExit(main())
