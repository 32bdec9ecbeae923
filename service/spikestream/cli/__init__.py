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

#: Top-level flags that take a value (so the word after them is not the command).
_VALUED_FLAGS = ("--log-level", "--log-format")


def command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is not a top-level flag or
    its value), or None."""
    words = iter(argv)
    for word in words:
        if word in _VALUED_FLAGS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def make_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every subcommand.

    With ``command``, only that subcommand's module is imported (the others are named so
    parsing is unchanged, but not described): ``serve`` pulls in MQTT, pydantic-settings
    and prometheus-client, and none of that should slow down ``run`` or the clients.
    """
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
    for name, module_name in _MODULES.items():
        if command is not None and name != command:
            sub.add_parser(name)
            continue
        module = _optional(module_name)
        if module is not None:
            module.add_parser(sub)
    return parser


#: Every subcommand besides ``run``, with the module under ``spikestream.cli`` that
#: defines it (``import`` is a Python keyword, so its module is ``importer``).
_MODULES = {
    "serve": "serve",
    "feed": "feed",
    "monitor": "monitor",
    "record": "record",
    "import": "importer",
    "ls": "ls",
}
_COMMANDS = ("run", *_MODULES)


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
    words = sys.argv[1:] if argv is None else list(argv)
    command = command_of(words)
    parser = make_parser(command if command in _COMMANDS else None)
    args = parser.parse_args(words)
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
