"""The simulator's arrays: per population and per connection, allocated once at build.

Every array here is C-contiguous and never rebound after construction (``set_state`` and
``reset`` write into them), so compiled programs may keep their addresses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from spikestream.build import Connection, Population

Array = npt.NDArray[np.floating]


@dataclass(eq=False)
class _PopState:
    """One population's arrays, each ``(n,)``; ``count``: how many spiked this tick."""

    pop: Population
    J: Array
    v: Array
    ref: Array
    spiked: npt.NDArray[np.bool_]
    s01: Array  # 1.0 where spiked this tick, else 0.0
    tmp: Array
    tmp2: Array
    idx: npt.NDArray[np.intp]
    idx2: npt.NDArray[np.intp]
    arange: npt.NDArray[np.intp]
    count: int = 0


@dataclass(eq=False)
class _ConnState:
    """One connection's arrays and its learning settings."""

    conn: Connection
    current: Array  # (post.n,): the post current this connection contributes
    filtered: Array  # dense: same array as current; decoded: (d_out,) decoded value
    decoders: Array | None  # decoded: (pre.n, d_out) in the simulator dtype (learned in place)
    learning_rate: float
    learning_enabled: bool
    pre_activity: Array | None  # PES: lowpass of pre spikes, (pre.n,)
    error_filtered: Array | None = None  # PES with an error synapse: the filtered error
