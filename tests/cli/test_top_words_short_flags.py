"""``top_words`` reads past single-dash words as argparse does.

A word before the subcommand that starts with one dash (``-h``, or a mistyped ``-x``) is
a flag, not the subcommand: the scan must go on to find ``--log-format`` and the command
after it, or a usage error that ``--log-format json`` asked to be JSON comes out as text.
Stopping the scan at the first word not starting with ``--`` passed the whole suite.
"""

from __future__ import annotations

import json

import pytest

from spikestream_client import cli
from spikestream_client.cli import top_words


@pytest.mark.parametrize(
    ("argv", "command", "flags"),
    [
        (["-x", "--log-format", "json", "ls"], "ls", {"--log-format": "json"}),
        (["-h", "--log-level", "debug"], None, {"--log-level": "debug"}),
    ],
)
def test_a_single_dash_word_is_a_flag_not_the_command(
    argv: list[str], command: str | None, flags: dict[str, str]
) -> None:
    """The scan goes past a short flag to the valued flags and the command after it."""
    assert top_words(argv) == (command, flags)


def test_a_usage_error_after_a_short_flag_is_json_when_asked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``spikestream -x --log-format json ls``: the unknown ``-x`` is refused as one JSON
    record on stderr, as every usage error under ``--log-format json``."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["-x", "--log-format", "json", "ls"])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    record = json.loads(line)
    assert record["level"] == "error"
    assert "-x" in record["msg"]
