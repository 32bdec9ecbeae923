"""Two distributions registering one command name: the first on ``sys.path`` wins, as
before, but no longer silently.

A user who installed two plugins that both chose ``viz`` got one of them, with nothing
saying the other was installed and ignored; a plugin naming one of the client's own
commands (``feed``) was ignored the same way. ``spikestream --help`` now names each
ignored registration, and running a command registered twice logs which module ran and
which was ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from spikestream_client import cli

PLUGIN = """
SUMMARY = "draw the {which} way"


def add_parser(sub):
    parser = sub.add_parser("viz", help=SUMMARY)
    parser.set_defaults(func=lambda args: print("ran {which}") or 0)
"""


def _entry(name: str, value: str, dist: str | None) -> SimpleNamespace:
    """An entry point as ``importlib.metadata.entry_points`` gives it (name, value, dist)."""
    return SimpleNamespace(
        name=name, value=value, dist=None if dist is None else SimpleNamespace(name=dist)
    )


@pytest.fixture
def conflicting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Two plugin distributions that both register ``viz`` (the first also twice, as one
    distribution seen twice on sys.path), and the second also ``feed``."""
    package = tmp_path / "vizplugins"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for which in ("first", "second"):
        (package / f"{which}.py").write_text(PLUGIN.format(which=which))
    monkeypatch.syspath_prepend(str(tmp_path))
    entries = [
        _entry("viz", "vizplugins.first", "viz-first"),
        _entry("viz", "vizplugins.second", "viz-second"),
        _entry("viz", "vizplugins.first", "viz-first"),
        _entry("feed", "vizplugins.second", None),
    ]

    def entry_points(group: str) -> list[SimpleNamespace]:
        return entries if group == cli.ENTRY_POINT_GROUP else []

    monkeypatch.setattr("importlib.metadata.entry_points", entry_points)
    cli._registered.cache_clear()
    yield
    cli._registered.cache_clear()


@pytest.mark.usefixtures("conflicting")
def test_help_names_each_registration_that_was_ignored(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps the epilog
    assert "draw the first way" in out
    assert "draw the second way" not in out
    assert "Registered more than once, the first one kept:" in out
    assert "'viz' also by viz-second (vizplugins.second) (ignored)" in out
    assert "'feed' also by vizplugins.second (ignored)" in out  # no distribution known
    assert "viz-first (vizplugins.first)" not in out  # the same module twice: no conflict


@pytest.mark.usefixtures("conflicting")
def test_running_a_command_registered_twice_says_which_ran(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["viz"]) == 0
    out, err = capsys.readouterr()
    assert out == "ran first\n"
    assert "the command 'viz' is registered more than once" in err
    assert "running vizplugins.first, ignoring viz-second (vizplugins.second)" in err


def test_without_conflicts_help_and_commands_say_nothing_of_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One registration per name: no epilog, and the plugin runs without a warning."""
    package = tmp_path / "vizonly"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "only.py").write_text(PLUGIN.format(which="only"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(
        "importlib.metadata.entry_points",
        lambda group: [_entry("viz", "vizonly.only", "viz-only")],
    )
    cli._registered.cache_clear()
    try:
        assert cli.ignored_registrations() == {}
        assert cli.main(["viz"]) == 0
        assert capsys.readouterr() == ("ran only\n", "")
        with pytest.raises(SystemExit):
            cli.main(["--help"])
        assert "Registered more than once" not in capsys.readouterr().out
    finally:
        cli._registered.cache_clear()


@pytest.mark.usefixtures("conflicting")
def test_the_callers_own_command_wins_in_help_as_when_it_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``python -m spikestream`` passes the service's commands as ``own``, which dispatch
    runs whatever is installed: ``--help`` lists the same module, and names the installed
    registrations of that name as the ignored ones (it listed the first installed and
    named the own one ignored)."""
    own = {"viz": "vizplugins.second"}
    with pytest.raises(SystemExit):
        cli.main(["--help"], own=own)
    out = " ".join(capsys.readouterr().out.split())
    assert "draw the second way" in out
    assert "draw the first way" not in out
    assert "'viz' also by viz-first (vizplugins.first) (ignored)" in out
    assert "viz-second" not in out
    assert cli.main(["viz"], own=own) == 0
    assert capsys.readouterr() == ("ran second\n", "")
