"""Plain-text values for bridges that do not speak msgpack (``serve --text-rate HZ``).

Each value probe of at most :data:`MAX_TEXT_DIM` numbers per tick gets a topic
``<prefix>/<net>/text/<probe>`` carrying its latest value: a plain decimal such as
``0.25`` for one number, a JSON array such as ``[0.25,-1.5]`` otherwise, at most ``HZ``
times a second. ROS 2's ``mqtt_client`` in primitive mode, Home Assistant sensors,
Node-RED and ``mosquitto_sub`` read these without a decoder.

Nothing here runs on the tick thread: :meth:`TextValues.observe` is called by the
publisher (I/O thread) with the rows of a frame it is about to encode, and copies the last
row into a buffer allocated at start; :meth:`TextValues.run` formats and publishes the
buffers that changed, on its own timer.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from spikestream_client.codec import Topics

MAX_TEXT_DIM = 16
"""Largest number of values per tick that a probe may have to get a text topic."""

MAX_TEXT_RATE = 100.0
"""Largest ``--text-rate`` in Hz: text topics are for humans, dashboards and bridges."""

DEFAULT_TEXT_RATE = 1.0
"""The text rate ``--ha-discovery`` implies when ``--text-rate`` is not given, in Hz."""

Publish = Callable[[str, bytes], bool]
"""``publish(topic, payload) -> queued`` (``MqttLink.publish_nowait`` bound to QoS 0)."""


def format_decimal(x: float) -> str:
    """A float32 value as the shortest plain decimal that reads back to it.

    Positional notation (no exponent), so the simplest parsers accept it; non-finite
    values become ``nan``, ``inf`` and ``-inf``.
    """
    if not math.isfinite(x):
        return "nan" if x != x else ("inf" if x > 0 else "-inf")
    return np.format_float_positional(np.float32(x), unique=True, trim="-")


def format_value(value: npt.NDArray[np.float32]) -> bytes:
    """The text payload for one tick's value of shape ``(dim,)``.

    ``dim == 1``: a plain decimal (``format_decimal``). Otherwise a compact JSON array of
    decimals, with ``null`` for a non-finite number (JSON has no NaN or infinity).
    """
    if value.shape[0] == 1:
        return format_decimal(float(value[0])).encode()
    parts = [format_decimal(float(v)) if math.isfinite(v) else "null" for v in value]
    return ("[" + ",".join(parts) + "]").encode()


def parse_value(payload: bytes) -> list[float | None]:
    """Read a text payload back (the inverse of :func:`format_value`, for clients/tests)."""
    text = payload.decode("ascii").strip()
    if text.startswith("["):
        values = json.loads(text)
        if not isinstance(values, list):
            raise ValueError(f"expected a JSON array; got {text[:60]!r}")
        return [None if v is None else float(v) for v in values]
    return [float(text)]


@dataclass(eq=False)
class TextSlot:
    """The latest value of one probe, waiting to be published as text."""

    probe: str
    topic: str
    dim: int
    value: npt.NDArray[np.float32]  # (dim,), allocated once
    fresh: bool = False


def text_probes(streams: Mapping[str, tuple[str, tuple[int, ...]]]) -> dict[str, int]:
    """The probes that get a text topic, with their values per tick.

    Args:
        streams: probe name -> (kind, per-tick shape), e.g. ``{"y": ("values", (2,))}``.

    Returns:
        probe name -> dim, for the ``values`` probes with ``1 <= dim <= MAX_TEXT_DIM``.
    """
    out: dict[str, int] = {}
    for name, (kind, shape) in streams.items():
        dim = math.prod(shape)
        if kind == "values" and 1 <= dim <= MAX_TEXT_DIM:
            out[name] = dim
    return out


class TextValues:
    """Latest values of the text probes of one network, published at most ``rate`` Hz.

    Args:
        probes: probe name -> dim (see :func:`text_probes`).
        topics: the network's topics (each probe's is :meth:`Topics.text`).
        rate: most messages per second on each text topic (Hz, finite, > 0).
    """

    def __init__(self, probes: Mapping[str, int], topics: Topics, rate: float) -> None:
        if not (math.isfinite(rate) and 0 < rate <= MAX_TEXT_RATE):
            raise ValueError(f"text rate must be in (0, {MAX_TEXT_RATE:g}] Hz; got {rate!r}")
        self.rate = rate
        self.slots = {
            name: TextSlot(name, topics.text(name), dim, np.zeros(dim, np.float32))
            for name, dim in probes.items()
        }
        self.published = 0
        self.failed = 0

    def observe(self, probe: str, rows: npt.NDArray[np.floating]) -> None:
        """Keep the last row of a frame's values, ``rows`` of shape ``(ticks, *shape)``.

        Called on the I/O thread with a frame about to be encoded; copies at most
        :data:`MAX_TEXT_DIM` numbers into a preallocated buffer.
        """
        slot = self.slots.get(probe)
        if slot is None or rows.shape[0] == 0:
            return
        np.copyto(slot.value, rows[-1].reshape(slot.dim), casting="unsafe")
        slot.fresh = True

    def due(self) -> list[tuple[str, bytes]]:
        """Topic and payload of each value that changed since the last call."""
        out = []
        for slot in self.slots.values():
            if slot.fresh:
                slot.fresh = False
                out.append((slot.topic, format_value(slot.value)))
        return out

    def flush(self, publish: Publish) -> None:
        """Publish every value that changed; a refused publish is counted in ``failed``."""
        for topic, payload in self.due():
            if publish(topic, payload):
                self.published += 1
            else:
                self.failed += 1

    async def run(self, publish: Publish) -> None:
        """Publish changed values every ``1 / rate`` seconds, until cancelled.

        The timer keeps a fixed schedule (no drift); after a stall it realigns instead of
        bursting, so no topic ever gets more than ``rate`` messages a second.
        """
        period = 1.0 / self.rate
        deadline = time.monotonic()
        while True:
            deadline += period
            now = time.monotonic()
            if deadline < now:
                deadline = now + period
            await asyncio.sleep(deadline - now)
            self.flush(publish)
