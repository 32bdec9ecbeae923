"""Thread priorities: the tick thread under ``SCHED_FIFO`` when the OS allows it."""

from __future__ import annotations

import logging
import os

log = logging.getLogger("spikestream.engine")


def raise_priority(priority: int) -> str:
    """Put the calling thread under ``SCHED_FIFO`` at ``priority`` (1-99) if allowed.

    Returns a description of the outcome for logs and statistics. A real-time scheduling
    class lets the tick thread preempt ordinary processes (a busy broker, a flooding
    publisher) on a small machine; without the privilege the thread keeps its normal
    scheduling, which is the portable default.
    """
    if priority <= 0:
        inherited = fifo_priority()  # e.g. the process was started under chrt
        return f"SCHED_FIFO {inherited} (inherited)" if inherited else "normal (not requested)"
    if not hasattr(os, "sched_setscheduler"):
        return "normal (SCHED_FIFO not available on this platform)"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(min(priority, 99)))
    except OSError as err:
        log.warning(
            "could not give the tick thread real-time priority",
            extra={"priority": priority, "error": err.strerror},
        )
        return f"normal ({err.strerror})"
    log.info("tick thread runs under SCHED_FIFO", extra={"priority": min(priority, 99)})
    return f"SCHED_FIFO {min(priority, 99)}"


def fifo_priority() -> int:
    """The calling thread's ``SCHED_FIFO`` priority, or 0 under any other policy."""
    if not hasattr(os, "sched_getscheduler") or os.sched_getscheduler(0) != os.SCHED_FIFO:
        return 0
    return int(os.sched_getparam(0).sched_priority)
