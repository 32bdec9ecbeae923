"""Text from the bus made safe to show in a terminal.

Names in frame headers are validated by the codec, but status text, event fields and
stats values are free-form strings that anyone allowed to publish on the network's
topics can set. Written raw, an escape sequence in them could retitle the terminal,
clear the screen or move the cursor, and rich would interpret ``[markup]`` in them.
:func:`printable` removes escape sequences and every non-printable character;
:func:`safe_text` also wraps the result in a :class:`rich.text.Text`, which rich never
parses for markup or emoji codes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from rich.text import Text

__all__ = ["printable", "safe_text"]

# ECMA-48 sequences, 7-bit and 8-bit: CSI (ESC [ or 0x9b, parameters, intermediates,
# a final byte), string sequences OSC/DCS/SOS/PM/APC (ESC ] P X ^ _ or 0x9d 0x90 0x98
# 0x9e 0x9f, up to BEL or ST), and two-byte escapes. Whatever is left of a malformed
# sequence is then removed character by character by the printable filter.
_ESCAPES: Final = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -~]?"
)


def printable(value: object, limit: int = 200) -> str:
    """``str(value)`` without escape sequences or non-printable characters, on one line,
    at most ``limit`` characters (an ellipsis marks a cut).

    Removed: C0 and C1 controls (ESC, newline, tab...), DEL, format characters such as
    the right-to-left override, line and paragraph separators, surrogates and
    unassigned code points (everything :meth:`str.isprintable` rejects).
    """
    text = str(value)
    # Bound the work before the per-character pass: a hostile string may be long.
    text = _ESCAPES.sub("", text[: 4 * limit + 64])
    text = "".join(ch for ch in text if ch.isprintable())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def safe_text(value: object, style: str = "", limit: int = 200) -> Text:
    """:func:`printable` as a rich :class:`~rich.text.Text` (never parsed as markup)."""
    # Imported here: the tools that only print lines (ls, feed) need no rich.
    from rich.text import Text

    return Text(printable(value, limit), style=style)
