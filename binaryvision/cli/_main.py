"""The ``binaryvision`` command: fit, predict, evaluate and inspect models from a shell.

::

    binaryvision fit data/dragons --out model.bv
    binaryvision predict model.bv new_photos/ --csv predictions.csv
    binaryvision evaluate model.bv data/dragons/valid --json report.json
    binaryvision lr-find data/dragons --plot lr.png
    binaryvision plot model.bv data/dragons/valid --out confidence.png
    binaryvision info model.bv

Exit codes scripts can rely on: 0 success, 1 an error about the data, a file or the
model (``binaryvision: error: ...`` on stderr, no traceback), 2 a usage error (unknown
option, bad value), 130 interrupted. ``--debug`` shows the full traceback instead.
Progress goes to stderr (bars on a terminal, plain lines in logs), results to stdout.
Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas; no
global matplotlib setting is touched.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from typing import TextIO

from ..exceptions import BinaryVisionError
from .arguments import PROG, build_parser

__all__ = ["main"]


# ====================================================================== entry point
def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Print warnings as ``binaryvision: warning: ...`` lines instead of source locations."""
    print(f"{PROG}: warning: {message}", file=file or sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``binaryvision`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit code: 0 success, 1 an error (message on stderr), 2 a usage error,
        130 interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            args.handler(args)
        except KeyboardInterrupt:
            if args.debug:
                raise
            print(f"\n{PROG}: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:  # `binaryvision predict ... | head`: stop quietly
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError):
                pass
            return 1
        except (BinaryVisionError, OSError) as exc:
            if args.debug:
                raise
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 1
    return 0
