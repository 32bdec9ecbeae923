"""Plugins that fail in other ways than a missing module still cannot take the command
down with them.

``tests/cli/test_plugins.py`` covers a plugin whose module is gone
(``ModuleNotFoundError``) only. ``make_parser`` promises the same for any failure to
load a command module: one that raises something else while it is imported (a
``RuntimeError``, a ``SyntaxError``), or one that imports but has no ``add_parser(sub)``.
Narrowing its ``except Exception`` to ``ImportError``, or dropping the ``add_parser``
check, passed the whole suite.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spikestream_client import cli
from tests.cli.plugins import install_plugins

_SOURCES = {
    # name -> (module source, the error the user is told of)
    "raising": ("raise RuntimeError('the plugin is broken')\n", "RuntimeError"),
    "syntax": ("def add_parser(sub):\n    return (\n", "SyntaxError"),
    "partial": ("SUMMARY = 'has no add_parser'\n", "AttributeError"),
}


@pytest.fixture
def bad_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's own commands plus three installed plugins that fail to load: one
    raises on import, one is not valid Python, one has no ``add_parser``."""
    sources = {name: source for name, (source, _) in _SOURCES.items()}
    install_plugins(tmp_path, monkeypatch, "spikestream_bad_plugins", sources)


@pytest.mark.usefixtures("bad_plugins")
def test_help_lists_the_working_commands_beside_plugins_that_fail_to_load(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``spikestream --help`` lists the working commands and says which plugins failed,
    whatever each one's failure was: exit status 0, no traceback."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    for name in ("feed", "monitor", "record", "ls", *_SOURCES):
        assert name in out
    for _, error in _SOURCES.values():
        assert f"could not be loaded: {error}" in " ".join(out.split())


@pytest.mark.usefixtures("bad_plugins")
@pytest.mark.parametrize("name", sorted(_SOURCES))
@pytest.mark.parametrize("json_format", [False, True])
def test_naming_a_plugin_that_fails_to_load_is_one_line(
    name: str, json_format: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """Naming such a command is one error line naming its module and its error (a JSON
    record under ``--log-format json``), exit status 2, never a traceback."""
    argv = ["--log-format", "json", name] if json_format else [name]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = err.strip().splitlines()  # one line, no usage before it
    assert f"spikestream_bad_plugins.{name}" in line
    assert f"could not be loaded: {_SOURCES[name][1]}" in line
    if json_format:
        assert json.loads(line)["level"] == "error"


def test_a_summary_that_is_not_text_lists_the_command_by_its_own_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plugin whose ``SUMMARY`` is not a string is listed through its own parser (its
    ``add_parser``'s help) rather than taking ``--help`` down with it."""
    source = (
        "SUMMARY = 3\n"
        "def add_parser(sub):\n"
        "    sub.add_parser('odd', help='an odd plugin').set_defaults(func=lambda a: 0)\n"
    )
    install_plugins(tmp_path, monkeypatch, "spikestream_odd_plugin", {"odd": source})
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    assert "an odd plugin" in capsys.readouterr().out
