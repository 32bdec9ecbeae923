"""How the dispatcher reports a command's failure: the message cleaned and cut, the
error's type under ``--log-format json``, every user error of a nested task group, and
Ctrl-C's exit status; and how it names the closest flag to a misspelt one.

Cutting a line one character later, saying the whole length as the part cut, printing
escape sequences raw, naming every error ``Error`` in the JSON record, reporting only the
first error of a group (or none of a nested one), exiting 1 on Ctrl-C, or naming only
one of two close flags all passed the suite.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from spikestream_client import __version__, cli
from spikestream_client.cli import ERROR_LINE_LIMIT, error_text, unknown_arguments
from tests.cli.plugins import install_plugins

_PLUGIN = """
import argparse

from spikestream_client.errors import ConfigError, TransportError


def _run(args: argparse.Namespace) -> int:
    if args.how == "config":
        raise ConfigError("bad \\x1b[2Jvalue")
    if args.how == "group":
        raise ExceptionGroup(
            "tasks",
            [
                TransportError("first broker refused"),
                ExceptionGroup("inner", [ConfigError("nested refusal")]),
            ],
        )
    raise KeyboardInterrupt


def add_parser(sub) -> None:
    p = sub.add_parser("fails", help="fails as asked")
    p.add_argument("how")
    p.set_defaults(func=_run)
"""


@pytest.fixture
def failing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed command ``fails HOW`` that raises what ``HOW`` names."""
    install_plugins(
        tmp_path, monkeypatch, "spikestream_failing", {"cmd": _PLUGIN}, {"fails": "cmd"}
    )


def test_error_text_escapes_each_line_and_cuts_past_the_limit() -> None:
    """A line of exactly the limit is shown whole; one character more is cut, saying
    how many characters were left out; control characters are escaped line by line."""
    whole = "x" * ERROR_LINE_LIMIT
    assert error_text(ValueError(whole)) == whole
    assert error_text(ValueError(whole + "y")) == f"{whole} ... (1 more characters)"
    # A hostile file's 100,000-character key is shown in its first 1000 characters.
    assert error_text(ValueError("k" * 100_000)) == "k" * 1000 + " ... (99000 more characters)"
    shown = error_text(ValueError("bad \x1b[2Jname\nsecond\u202eline"))
    assert "\x1b" not in shown
    assert "\u202e" not in shown
    assert shown.splitlines()[0] == "bad \\x1b[2Jname"


@pytest.mark.usefixtures("failing")
def test_a_user_error_is_one_clean_line_or_one_record_naming_its_type(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Text: ``spikestream CMD: error: MESSAGE``, escaped. JSON: the record names the
    command and the error's own type (what a log collector filters on)."""
    assert cli.main(["fails", "config"]) == 2
    assert capsys.readouterr().err == "spikestream fails: error: bad \\x1b[2Jvalue\n"
    assert cli.main(["--log-format", "json", "fails", "config"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    record = json.loads(line)
    assert (record["command"], record["error"]) == ("fails", "ConfigError")
    assert record["msg"] == "bad \\x1b[2Jvalue"


@pytest.mark.usefixtures("failing")
def test_every_user_error_of_a_nested_group_is_said(capsys: pytest.CaptureFixture[str]) -> None:
    """A task group's user errors, nested groups included, are each one line: none is
    lost behind the first."""
    assert cli.main(["fails", "group"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "spikestream fails: error: first broker refused",
        "spikestream fails: error: nested refusal",
    ]


@pytest.mark.usefixtures("failing")
def test_ctrl_c_exits_130() -> None:
    """Ctrl-C ends the command with the shell's status for SIGINT (128 + 2), no
    traceback, so a script can tell an interruption from a failure."""
    assert cli.main(["fails", "interrupt"]) == 130


def test_a_misspelt_flag_names_every_close_flag() -> None:
    """Two flags close to the word are both named; a shorter, less close word (over the
    0.6 similarity the hint needs) is still matched; a positional word gets no hint."""
    p = argparse.ArgumentParser()
    p.add_argument("--count")
    p.add_argument("--counts")
    p.add_argument("--broker")
    assert unknown_arguments(["--coun"], p) == (
        "unrecognized arguments: --coun; did you mean --count or --counts?"
    )
    assert unknown_arguments(["--bro=x"], p) == (
        "unrecognized arguments: --bro=x; did you mean --broker?"
    )
    assert unknown_arguments(["count"], p) == "unrecognized arguments: count"


def test_commands_outside_the_known_order_are_listed_after_it_sorted() -> None:
    """``--help`` lists run, serve, feed... first, in their order, and any other
    command (a plugin's) after them, by name."""
    found = cli._ordered({"zeta": "z", "feed": "f", "alpha": "a"}, {"run": "r", "feed": "x"})
    assert list(found) == ["run", "feed", "alpha", "zeta"]
    assert found["feed"] == "f"  # the first naming a command wins


def test_version_says_when_only_the_client_is_installed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the service distribution, ``--version`` says so rather than naming the
    client's version alone (which reads like the service's)."""
    import importlib.metadata

    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"spikestream {__version__} (client only)\n"


def test_the_first_registration_of_a_name_wins_and_never_over_the_clients_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A plugin that registers ``feed`` does not replace the client's ``feed``, and of
    two plugins registering one name the first on ``sys.path`` is run; the others are
    reported as ignored."""
    import importlib.metadata

    group = cli.ENTRY_POINT_GROUP
    eps = [
        importlib.metadata.EntryPoint("feed", "evil.feed", group),
        importlib.metadata.EntryPoint("extra", "first.extra", group),
        importlib.metadata.EntryPoint("extra", "second.extra", group),
    ]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: eps)
    found, registrations = cli._registered.__wrapped__()
    assert found["feed"] == cli._BUILTIN["feed"]
    assert found["extra"] == "first.extra"
    assert registrations["extra"] == [
        ("first.extra", "first.extra"),
        ("second.extra", "second.extra"),
    ]
