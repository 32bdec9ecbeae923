"""Text values: formatting, selection of probes, rate limiting."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spikestream.serving import text as text_module
from spikestream.serving.text import (
    MAX_TEXT_DIM,
    TextValues,
    format_decimal,
    format_value,
    parse_value,
    text_probes,
)
from spikestream_client.codec import topics

floats32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@given(floats32)
def test_a_decimal_reads_back_to_the_same_float32(x: float) -> None:
    text = format_decimal(x)
    assert "e" not in text.lower()  # plain positional notation
    assert np.float32(float(text)) == np.float32(x)


@given(st.lists(floats32, min_size=2, max_size=MAX_TEXT_DIM))
def test_a_json_array_reads_back(values: list[float]) -> None:
    payload = format_value(np.array(values, np.float32))
    assert payload.startswith(b"[")
    back = parse_value(payload)
    assert [np.float32(v) for v in back] == [np.float32(v) for v in values]


def test_non_finite_values() -> None:
    assert format_value(np.array([np.nan], np.float32)) == b"nan"
    assert format_value(np.array([-np.inf], np.float32)) == b"-inf"
    assert format_value(np.array([1.5, np.inf, np.nan], np.float32)) == b"[1.5,null,null]"
    assert parse_value(b"[1.5,null,null]") == [1.5, None, None]


def test_only_value_probes_of_at_most_16_numbers_get_text() -> None:
    streams = {
        "spikes": ("spikes", (5,)),
        "scalar": ("values", ()),
        "one": ("values", (1,)),
        "vec": ("values", (16,)),
        "big": ("values", (17,)),
        "grid": ("values", (4, 4)),
    }
    assert text_probes(streams) == {"scalar": 1, "one": 1, "vec": 16, "grid": 16}


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan"), float("inf"), 101.0])
def test_the_rate_is_checked(rate: float) -> None:
    with pytest.raises(ValueError, match="text rate"):
        TextValues({"y": 1}, topics("spikestream", "n"), rate)


def test_only_changed_values_are_published_and_only_the_latest() -> None:
    text = TextValues({"y": 2, "z": 1}, topics("p", "n"), 10.0)
    assert text.due() == []
    text.observe("y", np.array([[1.0, 2.0], [3.0, 4.0]], np.float32))
    text.observe("y", np.array([[5.0, 6.0]], np.float32))  # newer frame wins
    text.observe("nosuch", np.zeros((1, 1), np.float32))
    text.observe("z", np.zeros((0,), np.float32))  # an empty frame is ignored
    assert text.due() == [("p/n/text/y", b"[5,6]")]
    assert text.due() == []
    sent: list[tuple[str, bytes]] = []
    text.observe("z", np.array([[0.25]], np.float32))
    text.flush(lambda t, p: sent.append((t, p)) or False)
    assert sent == [("p/n/text/z", b"0.25")]
    assert (text.published, text.failed) == (0, 1)  # a refused publish is counted


async def test_run_publishes_at_most_rate_per_second() -> None:
    text = TextValues({"y": 1}, topics("p", "n"), 20.0)
    stamps: list[float] = []

    def publish(topic: str, payload: bytes) -> bool:
        stamps.append(time.monotonic())
        return True

    async def produce() -> None:
        while True:  # a new value far faster than the text rate
            text.observe("y", np.array([[time.monotonic()]], np.float32))
            await asyncio.sleep(0.001)

    producer = asyncio.create_task(produce())
    runner = asyncio.create_task(text.run(publish))
    await asyncio.sleep(1.0)
    runner.cancel()
    producer.cancel()
    assert 10 <= len(stamps) <= 21
    assert text.published == len(stamps)


class _Stop(Exception):
    """Ends :meth:`TextValues.run` on a fake clock."""


def test_after_a_stall_the_timer_realigns_instead_of_bursting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A timer that kept its schedule through a stall sent every period it missed at
    once when the loop came back (deadlines in the past sleep 0): a burst of ``rate``
    messages on each topic in no time. After a stall it starts a new schedule from the
    end of the stall, so sends stay a period apart and no second holds more than
    ``rate``. Driven on a fake clock: sleeping advances it, one publish stalls it."""
    rate, period = 10.0, 0.1
    text = TextValues({"y": 1}, topics("p", "n"), rate)
    clock = {"now": 500.0}
    stamps: list[float] = []

    def publish(topic: str, payload: bytes) -> bool:
        stamps.append(clock["now"])
        if len(stamps) == 5:
            clock["now"] += 1.05  # the I/O thread stalls for a second after the fifth
        return True

    async def sleep(seconds: float) -> None:
        if len(stamps) >= 30:
            raise _Stop
        clock["now"] += max(seconds, 0.0)  # a deadline in the past: no wait
        text.observe("y", np.array([[clock["now"]]], np.float32))  # always fresh

    # The module's own names only: the event loop keeps the real clock and sleep.
    monkeypatch.setattr(text_module, "time", SimpleNamespace(monotonic=lambda: clock["now"]))
    monkeypatch.setattr(text_module, "asyncio", SimpleNamespace(sleep=sleep))
    with pytest.raises(_Stop):
        asyncio.run(text.run(publish))
    times = np.array(stamps) - 500.0
    assert np.all(np.diff(times) >= period - 1e-9)
    assert max(np.count_nonzero((times >= t) & (times < t + 1.0)) for t in times) <= rate
    # A fixed schedule before and after the stall: 0.1 ... 0.5, then from its end.
    np.testing.assert_allclose(times[:5], period * np.arange(1, 6), atol=1e-9)
    np.testing.assert_allclose(times[5:], 1.55 + period * np.arange(1, 26), atol=1e-9)
