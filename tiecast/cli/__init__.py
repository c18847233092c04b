"""tiecast.cli: the ``tiecast`` command line, the top layer (it may import every other tiecast package).

Each subcommand lives in its own private module (``tiecast/cli/_cmd_*.py``) that exposes
``register(subparsers)``; this module only assembles them and turns every :class:`TiecastError` into a
one-paragraph message and exit status 1 (no traceback for bad input). Library errors name parameters
(:attr:`ConfigError.parameter`); this is the one place that translates them into option names.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from tiecast.common import ConfigError, TiecastError

# Modules providing subcommands, in the order `tiecast --help` lists them.
_COMMAND_MODULES = (
    "tiecast.cli._cmd_data",
    "tiecast.cli._cmd_features",
    "tiecast.cli._cmd_train",
    "tiecast.cli._cmd_cooperation",
    "tiecast.cli._cmd_report",
    "tiecast.cli._cmd_serve",
    "tiecast.cli._cmd_sweep",
)
# Library parameter -> command-line option, where the option is not simply --<parameter>.
_OPTION_OF = {"targets": "--target", "n_jobs": "--jobs"}

__all__ = ["build_parser", "main"]


def _message(exc: TiecastError) -> str:
    """The error text, with the option that sets the offending parameter."""
    text = str(exc)
    if isinstance(exc, ConfigError) and exc.parameter:
        option = _OPTION_OF.get(exc.parameter, "--" + exc.parameter.replace("_", "-"))
        text += f" (option {option})"
    return text


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
    # The one place tiecast sets it, before anything loads OpenMP: LightGBM's OpenMP threads spin-wait by default
    # and stall when another process holds a core.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
    except TiecastError as exc:
        print(f"tiecast {args.command}: {_message(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
