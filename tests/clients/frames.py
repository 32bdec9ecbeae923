"""Hand-made frames for client tests, encoded with the shared codec."""

from __future__ import annotations

import dataclasses
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from spikestream_client.codec import FrameHeader, SpikeFrame, ValueFrame, decode_event, decode_frame
from spikestream_client.codec import encode_spikes as _encode_spikes
from spikestream_client.codec import encode_values as _encode_values
from spikestream_client.monitor.aggregate import MonitorModel


def header(
    probe: str,
    seq: int,
    tick: int,
    ticks: int = 10,
    *,
    net: str = "fake",
    dt: float = 0.001,
    dropped: int = 0,
    late_max: float = 0.0,
) -> FrameHeader:
    """A plausible header: ``t`` and ``wall`` follow from ``tick``."""
    return FrameHeader(
        net=net,
        probe=probe,
        seq=seq,
        tick=tick,
        ticks=ticks,
        dt=dt,
        t=(tick + ticks) * dt,
        wall=1.7e9 + (tick + ticks) * dt,
        late_max=late_max,
        dropped=dropped,
    )


def spike_payload(h: FrameHeader, spikes: npt.NDArray[np.bool_]) -> bytes:
    return _encode_spikes(h, spikes)


def value_payload(h: FrameHeader, values: npt.ArrayLike) -> bytes:
    return _encode_values(h, values)


def spike_frame(h: FrameHeader, spikes: npt.NDArray[np.bool_]) -> SpikeFrame:
    frame = decode_frame(_encode_spikes(h, spikes))
    assert isinstance(frame, SpikeFrame)
    return frame


def value_frame(h: FrameHeader, values: npt.ArrayLike) -> ValueFrame:
    frame = decode_frame(_encode_values(h, values))
    assert isinstance(frame, ValueFrame)
    return frame


F = TypeVar("F", SpikeFrame, ValueFrame)

# Strings a hostile publisher might put in a frame header, an event or the status.
HTML_NAME = '<img src=x onerror="window.__pwned=1">'
TERMINAL_NAME = "p\x1b]0;pwned\x07\x1b[2J[bold red]boom[/]"
MATHTEXT_NAME = "a$\\frac{$"
HUGE_INT = b"1" + b"0" * 400  # a JSON number no float64 holds

# What a service sends (PROTOCOL.md 6.2) plus what a hostile publisher could: an escape
# sequence and markup in a name, a 401-digit integer (no float holds it; 1e999, JSON's inf,
# is refused with the whole message by the decoder), a boolean age, a string stale flag.
INPUT_STATS = (
    b'{"v": 1, "event": "stats", "wall": 1, "tick": 5, "inputs": {'
    b'"u": {"accepted": 9, "age_ms": 12.5, "stale_now": false}, '
    b'"quiet": {"accepted": 0, "age_ms": null, "stale_now": true}, '
    b'"late": {"age_ms": 2500, "stale_now": true}, '
    b'"p\\u001b]0;pwned\\u0007\\u001b[2J[bold red]boom[/]": {"age_ms": '
    + HUGE_INT
    + b', "stale_now": "yes"}, '
    b'"odd": {"age_ms": true, "stale_now": 1}, "bare": 7}}'
)


def renamed(frame: F, *, probe: str | None = None, net: str | None = None) -> F:
    """``frame`` with another probe or net name in its header, as if a decoder had let
    the name through (the codec refuses such names; the outputs must not rely on it)."""
    h = frame.header
    h = dataclasses.replace(h, probe=h.probe if probe is None else probe)
    h = dataclasses.replace(h, net=h.net if net is None else net)
    return dataclasses.replace(frame, header=h)


def regular_spikes(tick: int, ticks: int, n: int, period: int) -> npt.NDArray[np.bool_]:
    """Neuron ``i`` spikes on absolute ticks where ``(tick + i) % period == 0``."""
    k = np.arange(tick, tick + ticks)[:, None] + np.arange(n)[None, :]
    return np.asarray(k % period == 0)


def hostile_model() -> MonitorModel:
    """A monitor model fed hostile strings and values everywhere the bus can put them: a
    probe name that got past the codec, the status, an event, and stats with escape
    sequences, wrong types and numbers that JSON parses as inf."""
    model = MonitorModel("fake", window=1.0, bins=10)
    for seq in range(10):
        h = header("s", seq, 10 * seq)
        spikes = spike_frame(h, regular_spikes(10 * seq, 10, 4, 5))
        model.on_frame(renamed(spikes, probe=TERMINAL_NAME))
        model.on_frame(renamed(value_frame(h, np.ones((10, 1))), probe="[u]\x9b2J"))
    model.on_status("\x1b]0;status-title\x07[blink]up[/blink]")
    model.on_event(
        {"event": "\x1b[2J[bold]kind[/bold]", "error": "\x1b]0;t\x07[red]why[/red]\u202e"}
    )
    stats = (
        b'{"v": 1, "event": "stats", "wall": 1, "tick": "\\u001b[H[i]7[/i]", "t": "x", '
        b'"dropped": 3, "overruns": "\\u0007", "late_p99_ms": [1], "late_max_ms": {"a": 1}, '
        b'"realtime_factor_actual": '
        + HUGE_INT
        + b', "realtime_factor": '
        + HUGE_INT
        + b', "paused": "no", '
        b'"spin_contended": [true]}'
    )
    model.on_stats(decode_event(stats))
    return model
