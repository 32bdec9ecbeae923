"""Where the simulator's arrays start (spikestream.sim.arrays): on a cache line."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spikestream.build import build
from spikestream.sim import Simulator
from spikestream.sim.arrays import CACHE_LINE, aligned, aligned_zeros
from spikestream.sim.program import _Segment
from spikestream.spec import parse_network


@given(
    hnp.arrays(
        st.sampled_from([np.float64, np.float32, np.int64, np.bool_]),
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9),
    ),
    st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.bool_]),
)
def test_an_aligned_copy_starts_a_line_and_holds_the_cast_values(
    values: np.ndarray, dtype: type
) -> None:
    with np.errstate(all="ignore"):  # a float64 beyond float16's range casts to inf
        want = values.astype(dtype)
        got = aligned(values, dtype)
    # An empty array has no bytes to place (numpy may point it anywhere).
    assert got.ctypes.data % CACHE_LINE == 0 or got.size == 0
    assert got.dtype == np.dtype(dtype)
    assert got.shape == values.shape
    assert got.flags.c_contiguous
    assert got.flags.writeable
    np.testing.assert_array_equal(got, want)
    # A copy: writing it leaves the source as it was.
    before = values.copy()
    got[...] = 0
    np.testing.assert_array_equal(values, before)


def test_aligned_zeros() -> None:
    z = aligned_zeros((3, 5), np.float32)
    assert z.ctypes.data % CACHE_LINE == 0
    assert z.shape == (3, 5)
    assert z.dtype == np.float32
    assert not z.any()


def _chain(weights_dtype: str | None) -> dict:
    return {
        "network": {"seed": 2, "dtype": "float32", "weights_dtype": weights_dtype},
        "populations": {p: {"n": 300, "dim": 16} for p in ("a", "b", "c", "d")},
        "inputs": {"u": {"dim": 16, "target": "a"}},
        "connections": [
            {"pre": "a", "post": "b", "function": "x"},
            {"pre": "b", "post": "c", "function": "x"},
            {"pre": "c", "post": "d", "function": "x"},
        ],
        "probes": {"yd": {"target": "d", "kind": "decoded", "synapse": 0.02}},
    }


@pytest.mark.parametrize("weights_dtype", [None, "float16"])
def test_every_matrix_and_population_array_a_tick_reads_starts_a_line(
    weights_dtype: str | None,
) -> None:
    """A 16-D float32 decoder row is one 64-byte line only where the matrix starts on a
    line. Placed by numpy alone, 37 of this chain's matrices and population-sized arrays
    started 16, 32 or 48 bytes past one (38 with float16 weights)."""
    sim = Simulator(build(parse_network(_chain(weights_dtype))))
    seen = [a for op in sim._ops if isinstance(op, _Segment) for a in op.arrays]
    matrices = [a for a in seen if a.ndim == 2]
    # Four encoder matrices (one input, three connections' folded ones), three decoders
    # and the probe's, as float32 or as their float16 copies.
    assert len(matrices) >= 8
    assert weights_dtype is None or any(a.dtype == np.float16 for a in matrices)
    per_neuron = [a for a in seen if a.ndim == 1 and a.shape[0] == 300]
    assert len(per_neuron) >= 4 * 4
    off = [(a.shape, str(a.dtype), a.ctypes.data % CACHE_LINE) for a in matrices + per_neuron]
    assert [o for o in off if o[2]] == []
    # The copies the second of two tick threads reads (arrays latched across the cut).
    stages = sim.two_stages([sim.inputs["u"]])
    assert stages is not None
    counts = range(stages.counts.ctypes.data, stages.counts.ctypes.data + stages.counts.nbytes)
    latched = [int(dst) for _, dst, _ in stages.latches if int(dst) not in counts]
    assert len(latched) >= 1
    assert [int(a) % CACHE_LINE for a in latched] == [0] * len(latched)
