"""The format of a fused program: opcodes, columns and a LIF population's constants.

A program (:mod:`spikestream.sim.program`) is an int64 array of rows, one per op in tick
order, whose operands are rows of an address table; two interpreters run it: the C
extension (:mod:`spikestream.sim.native`) and the numba one
(:func:`spikestream.sim.jit.run_program`). This module imports neither, so building a
program costs no compiler start-up. ``_native.c`` repeats these numbers;
tests/sim/test_native.py checks that the two agree.

numba's disk cache keys on ``jit.py`` only and freezes these globals into the compiled
code: after changing a number here, touch ``jit.py`` so the cached interpreter is rebuilt
(the tests comparing the two interpreters bit for bit fail until it is).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.floating]

#: Opcodes of a program (one row per op, tick order). ``k`` is the tick index inside the
#: call (``start <= k < stop``).
OP_FEED = 0  # [op, x, values]: x = values[k] (an input fed from a (ticks, dim) block)
OP_COPY = 1  # [op, dst, src]: dst = src
OP_ADD = 2  # [op, dst, src]: dst += src
OP_ENCODE = 3  # [op, dst, enc, x, add]: dst = enc @ x (add == 0) or dst += enc @ x
OP_LIF = 4  # [op, J, v, ref, spiked, s01, leaving, spikers, scalars, count]: LIF step
OP_EVENTS = 5  # [op, z, w_rows, spikers, count, scalars]: z = a*z + w_rows[spikers].sum(0)
OP_DECODED = 6  # [op, spikers, count, decoders, y, enc_t, current, scalars, acc]
OP_FILTERED = 7  # [op, y, u, scalars]: y = a*y + b*u (spike filter: u = s01; or lowpass_step)
OP_LOWPASS_DECODED = 8  # [op, spikers, count, decoders, y, acc, scalars]: decoded probe
OP_RECORD = 9  # [op, dst, src]: dst[k] = src (state dtype)
OP_RECORD_BOOL = 10  # [op, dst, src]: dst[k] = src (bool)
#: The same ops reading a half-precision matrix (:mod:`spikestream.sim.weights`), whose
#: scale is a constant of the op: run by the C extension only; the numba interpreter
#: runs the plain op on the rounded matrix, with the same results.
OP_ENCODE_H = 11  # [op, dst, enc, x, add, scalars]: scalars[0] = enc's scale
OP_EVENTS_H = 12  # as OP_EVENTS; scalars[2] = w_rows' scale
OP_DECODED_H = 13  # as OP_DECODED; scalars[2] = decoders' scale, scalars[3] = enc_t's
OP_LOWPASS_DECODED_H = 14  # as OP_LOWPASS_DECODED; scalars[2] = decoders' scale
#: The columns of each half-precision op that name a float16 copy.
HALF_COLUMNS = {
    OP_ENCODE_H: (2,),
    OP_EVENTS_H: (2,),
    OP_DECODED_H: (3, 5),
    OP_LOWPASS_DECODED_H: (3,),
}
#: The columns of each plain op that name an array of the address table.
SLOT_COLUMNS = {
    OP_FEED: (1, 2),
    OP_COPY: (1, 2),
    OP_ADD: (1, 2),
    OP_ENCODE: (1, 2, 3),
    OP_LIF: (1, 2, 3, 4, 5, 6, 7),
    OP_EVENTS: (1, 2, 3),
    OP_DECODED: (1, 3, 4, 5, 6, 8),
    OP_FILTERED: (1, 2),
    OP_LOWPASS_DECODED: (1, 3, 4, 5),
    OP_RECORD: (1, 2),
    OP_RECORD_BOOL: (1, 2),
}
#: What each plain op reads and writes, for splitting a tick's program in two stages
#: (:mod:`spikestream.sim.stages`): slot columns read, slot columns written (an array
#: both read and written is in both; together they are SLOT_COLUMNS), and the ops that
#: read or write a spike-count slot, with its column. ENCODE's ``dst`` counts as read too
#: (it may add to it), as DECODED's ``current`` and ``acc``.
READS = {
    OP_FEED: (2,),
    OP_COPY: (2,),
    OP_ADD: (1, 2),
    OP_ENCODE: (1, 2, 3),
    OP_LIF: (1, 2, 3),
    OP_EVENTS: (1, 2, 3),
    OP_DECODED: (1, 3, 4, 5, 6, 8),
    OP_FILTERED: (1, 2),
    OP_LOWPASS_DECODED: (1, 3, 4, 5),
    OP_RECORD: (2,),
    OP_RECORD_BOOL: (2,),
}
WRITES = {
    OP_FEED: (1,),
    OP_COPY: (1,),
    OP_ADD: (1,),
    OP_ENCODE: (1,),
    OP_LIF: (2, 3, 4, 5, 6, 7),
    OP_EVENTS: (1,),
    OP_DECODED: (4, 6, 8),
    OP_FILTERED: (1,),
    OP_LOWPASS_DECODED: (4, 5),
    OP_RECORD: (1,),
    OP_RECORD_BOOL: (1,),
}
COUNT_READ = {OP_EVENTS: 4, OP_DECODED: 2, OP_LOWPASS_DECODED: 2}
COUNT_WRITE = {OP_LIF: 9}
#: The weight columns of each plain op that reads rows of spikers only (event-driven):
#: a fraction of the matrix per tick.
EVENT_WEIGHTS = {OP_EVENTS: (2,), OP_DECODED: (3,), OP_LOWPASS_DECODED: (3,)}
#: The plain op of each half-precision op.
PLAIN_OP = {
    OP_ENCODE_H: OP_ENCODE,
    OP_EVENTS_H: OP_EVENTS,
    OP_DECODED_H: OP_DECODED,
    OP_LOWPASS_DECODED_H: OP_LOWPASS_DECODED,
}
#: Columns of a program row (unused columns hold 0).
PROGRAM_COLUMNS = 10
#: Columns of an address table row: data address, shape[0], shape[1] (0 for 1-d arrays).
ADDRESS, ROWS, COLS = range(3)


#: Layout of the constants array :func:`lif_constants` builds (one per population).
DT, TAU_RC, TAU_REF, MIN_VOLTAGE, FULL, ZERO, ONE, NEG_TAU_RC = range(8)


def lif_constants(
    dt: float, tau_rc: float, tau_ref: float, min_voltage: float, dtype: npt.DTypeLike
) -> Array:
    """The constants of a LIF population as an array of the state dtype, shape ``(8,)``.

    Kept in the state dtype so a float32 population computes in float32, as the numpy
    reference does (mixing in float64 scalars would convert every element and halve the
    SIMD width). ``FULL`` is ``expm1(dt / -tau_rc)``, the voltage factor of every neuron
    out of its refractory period, computed exactly as the reference computes it.
    """
    c = np.zeros(8, dtype)
    c[DT], c[TAU_RC], c[TAU_REF], c[MIN_VOLTAGE] = dt, tau_rc, tau_ref, min_voltage
    c[NEG_TAU_RC] = -c[TAU_RC]
    c[FULL] = np.expm1(np.divide(c[DT], c[NEG_TAU_RC]))
    c[ZERO], c[ONE] = 0, 1
    return c
