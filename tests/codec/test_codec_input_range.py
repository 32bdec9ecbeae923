"""Input values beyond the network files' value limit are refused at the edge: a finite
1e308 would otherwise overflow a population's input current and leave NaN behind."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spikestream.spec import VALUE_LIMIT
from spikestream_client.codec.payloads import (
    INPUT_VALUE_LIMIT,
    PayloadRejected,
    decode_input,
    encode_input,
)


def test_the_input_limit_is_the_network_files_value_limit() -> None:
    assert INPUT_VALUE_LIMIT == VALUE_LIMIT


@pytest.mark.parametrize(
    ("payload", "dim"),
    [
        (b"1e308", 1),
        (b"[0.5, -1.0000001e9]", 2),
        (b'{"t": 1.0, "x": [2e9]}', 1),
        (msgpack.packb([0.0, 1e300]), 2),
        (b"0.5 1e10", 2),
        (b"[" + b"9" * 20 + b"]", 1),  # an integer within float64 but beyond the limit
    ],
)
def test_values_beyond_the_limit_are_refused_with_their_reason(payload: bytes, dim: int) -> None:
    with pytest.raises(PayloadRejected, match=r"within \+-1e\+09, got one of magnitude") as info:
        decode_input(payload, dim)
    assert info.value.reason == "range"


def test_the_refusal_shows_the_value_as_it_came() -> None:
    """1000000001 read "got one of magnitude 1e+09", the limit itself."""
    with pytest.raises(PayloadRejected, match=r"got one of magnitude 1000000001\.0$"):
        decode_input(b"1000000001", 1)
    with pytest.raises(PayloadRejected, match=r"got one of magnitude 1e\+300$"):
        decode_input(msgpack.packb([0.0, -1e300]), 2)


@given(
    st.lists(
        st.floats(-INPUT_VALUE_LIMIT, INPUT_VALUE_LIMIT, allow_nan=False), min_size=1, max_size=8
    )
)
def test_values_within_the_limit_round_trip(values: list[float]) -> None:
    got = decode_input(encode_input(values), len(values))
    assert got.x.tolist() == values


def test_encode_input_refuses_what_every_decoder_would() -> None:
    with pytest.raises(PayloadRejected, match=r"x must lie within \+-1e\+09") as info:
        encode_input([0.5, 2e9])
    assert info.value.reason == "range"
