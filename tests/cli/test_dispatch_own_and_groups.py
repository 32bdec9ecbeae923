"""The dispatcher's ``own`` commands, and task groups that mix a user error with a bug.

``python -m spikestream`` passes its commands as ``own`` so that they work from a source
tree with no entry point installed. ``test_plugins.py`` checks that ``run --help`` then
prints *a* usage line, which a summary-only parser (no flags, no ``func``) prints too:
``_main`` not counting ``own`` commands as known passed the suite, though every real use
(``python -m spikestream run x.toml``) then broke.

A task group that holds a user error *and* a programming error must not be turned into
exit status 2: the bug would vanish. ``_main`` re-raising only when no user error matched
passed the suite.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from spikestream_client import cli
from tests.cli.plugins import install_plugins

_PLUGIN = """
import argparse

from spikestream_client.errors import SpikestreamError


def _run(args: argparse.Namespace) -> int:
    raise ExceptionGroup(
        "tasks", [SpikestreamError("bad credentials"), RuntimeError("a bug")]
    )


def add_parser(sub) -> None:
    p = sub.add_parser("mixed", help="fails with a mixed group")
    p.set_defaults(func=_run)
"""


def test_own_commands_get_their_full_parser_without_installed_metadata(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no entry point installed, ``python -m spikestream run --help`` shows run's
    own flags (its full parser, with ``func``), not a summary-only parser."""
    import spikestream.cli

    monkeypatch.setattr(cli, "commands", lambda: dict(cli._BUILTIN))
    with pytest.raises(SystemExit) as exit_info:
        spikestream.cli.main(["run", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--duration" in out
    parsed = cli.make_parser("run", own=spikestream.cli.COMMANDS).parse_args(
        ["run", "x.toml", "--duration", "1", "--out", "x.npz"]
    )
    assert callable(parsed.func)


def test_a_group_with_a_user_error_and_a_bug_is_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug beside a user error in one task group still ends in a traceback: the user
    error alone must not hide it behind exit status 2."""
    install_plugins(tmp_path, monkeypatch, "spikestream_mixed", {"cmd": _PLUGIN}, {"mixed": "cmd"})
    with pytest.raises(ExceptionGroup) as raised:
        cli.main(["mixed"])
    assert any(isinstance(e, RuntimeError) for e in raised.value.exceptions)
