"""Matrices stored in half precision (``network.weights_dtype = "float16"``).

A tick of a large decoded chain is bound by the bytes it reads: the folded encoders are
read whole every tick and the decoders in the rows of the neurons that spiked
(``bench/memtraffic.py``). With half-precision weights, each such matrix is rounded once,
at build time, to what a float16 copy scaled by a power of two can hold, and:

* the simulator's own matrix (state dtype) holds the rounded values, so every path that
  reads it (numpy, numba, the Python ops) computes with exactly those values;
* the C extension's programs read the float16 copy instead, and turn each element back
  into the state dtype as ``half * scale``, which is exact (an 11-bit significand times a
  power of two), so they compute bit for bit what the other paths compute, from half the
  bytes.

The model itself (``Model``, the ``.npz`` parameters) keeps the unrounded values: the
rounding is how the tick stores its matrices, like ``network.dtype``. Decoders that
learn (a connection with an ``error_input``) keep the state dtype: they change every
tick.

Each matrix gets its own scale, chosen so that its largest magnitude lands in
``[2**14, 2**15)``: well inside float16's range (65504), with elements down to about
``2**-28`` of the largest still normal, so decoders of a few 1e-5 keep their 11 bits
instead of falling into float16's subnormals.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from spikestream.errors import SimulationError

Array = npt.NDArray[np.floating]
Half = npt.NDArray[np.float16]

#: The largest magnitude of a matrix is scaled into [2**(TOP - 1), 2**TOP).
TOP = 15
#: Scales stay within 2**-LIMIT .. 2**LIMIT, so ``half * scale`` is a normal float32
#: (float16's smallest subnormal, 2**-24, times 2**-100 is above float32's 2**-126).
LIMIT = 100
#: The smallest magnitude a cast to float16 rounds to infinity (65504 is the largest finite).
HALF_ROUNDS_TO_INF = 65520.0


def scale_exponent(peak: float) -> int:
    """The ``s`` for which ``peak * 2**s`` lies in ``[2**14, 2**15)``, clamped to
    ``[-LIMIT, LIMIT]`` (0 for ``peak == 0``)."""
    if peak == 0.0:
        return 0
    _, e = math.frexp(peak)  # peak = m * 2**e with 0.5 <= m < 1
    return max(-LIMIT, min(LIMIT, TOP - e))


def narrow(w: npt.ArrayLike, dtype: npt.DTypeLike) -> tuple[Array, Half, float]:
    """Round matrix ``w`` to half precision with a power-of-two scale.

    Args:
        w: a finite matrix (any float dtype), shape ``(rows, cols)``.
        dtype: the state dtype (float32 or float64) of the returned values.

    Returns:
        ``(values, half, scale)``: ``values`` in ``dtype`` (C-contiguous, the shape of
        ``w``) equals ``half.astype(dtype) * scale`` exactly, element by element;
        ``half`` is float16 with the same shape; ``scale`` is a power of two.

    Raises:
        SimulationError: ``w`` holds a NaN or an infinity.
    """
    wide = np.ascontiguousarray(w, dtype=np.float64)
    peak = float(np.max(np.abs(wide))) if wide.size else 0.0
    if not math.isfinite(peak):
        raise SimulationError(
            f"a matrix of shape {wide.shape} holds {peak}; half-precision weights need "
            "finite values"
        )
    s = scale_exponent(peak)
    if math.ldexp(peak, s) >= HALF_ROUNDS_TO_INF:  # only past about 8.3e34, at s = -LIMIT
        raise SimulationError(
            f"a matrix of shape {wide.shape} peaks at {peak:.4g}; half-precision weights hold "
            f"magnitudes below {math.ldexp(HALF_ROUNDS_TO_INF, LIMIT):.4g}"
        )
    # Both products are exact in float64 (a power of two), so the only rounding is the
    # cast to float16, to nearest.
    half = np.ascontiguousarray(np.ldexp(wide, s).astype(np.float16))
    scale = math.ldexp(1.0, -s)
    values = np.ascontiguousarray(np.ldexp(half.astype(np.float64), -s).astype(dtype))
    return values, half, scale
