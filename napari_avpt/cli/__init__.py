"""The `napari-avpt` command line.

Errors the user can fix are printed on one line and exit with code 2,
checked before any work starts where they can be. A batch (`segment` of
several inputs) goes on past an input that fails and exits 2 at the end,
after a summary line. SIGTERM unwinds like Ctrl-C: nothing half-written is
left behind.
"""

from __future__ import annotations

import sys

from ..errors import AvptError
from ..io.files import Terminated, handle_termination
from .parser import build_parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # as typed: what a saved benchmark run records
    handle_termination()
    try:
        return args.func(args)
    except AvptError as e:
        print(f"napari-avpt: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("napari-avpt: interrupted", file=sys.stderr)
        return 130
    except Terminated as e:
        print("napari-avpt: terminated", file=sys.stderr)
        return int(e.code)


__all__ = ["build_parser", "main"]
