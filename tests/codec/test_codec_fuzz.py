"""Fuzz: every decoder either returns a valid object or raises CodecError, nothing else.

Arbitrary bytes rarely get past the first check, so the structured strategies below
also feed msgpack/JSON encodings of arbitrary values, frame-shaped maps with
half-valid fields, and mutated real frames.
"""

from __future__ import annotations

import contextlib
import json
import math
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
from spikestream_client.codec.frames import (
    DEFAULT_MAX_FRAME_BYTES,
    MAX_DT,
    MAX_FRAME_TICKS,
    MAX_TICK,
    MIN_DT,
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
    assert MIN_DT <= h.dt <= MAX_DT
    assert all(np.isfinite([h.dt, h.t, h.wall, h.late_max]))
    assert min(h.seq, h.tick, h.dropped) >= 0
    assert 1 <= h.ticks <= MAX_FRAME_TICKS
    assert max(h.seq, h.dropped, h.tick + h.ticks) <= MAX_TICK
    if isinstance(frame, SpikeFrame):
        assert frame.n <= DEFAULT_MAX_FRAME_BYTES
        assert h.ticks * max(frame.n, 1) <= 8 * DEFAULT_MAX_FRAME_BYTES
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
        assert 4 * h.ticks <= DEFAULT_MAX_FRAME_BYTES
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
    with contextlib.suppress(CodecError):
        decode_event(payload)  # only CodecError may come out; a real event is below


def _nesting(value: object) -> int:
    """Levels of arrays and objects (a scalar is 0), recursively: apart from the
    decoder's own count, which walks a stack."""
    if isinstance(value, dict):
        return 1 + max((_nesting(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_nesting(v) for v in value), default=0)
    return 0


def _all_finite(value: object) -> bool:
    """No NaN or infinity anywhere in ``value``: json.dumps writes them as ``NaN`` and
    ``Infinity``, which are not JSON, and decode_event refuses them wherever they are."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_all_finite(v) for v in value)
    return True


nested = st.integers(0, 80).map(lambda depth: json.loads("[" * depth + "]" * depth or "0"))


@FUZZ
@given(
    event=st.fixed_dictionaries(
        {},
        optional={
            "v": st.sampled_from([1, 2, 0, True, 1.0, "1", None]),
            "event": st.sampled_from(["stats", "error", "", "x" * 300])
            | scalars.filter(lambda x: not isinstance(x, bytes)),
            "wall": st.floats() | st.integers(-(2**70), 2**70) | st.sampled_from([True, "1"]),
            "stats": nested | json_values,
        },
    )
)
def test_decode_event_on_near_valid_events(event: dict[str, Any]) -> None:
    """Events one key away from valid: decoded exactly when the rules hold (an oracle
    written apart from the decoder), and then as they were sent."""
    v, kind, wall = event.get("v"), event.get("event"), event.get("wall")
    ok = (
        type(v) is int
        and v == 1
        and type(kind) is str
        and kind != ""
        and type(wall) in (int, float)
        and math.isfinite(wall)  # type: ignore[arg-type]
        and _nesting(event) <= 64
        and _all_finite(event)
    )
    try:
        decoded = decode_event(json.dumps(event).encode())
    except CodecError:
        assert not ok, f"refused {event!r:.200}"
        return
    assert ok, f"accepted {event!r:.200}"
    assert decoded["event"] == kind
    assert decoded["wall"] == float(wall)  # type: ignore[arg-type]
    assert type(decoded["wall"]) is float


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
    "ticks": st.integers(0, 8) | counts | scalars | st.sampled_from([2**24, 2**24 + 1]),
    "dt": st.floats() | scalars | st.sampled_from([5e-324, 1e-9, MIN_DT, MAX_DT, 3601.0]),
    "t": st.floats() | scalars,
    "wall": st.floats() | scalars,
    "late_max": st.floats() | scalars,
    "dropped": counts | scalars,
    "kind": st.sampled_from(["spikes", "values"]) | scalars,
    "n": st.integers(0, 40) | counts | scalars | st.sampled_from([2**24, 2**24 + 1, 2**27]),
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


# ---------------------------------------------------- headers just beyond the bounds

# Frames with no data at all, which a header could make claim anything: a value frame
# of empty tick shape and a spike frame of no spikes in index form.
_EMPTY = {
    "v": 1,
    "net": "seed",
    "probe": "b",
    "seq": 0,
    "tick": 0,
    "ticks": 1,
    "dt": 0.001,
    "t": 0.001,
    "wall": 1.7e9,
    "late_max": 0.0,
    "dropped": 0,
}
EMPTY_VALUES = {**_EMPTY, "kind": "values", "shape": [0], "data": b""}
EMPTY_IDX = {
    **_EMPTY,
    "kind": "spikes",
    "n": 0,
    "enc": "idx",
    "dtype": "u4",
    "off": b"",
    "idx": b"",
}
EMPTY_BITS = {**_EMPTY, "kind": "spikes", "n": 0, "enc": "bits", "bits": b""}
beyond = st.integers(MAX_TICK + 1, 2**64 - 1)
bad_headers = st.one_of(
    st.fixed_dictionaries({"ticks": st.just(0)}),
    st.fixed_dictionaries({"ticks": st.integers(MAX_FRAME_TICKS + 1, 2**64 - 1)}),
    st.fixed_dictionaries({"dt": st.floats(0.0, MIN_DT, exclude_max=True)}),
    st.fixed_dictionaries({"dt": st.floats(MAX_DT, exclude_min=True)}),
    st.fixed_dictionaries({"seq": beyond}),
    st.fixed_dictionaries({"tick": beyond}),
    st.fixed_dictionaries({"dropped": beyond}),
    st.integers(1, 64).flatmap(
        lambda ticks: st.fixed_dictionaries(
            {"ticks": st.just(ticks), "tick": st.integers(MAX_TICK - ticks + 1, MAX_TICK)}
        )
    ),
)


@FUZZ
@given(base=st.sampled_from([EMPTY_VALUES, EMPTY_IDX, EMPTY_BITS]), bad=bad_headers)
def test_frames_with_a_header_beyond_its_bound_are_refused(
    base: dict[str, Any], bad: dict[str, Any]
) -> None:
    assert isinstance(decode_frame(msgpack.packb(base, use_bin_type=True)), Frame)
    with pytest.raises(CodecError, match="invalid frame: "):
        decode_frame(msgpack.packb({**base, **bad}, use_bin_type=True))


@FUZZ
@given(
    n=st.integers(DEFAULT_MAX_FRAME_BYTES + 1, 2**32 - 1) | st.just(2**27),
    ticks=st.integers(1, 4),
)
def test_wide_populations_without_spikes_are_refused(n: int, ticks: int) -> None:
    frame = {**EMPTY_IDX, "n": n, "ticks": ticks}
    with pytest.raises(CodecError, match="'n' must be an integer in"):
        decode_frame(msgpack.packb(frame, use_bin_type=True))


@FUZZ
@given(ticks=st.integers(DEFAULT_MAX_FRAME_BYTES // 4 + 1, MAX_FRAME_TICKS))
def test_many_ticks_without_data_are_refused(ticks: int) -> None:
    frame = {**EMPTY_VALUES, "ticks": ticks}
    with pytest.raises(CodecError, match=r"needs at least 4\*ticks"):
        decode_frame(msgpack.packb(frame, use_bin_type=True))
