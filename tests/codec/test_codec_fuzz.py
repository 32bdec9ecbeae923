"""Fuzz: every decoder either returns a valid object or raises CodecError, nothing else.

Arbitrary bytes rarely get past the first check, so the structured strategies below
also feed msgpack/JSON encodings of arbitrary values, frame-shaped maps with
half-valid fields, and mutated real frames.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikestream.errors import CodecError
from spikestream_client.codec import (
    COMMANDS,
    ControlCommand,
    Frame,
    FrameHeader,
    InputSample,
    SpikeFrame,
    decode_control,
    decode_event,
    decode_frame,
    decode_input,
    encode_spikes,
    encode_values,
)

FUZZ = settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=12)
    | st.binary(max_size=12)
)
msgpack_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=6) | st.integers(-5, 5), inner, max_size=5)
    ),
    max_leaves=20,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=20,
)


def check_frame(frame: Frame) -> None:
    """A frame that decoded must be internally consistent."""
    h = frame.header
    assert isinstance(h, FrameHeader)
    assert h.dt > 0
    assert all(np.isfinite([h.dt, h.t, h.wall, h.late_max]))
    assert min(h.seq, h.tick, h.ticks, h.dropped) >= 0
    if isinstance(frame, SpikeFrame):
        spikes = frame.spikes
        assert spikes.shape == (h.ticks, frame.n)
        assert spikes.dtype == np.bool_
        offsets, neurons = frame.indices()
        assert offsets.shape == neurons.shape
        if offsets.size:
            assert 0 <= offsets.min() <= offsets.max() < h.ticks
            assert 0 <= neurons.min() <= neurons.max() < frame.n
        assert spikes[offsets, neurons].all()
        assert int(spikes.sum()) == len(set(zip(offsets.tolist(), neurons.tolist(), strict=True)))
    else:
        assert frame.data.shape == (h.ticks, *frame.shape)
        assert frame.data.dtype == np.float32


def check_input(payload: bytes, dim: int) -> None:
    try:
        sample = decode_input(payload, dim)
    except CodecError:
        return
    assert isinstance(sample, InputSample)
    assert sample.x.shape == (dim,)
    assert sample.x.dtype == np.float64
    assert np.isfinite(sample.x).all()
    assert sample.t is None or np.isfinite(sample.t)


def check_control(payload: bytes) -> None:
    try:
        command = decode_control(payload)
    except CodecError:
        return
    assert isinstance(command, ControlCommand)
    assert command.cmd in COMMANDS
    assert command.key is None or command.cmd == "set"
    assert command.id is None or isinstance(command.id, str)


def try_frame(payload: bytes) -> None:
    try:
        frame = decode_frame(payload)
    except CodecError:
        return
    check_frame(frame)


# -------------------------------------------------------------------- arbitrary bytes


@FUZZ
@given(payload=st.binary(max_size=300))
def test_decode_frame_on_arbitrary_bytes(payload: bytes) -> None:
    try_frame(payload)


@FUZZ
@given(payload=st.binary(max_size=200), dim=st.integers(1, 4))
def test_decode_input_on_arbitrary_bytes(payload: bytes, dim: int) -> None:
    check_input(payload, dim)


@FUZZ
@given(payload=st.binary(max_size=200))
def test_decode_control_on_arbitrary_bytes(payload: bytes) -> None:
    check_control(payload)


@FUZZ
@given(payload=st.binary(max_size=200))
def test_decode_event_on_arbitrary_bytes(payload: bytes) -> None:
    try:
        event = decode_event(payload)
    except CodecError:
        return
    assert event["v"] == 1


@FUZZ
@given(text=st.text(alphabet=st.sampled_from('0123456789.eE+-, \t\n[]{}":txnaif'), max_size=40))
def test_decode_input_on_number_like_text(text: str) -> None:
    for dim in (1, 2, 3):
        check_input(text.encode(), dim)


# ------------------------------------------------------------ arbitrary encoded values


@FUZZ
@given(value=msgpack_values, dim=st.integers(1, 3))
def test_decoders_on_arbitrary_msgpack(value: Any, dim: int) -> None:
    payload = msgpack.packb(value, use_bin_type=True)
    check_input(payload, dim)
    check_control(payload)
    try_frame(payload)


@FUZZ
@given(value=json_values, dim=st.integers(1, 3))
def test_decoders_on_arbitrary_json(value: Any, dim: int) -> None:
    payload = json.dumps(value).encode()
    check_input(payload, dim)
    check_control(payload)
    with contextlib.suppress(CodecError):
        decode_event(payload)


@FUZZ
@given(
    value=st.fixed_dictionaries(
        {},
        optional={
            "t": st.none() | st.floats() | st.booleans() | st.text(max_size=3),
            "x": st.floats() | st.lists(st.floats() | st.integers(), max_size=4) | msgpack_values,
            "y": st.integers(-(2**63), 2**64 - 1),
        },
    ),
    dim=st.integers(1, 3),
)
def test_decode_input_on_input_shaped_maps(value: dict[str, Any], dim: int) -> None:
    # Integers beyond 64 bits cannot be msgpack, but they can be JSON.
    try:
        packed = msgpack.packb(value, use_bin_type=True)
    except OverflowError:
        pass
    else:
        check_input(packed, dim)
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):  # bytes values are not JSON
        return
    check_input(text.encode(), dim)


@FUZZ
@given(
    value=st.fixed_dictionaries(
        {},
        optional={
            "cmd": st.sampled_from(["pause", "set", "learn", "restore", "snapshot", "x"]) | scalars,
            "key": st.none() | st.text(max_size=6) | st.integers(-(2**63), 2**64 - 1),
            "value": scalars,
            "id": scalars,
        },
    )
)
def test_decode_control_on_command_shaped_maps(value: dict[str, Any]) -> None:
    check_control(msgpack.packb(value, use_bin_type=True))


# ---------------------------------------------------------------- frame-shaped inputs

VALID_SPIKES = np.random.default_rng(1).random((6, 30)) < 0.02
HEADER = FrameHeader("seed", "b", 3, 30, 6, 0.001, 0.036, 1.7e9, 0.0, 0)
FRAMES = [
    encode_spikes(HEADER, VALID_SPIKES),
    encode_spikes(HEADER, ~VALID_SPIKES),
    encode_values(HEADER, np.arange(18.0).reshape(6, 3)),
]
# Around the edges of the valid ranges, within what msgpack can carry (int64/uint64).
counts = (
    st.integers(0, 70) | st.integers(-(2**63), 2**64 - 1) | st.sampled_from([-1, 2**32, 2**64 - 1])
)
field_values = {
    "v": st.just(1) | scalars,
    "net": st.text(max_size=4) | scalars,
    "probe": st.text(max_size=4) | scalars,
    "seq": counts | scalars,
    "tick": counts | scalars,
    "ticks": st.integers(0, 8) | counts | scalars,
    "dt": st.floats() | scalars,
    "t": st.floats() | scalars,
    "wall": st.floats() | scalars,
    "late_max": st.floats() | scalars,
    "dropped": counts | scalars,
    "kind": st.sampled_from(["spikes", "values"]) | scalars,
    "n": st.integers(0, 40) | counts | scalars,
    "enc": st.sampled_from(["idx", "bits"]) | scalars,
    "dtype": st.sampled_from(["u2", "u4"]) | scalars,
    "off": st.binary(max_size=24) | scalars,
    "idx": st.binary(max_size=24) | scalars,
    "bits": st.binary(max_size=40) | scalars,
    "shape": st.lists(st.integers(-1, 5), max_size=3) | scalars,
    "data": st.binary(max_size=200) | scalars,
}


def test_frame_fixtures_decode() -> None:
    encodings = set()
    for payload in FRAMES:
        frame = decode_frame(payload)
        check_frame(frame)
        if isinstance(frame, SpikeFrame):
            encodings.add(frame.encoding)
    assert encodings == {"idx", "bits"}


@FUZZ
@given(data=st.data(), base=st.sampled_from(FRAMES))
def test_decode_frame_on_frames_with_replaced_fields(data: st.DataObject, base: bytes) -> None:
    frame = msgpack.unpackb(base, raw=False)
    keys = data.draw(st.lists(st.sampled_from(sorted(field_values)), min_size=1, max_size=4))
    for key in keys:
        if data.draw(st.integers(0, 9)) == 0:
            frame.pop(key, None)
        else:
            frame[key] = data.draw(field_values[key])
    try_frame(msgpack.packb(frame, use_bin_type=True))


@FUZZ
@given(
    base=st.sampled_from(FRAMES),
    edits=st.lists(
        st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.integers(0, 2)), max_size=6
    ),
)
def test_decode_frame_on_mutated_bytes(base: bytes, edits: list[tuple[int, int, int]]) -> None:
    payload = bytearray(base)
    for position, byte, op in edits:
        if not payload:
            break
        i = position % len(payload)
        if op == 0:
            payload[i] = byte
        elif op == 1:
            del payload[i]
        else:
            payload.insert(i, byte)
    try_frame(bytes(payload))


@pytest.mark.parametrize("base", FRAMES)
def test_every_single_byte_flip_is_handled(base: bytes) -> None:
    # Exhaustive over positions, a few values each: deterministic, and cheap.
    for i in range(len(base)):
        for byte in (0x00, 0xFF, base[i] ^ 0x01, base[i] ^ 0x80):
            payload = bytearray(base)
            payload[i] = byte
            try_frame(bytes(payload))
