"""Hand-made frames for client tests, encoded with the shared codec."""

from __future__ import annotations

import dataclasses
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from spikestream.codec import FrameHeader, SpikeFrame, ValueFrame, decode_frame
from spikestream.codec import encode_spikes as _encode_spikes
from spikestream.codec import encode_values as _encode_values


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
