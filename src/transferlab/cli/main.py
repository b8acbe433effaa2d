"""``transferlab`` command line: parses arguments and calls the library, nothing more."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

# Each module registers one or more subcommands: ``register(subparsers)``.
COMMAND_MODULES = [
    "transferlab.cli.train",
    "transferlab.cli.models",
    "transferlab.cli.sweep",
    "transferlab.cli.export",
    "transferlab.cli.serve",
    "transferlab.cli.doctor",
]


class UserError(Exception):
    """An error caused by the user's input: printed without a traceback, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="transferlab",
        description="Adapt ImageNet-pretrained vision models to your own image folder, "
        "and see what transfer learning does.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors printed without a traceback; imported only when one happens (a command that
    needs no torch, like ``models``, never imports it)."""
    from ..data.scan import DataError
    from ..models.weights import WeightsUnavailableError
    from ..runs import RunError
    from ..training.checkpoint import CheckpointError
    from ..training.loop import NonFiniteLossError
    from ..training.tracking import TrackingUnavailableError

    return (UserError, DataError, WeightsUnavailableError, RunError, CheckpointError,
            NonFiniteLossError, FileNotFoundError, ValueError, TrackingUnavailableError)


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", message=".*Tag data larger than file.*")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Exception as exc:
        if not isinstance(exc, _user_errors()):
            raise
        print(f"transferlab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"transferlab {args.command}: interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
