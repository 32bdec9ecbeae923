"""How many threads step a live tick: one, or two stages (``serve --tick-threads``)."""

from __future__ import annotations

import logging
import os
from typing import Literal

from spikestream.sim import Simulator

__all__ = ["TWO_STAGE_BYTES", "want_two_stages"]

# The choice is the engine's: its log says why a second thread was not started.
log = logging.getLogger("spikestream.engine")

#: ``tick_threads="auto"`` cuts the tick in two stages from this many bytes of arrays
#: referenced per tick (:meth:`Simulator.footprint`): a 75k-neuron decoded chain in
#: float32. Below it one core's caches hold the tick and a hand-over per tick would only
#: add latency; the seed network references 0.1 MB. bench/capacity.py's --serve-args
#: '--tick-threads 1' and '2' measure both side by side.
TWO_STAGE_BYTES = 12 * 2**20


def _cpus() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def want_two_stages(sim: Simulator, tick_threads: int | Literal["auto"]) -> bool:
    """Whether to cut the tick in two stages: asked for (2), or ``auto`` and a tick of
    TWO_STAGE_BYTES or more; never on one CPU, where the second stage would only take
    turns with the first."""
    if tick_threads == 1:
        return False
    if _cpus() < 2:
        if tick_threads == 2:
            log.warning("--tick-threads 2 needs 2 CPUs; this process may use 1: one thread")
        return False
    return tick_threads == 2 or sim.footprint().total >= TWO_STAGE_BYTES
