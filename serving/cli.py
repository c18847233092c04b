"""The ``tiecast`` command line.

Each subcommand lives in its own private module (``serving/_cmd_*.py``) that exposes
``register(subparsers)``; this module only assembles them and turns every :class:`TiecastError` into a
one-paragraph message and exit status 1 (no traceback for bad input).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from features import TiecastError

# Modules providing subcommands, in the order `tiecast --help` lists them.
_COMMAND_MODULES = (
    "serving._cmd_data",
    "serving._cmd_features",
    "serving._cmd_train",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="tiecast",
        description="Inter-city tie indices, leak-free panel features and population/income forecasts "
        "for Korean si-gun-gu or any region set that follows the dataset contract.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # LightGBM/OpenMP threads spin-wait by default and stall when another process holds a core.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
    except TiecastError as exc:
        print(f"tiecast {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
