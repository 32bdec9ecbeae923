"""Half-precision weights: the rounding (spikestream.sim.weights) and what it costs the
decoded values of a network."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spikestream.build import build
from spikestream.errors import NetworkFileError, SimulationError
from spikestream.sim import Simulator
from spikestream.sim.opcodes import OP_ENCODE, OP_ENCODE_H
from spikestream.sim.program import _Program
from spikestream.sim.weights import LIMIT, narrow, scale_exponent
from spikestream.spec import parse_network
from tests.sim import record_blocks

finite = st.floats(-1e30, 1e30, allow_nan=False, width=64)


@given(
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=12), elements=finite),
    st.sampled_from([np.float32, np.float64]),
)
def test_the_rounded_values_are_exactly_the_half_copy_times_its_scale(
    w: np.ndarray, dtype: type
) -> None:
    values, half, scale = narrow(w, dtype)
    assert values.dtype == dtype
    assert half.dtype == np.float16
    assert values.shape == half.shape == w.shape
    assert values.flags.c_contiguous
    assert math.frexp(scale)[0] == 0.5  # a power of two
    # What the C kernels compute from the copy, in the state dtype: the values, exactly.
    np.testing.assert_array_equal(half.astype(dtype) * dtype(scale), values)
    assert np.isfinite(half).all()
    peak = np.abs(w).max()
    if peak > 0 and -LIMIT < scale_exponent(peak) < LIMIT:
        # The largest magnitude lands in [2**14, 2**15]: 11 significant bits for it, and
        # every element within half a unit of the largest's last place (2**-11 of it).
        assert 2**14 <= np.abs(half).astype(np.float64).max() <= 2**15
        err = np.abs(values.astype(np.float64) - w)
        assert err.max() <= peak * 2.0**-11 + np.abs(w).max() * np.finfo(dtype).eps


def test_decoders_of_a_few_1e_5_keep_eleven_bits() -> None:
    """Without the scale, decoders this small would be float16 subnormals (below 6.1e-5)
    with a few bits left; with it, each keeps a relative error of at most 2**-11."""
    w = np.random.default_rng(3).uniform(1e-5, 4e-5, (500, 16))
    values, _, _ = narrow(w, np.float64)
    assert (np.abs(values - w) / w).max() <= 2.0**-11
    unscaled = w.astype(np.float16).astype(np.float64)
    assert (np.abs(unscaled - w) / w).max() > 2.0**-9  # what the scale avoids


def test_a_zero_matrix_and_a_non_finite_one() -> None:
    values, half, scale = narrow(np.zeros((3, 2)), np.float32)
    assert scale == 1.0
    assert not values.any()
    assert not half.any()
    with pytest.raises(SimulationError, match=r"holds inf; half-precision weights need finite"):
        narrow(np.array([[1.0, np.inf]]), np.float32)


def test_a_matrix_beyond_what_float16_holds_at_the_smallest_scale_is_refused() -> None:
    """At the scale's limit, 2**-100, float16 holds up to 65504 * 2**100 (about 8.3e34);
    past that the copy would be infinite, so the matrix is refused instead."""
    values, half, _ = narrow(np.array([[8e34]]), np.float32)
    assert np.isfinite(half).all()
    assert abs(values[0, 0] / 8e34 - 1) < 2.0**-11
    with pytest.raises(SimulationError, match=r"peaks at 1e\+35; half-precision weights hold"):
        narrow(np.array([[1e35]]), np.float32)


def test_the_refusal_starts_exactly_where_the_float16_copy_would_round_to_infinity() -> None:
    """65520 is the tie between float16's largest finite (65504) and 65536, and rounds
    (to even) to infinity: at the smallest scale a peak of 65520 * 2**100 must be refused,
    and the float64 just below it kept with a finite copy."""
    edge = math.ldexp(65520.0, LIMIT)
    with np.errstate(over="ignore"):
        assert np.isinf(np.float16(65520.0))
    with pytest.raises(SimulationError, match="half-precision weights hold"):
        narrow(np.array([[edge]]), np.float32)
    below = math.ldexp(float(np.nextafter(65520.0, 0.0)), LIMIT)
    values, half, scale = narrow(np.array([[below, -below]]), np.float64)
    assert np.isfinite(half).all()
    assert scale == math.ldexp(1.0, LIMIT)
    top = math.ldexp(65504.0, LIMIT)
    np.testing.assert_array_equal(values, [[top, -top]])


def test_a_state_may_carry_fixed_decoders_but_not_change_them() -> None:
    """Decoders that do not learn are read as rounded copies: a state (a snapshot)
    restoring them unchanged is accepted, one that changes them is refused before
    anything is copied."""
    sim = Simulator(build(parse_network(_chain("float16"))))
    sim.run(50)
    state = sim.state()
    sim.set_state(state)
    changed = dict(state)
    changed["conn.1.decoders"] = state["conn.1.decoders"] * 1.5
    changed["tick"] = np.int64(7)
    with pytest.raises(SimulationError, match=r"'conn.1.decoders' differs from this network"):
        sim.set_state(changed)
    assert sim.tick == 50
    # Without half-precision weights the decoders are read from the state: it may set them.
    Simulator(build(parse_network(_chain(None)))).set_state(changed)


def test_a_program_takes_a_float16_copy_only_in_a_weight_column() -> None:
    """The C extension checks shapes, not element types: the program builder refuses a
    float16 copy anywhere but a half-precision op's weight column, and such a column
    holding a state-dtype array."""
    values, half, scale = narrow(np.ones((4, 3)), np.float32)
    prog = _Program(np.dtype(np.float32), {id(values): (values, half, scale)})
    dst, x = np.zeros(4, np.float32), np.zeros(3, np.float32)
    h = prog.half(values)
    assert h is not None
    slot, got = h
    assert got == scale
    prog.op(OP_ENCODE_H, prog.array(dst), slot, prog.array(x), 0, prog.scalar(scale))
    with pytest.raises(SimulationError, match=r"column 1 of opcode 11 cannot take a float16"):
        prog.op(OP_ENCODE_H, slot, slot, prog.array(x), 0, prog.scalar(scale))
    with pytest.raises(SimulationError, match=r"column 2 of opcode 3 cannot take a float16"):
        prog.op(OP_ENCODE, prog.array(dst), slot, prog.array(x), 0)
    with pytest.raises(SimulationError, match=r"column 2 of opcode 11 needs a float16"):
        prog.op(OP_ENCODE_H, prog.array(dst), prog.array(values), prog.array(x), 0, 0)


def _chain(weights_dtype: str | None) -> dict:
    return {
        "network": {"seed": 5, "dtype": "float32", "weights_dtype": weights_dtype},
        "populations": {p: {"n": 800, "dim": 4} for p in ("a", "b", "c")},
        # 0.4 on each of 4 dimensions: a norm of at most 0.8, inside the radius of 1.
        "inputs": {
            "u": {"dim": 4, "target": "a", "signal": {"kind": "sin", "amp": 0.4, "freq": 1}}
        },
        "connections": [
            {"pre": "a", "post": "b", "function": "x", "synapse": 0.005},
            {"pre": "b", "post": "c", "function": "x", "synapse": 0.005},
        ],
        "probes": {"yc": {"target": "c", "kind": "decoded", "synapse": 0.02}},
    }


def test_half_precision_weights_decode_as_well_as_the_state_dtype() -> None:
    """A three-population chain carrying a 4-D sine: its decoded output with float16
    weights tracks the input as closely as with float32 ones (the rounding of 2**-11 is
    far below the decoders' own error), and the two runs stay close tick by tick."""
    ticks = 3000
    runs = {}
    for weights in (None, "float16"):
        model = build(parse_network(_chain(weights)))
        runs[weights] = record_blocks(Simulator(model), ticks, progress_every=ticks)["yc"]
    from spikestream.runtime.offline import input_signals

    target = input_signals(build(parse_network(_chain(None))), ticks)["u"]
    settle = 300  # the chain's synapses take a few tens of ms to fill

    # Three 5 ms hops and a 20 ms probe filter delay the output: compare against the
    # input shifted by the delay that fits best, the same for both runs.
    def rmse(y: np.ndarray) -> float:
        return min(
            float(np.sqrt(np.mean((y[settle:] - target[settle - lag : ticks - lag]) ** 2)))
            for lag in range(0, 60, 2)
        )

    full, half = rmse(runs[None]), rmse(runs["float16"])
    assert full < 0.1, full  # the chain does represent its input
    assert half <= full * 1.1, (half, full)
    assert not np.array_equal(runs[None], runs["float16"])  # the rounding did happen
    gap = float(np.sqrt(np.mean((runs[None][settle:] - runs["float16"][settle:]) ** 2)))
    assert gap < 0.5 * full, (gap, full)


def test_a_bad_weights_dtype_names_the_key_the_value_and_what_is_allowed() -> None:
    spec = _chain("float8")
    with pytest.raises(
        NetworkFileError,
        match=r"network\.weights_dtype: Input should be 'float16' \(got 'float8'\)",
    ):
        parse_network(spec)
