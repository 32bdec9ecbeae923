"""What the service tells about the machine it runs on: the host's CPU time, sampled on
the event loop, and the log lines that open and close a spell of CPU contention.

On a shared or virtual machine, most late ticks are the machine's (a virtual CPU the
hypervisor did not run, a neighbour holding the CPU); these say so where an operator
looks: the stats windows, the metrics and the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from spikestream.runtime.hostcpu import PROC_STAT, SAMPLE_EVERY, HostCpu

log = logging.getLogger("spikestream.serve")


class HostSampler:
    """Samples the host's CPU times every :data:`SAMPLE_EVERY` seconds on an event loop,
    into :attr:`cpu` (:class:`HostCpu`, keeping ``horizon`` seconds), from :meth:`start`
    until :meth:`stop`. A timer callback, not a task: it never ends a task group, and
    where the times cannot be read it says so once and stops. ``path``: where to read
    them (tests pass their own file)."""

    def __init__(self, horizon: float, path: Path = PROC_STAT) -> None:
        self.cpu = HostCpu(horizon=horizon, path=path)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._sample()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _sample(self) -> None:
        assert self._loop is not None
        if self.cpu.sample(time.monotonic()):
            self._timer = self._loop.call_later(SAMPLE_EVERY, self._sample)
        else:
            self._timer = None
            log.warning(
                "the host's CPU figures (cpu_busy_pct, cpu_steal_pct) are unavailable: %s",
                self.cpu.error,
            )


def log_contention(contended: bool, stats: dict[str, Any], spin: float, busy_spin: float) -> None:
    """Log a contended spell's start or end (seen at the stats interval): why ticks may
    run late now, and what the tick thread does about it (``spin``, ``busy_spin``: the
    service's settings, s)."""
    fields = {k: stats[k] for k in ("tick", "contended_spells", "contended_ticks")}
    if contended:
        # Where the neighbours run decides how much they can take: Linux shares the CPUs
        # between sessions, units and containers first (README, "Beside busy programs").
        log.warning(
            "the tick thread is kept waiting for a CPU (busy neighbours? programs started "
            "in this session compete with it as equals; in another session, systemd unit "
            "or container they take less of its CPU; --rt-priority ends the wait): each "
            "tick now spins %g s before its deadline instead of %g s",
            busy_spin,
            spin,
            extra=fields,
        )
    else:
        log.info("CPU contention is over: each tick spins %g s again", spin, extra=fields)
