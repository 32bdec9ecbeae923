"""The ``describe`` document of a running network (``docs/PROTOCOL.md`` section 7).

Everything in it is read from what runs: the model (populations, inputs, probes, ``dt``),
the engine (each probe's frame shape and ticks per frame, each input's TTL, the largest
``ticks_per_frame`` the memory budget allows now) and the codec's control registry (the
commands and settable keys with their ranges). Nothing is restated, so the document
cannot drift from the service.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from spikestream import __version__
from spikestream.runtime.engine import Engine
from spikestream_client.codec import (
    DESCRIBE_VERSION,
    INPUT_ENCODINGS,
    Topics,
    control_description,
)

__all__ = ["DescribeExtras", "describe_document"]


@dataclass
class DescribeExtras:
    """Topics the service publishes besides the core ones, shown in the document.

    Attributes:
        text: Plain-text value topics in use, as ``{"probe": name, "topic": topic}``
            (empty when no text topics are published).
        discovery: Home Assistant discovery in use, as ``{"prefix": ..., "topics":
            [...]}``, or None when it is off.
    """

    text: list[dict[str, str]] = field(default_factory=list)
    discovery: dict[str, Any] | None = None


def describe_document(
    engine: Engine,
    topics: Topics,
    *,
    session: int,
    started: float,
    max_input_bytes: int,
    extras: DescribeExtras | None = None,
    wall: float | None = None,
) -> dict[str, Any]:
    """The document for ``engine``'s network as served on ``topics``.

    Args:
        engine: The running engine (read, not changed; safe from the I/O thread).
        topics: The network's topics.
        session: Connections of this service process so far, this one included (>= 1).
        started: Unix time at which the service process started, in s.
        max_input_bytes: The input payload size limit, in bytes.
        extras: Text and discovery topics in use.
        wall: Unix time of the document, in s (default: now).
    """
    model = engine.model
    extras = extras or DescribeExtras()
    settings = engine.settings()
    inputs = {
        name: {
            "topic": topics.input(name),
            "dim": slot.dim,
            "default": [float(x) for x in slot.default],
            "ttl": slot.ttl,
            "target": model.inputs[name].target,
            "encodings": list(INPUT_ENCODINGS),
            "max_bytes": max_input_bytes,
        }
        for name, slot in engine.inputs.items()
    }
    probes = {
        name: {
            "topic": topics.out(name),
            "kind": stream.kind,
            "shape": list(stream.shape),
            "dtype": "bool" if stream.kind == "spikes" else "float32",
            "ticks_per_frame": stream.ticks_per_frame,
            "target": model.probes[name].target,
            "source": model.probes[name].kind,
        }
        for name, stream in engine.streams.items()
    }
    return {
        "v": DESCRIBE_VERSION,
        "net": model.name,
        "prefix": topics.prefix,
        "service": {"name": "spikestream", "version": __version__},
        "session": session,
        "started": started,
        "wall": time.time() if wall is None else wall,
        "dt": model.dt,
        "dtype": model.dtype.name,
        "topics": {
            "status": topics.status,
            "describe": topics.describe,
            "control": topics.control,
            "events": topics.events,
            "stats": topics.stats,
            "inputs": topics.inputs_filter,
            "outputs": topics.outs_filter,
        },
        "populations": {
            name: {"n": pop.n, "dim": pop.dim} for name, pop in model.populations.items()
        },
        "inputs": inputs,
        "probes": probes,
        "control": {
            "topic": topics.control,
            **control_description({"ticks_per_frame": engine.max_ticks_per_frame()}),
            "in_force": settings,
        },
        "text": extras.text,
        "discovery": extras.discovery,
    }
