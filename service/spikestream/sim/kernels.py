"""Pure numpy kernels. Each writes in place into arrays allocated at build time.

None of them allocates an array per call on the hot path, touches a clock, logs, or draws
random numbers: they take arrays and numbers and return at most a count. ``where=``
arguments keep per-neuron work on the spiking neurons without fancy indexing (which would
allocate).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.floating]
BoolArray = npt.NDArray[np.bool_]
IndexArray = npt.NDArray[np.intp]


def lif_step(
    J: Array,
    v: Array,
    ref: Array,
    spiked: BoolArray,
    s01: Array,
    tmp: Array,
    tmp2: Array,
    p: LIFParams,
) -> int:
    """Advance LIF neurons by one tick (Nengo's ``LIF.step``, plus the voltage floor).

    Args:
        J: input current, shape ``(n,)`` (dimensionless, threshold 1).
        v: membrane voltage, ``(n,)``, updated in place.
        ref: remaining refractory time (s), ``(n,)``, updated in place.
        spiked: written with ``v > 1`` this tick, ``(n,)`` bool.
        s01: written with 1.0 where a neuron spiked and 0.0 elsewhere, ``(n,)``. The
            spike output of the model is ``s01 / dt``; callers fold ``1/dt`` into their
            weights once instead of scaling every tick.
        tmp, tmp2: scratch, ``(n,)``.
        p: constants (:class:`LIFParams`, 0-d arrays of the state's dtype).

    Returns:
        The number of neurons that spiked.

    The update is::

        ref -= dt
        delta_t = clip(dt - ref, 0, dt)
        v -= (J - v) * expm1(-delta_t / tau_rc)
        spiked = v > 1
        t_spike = dt + tau_rc * log1p(-(v - 1) / (J - 1))      # on spiking neurons
        v = max(v, min_voltage); v[spiked] = 0; ref[spiked] = tau_ref + t_spike
    """
    subtract, multiply = np.subtract, np.multiply
    subtract(ref, p.dt, out=ref)
    # delta_t = clip(dt - ref, 0, dt); np.clip's Python wrapper costs ~4x two ufuncs.
    subtract(p.dt, ref, out=tmp)
    np.minimum(tmp, p.dt, out=tmp)
    np.maximum(tmp, p.zero, out=tmp)
    # Divide (not multiply by -1/tau_rc) so results match Nengo's -delta_t / tau_rc bit for bit.
    np.divide(tmp, p.neg_tau_rc, out=tmp)
    np.expm1(tmp, out=tmp)
    subtract(J, v, out=tmp2)
    multiply(tmp2, tmp, out=tmp2)
    subtract(v, tmp2, out=v)
    np.greater(v, p.one, out=spiked)
    np.copyto(s01, spiked)
    k = int(np.count_nonzero(spiked))
    if k:
        # t_spike - dt = tau_rc * log1p((1 - v) / (J - 1)). Only the division and log need
        # the mask: elsewhere tmp holds finite values that are never read.
        subtract(p.one, v, out=tmp)
        subtract(J, p.one, out=tmp2)
        np.divide(tmp, tmp2, out=tmp, where=spiked)
        np.log1p(tmp, out=tmp, where=spiked)
        multiply(tmp, p.tau_rc, out=tmp)
        # ref = tau_ref + (dt + ...), in Nengo's order of additions.
        np.add(tmp, p.dt, out=tmp)
        np.add(tmp, p.tau_ref, out=ref, where=spiked)
    np.maximum(v, p.min_voltage, out=v)
    if k:
        np.putmask(v, spiked, p.zero)
    return k


@dataclass(frozen=True)
class LIFParams:
    """Constants of a LIF population as 0-d arrays of the state dtype.

    0-d arrays skip the Python-float conversion that costs ~40 % of a small ufunc call,
    and keep float32 state in float32.
    """

    dt: Array
    tau_rc: Array
    neg_tau_rc: Array
    tau_ref: Array
    min_voltage: Array
    zero: Array
    one: Array

    @classmethod
    def make(
        cls, dt: float, tau_rc: float, tau_ref: float, min_voltage: float, dtype: npt.DTypeLike
    ) -> LIFParams:
        """Constants for tick ``dt`` (s), ``tau_rc`` and ``tau_ref`` (s) and the floor."""

        def c(x: float) -> Array:
            return np.array(x, dtype=dtype)

        return cls(
            dt=c(dt),
            tau_rc=c(tau_rc),
            neg_tau_rc=c(-tau_rc),
            tau_ref=c(tau_ref),
            min_voltage=c(min_voltage),
            zero=c(0.0),
            one=c(1.0),
        )


def lowpass_step(y: Array, u: Array, a: float, tmp: Array, scale: float = 1.0) -> None:
    """One zero-order-hold step of a first-order lowpass: ``y = a*y + (1-a)*scale*u``.

    ``a = exp(-dt/tau_s)``. ``y``, ``u`` and ``tmp`` have the same shape.
    """
    np.multiply(u, (1.0 - a) * scale, out=tmp)
    y *= a
    y += tmp


def lowpass_spikes(y: Array, spiked: BoolArray, a: float, height: float) -> None:
    """Lowpass a spike train in place: ``y = a*y + height`` where spiked, ``a*y`` elsewhere.

    With ``height = (1-a)/dt`` this equals ``lowpass_step(y, spiked/dt, a)``, in two calls.
    """
    y *= a
    np.add(y, height, out=y, where=spiked)


def spike_indices(spiked: BoolArray, k: int, arange: IndexArray, idx: IndexArray) -> IndexArray:
    """Indices of the ``k`` spiking neurons, written into ``idx[:k]`` (a view is returned).

    ``arange`` is ``np.arange(n)``, ``idx`` has shape ``(n,)``; both preallocated.
    """
    view = idx[:k]
    np.compress(spiked, arange, out=view)
    return view


def accumulate_rows(weights: Array, idx: IndexArray, out: Array) -> None:
    """Add the rows ``weights[idx]`` into ``out`` (event-driven ``W.T @ s``).

    ``weights`` has shape ``(n_pre, n_post)``, ``idx`` the spiking pre neurons, ``out``
    shape ``(n_post,)``. Reads ``len(idx)`` contiguous rows instead of the whole matrix.
    A plain loop of in-place row adds beat gathering the rows (``W[idx].sum(0)``, which
    also allocates ``len(idx) * n_post`` values) and chunked ``np.take`` + BLAS by 1.3-2x
    on a 4096 x 4096 matrix with 5-30 % of rows active.
    """
    for i in idx:
        out += weights[i]
