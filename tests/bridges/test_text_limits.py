"""The text bridge's documented limits are inclusive.

``docs/PROTOCOL.md`` says ``--text-rate`` is "at most 100 Hz" (``MAX_TEXT_RATE``):
``test_text.py`` checks that 101 Hz is refused but never that 100 Hz is accepted, so
refusing the documented maximum (``rate < MAX_TEXT_RATE``) passed the suite.
"""

from __future__ import annotations

from spikestream.serving.text import MAX_TEXT_RATE, TextValues
from spikestream_client.codec import topics


def test_the_largest_documented_rate_is_accepted() -> None:
    """``--text-rate 100`` is allowed: the bound itself is in range."""
    assert MAX_TEXT_RATE == 100.0
    text = TextValues({"y": 1}, topics("spikestream", "n"), MAX_TEXT_RATE)
    assert text.rate == MAX_TEXT_RATE
