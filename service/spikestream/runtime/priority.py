"""Thread priorities: the tick thread under ``SCHED_FIFO`` when the OS allows it, or with
a short EEVDF slice, which needs no privilege."""

from __future__ import annotations

import ctypes
import logging
import math
import os
import platform
import struct
import threading
from pathlib import Path

log = logging.getLogger("spikestream.engine")


def raise_priority(priority: int, thread: str = "tick thread") -> str:
    """Put the calling thread under ``SCHED_FIFO`` at ``priority`` (1-99) if allowed.

    Returns a description of the outcome for logs and statistics. A real-time scheduling
    class lets the tick thread preempt ordinary processes (a busy broker, a flooding
    publisher) on a small machine; without the privilege the thread keeps its normal
    scheduling, which is the portable default. ``thread`` names the calling thread in
    the log line (the I/O thread is raised too, one step below).
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
            f"could not give the {thread} real-time priority",
            extra={"priority": priority, "error": err.strerror},
        )
        return f"normal ({err.strerror})"
    log.info(f"{thread} runs under SCHED_FIFO", extra={"priority": min(priority, 99)})
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


# sched_setattr(2) has no wrapper in glibc or in Python's os module; its number per
# architecture (the kernel's syscall tables).
_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274}
_SCHED_ATTR_SIZE = 56  # SCHED_ATTR_SIZE_VER1: size, policy, flags, nice, priority,
# runtime, deadline, period, util_min, util_max
_SCHED_OTHER = 0


def request_slice(seconds: float) -> str:
    """Ask the kernel for a scheduling slice of ``seconds`` for the calling thread.

    Since Linux 6.12 the fair scheduler (EEVDF) takes a thread's
    ``sched_attr.sched_runtime`` as its slice, clamped to 0.1-100 ms, and lets a waking
    thread with a shorter slice preempt the one running. Without it, a tick thread woken
    at its deadline can wait for the I/O thread, the broker or a neighbour to use up its
    own slice (about 1.5 ms on 2 CPUs) before it runs. Any thread may set its own slice
    without a privilege; the nice value is kept. A thread under a real-time policy is left
    alone (its priority already preempts), and so are other policies (batch, idle) and a
    platform without the call. It never raises: the tick thread calls it as it starts,
    and a slice is a refinement the service runs without.

    Returns a description of the outcome for logs and statistics: the slice the kernel
    reports in ``/proc/thread-self/sched`` when it reports one.
    """
    if not (math.isfinite(seconds) and seconds > 0):
        return "kernel default (not requested)"
    # The numbers are the 64-bit ABI's; a 32-bit process on a 64-bit kernel (which
    # platform.machine() names) has other calls at those numbers.
    number = _SCHED_SETATTR.get(platform.machine())
    if number is None or ctypes.sizeof(ctypes.c_void_p) != 8:
        return "kernel default (sched_setattr not available on this platform)"
    try:
        return _set_slice(number, seconds)
    except Exception as err:  # best effort, reported, never fatal
        log.warning("could not request a scheduling slice", extra={"error": repr(err)})
        return f"kernel default ({type(err).__name__}: {err})"


def _set_slice(number: int, seconds: float) -> str:
    """sched_setattr(0, {SCHED_OTHER, the thread's nice, runtime = seconds}, 0)."""
    if os.sched_getscheduler(0) != _SCHED_OTHER:
        return "kernel default (the thread's policy is not SCHED_OTHER)"
    nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    ns = round(min(seconds, 1.0) * 1e9)  # the kernel clamps to 0.1-100 ms
    attr = struct.pack("=IIQiIQQQII", _SCHED_ATTR_SIZE, _SCHED_OTHER, 0, nice, 0, ns, 0, 0, 0, 0)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(number, 0, ctypes.create_string_buffer(attr, len(attr)), 0) != 0:
        error = os.strerror(ctypes.get_errno())
        log.warning(
            "could not request a scheduling slice for the tick thread",
            extra={"slice_s": seconds, "error": error},
        )
        return f"kernel default ({error})"
    granted = thread_slice()
    log.info(
        "tick thread requested a scheduling slice",
        extra={"slice_s": seconds, "granted_ns": granted},
    )
    if granted is None:  # a kernel that does not report it (before 6.13, say)
        return f"{seconds * 1e3:g} ms requested"
    return f"{granted / 1e6:g} ms"


def thread_slice(sched: Path = Path("/proc/thread-self/sched")) -> int | None:
    """A thread's scheduling slice in ns, as its ``sched`` file in /proc reports it (Linux
    6.13 and later; by default the calling thread's), or None where it does not."""
    try:
        text = sched.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "se.slice":
            try:
                return int(value.strip())
            except ValueError:
                return None
    return None


#: prctl options (linux/prctl.h): the calling thread's timer slack, in ns.
_PR_SET_TIMERSLACK, _PR_GET_TIMERSLACK = 29, 30


def request_timer_slack(nanoseconds: int) -> int | None:
    """Set the calling thread's timer slack to ``nanoseconds`` (``< 1``: only read it) and
    return the slack in force afterwards (ns), or None where ``prctl`` is not available
    (not Linux) or the call failed.

    Linux may end a timed sleep up to the thread's timer slack late (50 us by default),
    to wake several sleepers at once. The tick thread sleeps until ``spin`` seconds before
    each deadline and busy-waits the rest; with its slack at 1 ns, its sleep ends when
    asked and the spin only covers the wake-up, so the spin can be short and cost little
    CPU. Any thread may set its own slack without a privilege. It never raises: a slack is
    a refinement the service runs without.
    """
    if platform.system() != "Linux":
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
        prctl.restype = ctypes.c_int
        zero = ctypes.c_ulong(0)
        if nanoseconds >= 1:
            value = ctypes.c_ulong(int(nanoseconds))
            if prctl(_PR_SET_TIMERSLACK, value, zero, zero, zero) != 0:
                error = os.strerror(ctypes.get_errno())
                log.warning("could not set the timer slack", extra={"error": error})
                return None
        slack = int(prctl(_PR_GET_TIMERSLACK, zero, zero, zero, zero))
    except Exception as err:  # best effort, reported, never fatal
        log.warning("could not set the timer slack", extra={"error": repr(err)})
        return None
    return slack if slack >= 0 else None
