"""Thread priorities: the tick thread under ``SCHED_FIFO`` when the OS allows it."""

from __future__ import annotations

import logging
import os
import threading

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


def lower_priority(step: int) -> str:
    """Raise the calling thread's nice value by ``step`` (0-19, capped at 19).

    Any thread may lower its own priority without a privilege. The service's I/O thread
    does so once the tick thread is running (threads inherit the nice value of the thread
    that starts them, so the tick thread keeps its own): when both are runnable, the
    scheduler then gives the tick thread the core first. Linux sets a nice value per
    thread; ``setpriority`` is given the thread's own id.

    Returns a description of the outcome for logs.
    """
    if step <= 0:
        return "unchanged (not requested)"
    if not hasattr(os, "setpriority"):
        return "unchanged (setpriority not available on this platform)"
    tid = threading.get_native_id()
    try:
        nice = min(19, os.getpriority(os.PRIO_PROCESS, tid) + step)
        os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError as err:
        log.warning(
            "could not lower the I/O thread's priority",
            extra={"step": step, "error": err.strerror},
        )
        return f"unchanged ({err.strerror})"
    log.info("I/O thread runs at a lower priority than the tick thread", extra={"nice": nice})
    return f"nice {nice}"
