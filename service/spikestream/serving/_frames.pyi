"""Output frames encoded in C (see spikestream.serving.framecodec)."""

import numpy as np
import numpy.typing as npt

def encode_values(
    head: bytes,
    seq: int,
    tick: int,
    ticks: int,
    dt: float,
    t: float,
    wall: float,
    late_max: float,
    dropped: int,
    tail: bytes,
    data: npt.NDArray[np.float32],
    /,
) -> bytes: ...
def encode_spikes(
    head: bytes,
    seq: int,
    tick: int,
    ticks: int,
    dt: float,
    t: float,
    wall: float,
    late_max: float,
    dropped: int,
    spikes: npt.NDArray[np.bool_],
    /,
) -> bytes: ...
