"""The hot kernels compiled with numba: one native loop per call instead of ~20 ufuncs.

These compute what :mod:`spikestream.sim.kernels` computes (the pure-numpy reference),
element by element in the same order of operations. float64 results agree to the last
bits of ``expm1``/``log1p`` (numpy may use SIMD versions where these call libm), and spike
trains agree exactly in tests/sim/test_jit.py and against Nengo. What they save is
interpreter overhead and work on neurons that do not need it:

* a 50-neuron LIF step costs one call (~0.8 µs) instead of ~20 ufunc calls (~7 µs);
* ``expm1`` runs only for neurons leaving their refractory period (``0 < delta_t < dt``);
  every other neuron uses the constant ``expm1(-dt/tau_rc)`` or 0, the very values the
  elementwise formula produces for them, in a pass without unpredictable branches;
* ``log1p`` runs only for neurons that spiked.

All functions release the GIL (``nogil=True``), so the tick thread runs them while the I/O
thread encodes and publishes frames. Compiled code is cached on disk (``cache=True``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

# Cache compiled kernels in a user cache folder: site-packages may be read-only.
os.environ.setdefault(
    "NUMBA_CACHE_DIR",
    str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "spikestream" / "numba"),
)

import numba
import numpy as np
import numpy.typing as npt
from numba import types
from numba.extending import intrinsic
from numba.np.numpy_support import carray

from spikestream.sim.opcodes import (
    ADDRESS,
    COLS,
    DT,
    FULL,
    MIN_VOLTAGE,
    NEG_TAU_RC,
    ONE,
    OP_ADD,
    OP_COPY,
    OP_DECODED,
    OP_ENCODE,
    OP_EVENTS,
    OP_FEED,
    OP_FILTERED,
    OP_LIF,
    OP_LOWPASS_DECODED,
    OP_RECORD,
    OP_RECORD_BOOL,
    PROGRAM_COLUMNS,
    ROWS,
    TAU_RC,
    TAU_REF,
    ZERO,
    lif_constants,
)

Array = npt.NDArray[np.floating]
BoolArray = npt.NDArray[np.bool_]
IndexArray = npt.NDArray[np.intp]


@numba.njit(nogil=True, cache=True)
def lif_step_jit(
    J: Array,
    v: Array,
    ref: Array,
    spiked: BoolArray,
    s01: Array,
    c: Array,
    leaving: IndexArray,
    spikers: IndexArray,
) -> int:  # pragma: no cover - compiled; exercised through the simulator
    """LIF step, same contract as :func:`spikestream.sim.kernels.lif_step`.

    Arrays have shape ``(n,)``; ``c`` holds the constants (:func:`lif_constants`, seconds);
    ``leaving`` and ``spikers`` are index scratch of shape ``(n,)``. Returns the number of
    neurons that spiked; their indices are ``spikers[:count]`` afterwards.

    Four passes, so the pass over every neuron has no branches and no indexed stores and
    compiles to SIMD code (0.3 µs for 1000 float32 neurons):

    1. every neuron: ``ref -= dt``; the voltage update with ``delta_t = dt`` (``ref <= 0``)
       or ``delta_t = 0`` (``ref >= dt``: still refractory, ``v`` is kept); spike test
       and floor.
    2. list the neurons leaving their refractory period (``0 < ref < dt``) and the
       spikers (branch-free compaction).
    3. the leaving neurons: the exact update with ``expm1(-delta_t / tau_rc)`` (their
       ``v`` is still the previous value, because pass 1 multiplied by 0).
    4. the spikers: ``ref = tau_ref + t_spike`` with ``log1p``, and ``v = 0``.
    """
    dt, tau_rc, tau_ref, vmin = c[DT], c[TAU_RC], c[TAU_REF], c[MIN_VOLTAGE]
    full, zero, one, neg_tau_rc = c[FULL], c[ZERO], c[ONE], c[NEG_TAU_RC]
    n = J.shape[0]
    for i in range(n):
        r = ref[i] - dt
        ref[i] = r
        vo = v[i]
        f = full if r <= zero else zero
        vi = vo - (J[i] - vo) * f
        # Neurons leaving their refractory period are decided in pass 3 only, so none is
        # listed twice (a restored state may hold v > 1 on one).
        spike = (vi > one) & ~((r > zero) & (r < dt))
        spiked[i] = spike
        s01[i] = one if spike else zero
        v[i] = vi if vi >= vmin else vmin
    n_leaving = 0
    n_spikes = 0
    for i in range(n):
        r = ref[i]
        leaving[n_leaving] = i
        n_leaving += (r > zero) & (r < dt)
        spikers[n_spikes] = i
        n_spikes += spiked[i]
    for q in range(n_leaving):
        i = leaving[q]
        vo = v[i]
        vi = vo - (J[i] - vo) * math.expm1((dt - ref[i]) / neg_tau_rc)
        if vi > one:
            spiked[i] = True
            s01[i] = one
            spikers[n_spikes] = i
            n_spikes += 1
        elif vi < vmin:
            vi = vmin
        v[i] = vi
    for q in range(n_spikes):
        i = spikers[q]
        ref[i] = math.log1p((one - v[i]) / (J[i] - one)) * tau_rc + dt + tau_ref
        v[i] = zero
    return n_spikes


@numba.njit(nogil=True, cache=True)
def lif_bias_current_step_jit(
    bias: Array,
    current: Array,
    J: Array,
    v: Array,
    ref: Array,
    spiked: BoolArray,
    s01: Array,
    c: Array,
    leaving: IndexArray,
    spikers: IndexArray,
) -> int:  # pragma: no cover - compiled
    """``J = bias + current``, then :func:`lif_step_jit`, in one call.

    The common case of a population fed by exactly one connection and no input (every
    link of a chain): one dispatch instead of three.
    """
    for i in range(J.shape[0]):
        J[i] = bias[i] + current[i]
    return lif_step_jit(J, v, ref, spiked, s01, c, leaving, spikers)


@numba.njit(nogil=True, cache=True)
def accumulate_rows_jit(
    weights: Array, spikers: IndexArray, count: int, out: Array
) -> None:  # pragma: no cover - compiled
    """``out += weights[i]`` for the first ``count`` indices in ``spikers`` (the list
    :func:`lif_step_jit` just wrote): event-driven ``W.T @ s``.

    ``weights`` ``(n_pre, n_post)``, ``out`` ``(n_post,)``.
    """
    n_post = out.shape[0]
    for q in range(count):
        row = weights[spikers[q]]
        for j in range(n_post):
            out[j] += row[j]


@numba.njit(nogil=True, cache=True)
def encode_jit(encoders_t: Array, y: Array, current: Array) -> None:  # pragma: no cover
    """``current = encoders_t.T @ y``: ``encoders_t`` ``(d, n)``, ``y`` ``(d,)``,
    ``current`` ``(n,)``.

    Eight rows per sweep over ``current``, so each element is loaded and stored d/8
    times instead of d times; the contiguous inner loop compiles to SIMD code (0.7 µs
    for 16 x 1000 float32, against 1.3 µs one row per sweep and 1.9 µs through BLAS).
    The sum is associated in pairs, which rounds differently from BLAS by an ulp or so.
    """
    d, n = encoders_t.shape
    for i in range(n):
        current[i] = 0.0
    j = 0
    while j + 8 <= d:
        y0, y1, y2, y3 = y[j], y[j + 1], y[j + 2], y[j + 3]
        y4, y5, y6, y7 = y[j + 4], y[j + 5], y[j + 6], y[j + 7]
        r0, r1, r2, r3 = encoders_t[j], encoders_t[j + 1], encoders_t[j + 2], encoders_t[j + 3]
        r4, r5, r6, r7 = encoders_t[j + 4], encoders_t[j + 5], encoders_t[j + 6], encoders_t[j + 7]
        for i in range(n):
            current[i] += ((r0[i] * y0 + r1[i] * y1) + (r2[i] * y2 + r3[i] * y3)) + (
                (r4[i] * y4 + r5[i] * y5) + (r6[i] * y6 + r7[i] * y7)
            )
        j += 8
    while j < d:
        yj = y[j]
        r0 = encoders_t[j]
        for i in range(n):
            current[i] += r0[i] * yj
        j += 1


@numba.njit(nogil=True, cache=True)
def decode_lowpass_jit(
    spikers: IndexArray,
    count: int,
    decoders: Array,
    y: Array,
    a: np.floating[Any] | float,
    gain: np.floating[Any] | float,
    acc: Array,
) -> None:  # pragma: no cover - compiled
    """Decode this tick's spikes and lowpass them: ``y = a*y + gain*acc``.

    ``acc = decoders[spikers[:count]].sum(0)`` (event-driven ``D.T @ spiked``, costing
    ``O(spikes * d)``, not ``O(n * d)``), with ``gain = (1-a)/dt`` the zero-order-hold
    lowpass of ``D.T @ (spiked/dt)``. ``decoders`` ``(n_pre, d)``, ``y`` and ``acc``
    (scratch) ``(d,)``.
    """
    d = y.shape[0]
    for j in range(d):
        acc[j] = 0.0
    for q in range(count):
        row = decoders[spikers[q]]
        for j in range(d):
            acc[j] += row[j]
    for j in range(d):
        y[j] = a * y[j] + gain * acc[j]


@numba.njit(nogil=True, cache=True)
def decoded_step_jit(
    spikers: IndexArray,
    count: int,
    decoders: Array,
    y: Array,
    a: np.floating[Any] | float,
    gain: np.floating[Any] | float,
    encoders_t: Array,
    current: Array,
    acc: Array,
) -> None:  # pragma: no cover - compiled
    """A whole factored connection tick: decode and lowpass (:func:`decode_lowpass_jit`),
    then encode: ``current = encoders_t.T @ y`` (:func:`encode_jit`).

    ``decoders`` ``(n_pre, d)``, ``y`` and ``acc`` (scratch) ``(d,)``, ``encoders_t``
    ``(gain_post * E_post @ T).T`` of shape ``(d, n_post)``, ``current`` ``(n_post,)``.
    """
    decode_lowpass_jit(spikers, count, decoders, y, a, gain, acc)
    encode_jit(encoders_t, y, current)


@numba.njit(nogil=True, cache=True)
def encode_rows_jit(
    enc: Array, x: Array, dst: Array, add: bool
) -> None:  # pragma: no cover - compiled
    """``dst = enc @ x`` (``add`` false) or ``dst += enc @ x``: ``enc`` ``(n, d)`` with
    ``d >= 1``, ``x`` ``(d,)``, ``dst`` ``(n,)``.

    Each row's dot product is summed first, then added, in the order of
    ``np.dot(enc, x) + dst`` (for ``d == 1`` bit for bit what BLAS gives).
    """
    for i in range(dst.shape[0]):
        row = enc[i]
        acc = row[0] * x[0]
        for j in range(1, x.shape[0]):
            acc += row[j] * x[j]
        dst[i] = dst[i] + acc if add else acc


def _pointer_typer(typingctx: Any, address: Any, like: Any) -> Any:  # pragma: no cover
    """A pointer to ``like``'s element type at the integer ``address`` (compiled code only)."""
    ptr = types.CPointer(like.dtype)  # type: ignore[no-untyped-call]

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.inttoptr(args[0], context.get_value_type(ptr))

    return ptr(address, like), codegen


_pointer: Any = intrinsic(_pointer_typer)


@numba.njit(nogil=True, cache=True, inline="always")
def _vec(table: npt.NDArray[np.int64], slot: int, like: Any) -> Any:  # pragma: no cover
    """The 1-d array of table row ``slot``, with ``like``'s dtype."""
    return carray(_pointer(table[slot, ADDRESS], like), table[slot, ROWS])


@numba.njit(nogil=True, cache=True, inline="always")
def _mat(table: npt.NDArray[np.int64], slot: int, like: Any) -> Any:  # pragma: no cover
    """The C-contiguous 2-d array of table row ``slot``, with ``like``'s dtype."""
    return carray(_pointer(table[slot, ADDRESS], like), (table[slot, ROWS], table[slot, COLS]))


@numba.njit(nogil=True, cache=True)
def run_program(
    program: npt.NDArray[np.int64],
    table: npt.NDArray[np.int64],
    scalars: Array,
    counts: npt.NDArray[np.int64],
    flags: BoolArray,
    indices: IndexArray,
    start: int,
    stop: int,
) -> None:  # pragma: no cover - compiled
    """Run ticks ``start .. stop-1`` of a program: every op of every tick in one call.

    A tick otherwise costs one interpreter dispatch per population, connection, probe and
    recorded array (~1 µs each, more than a small population's kernel); here a block of
    ticks is one call, so the seed network steps and records at native speed.

    Args:
        program: ``(ops, PROGRAM_COLUMNS)`` int64, one row per op in tick order (the
            ``OP_*`` constants above). Array operands are rows of ``table``.
        table: ``(arrays, 3)`` int64: the data address and shape of every array the
            program touches, built once from the simulator's own arrays (C-contiguous, the
            right dtype, kept alive by the caller), so every other op, probe and snapshot
            sees the same state. Replaces lists of arrays: numba's typed lists cost ~0.5 s
            to build at every start, a table of addresses nothing.
        scalars: ``(rows, 8)`` constants in the state dtype: a LIF population's
            :func:`lif_constants`, or ``(a, b)`` of a filter.
        counts: spike count per population slot (written by ``OP_LIF``, read by the
            connections and probes of its spikes).
        flags, indices: empty arrays giving the bool and index element types.
        start, stop: the tick indices ``k`` of the block (rows of fed and recorded
            arrays).
    """
    f = scalars
    for k in range(start, stop):
        for r in range(program.shape[0]):
            op = program[r]
            code = op[0]
            if code == OP_LIF:
                c = scalars[op[8]]
                counts[op[9]] = lif_step_jit(
                    _vec(table, op[1], f),
                    _vec(table, op[2], f),
                    _vec(table, op[3], f),
                    _vec(table, op[4], flags),
                    _vec(table, op[5], f),
                    c,
                    _vec(table, op[6], indices),
                    _vec(table, op[7], indices),
                )
            elif code == OP_COPY:
                dst = _vec(table, op[1], f)
                src = _vec(table, op[2], f)
                for i in range(dst.shape[0]):
                    dst[i] = src[i]
            elif code == OP_ADD:
                dst = _vec(table, op[1], f)
                src = _vec(table, op[2], f)
                for i in range(dst.shape[0]):
                    dst[i] += src[i]
            elif code == OP_EVENTS:
                z = _vec(table, op[1], f)
                a = scalars[op[5], 0]
                for i in range(z.shape[0]):
                    z[i] *= a
                count = counts[op[4]]
                if count:
                    accumulate_rows_jit(
                        _mat(table, op[2], f), _vec(table, op[3], indices), count, z
                    )
            elif code == OP_DECODED:
                decoded_step_jit(
                    _vec(table, op[1], indices),
                    counts[op[2]],
                    _mat(table, op[3], f),
                    _vec(table, op[4], f),
                    scalars[op[7], 0],
                    scalars[op[7], 1],
                    _mat(table, op[5], f),
                    _vec(table, op[6], f),
                    _vec(table, op[8], f),
                )
            elif code == OP_FILTERED:
                # Branch-free: s01 is 0 or 1, so yi + height * s01 is yi + height or
                # exactly yi (y >= 0 is never -0.0): lowpass_spikes' values, bit for bit.
                # With u = an input and b = 1 - a: lowpass_step's two roundings, alike.
                y = _vec(table, op[1], f)
                s01 = _vec(table, op[2], f)
                a, height = scalars[op[3], 0], scalars[op[3], 1]
                for i in range(y.shape[0]):
                    y[i] = y[i] * a + height * s01[i]
            elif code == OP_LOWPASS_DECODED:
                decode_lowpass_jit(
                    _vec(table, op[1], indices),
                    counts[op[2]],
                    _mat(table, op[3], f),
                    _vec(table, op[4], f),
                    scalars[op[6], 0],
                    scalars[op[6], 1],
                    _vec(table, op[5], f),
                )
            elif code == OP_ENCODE:
                encode_rows_jit(
                    _mat(table, op[2], f), _vec(table, op[3], f), _vec(table, op[1], f), op[4] != 0
                )
            elif code == OP_FEED:
                x = _vec(table, op[1], f)
                row = _mat(table, op[2], f)[k]
                for i in range(x.shape[0]):
                    x[i] = row[i]
            elif code == OP_RECORD:
                src = _vec(table, op[2], f)
                out = _mat(table, op[1], f)[k]
                for i in range(src.shape[0]):
                    out[i] = src[i]
            elif code == OP_RECORD_BOOL:
                srcb = _vec(table, op[2], flags)
                outb = _mat(table, op[1], flags)[k]
                for i in range(srcb.shape[0]):
                    outb[i] = srcb[i]


def warm_up(dtype: np.dtype[np.floating], *, kernels: bool = False, program: bool = True) -> None:
    """Compile (or load from the disk cache) the kernels for ``dtype`` now, so that the
    first tick does not pay for it.

    Loading one kernel from the cache costs a few ms and compiling it up to a second, so
    by default only :func:`run_program` is loaded (the simulator fuses every op it can
    into programs); ``kernels=True`` also loads the kernels that unfused ops call from
    Python (the numba backend with learning connections, or ``fuse=False``), and
    ``program=False`` skips :func:`run_program` (the C extension runs the programs).
    """
    empty = np.zeros(0, dtype)
    none = np.zeros(0, np.intp)
    flags = np.zeros(0, np.bool_)
    if program:
        run_program(
            np.zeros((0, PROGRAM_COLUMNS), np.int64),
            np.zeros((0, 3), np.int64),
            np.zeros((0, 8), dtype),
            np.zeros(0, np.int64),
            flags,
            none,
            0,
            0,
        )
    if not kernels:
        return
    one = np.dtype(dtype).type(1.0)  # the simulator passes scalars of the state dtype
    c = lif_constants(1.0, 1.0, 1.0, 0.0, dtype)
    lif_step_jit(empty, empty, empty, flags, empty, c, none, none)
    lif_bias_current_step_jit(empty, empty, empty, empty, empty, flags, empty, c, none, none)
    accumulate_rows_jit(np.zeros((0, 0), dtype), none, 0, empty)
    decoded_step_jit(
        none, 0, np.zeros((0, 0), dtype), empty, one, one, np.zeros((0, 0), dtype), empty, empty
    )
    decode_lowpass_jit(none, 0, np.zeros((0, 0), dtype), empty, one, one, empty)
    encode_rows_jit(np.zeros((0, 1), dtype), np.zeros(1, dtype), empty, False)
