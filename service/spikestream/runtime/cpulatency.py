"""Keeping idle CPUs out of halt while the service runs: a CPU wake-up latency request.

Between ticks the tick thread sleeps (``dt`` minus the tick's compute minus the spin). An
idle CPU halts; in a virtual machine a halt is a VM exit, and the host may give the
physical CPU away, so the timer that ends the sleep can be serviced milliseconds late. On
this project's 2-core KVM guest, 30 s runs of ``bench/jitter.py`` under ``SCHED_FIFO``, an
empty tick was more than 1 ms late on 0.087, 0.043 and 0.193 % of ticks with no request
and on 0.017, 0.003 and 0.063 % while a process held a 0 µs request (interleaved).

Linux's PM QoS interface is ``/dev/cpu_dma_latency``: a process writes the longest wake-up
latency it tolerates (a native-endian ``int32`` of microseconds) and the request holds for
as long as the file stays open; the kernel's idle governor then only picks idle states that
wake faster. With 0 it polls instead of halting. This is what ``cyclictest`` and tuned's
``latency-performance`` profile do. The cost: idle CPUs spin (the whole machine, not only
this process), which a dedicated real-time host accepts.

Opening the device needs root (mode 0600) or a udev rule that grants the service's group
access; without it the request is reported as not held and the service runs on.
"""

from __future__ import annotations

import logging
import os
import struct
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

#: Linux's PM QoS device for the CPU wake-up latency limit.
DEVICE = Path("/dev/cpu_dma_latency")

_INT32 = struct.Struct("=i")


class CpuLatencyRequest:
    """Holds a CPU wake-up latency limit of ``microseconds`` while open.

    Use as a context manager, or call :meth:`acquire` and :meth:`release`. Failing to open
    the device is not an error: :attr:`held` stays ``False`` and :attr:`description` says
    why, because a service is better run without the request than not at all.

    Args:
        microseconds: longest tolerated wake-up latency, µs, ``>= 0`` (0: never halt).
        device: the PM QoS device; tests pass another file.
    """

    def __init__(self, microseconds: int, device: Path = DEVICE) -> None:
        if microseconds < 0:
            raise ValueError(f"cpu latency must be >= 0 microseconds; got {microseconds}")
        self.microseconds = int(microseconds)
        self.device = device
        self._fd: int | None = None
        self.description = "not acquired"

    @property
    def held(self) -> bool:
        """True while the request is in force."""
        return self._fd is not None

    def acquire(self) -> str:
        """Open the device and write the limit. Returns :attr:`description`."""
        if self._fd is not None:
            return self.description
        fd = None
        try:
            fd = os.open(self.device, os.O_WRONLY)
            os.write(fd, _INT32.pack(self.microseconds))
        except OSError as err:
            if fd is not None:
                os.close(fd)
            self.description = f"not held ({err.strerror}: {self.device})"
            log.warning(
                "could not hold a CPU wake-up latency limit",
                extra={"device": str(self.device), "error": err.strerror},
            )
            return self.description
        self._fd = fd
        self.description = f"{self.microseconds} us held"
        log.info(
            "holding a CPU wake-up latency limit",
            extra={"microseconds": self.microseconds, "device": str(self.device)},
        )
        return self.description

    def release(self) -> None:
        """Close the device: the kernel drops the request with the last open file."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self.description = "released"

    def __enter__(self) -> CpuLatencyRequest:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def current_cpu_latency(device: Path = DEVICE) -> int | None:
    """The limit in force now, µs (the strictest request of all processes), or ``None``
    when the device cannot be read."""
    try:
        with open(device, "rb") as f:
            data = f.read(_INT32.size)
    except OSError:
        return None
    if len(data) != _INT32.size:
        return None
    return int(_INT32.unpack(data)[0])
