"""The ``spikestream`` command: one dispatcher for every subcommand.

The client distribution owns the command and its tools (``feed``, ``monitor``,
``record``, ``ls``). Other distributions add subcommands through the entry-point group
``spikestream.commands``: each entry names a module with ``add_parser(sub)``, which
registers the subcommand and sets ``func``, and optionally a one-line ``SUMMARY`` for the
list of commands (then importing the module should cost little). The service registers
``run``, ``serve`` and ``import`` that way, so installing only the client gives its four
tools, and installing the service adds the rest, without the client ever importing the
service.

User errors (a bad network file, a bad flag, an unreachable broker) print one clear
message and exit with status 2: never a traceback.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn

from spikestream_client import __version__
from spikestream_client.cli.pipes import pipe_safe_streams
from spikestream_client.errors import SpikestreamError
from spikestream_client.logs import one_line, setup_logging

#: The entry-point group through which other distributions add subcommands.
ENTRY_POINT_GROUP = "spikestream.commands"

#: Top-level flags that take a value (so the word after them is not the command).
_VALUED_FLAGS = ("--log-level", "--log-format")


def top_words(argv: Sequence[str]) -> tuple[str | None, dict[str, str | None]]:
    """One scan of the words before the subcommand in ``argv``: the subcommand (the first
    word that is not a top-level flag or its value), or None, and the value of each
    valued top-level flag (:data:`_VALUED_FLAGS`) given there, as argparse reads it
    (``--flag V``, ``--flag=V``, or a unique prefix of the flag). Usage errors come
    before the parse ends, and must know the log format already."""
    values: dict[str, str | None] = {}
    words = iter(argv)
    for word in words:
        if not word.startswith("-"):
            return word, values  # the subcommand: its own flags follow
        name, eq, given = word.partition("=")
        # argparse takes a unique prefix of a flag (--log-l) as the flag itself, and an
        # ambiguous one (--log) as neither.
        matches = [f for f in _VALUED_FLAGS if f.startswith(name)] if name.startswith("--") else []
        if len(matches) == 1:
            values[matches[0]] = given if eq else next(words, None)
    return None, values


def make_parser(
    command: str | None = None,
    *,
    json_errors: bool = False,
    own: Mapping[str, str] | None = None,
) -> argparse.ArgumentParser:
    """The argument parser with every subcommand.

    With ``command``, only that subcommand's parser is built (the others are named so
    parsing is unchanged, but not described): ``serve`` pulls in MQTT, pydantic-settings
    and prometheus-client, and none of that should slow down ``run`` or the clients.
    Without one (``spikestream --help``), each command module that declares a ``SUMMARY``
    is listed with it, and its parser is not built. A command whose module cannot be
    imported (a broken plugin) is listed as such; naming it is a one-line usage error.

    Args:
        own: Commands known without the scan of the installed distributions, beside the
            client's (the service passes its own: ``python -m spikestream``).
    """
    parser = CommandParser(
        prog="spikestream",
        description="Run a spiking neural network in real time over MQTT, or offline.",
    )
    parser.add_argument(
        "--version", action=_Version, nargs=0, help="show the versions installed and exit"
    )
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
        help="text for people (the default), json (one object per line) for log collectors",
    )
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        parser_class=CommandParser,
    )
    # A built-in command needs no scan of the installed distributions' entry points.
    builtin = {**_BUILTIN, **(own or {})}
    # The client's and the caller's own commands win over the installed ones, as they do
    # when dispatched (``python -m spikestream`` names the service's).
    found = {command: builtin[command]} if command in builtin else _ordered(builtin, commands())
    parser.json_errors = json_errors
    for name, module_name in found.items():
        if command is not None and name != command:
            sub.add_parser(name)
            continue
        try:
            module = importlib.import_module(module_name)
            if not callable(getattr(module, "add_parser", None)):
                raise AttributeError(f"module {module_name!r} has no add_parser(sub)")
        except Exception as err:  # another distribution's fault, not the user's
            said = f"could not be loaded: {type(err).__name__}: {err}"
            if name == command:
                refusal = f"the command {name!r} ({module_name}) {said}"
                if json_errors:
                    parser.error(refusal)
                parser.exit(2, f"spikestream: error: {refusal}\n")  # one line, no usage
            sub.add_parser(name, help=f"({said})")
            continue
        summary = getattr(module, "SUMMARY", None)
        if command is None and isinstance(summary, str):
            # The list of commands shows each one's summary only: building every
            # subcommand's flags would import what each command needs (serve's settings
            # alone pull in pydantic-settings and numpy).
            sub.add_parser(name, help=summary)
        else:
            module.add_parser(sub)
    if command is None and (ignored := ignored_registrations(own)):
        parser.epilog = "Registered more than once, the first one kept: " + "; ".join(
            f"{name!r} also by {', '.join(origins)} (ignored)" for name, origins in ignored.items()
        )
    for each in (parser, *sub.choices.values()):
        if isinstance(each, CommandParser):  # a plugin's add_parser may pass its own class
            each.json_errors = json_errors
    return parser


class CommandParser(argparse.ArgumentParser):
    """The command's and each subcommand's parser.

    A subcommand refuses arguments it does not know itself, with its own usage and name,
    and names the closest flags (``--realtime-factr``: did you mean
    ``--realtime-factor``?). argparse left them to the top-level parser, which named
    neither. With ``json_errors`` (``--log-format json``), a usage error is one JSON
    object on stderr, as every other line a log collector reads there.
    """

    json_errors = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras and self.prog != "spikestream":  # the top level's are its subcommand's
            self.error(unknown_arguments(extras, self))
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        """One line, as every other user error: ``serve``'s usage alone is 30 lines, and
        ``--help`` is one word away. (The top level keeps argparse's usage and message in
        text: it lists the commands.)"""
        if self.json_errors:
            setup_logging("info", "json")
            command = self.prog.removeprefix("spikestream").strip() or None
            extra = {"command": command, "error": "ArgumentError"}
            said = f"{message} (see {self.prog} --help)"
            logging.getLogger("spikestream").error(said, extra=extra)
            self.exit(2)
        if self.prog == "spikestream":
            super().error(message)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def unknown_arguments(extras: Sequence[str], parser: argparse.ArgumentParser) -> str:
    """The refusal of ``extras``, naming the closest of ``parser``'s flags to each word
    that looks like a flag."""
    import difflib

    flags = [f for action in parser._actions for f in action.option_strings]
    hints: dict[str, str] = {}
    for word in extras:
        name = word.split("=", 1)[0]
        if name.startswith("-"):
            close = difflib.get_close_matches(name, flags, n=2, cutoff=0.6)
            if close:
                hints[name] = " or ".join(close)
    said = f"unrecognized arguments: {' '.join(extras)}"
    if len(hints) == 1:
        return f"{said}; did you mean {next(iter(hints.values()))}?"
    if hints:
        return f"{said}; did you mean " + ", ".join(f"{c} for {w}" for w, c in hints.items()) + "?"
    return said


#: The client's own subcommands, with the module that defines each.
_BUILTIN = {
    "feed": "spikestream_client.cli.feed",
    "monitor": "spikestream_client.cli.monitor",
    "record": "spikestream_client.cli.record",
    "ls": "spikestream_client.cli.ls",
}
#: The order ``--help`` lists subcommands in; any others follow, sorted.
_ORDER = ("run", "serve", "feed", "monitor", "record", "import", "ls")


def commands() -> dict[str, str]:
    """Every subcommand installed, mapped to the module that defines it: the client's own
    and those registered in the ``spikestream.commands`` entry-point group (read once
    per process: scanning the installed distributions costs tens of ms)."""
    return _registered()[0]


def ignored_registrations(own: Mapping[str, str] | None = None) -> dict[str, tuple[str, ...]]:
    """The registrations that lost a name to another: by command, each ignored one as
    ``distribution (module)``. The client's own names, and ``own`` (the caller's, as
    :func:`make_parser` takes them), cannot be taken; between distributions the first one
    on ``sys.path`` wins, which a user installing two plugins that chose the same name
    would not otherwise learn."""
    kept = {**_BUILTIN, **(own or {})}
    ignored: dict[str, tuple[str, ...]] = {}
    for name, registrations in _registered()[1].items():
        winner = kept.get(name, registrations[0][1])
        # The same module twice (one distribution seen twice on sys.path) is no conflict.
        lost = tuple(dict.fromkeys(origin for origin, value in registrations if value != winner))
        if lost:
            ignored[name] = lost
    return ignored


@functools.cache
def _registered() -> tuple[dict[str, str], dict[str, list[tuple[str, str]]]]:
    """The installed commands (the client's own first), and every registration of each
    name in the entry-point group, in ``sys.path`` order: ``(distribution (module),
    module)``."""
    from importlib.metadata import entry_points

    found = dict(_BUILTIN)
    registrations: dict[str, list[tuple[str, str]]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
        origin = f"{ep.dist.name} ({ep.value})" if ep.dist is not None else ep.value
        registrations.setdefault(ep.name, []).append((origin, ep.value))
    return _ordered(found), registrations


def _ordered(*founds: Mapping[str, str]) -> dict[str, str]:
    """The commands of ``founds`` (the first naming each wins), in ``--help``'s order."""
    found: dict[str, str] = {}
    for each in founds:
        for name, module_name in each.items():
            found.setdefault(name, module_name)
    rank = {name: i for i, name in enumerate(_ORDER)}
    return dict(sorted(found.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


class _Version(argparse.Action):
    """``--version``: looks the service's version up only when asked."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[object] | None,
        option_string: str | None = None,
    ) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            service = f", service {version('spikestream')}"
        except PackageNotFoundError:
            service = " (client only)"
        print(f"spikestream {__version__}{service}")
        parser.exit()


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


#: Longest line of an error message shown (characters); a hostile file's 100 KB key or
#: path would otherwise be echoed whole.
ERROR_LINE_LIMIT = 1000


def error_text(err: BaseException) -> str:
    """``str(err)`` for the terminal: each line escaped (:func:`one_line`: no escape
    sequences) and cut at :data:`ERROR_LINE_LIMIT` characters, saying how much was cut."""
    lines = []
    for line in str(err).split("\n"):
        text = one_line(line)
        if len(text) > ERROR_LINE_LIMIT:
            cut = len(text) - ERROR_LINE_LIMIT
            text = f"{text[:ERROR_LINE_LIMIT]} ... ({cut} more characters)"
        lines.append(text)
    return "\n".join(lines)


def _say(args: argparse.Namespace, err: BaseException) -> None:
    """A user error, one line on stderr: text, or with ``--log-format json`` one JSON
    object like every other line a log collector reads there."""
    if getattr(args, "log_format", "text") == "json":
        extra = {"command": args.command, "error": type(err).__name__}
        logging.getLogger("spikestream").error(error_text(err), extra=extra)
    else:
        print(f"spikestream {args.command}: error: {error_text(err)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None, *, own: Mapping[str, str] | None = None) -> int:
    """Entry point of the console script.

    Args:
        argv: The words after the command's name (default: ``sys.argv[1:]``).
        own: Commands known without the scan of the installed distributions, beside the
            client's (see :func:`make_parser`).
    """
    # A reader of our output that goes away (``| head``) must not end the work before
    # its file is written: the lines are a report, the file is the result.
    with pipe_safe_streams():
        return _main(argv, own or {})


def _main(argv: Sequence[str] | None, own: Mapping[str, str]) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    command, flags = top_words(words)
    known = command in _BUILTIN or command in own or command in commands()
    json_errors = flags.get("--log-format") == "json"
    parser = make_parser(command if known else None, json_errors=json_errors, own=own)
    args = parser.parse_args(words)
    setup_logging(args.log_level, args.log_format)
    if command not in _BUILTIN and command not in own:  # a plugin's: scanned already
        for origin in ignored_registrations().get(str(command), ()):
            logging.getLogger("spikestream").warning(
                "the command %r is registered more than once: running %s, ignoring %s",
                command,
                commands()[str(command)],
                origin,
            )
    try:
        code: int = args.func(args)
    except SpikestreamError as err:
        _say(args, err)
        return 2
    except BaseExceptionGroup as group:
        # Errors from tasks arrive wrapped by their TaskGroups; a user error (bad broker
        # credentials, say) is still a user error: one line each, no traceback.
        matched, rest = group.split(SpikestreamError)
        if matched is None or rest is not None:
            raise
        for leaf in _leaves(matched):
            _say(args, leaf)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
