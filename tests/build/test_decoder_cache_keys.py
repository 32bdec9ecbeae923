"""The decoder cache never serves decoders solved for different neurons or points.

``build._decoder_key`` digests what the solve reads. Mutation testing found that the
existing tests change the function, the radius or ``reg`` only, each of which also
changes another part of the key; so dropping ``tau_rc``, ``tau_ref`` or the evaluation
points from the key passed them all. The networks here differ in that one part alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spikestream.build import Model, build
from spikestream.spec import parse_network


def _net(pop: dict[str, object], conn: dict[str, object] | None = None) -> dict[str, object]:
    return {
        "network": {"seed": 5},
        "populations": {"a": {"n": 30, **pop}, "b": {"n": 10}},
        "connections": [{"pre": "a", "post": "b", "function": "x**2", **(conn or {})}],
    }


def _decoders(net: dict[str, object]) -> np.ndarray:
    d = build(parse_network(net)).connections[0].decoders
    assert d is not None
    return d


def _assert_solved_afresh(
    monkeypatch: pytest.MonkeyPatch,
    second: Model,
    first: dict[str, object],
    other: dict[str, object],
) -> None:
    """``second`` (``other`` built after ``first``, the cache on) holds the decoders that
    ``other`` solves with the cache off, and they differ from ``first``'s."""
    monkeypatch.setenv("SPIKESTREAM_DECODER_CACHE", "0")
    solved = _decoders(other)
    assert not np.array_equal(solved, _decoders(first))
    d = second.connections[0].decoders
    assert d is not None
    np.testing.assert_array_equal(d, solved)


#: max_rates = 256 Hz, tau_rc = 2^-5 s, tau_ref = 2^-10 s; the others change max_rates,
#: tau_rc and tau_ref so that (tau_ref - 1/max_rate) / tau_rc, and so gain and bias, stay
#: the same to the bit, while the rates between intercept and x = 1 differ.
BASE = {"max_rates": [256.0, 256.0], "tau_rc": 2**-5, "tau_ref": 2**-10}
SAME_GAIN_BIAS = [
    {"max_rates": [256.0, 256.0], "tau_rc": 2**-6, "tau_ref": 5 * 2**-11},
    {"max_rates": [128.0, 128.0], "tau_rc": 2**-5, "tau_ref": 2**-10 + 2**-8},
    {"max_rates": [1024 / 7, 1024 / 7], "tau_rc": 2**-4, "tau_ref": 2**-10},
]


@pytest.mark.parametrize("other", SAME_GAIN_BIAS)
def test_other_time_constants_with_the_same_gain_and_bias_are_solved_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, other: dict[str, object]
) -> None:
    """Same scaled encoders, bias, points and targets, other ``tau_rc``/``tau_ref``: the
    rates differ, so the decoders must be solved, not read from the first build's entry."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = build(parse_network(_net(BASE)))
    second = build(parse_network(_net(other)))
    a1, a2 = first.populations["a"], second.populations["a"]
    np.testing.assert_array_equal(a1.gain, a2.gain)  # the premise: only the rates differ
    np.testing.assert_array_equal(a1.bias, a2.bias)
    _assert_solved_afresh(monkeypatch, second, _net(BASE), _net(other))


def test_other_evaluation_points_with_the_same_targets_are_solved_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A constant function has the same targets at any points; a connection of another
    name draws other points, so its decoders differ and must be solved again."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    const: dict[str, object] = {"function": "x * 0 + 0.5"}
    first = _decoders(_net({}, const))
    second = _decoders(_net({}, {**const, "name": "other"}))
    monkeypatch.setenv("SPIKESTREAM_DECODER_CACHE", "0")
    solved = _decoders(_net({}, {**const, "name": "other"}))
    assert not np.array_equal(first, solved)
    np.testing.assert_array_equal(second, solved)


#: Pairs of populations alike in all the key reads but one array: (gain differs, bias the
#: same: intercept 0 gives bias 1 at any gain), (gain the same to the bit, bias differs).
ONE_ARRAY_DIFFERS = [
    (
        {"max_rates": [200.0, 200.0], "intercepts": [0.0, 0.0]},
        {"max_rates": [300.0, 300.0], "intercepts": [0.0, 0.0]},
        "gain",
    ),
    (
        {"max_rates": [202.5, 202.5], "intercepts": [0.0, 0.0]},
        {"max_rates": [228.09491574182374] * 2, "intercepts": [-0.25, -0.25]},
        "bias",
    ),
]


@pytest.mark.parametrize(("one", "other", "differs"), ONE_ARRAY_DIFFERS)
def test_another_gain_or_bias_alone_is_solved_again(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    one: dict[str, object],
    other: dict[str, object],
    differs: str,
) -> None:
    """The rates are set by the gain and the bias each: either alone changing means other
    decoders, whatever the rest of the key."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = build(parse_network(_net(one)))
    second = build(parse_network(_net(other)))
    a1, a2 = first.populations["a"], second.populations["a"]
    same = "bias" if differs == "gain" else "gain"
    np.testing.assert_array_equal(getattr(a1, same), getattr(a2, same))  # the premise
    assert not np.array_equal(getattr(a1, differs), getattr(a2, differs))
    _assert_solved_afresh(monkeypatch, second, _net(one), _net(other))
