"""Subcommands from other distributions (the ``spikestream.commands`` entry-point group)
cannot take the command down with them.

One broken third-party plugin (an entry point naming a module that is gone, or that
fails to import) made ``spikestream --help`` and every misspelt command end in a
traceback with exit status 1, listing none of the working commands: the rule of
``spikestream_client.cli`` (user errors are one line and exit status 2, never a
traceback) broke for something the user did not type.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from spikestream_client import cli
from tests.cli.plugins import install_plugins
from tests.structure.imports import ROOT


@pytest.fixture
def broken_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's own commands plus one installed plugin whose module is missing."""
    installed = {**cli._BUILTIN, "broken": "spikestream_no_such_plugin_module.cmd"}
    monkeypatch.setattr(cli, "commands", lambda: installed)


@pytest.mark.usefixtures("broken_plugin")
def test_help_lists_the_working_commands_beside_a_broken_plugin(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``spikestream --help`` still lists feed, monitor, record and ls, and says in one
    line which plugin failed to load, rather than a traceback."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out, err = capsys.readouterr()
    for name in ("feed", "monitor", "record", "ls"):
        assert name in out
    assert "Traceback" not in err
    assert "broken" in out + err


@pytest.mark.usefixtures("broken_plugin")
@pytest.mark.parametrize("argv", [["helo"], ["--log-format", "json", "helo"], []])
def test_a_misspelt_command_is_a_usage_error_beside_a_broken_plugin(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A misspelt (or missing) command is the user's usage error, exit status 2, whatever
    else is installed."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.usefixtures("broken_plugin")
def test_a_builtin_command_runs_beside_a_broken_plugin(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A command that names itself never imports the other commands' modules (this held
    before: it guards the fix)."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["ls", "--help"])
    assert exit_info.value.code == 0
    assert "usage: spikestream ls" in capsys.readouterr().out


@pytest.mark.usefixtures("broken_plugin")
@pytest.mark.parametrize("argv", [["broken"], ["--log-format", "json", "broken"]])
def test_naming_the_broken_plugin_is_one_line_naming_its_module(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The user who names the broken command learns which module failed, in one line
    (JSON under ``--log-format json``), exit status 2."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "spikestream_no_such_plugin_module.cmd" in err
    assert "could not be loaded: ModuleNotFoundError" in err
    (line,) = err.strip().splitlines()  # no usage lines before it
    if "json" in argv:
        assert json.loads(line)["level"] == "error"
    else:
        assert line.startswith("spikestream: error: the command 'broken' (")


def test_the_service_knows_its_own_commands_as_its_entry_points_name_them() -> None:
    """``spikestream.cli.COMMANDS`` (what ``python -m spikestream`` knows without a scan)
    and ``pyproject.toml``'s entry points (what the console script finds) agree."""
    from spikestream.cli import COMMANDS

    table = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert table["project"]["entry-points"]["spikestream.commands"] == COMMANDS


def test_python_m_spikestream_runs_the_services_commands_without_installed_metadata(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """From a source tree on ``PYTHONPATH`` no entry point is installed: the client's
    dispatcher alone does not know ``run``, the service's ``main`` does."""
    import spikestream.cli

    monkeypatch.setattr(cli, "commands", lambda: dict(cli._BUILTIN))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "--help"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'run'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        spikestream.cli.main(["run", "--help"])
    assert exit_info.value.code == 0
    assert "usage: spikestream run" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        spikestream.cli.main(["--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert all(name in out for name in ("run", "serve", "import", "feed", "ls"))


def test_the_documented_plugin_works_as_docs_extending_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/EXTENDING.md's example subcommand, as written there, registers, runs, logs
    its info line under ``--log-format json`` and turns its user error into one line."""
    text = (ROOT / "docs" / "EXTENDING.md").read_text()
    source = text.split("```python\n", 1)[1].split("```", 1)[0]
    install_plugins(tmp_path, monkeypatch, "spikestream_hello", {"cmd": source}, {"hello": "cmd"})
    assert cli.main(["--log-format", "json", "hello", "--count", "2"]) == 0
    (line,) = capsys.readouterr().err.strip().splitlines()
    record = json.loads(line)
    assert (record["msg"], record["count"]) == ("hello", 2)
    assert cli.main(["hello", "--count", "0"]) == 2
    err = capsys.readouterr().err
    assert err == "spikestream hello: error: --count must be at least 1, not 0\n"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["hello", "--cout", "2"])
    assert exit_info.value.code == 2
    assert "did you mean --count?" in capsys.readouterr().err


def test_python_m_spikestream_client_is_the_command() -> None:
    """A client-only install has ``python -m spikestream_client`` (as the service has
    ``python -m spikestream``): the same dispatcher, its exit status passed on."""
    listed = subprocess.run(
        [sys.executable, "-m", "spikestream_client", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert all(name in listed.stdout for name in ("feed", "monitor", "record", "ls"))
    refused = subprocess.run(
        [sys.executable, "-m", "spikestream_client", "ls", "--nosuch"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert refused.stderr.startswith("spikestream ls: error: unrecognized arguments: --nosuch")
