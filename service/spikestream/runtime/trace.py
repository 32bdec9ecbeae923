"""Debug-only timestamps along the input-to-output path (``serve --trace-latency FILE``).

Where does input-to-output time go? This records, in preallocated rings, the wall time
(``time.time()``, the clock frame headers' ``wall`` uses) at each step a value takes
through the service:

* ``received``: the I/O thread decoded an input message (after the broker hop in), with
  when the service's message handler was called for it (after the MQTT client read and
  parsed it), which splits the hop in from the decoding;
* ``applied``: the tick thread copied a new input value into the simulator, right after
  the pacer released the tick (the wait for the tick ends here; the frame header's
  ``wall`` then marks the end of that tick's compute);
* ``published``: the I/O thread took a completed frame from its probe queue (queueing
  behind other frames ends) and handed the encoded frame to the MQTT client; with it, when
  the I/O thread began the pump that took it (woken by the tick thread, it then collects
  the finished ticks into frames), which splits the queueing into the wake-up and the
  collect.

A benchmark joins these with its own publish and receive times (``bench/floor.py``). Off
(the default) the service holds ``None`` and pays one ``is not None`` test per input
message, per changed input and per published frame; nothing per tick.

Rows are keyed by the input's first component (benchmarks send distinct values) and by
probe and ``seq``. Each ring keeps the last ``capacity`` rows; :meth:`save` writes the
filled rows, oldest first, to an ``.npz``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt

from spikestream.errors import ConfigError

__all__ = ["LatencyTrace", "check_trace_target"]


def check_trace_target(target: Path) -> None:
    """Refuse a ``--trace-latency`` target the trace could not be saved to, when serving
    starts rather than at exit (where the save failed with a traceback, losing the whole
    run's trace): an existing folder, FIFO or device, or a file in a missing folder. A
    missing file or an existing regular file (replaced) is fine.

    Raises:
        ConfigError: one line naming the path and what was expected.
    """
    from spikestream.runtime.replay import check_log_target

    # Unlike the input log's, no spool checks the trace's folder first.
    if not target.exists() and not target.parent.is_dir():
        raise ConfigError(
            f"--trace-latency: the folder of {str(target)!r} does not exist; expected "
            "a file name in an existing folder"
        )
    check_log_target(target, "--trace-latency", "trace.npz")


class _Ring:
    """``capacity`` rows of ``width`` float64, written by one thread, in order."""

    def __init__(self, capacity: int, width: int) -> None:
        self.rows = np.full((capacity, width), math.nan)
        self.count = 0

    def add(self, *values: float) -> None:
        """One row: ``values`` fill its first columns (the rest stay NaN)."""
        row = self.rows[self.count % len(self.rows)]
        row[: len(values)] = values
        self.count += 1

    def ordered(self) -> npt.NDArray[np.float64]:
        n, cap = self.count, len(self.rows)
        if n <= cap:
            return self.rows[:n].copy()
        k = n % cap
        return np.concatenate([self.rows[k:], self.rows[:k]])


class LatencyTrace:
    """Timestamps of inputs and frames in fixed memory (see the module docstring).

    Args:
        probes: The probe names, in the order their index is stored.
        capacity: Rows kept per ring (inputs received, inputs applied, frames).
    """

    def __init__(self, probes: list[str], capacity: int = 1 << 18) -> None:
        if not 1 <= capacity <= 1 << 24:
            raise ConfigError(f"trace capacity must be in [1, 2**24] rows, got {capacity!r}")
        self.probes = list(probes)
        self._index = {name: float(i) for i, name in enumerate(self.probes)}
        self._received = _Ring(capacity, 3)  # value, wall, the handler's wall
        self._applied = _Ring(capacity, 2)  # value, wall
        # probe index, seq, taken wall, handed wall, the wall its pump began
        self._frames = _Ring(capacity, 5)

    def received(self, value: float, wall: float, handled: float = math.nan) -> None:
        """An input message decoded at ``wall`` (I/O thread), whose handling began at
        ``handled`` (NaN: unknown); ``value`` is its first component."""
        self._received.add(value, wall, handled)

    def applied(self, value: float, wall: float) -> None:
        """A new input value copied into the simulator (tick thread)."""
        self._applied.add(value, wall)

    def published(
        self, probe: str, seq: int, taken: float, handed: float, began: float = math.nan
    ) -> None:
        """A frame taken from its queue at ``taken`` and handed to MQTT at ``handed``, by
        the I/O thread's pump that began at ``began`` (NaN: unknown)."""
        self._frames.add(self._index.get(probe, -1.0), float(seq), taken, handed, began)

    def save(self, path: Path) -> None:
        """Write ``received``, ``applied``, ``frames`` and ``probes`` to ``path`` (.npz)."""
        # Through an open file: given a name, savez appends ``.npz`` when it lacks one,
        # and the file asked for (``--trace-latency trace.out``) never appeared.
        with path.open("wb") as f:
            np.savez(
                f,
                received=self._received.ordered(),
                applied=self._applied.ordered(),
                frames=self._frames.ordered(),
                probes=np.array(self.probes),
            )
