"""The `napari-avpt` command line.

Errors the user can fix are printed on one line and exit with code 2,
checked before any work starts where they can be. A batch (`segment` of
several inputs) goes on past an input that fails and exits 2 at the end,
after a summary line. SIGTERM unwinds like Ctrl-C: nothing half-written is
left behind.
"""

from __future__ import annotations

import signal
import sys

from ..errors import AvptError
from ..io.files import Terminated, handle_termination
from .parser import build_parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # as typed: what a saved benchmark run records
    previous = {}
    try:
        previous = handle_termination()
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
    finally:
        # A signal that comes once the work is done (the process exiting)
        # ends it as the system would, not with an exception no one catches.
        for sig, handler in previous.items():
            signal.signal(sig, handler)


__all__ = ["build_parser", "main"]
