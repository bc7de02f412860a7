"""The one user-facing error type of napari-avpt.

It carries a message a radiologist can act on. The command line prints it on
one line and exits with code 2; the widgets and readers show it as a napari
notification. Anything else that escapes is a bug.
"""


class AvptError(Exception):
    """A problem with the user's input (file, layer, settings), explained."""
