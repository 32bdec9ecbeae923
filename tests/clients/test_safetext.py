"""Bus text made safe for a terminal: escape sequences and non-printables removed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.text import Text

from spikestream_client.safetext import printable, safe_text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain name", "plain name"),
        ("a\x1b[2Jb", "ab"),  # CSI: clear screen
        ("a\x1b[38;5;196mb\x1b[0m", "ab"),  # CSI: colours
        ("a\x1b]0;title\x07b", "ab"),  # OSC: window title, ended by BEL
        ("a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\b", "alinkb"),  # OSC 8 hyperlink, ST
        ("a\x1bPq#0;2;0;0;0\x1b\\b", "ab"),  # DCS (sixel)
        ("a\x9b2Jb", "ab"),  # 8-bit CSI
        ("a\x9d0;t\x9cb", "ab"),  # 8-bit OSC ... ST
        ("a\x1bcb", "ab"),  # RIS: full reset
        ("a\x1b", "a"),  # a lone ESC at the end
        ("a\x1b[", "a"),  # a cut-off CSI
        ("tab\there\nnew\rline", "tabherenewline"),
        ("bell\x07 del\x7f nul\x00", "bell del nul"),
        ("rtl\u202eoverride\u200bzero", "rtloverridezero"),
        ("line\u2028sep", "linesep"),
        ("[bold red]markup[/] stays", "[bold red]markup[/] stays"),
        ("café ✓ 日本", "café ✓ 日本"),
    ],
)
def test_escape_sequences_and_non_printables_are_removed(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_long_text_is_cut_with_an_ellipsis() -> None:
    assert printable("x" * 500, 10) == "x" * 9 + "…"
    assert printable("\x1b[2J" * 10_000 + "tail", 10) == ""  # the work is bounded too
    assert printable(12345) == "12345"


def test_safe_text_is_never_parsed_as_markup() -> None:
    text = safe_text("[bold]x[/bold] :smile:", "red")
    assert isinstance(text, Text)
    assert text.plain == "[bold]x[/bold] :smile:"
    assert not text.spans  # the style is the Text's own, no markup spans


@given(st.text(max_size=300))
def test_output_is_always_printable_and_bounded(raw: str) -> None:
    out = printable(raw, 120)
    assert out.isprintable()
    assert len(out) <= 120
    assert "\x1b" not in out
