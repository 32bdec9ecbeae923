"""``top_words`` reads a top-level flag's value as argparse would, ambiguity included."""

from __future__ import annotations

import pytest

from spikestream_client.cli import make_parser, top_words


@pytest.mark.parametrize("flag", ["--log-level", "--log-format"])
def test_an_ambiguous_prefix_gives_no_value(flag: str) -> None:
    """``--log`` is a prefix of two flags: argparse refuses it and takes no value, so
    neither flag has one (the word after it is not read as either's)."""
    assert top_words(["--log", "json", "run"])[1].get(flag) is None
    assert top_words(["--log=json", "run"])[1].get(flag) is None


def test_a_top_level_usage_error_in_text_keeps_argparses_usage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """In text, the top level's usage error keeps argparse's usage line (it lists the
    commands), unlike a subcommand's one-line error."""
    with pytest.raises(SystemExit) as exit_info:
        make_parser().parse_args(["nosuch"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: spikestream ")
    assert "spikestream: error: argument COMMAND: invalid choice: 'nosuch'" in err


@pytest.mark.parametrize(
    ("argv", "command", "flags"),
    [
        (["--log-l", "debug", "run", "x.toml"], "run", {"--log-level": "debug"}),
        (["--log-format=json", "serve"], "serve", {"--log-format": "json"}),
        (["--log", "json", "run"], "json", {}),
        (["--version"], None, {}),
        (["--log-level", "error", "--log-level", "info", "ls"], "ls", {"--log-level": "info"}),
        (["run", "--log-format", "json"], "run", {}),
    ],
)
def test_one_scan_finds_the_command_and_the_top_flags(
    argv: list[str], command: str | None, flags: dict[str, str]
) -> None:
    """The word after a valued flag (or its unique prefix) is its value, not the
    command; an ambiguous prefix takes none; the last of a repeated flag wins, as in
    argparse; a subcommand's own flags are not the top level's."""
    assert top_words(argv) == (command, flags)
