"""The ``spikestream`` command: ``serve``, ``run``, ``feed``, ``monitor``, ``record``,
``import`` and ``ls``.

User errors (a bad network file, a bad flag, an unreachable broker) print one clear
message and exit with status 2: never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from spikestream import __version__
from spikestream.cli import run
from spikestream.cli.logs import setup_logging
from spikestream.errors import SpikestreamError


def make_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="spikestream",
        description="Run a spiking neural network in real time over MQTT, or offline.",
    )
    parser.add_argument("--version", action="version", version=f"spikestream {__version__}")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="log level (default: info)",
    )
    parser.add_argument(
        "--log-format",
        default="text",
        choices=("text", "json"),
        help="text for people, json (one object per line) for log collectors",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run.add_parser(sub)
    for name in ("serve", "feed", "monitor", "record", "importer", "ls"):
        module = _optional(name)
        if module is not None:
            module.add_parser(sub)
    return parser


def _optional(name: str) -> ModuleType | None:
    import importlib

    try:
        return importlib.import_module(f"spikestream.cli.{name}")
    except ModuleNotFoundError as err:
        if err.name == f"spikestream.cli.{name}":
            return None
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = make_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    try:
        code: int = args.func(args)
    except SpikestreamError as err:
        print(f"spikestream {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BaseExceptionGroup as group:
        # Errors from tasks arrive wrapped by their TaskGroups; a user error (bad broker
        # credentials, say) is still a user error: one line each, no traceback.
        matched, rest = group.split(SpikestreamError)
        if matched is None or rest is not None:
            raise
        for leaf in _leaves(matched):
            print(f"spikestream {args.command}: error: {leaf}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout was closed early (e.g. piped into head): not an error worth a traceback.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
