"""The host's CPU time over the last seconds: how busy every CPU was, and how much time
the hypervisor stole from this machine's virtual CPUs.

On a virtual machine, a tick is late most often because its virtual CPU was not running:
the hypervisor gave the physical core to another guest (*steal* time), or a neighbour
process had the CPU. Both are invisible to the tick's own clock, so the service reads
them from the kernel's accounting (``/proc/stat``, the ``cpu`` line: cumulative time per
state over all CPUs, in clock ticks of ``USER_HZ``) and shows them beside its lateness
windows, over the same 1 s and 10 s.

:class:`HostCpu` keeps the last samples in a fixed ring; the I/O side samples it every
:data:`SAMPLE_EVERY` seconds (one read of a small file) and the tick thread never
touches it.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

#: Where the kernel accounts CPU time (Linux).
PROC_STAT = Path("/proc/stat")
#: Seconds between two samples: each window is measured between two samples at least
#: its length apart, so it ends at most this long before the figures are read.
SAMPLE_EVERY = 0.1


@dataclass(frozen=True)
class CpuTimes:
    """Cumulative CPU time of every CPU, in the kernel's clock ticks (``USER_HZ``).

    Attributes:
        busy: user, nice, system, irq and softirq (guest time is inside user already).
        idle: idle and iowait.
        steal: time a virtual CPU wanted to run while the hypervisor ran something else.
    """

    busy: int
    idle: int
    steal: int

    @property
    def total(self) -> int:
        return self.busy + self.idle + self.steal


@dataclass(frozen=True)
class CpuShares:
    """Shares (0..1) of all CPUs' time over a window.

    Attributes:
        seconds: the wall time the window spans (at least the length asked for).
        busy: share spent running anything (this service, the broker, neighbours).
        steal: share stolen by the hypervisor.
    """

    seconds: float
    busy: float
    steal: float


def parse_cpu_line(text: str) -> CpuTimes:
    """The aggregate ``cpu`` line of ``/proc/stat`` (its first line).

    Raises ValueError, naming what arrived, when the line is not one: fewer than the 8
    numbers every Linux since 2.6.11 writes, a number that is not a non-negative integer.
    """
    line = text.split("\n", 1)[0]
    fields = line.split()
    if not fields or fields[0] != "cpu" or len(fields) < 9:
        raise ValueError(
            f"expected the aggregate 'cpu' line of /proc/stat with at least 8 counters, "
            f"got {line[:80]!r}"
        )
    try:
        user, nice, system, idle, iowait, irq, softirq, steal = (int(f) for f in fields[1:9])
    except ValueError:
        raise ValueError(
            f"a counter of /proc/stat's cpu line is not an integer: {line[:80]!r}"
        ) from None
    if min(user, nice, system, idle, iowait, irq, softirq, steal) < 0:
        raise ValueError(f"a counter of /proc/stat's cpu line is negative: {line[:80]!r}")
    return CpuTimes(busy=user + nice + system + irq + softirq, idle=idle + iowait, steal=steal)


def read_cpu_times(path: Path = PROC_STAT) -> CpuTimes:
    """The machine's cumulative CPU times now. Raises OSError or ValueError."""
    with path.open("rb") as f:
        head = f.read(512)  # the cpu line comes first and is far shorter
    return parse_cpu_line(head.decode("ascii", "replace"))


class HostCpu:
    """The last samples of the host's CPU times, in fixed memory.

    Args:
        horizon: the longest window asked for, seconds (the ring keeps that much and one
            sample more).
        every: the interval at which :meth:`sample` is called, seconds.
        path: where to read the times (a file in ``/proc/stat``'s format; tests pass their own).
    """

    def __init__(
        self, horizon: float = 10.0, every: float = SAMPLE_EVERY, path: Path = PROC_STAT
    ) -> None:
        if not (every > 0 and horizon >= every):
            raise ValueError(f"expected 0 < every <= horizon, got every={every}, horizon={horizon}")
        self.path = path
        # (monotonic time, times), oldest first; the deque drops the oldest when full.
        self._samples: deque[tuple[float, CpuTimes]] = deque(maxlen=math.ceil(horizon / every) + 2)
        # sample() runs on the event loop, shares() also on the metrics server's thread.
        self._lock = threading.Lock()
        #: Why the times could not be read, once they could not (sampling stops).
        self.error: str | None = None

    def sample(self, now: float) -> bool:
        """Read the times now (``now``: monotonic seconds). False once unreadable: the
        error is kept in :attr:`error` and the windows stay None from then on."""
        if self.error is not None:
            return False
        try:
            times = read_cpu_times(self.path)
        except (OSError, ValueError) as err:
            self.error = str(err)
            return False
        with self._lock:
            self._samples.append((now, times))
        return True

    def shares(self, seconds: float) -> CpuShares | None:
        """Busy and stolen shares of all CPUs between the newest sample and the newest one
        at least ``seconds`` older, or the oldest one while sampling has run for less than
        ``seconds`` (as a lateness window holds the ticks since start). None before two
        samples, after an error, when the ring no longer reaches back that far, or when
        no clock tick was accounted between the two (or a counter went back)."""
        with self._lock:
            return self._shares(seconds)

    def _shares(self, seconds: float) -> CpuShares | None:
        samples = self._samples
        if self.error is not None or len(samples) < 2:
            return None
        t_new, c_new = samples[-1]
        old = next((s for s in reversed(samples) if t_new - s[0] >= seconds), None)
        if old is None:
            if len(samples) == samples.maxlen:
                return None  # older than the ring reaches
            old = samples[0]
        t_old, c_old = old
        total = c_new.total - c_old.total
        busy, steal = c_new.busy - c_old.busy, c_new.steal - c_old.steal
        # A counter that went back (CPU hotplug resets a CPU's times) gives no share.
        if total <= 0 or busy < 0 or steal < 0 or c_new.idle < c_old.idle:
            return None
        return CpuShares(seconds=t_new - t_old, busy=busy / total, steal=steal / total)
