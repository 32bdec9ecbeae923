"""Output frames: round-trips, the wire format pinned byte for byte, and validation."""

from __future__ import annotations

import math
import re
from typing import Any, Literal

import msgpack
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spikestream.errors import CodecError, PayloadTooLarge
from spikestream_client.codec.frames import (
    DEFAULT_MAX_FRAME_BYTES,
    FRAME_HEADER_BYTES,
    MAX_DT,
    MAX_FRAME_TICKS,
    MAX_TICK,
    MIN_DT,
    SCHEMA_VERSION,
    FrameHeader,
    SpikeFrame,
    ValueFrame,
    decode_frame,
    encode_spikes,
    encode_values,
    frame_ticks_limit,
)
from spikestream_client.names import NAME_MAX_LENGTH, NAME_PATTERN

finite = st.floats(allow_nan=False, allow_infinity=False)
# Names that follow the rule: the decoder refuses every other string in net/probe.
names = st.from_regex(NAME_PATTERN.replace("$", r"\Z"), fullmatch=True)
HEADER_KEYS = [
    "v",
    "net",
    "probe",
    "seq",
    "tick",
    "ticks",
    "dt",
    "t",
    "wall",
    "late_max",
    "dropped",
]


def make_header(ticks: int, **overrides: Any) -> FrameHeader:
    fields: dict[str, Any] = dict(
        net="seed",
        probe="b_spikes",
        seq=7,
        tick=70,
        ticks=ticks,
        dt=0.001,
        t=0.08,
        wall=1_700_000_000.25,
        late_max=1.5e-4,
        dropped=2,
    )
    fields.update(overrides)
    return FrameHeader(**fields)


@st.composite
def headers(draw: st.DrawFn, ticks: int) -> FrameHeader:
    return FrameHeader(
        net=draw(names),
        probe=draw(names),
        seq=draw(st.integers(0, MAX_TICK)),
        tick=draw(st.integers(0, MAX_TICK - ticks)),
        ticks=ticks,
        dt=draw(st.floats(min_value=MIN_DT, max_value=MAX_DT)),
        t=abs(draw(finite)),
        wall=draw(finite),
        late_max=abs(draw(finite)),
        dropped=draw(st.integers(0, MAX_TICK)),
    )


@st.composite
def spike_arrays(draw: st.DrawFn) -> npt.NDArray[np.bool_]:
    """Bool (ticks, n) arrays: small ones element by element (they shrink well), big
    ones from a seeded generator at a drawn density, including all-zero and all-one."""
    if draw(st.booleans()):
        shape = (draw(st.integers(1, 40)), draw(st.integers(0, 40)))  # a frame has a tick
        return draw(hnp.arrays(np.bool_, shape))
    ticks = draw(st.integers(1, 64))
    n = draw(st.integers(0, 5000))
    density = draw(st.sampled_from([0.0, 1e-3, 0.02, 0.1, 0.5, 1.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.random((ticks, n)) < density


def unpack(payload: bytes) -> dict[str, Any]:
    out: dict[str, Any] = msgpack.unpackb(payload, raw=False)
    return out


def repack(payload: bytes, **changes: Any) -> bytes:
    """Re-encode a frame with some keys changed (a value of ... deletes the key)."""
    frame = unpack(payload)
    for key, value in changes.items():
        if value is ...:
            del frame[key]
        else:
            frame[key] = value
    return msgpack.packb(frame, use_bin_type=True)


def expected_encoding(spikes: npt.NDArray[np.bool_]) -> str:
    ticks, n = spikes.shape
    itemsize = 2 if max(ticks, n) <= 65535 else 4
    idx_bytes = 2 * itemsize * int(spikes.sum())
    return "idx" if idx_bytes < math.ceil(ticks * n / 8) else "bits"


# ------------------------------------------------------------------------ round trips


@settings(max_examples=200)
@given(data=st.data(), spikes=spike_arrays())
def test_spikes_round_trip(data: st.DataObject, spikes: npt.NDArray[np.bool_]) -> None:
    header = data.draw(headers(spikes.shape[0]))
    payload = encode_spikes(header, spikes)
    frame = decode_frame(payload)
    assert isinstance(frame, SpikeFrame)
    assert frame.kind == "spikes"
    assert frame.header == header
    assert frame.n == spikes.shape[1]
    assert frame.encoding == expected_encoding(spikes)
    decoded = frame.spikes
    assert decoded.dtype == np.bool_
    assert decoded.shape == spikes.shape
    np.testing.assert_array_equal(decoded, spikes)
    offsets, neurons = frame.indices()
    want_offsets, want_neurons = np.nonzero(spikes)
    np.testing.assert_array_equal(offsets, want_offsets)
    np.testing.assert_array_equal(neurons, want_neurons)
    assert offsets.dtype == np.int64
    assert neurons.dtype == np.int64


@settings(max_examples=30, deadline=None)
@given(
    ticks=st.integers(1, 3),
    n=st.integers(65536, 70000),
    k=st.integers(0, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_spikes_round_trip_uint32_for_wide_populations(
    ticks: int, n: int, k: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    spikes = np.zeros((ticks, n), dtype=np.bool_)
    spikes[rng.integers(0, ticks, k), rng.integers(0, n, k)] = True
    payload = encode_spikes(make_header(ticks), spikes)
    raw = unpack(payload)
    assert raw["enc"] == "idx"
    assert raw["dtype"] == "u4"
    assert len(raw["off"]) == len(raw["idx"]) == 4 * int(spikes.sum())
    frame = decode_frame(payload)
    assert isinstance(frame, SpikeFrame)
    np.testing.assert_array_equal(frame.spikes, spikes)


def test_spikes_uint32_for_long_frames() -> None:
    spikes = np.zeros((70000, 1), dtype=np.bool_)
    spikes[[0, 65535, 69999], 0] = True
    payload = encode_spikes(make_header(70000), spikes)
    raw = unpack(payload)
    assert (raw["enc"], raw["dtype"]) == ("idx", "u4")
    assert np.frombuffer(raw["off"], "<u4").tolist() == [0, 65535, 69999]
    frame = decode_frame(payload)
    assert isinstance(frame, SpikeFrame)
    assert frame.indices()[0].tolist() == [0, 65535, 69999]


def test_sparse_frame_uses_index_form_and_dense_frame_uses_bitmask() -> None:
    sparse = np.zeros((10, 50), dtype=np.bool_)
    sparse[3, 7] = sparse[9, 49] = True
    dense = np.ones((10, 50), dtype=np.bool_)
    sparse_raw = unpack(encode_spikes(make_header(10), sparse))
    dense_raw = unpack(encode_spikes(make_header(10), dense))
    assert sparse_raw["enc"] == "idx"
    assert "bits" not in sparse_raw
    assert dense_raw["enc"] == "bits"
    assert "off" not in dense_raw
    assert "idx" not in dense_raw
    assert dense_raw["bits"] == b"\xff" * 62 + b"\x0f"  # 500 bits, 4 padding bits zero


def test_choice_follows_size_at_the_crossover() -> None:
    # (1, 64): bitmask is 8 bytes; k spikes as u2 pairs are 4k bytes.
    one = np.zeros((1, 64), dtype=np.bool_)
    one[0, 5] = True  # 4 bytes < 8: index
    two = one.copy()
    two[0, 9] = True  # 8 bytes == 8: tie goes to the bitmask
    assert unpack(encode_spikes(make_header(1), one))["enc"] == "idx"
    assert unpack(encode_spikes(make_header(1), two))["enc"] == "bits"


def test_choice_counts_the_bitmask_padding_byte() -> None:
    """(1, 33): the bitmask takes ceil(33/8) = 5 bytes, so one spike (4 bytes of u2
    pair) goes as indices; a bitmask size rounded down (4) would send 5 bytes for 4."""
    spikes = np.zeros((1, 33), dtype=np.bool_)
    spikes[0, 32] = True
    raw = unpack(encode_spikes(make_header(1), spikes))
    assert raw["enc"] == "idx"
    assert raw["idx"] == b"\x20\x00"


@pytest.mark.parametrize(
    ("ticks", "n", "dtype"),
    [(1, 65535, "u2"), (1, 65536, "u4"), (65535, 1, "u2"), (65536, 1, "u4")],
)
def test_index_width_is_u2_up_to_65535_neurons_and_ticks(ticks: int, n: int, dtype: str) -> None:
    """uint16 indices serve n and ticks up to 65535 inclusive (the largest index is
    then 65534), half the bytes of uint32; one more takes u4. The last slot spikes."""
    spikes = np.zeros((ticks, n), dtype=np.bool_)
    spikes[-1, -1] = True
    payload = encode_spikes(make_header(ticks), spikes)
    raw = unpack(payload)
    assert (raw["enc"], raw["dtype"]) == ("idx", dtype)
    frame = decode_frame(payload)
    assert isinstance(frame, SpikeFrame)
    assert [a.tolist() for a in frame.indices()] == [[ticks - 1], [n - 1]]


def test_empty_frames_round_trip() -> None:
    for shape in [(1, 0), (5, 0), (3, 4)]:
        spikes = np.zeros(shape, dtype=np.bool_)
        frame = decode_frame(encode_spikes(make_header(shape[0]), spikes))
        assert isinstance(frame, SpikeFrame)
        assert frame.spikes.shape == shape
        assert not frame.spikes.any()
        assert frame.indices()[0].size == 0


def test_frames_without_ticks_are_refused() -> None:
    # A frame of no ticks is no frame: the tools reshape and divide by ticks.
    for shape in [(0, 0), (0, 5)]:
        with pytest.raises(CodecError, match=r"'ticks' must be an integer in \[1, "):
            decode_frame(encode_spikes(make_header(0), np.zeros(shape, dtype=np.bool_)))
    with pytest.raises(CodecError, match=r"'ticks' must be an integer in \[1, "):
        decode_frame(encode_values(make_header(0), np.zeros((0, 2))))


def test_non_contiguous_spikes_encode_like_their_copy() -> None:
    rng = np.random.default_rng(3)
    big = rng.random((20, 100)) < 0.05
    view = big[::2, ::3]
    assert not view.flags.c_contiguous
    header = make_header(view.shape[0])
    assert encode_spikes(header, view) == encode_spikes(header, np.ascontiguousarray(view))


@settings(max_examples=200)
@given(
    data=st.data(),
    values=hnp.arrays(
        dtype=st.sampled_from([np.float64, np.float32, np.int16]),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6),
        elements={"allow_nan": True, "allow_infinity": True},
    ),
)
def test_values_round_trip(data: st.DataObject, values: npt.NDArray[Any]) -> None:
    assume(values.shape[0] >= 1)  # frames of no ticks are refused (tested below)
    header = data.draw(headers(values.shape[0]))
    with np.errstate(over="ignore"):  # float64 beyond float32 range becomes inf, by design
        expected = values.astype(np.float32)
    frame = decode_frame(encode_values(header, values))
    assert isinstance(frame, ValueFrame)
    assert frame.kind == "values"
    assert frame.header == header
    assert frame.shape == values.shape[1:]
    assert frame.data.dtype == np.float32
    assert frame.data.shape == values.shape
    np.testing.assert_array_equal(frame.data, expected)


def test_bool_values_are_sent_as_zero_and_one() -> None:
    """A bool array is a real array (``encode_values`` documents kinds f, i, u, b): a
    probe of flags is sent as float32 0/1, not refused."""
    values = np.array([[True, False], [False, True]])
    frame = decode_frame(encode_values(make_header(2), values))
    assert isinstance(frame, ValueFrame)
    np.testing.assert_array_equal(frame.data, [[1.0, 0.0], [0.0, 1.0]])


def test_big_endian_float32_values_are_sent_little_endian() -> None:
    """The wire is little-endian float32: a big-endian float32 array (e.g. from a file)
    is byte-swapped, never sent as its raw bytes."""
    values = np.array([[1.0, -2.5]], dtype=">f4")
    raw = unpack(encode_values(make_header(1), values))
    assert raw["data"] == np.array([1.0, -2.5], dtype="<f4").tobytes()
    frame = decode_frame(encode_values(make_header(1), values))
    assert isinstance(frame, ValueFrame)
    assert frame.data.tolist() == [[1.0, -2.5]]


def test_value_data_is_read_only_and_spikes_are_a_fresh_copy() -> None:
    frame = decode_frame(encode_values(make_header(2), np.ones((2, 3))))
    assert isinstance(frame, ValueFrame)
    with pytest.raises(ValueError, match="read-only"):
        frame.data[0, 0] = 5.0
    spikes = np.eye(4, dtype=np.bool_)
    sframe = decode_frame(encode_spikes(make_header(4), spikes))
    assert isinstance(sframe, SpikeFrame)
    first = sframe.spikes
    first[:] = False
    np.testing.assert_array_equal(sframe.spikes, spikes)


# ------------------------------------------------------------------ wire format, pinned


def test_spike_frame_bytes_are_pinned() -> None:
    """The documented map, key order included; catches accidental format changes."""
    spikes = np.zeros((2, 1000), dtype=np.bool_)
    spikes[0, 3] = spikes[1, 999] = True
    header = make_header(2)
    expected = msgpack.packb(
        {
            "v": 1,
            "net": "seed",
            "probe": "b_spikes",
            "seq": 7,
            "tick": 70,
            "ticks": 2,
            "dt": 0.001,
            "t": 0.08,
            "wall": 1_700_000_000.25,
            "late_max": 1.5e-4,
            "dropped": 2,
            "kind": "spikes",
            "n": 1000,
            "enc": "idx",
            "dtype": "u2",
            "off": b"\x00\x00\x01\x00",
            "idx": b"\x03\x00\xe7\x03",
        },
        use_bin_type=True,
    )
    assert encode_spikes(header, spikes) == expected


def test_bitmask_uses_little_bit_order_over_the_flattened_matrix() -> None:
    # Slot i = tick*n + neuron is bit i % 8 of byte i // 8.
    spikes = np.zeros((2, 5), dtype=np.bool_)
    spikes[0, 0] = True  # slot 0 -> byte 0 bit 0
    spikes[1, 4] = True  # slot 9 -> byte 1 bit 1
    spikes[1, 2] = True  # slot 7 -> byte 0 bit 7
    spikes[0, 3] = True  # slot 3 -> byte 0 bit 3
    raw = unpack(encode_spikes(make_header(2), spikes))
    assert raw["enc"] == "bits"
    assert raw["bits"] == bytes([0b1000_1001, 0b0000_0010])


def test_value_frame_keys_and_little_endian_float32() -> None:
    values = np.array([[1.0, -2.0], [0.5, 3.0]])
    raw = unpack(encode_values(make_header(2), values))
    assert list(raw) == [*HEADER_KEYS, "kind", "shape", "data"]
    assert raw["v"] == SCHEMA_VERSION == 1
    assert raw["kind"] == "values"
    assert raw["shape"] == [2]
    assert raw["data"] == np.array([1.0, -2.0, 0.5, 3.0], dtype="<f4").tobytes()


def test_scalar_per_tick_values_have_empty_shape() -> None:
    raw = unpack(encode_values(make_header(3), np.array([1.0, 2.0, 3.0])))
    assert raw["shape"] == []
    frame = decode_frame(msgpack.packb(raw, use_bin_type=True))
    assert isinstance(frame, ValueFrame)
    assert frame.data.shape == (3,)


def test_payload_holds_bytes_never_lists() -> None:
    rng = np.random.default_rng(0)
    for p in (0.001, 0.5):
        raw = unpack(encode_spikes(make_header(10), rng.random((10, 500)) < p))
        for key in ("off", "idx", "bits"):
            if key in raw:
                assert isinstance(raw[key], bytes), key
    raw = unpack(encode_values(make_header(10), rng.random((10, 500))))
    assert isinstance(raw["data"], bytes)


# ------------------------------------------------------------------ encoder arguments


def test_encode_spikes_rejects_non_bool_and_wrong_rank() -> None:
    with pytest.raises(CodecError, match=r"2-D bool array .* got dtype float64"):
        encode_spikes(make_header(2), np.zeros((2, 3)))
    with pytest.raises(CodecError, match=r"got dtype bool with shape \(3,\)"):
        encode_spikes(make_header(3), np.zeros(3, dtype=np.bool_))


def test_encoders_reject_tick_count_mismatch() -> None:
    with pytest.raises(CodecError, match=r"header\.ticks is 4 but spikes has 3 rows"):
        encode_spikes(make_header(4), np.zeros((3, 2), dtype=np.bool_))
    with pytest.raises(CodecError, match=r"header\.ticks is 4 but values has 3 rows"):
        encode_values(make_header(4), np.zeros((3, 2)))


def test_encode_values_rejects_scalars_and_non_real() -> None:
    with pytest.raises(
        CodecError, match=r"shape \(ticks, \*shape\); got dtype float64 with shape \(\)"
    ):
        encode_values(make_header(1), np.float64(1.0))
    with pytest.raises(CodecError, match="got dtype complex128"):
        encode_values(make_header(1), np.ones((1, 2), dtype=complex))


# ------------------------------------------------------------------ decoder validation

SPIKES = np.zeros((4, 10), dtype=np.bool_)
SPIKES[1, 2] = True
IDX_FRAME = encode_spikes(make_header(4), SPIKES)
BITS_FRAME = encode_spikes(make_header(4), np.ones((4, 10), dtype=np.bool_))
VALUE_FRAME = encode_values(make_header(4), np.ones((4, 3)))


def test_fixture_frames_use_the_forms_the_tests_assume() -> None:
    assert unpack(IDX_FRAME)["enc"] == "idx"
    assert unpack(BITS_FRAME)["enc"] == "bits"


def test_every_truncation_is_rejected() -> None:
    for frame in (IDX_FRAME, BITS_FRAME, VALUE_FRAME):
        for cut in range(len(frame)):
            with pytest.raises(CodecError):
                decode_frame(frame[:cut])


def test_trailing_bytes_are_rejected() -> None:
    with pytest.raises(CodecError, match="not valid msgpack"):
        decode_frame(VALUE_FRAME + b"\x00")


def test_oversize_is_refused_before_unpacking() -> None:
    garbage = b"\xc1" * 100  # 0xc1 is never valid msgpack
    with pytest.raises(PayloadTooLarge, match="100 bytes exceeds the limit of 99 bytes"):
        decode_frame(garbage, max_bytes=99)
    with pytest.raises(CodecError, match="not valid msgpack") as info:
        decode_frame(garbage, max_bytes=100)
    assert not isinstance(info.value, PayloadTooLarge)


@pytest.mark.parametrize(
    ("base", "changes", "message"),
    [
        (IDX_FRAME, {"v": 2}, "unsupported schema version 2"),
        (IDX_FRAME, {"v": "1"}, "unsupported schema version '1'"),
        (IDX_FRAME, {"v": ...}, "missing key 'v'"),
        # true == 1 and 1.0 == 1 in Python; neither is the integer version 1 on the wire.
        (IDX_FRAME, {"v": True}, "unsupported schema version True"),
        (IDX_FRAME, {"v": 1.0}, "unsupported schema version 1.0"),
        (IDX_FRAME, {"seq": ...}, "missing key 'seq'"),
        (IDX_FRAME, {"seq": -1}, r"'seq' must be an integer in \[0, "),
        (IDX_FRAME, {"seq": True}, r"'seq' must be an integer .* got True"),
        (IDX_FRAME, {"tick": 1.0}, r"'tick' must be an integer"),
        (IDX_FRAME, {"dropped": "0"}, r"'dropped' must be an integer"),
        (IDX_FRAME, {"ticks": 2**32}, rf"'ticks' must be an integer in \[1, {MAX_FRAME_TICKS}\]"),
        (IDX_FRAME, {"ticks": 0}, r"'ticks' must be an integer in \[1, .* got 0"),
        (IDX_FRAME, {"seq": 2**53}, rf"'seq' must be an integer in \[0, {MAX_TICK}\]"),
        (IDX_FRAME, {"tick": 2**64 - 1}, rf"'tick' must be an integer in \[0, {MAX_TICK}\]"),
        (IDX_FRAME, {"dropped": 2**53}, rf"'dropped' must be an integer in \[0, {MAX_TICK}\]"),
        (IDX_FRAME, {"tick": MAX_TICK - 2}, r"tick \+ ticks = .* exceeds 9007199254740991"),
        (IDX_FRAME, {"dt": 5e-324}, r"'dt' must be a number in \[1e-06, 3600.0\], got 5e-324"),
        (IDX_FRAME, {"dt": 1e-9}, r"'dt' must be a number in \[1e-06, 3600.0\], got 1e-09"),
        (IDX_FRAME, {"dt": 3601}, r"'dt' must be a number in \[1e-06, 3600.0\], got 3601.0"),
        (IDX_FRAME, {"dt": 2**64 - 1}, r"'dt' must be a number in .* got 1.8446"),
        # A population beyond max_bytes neurons, in a few bytes of empty index frame.
        (
            IDX_FRAME,
            {"n": 2**27, "ticks": 1, "off": b"", "idx": b""},
            r"'n' must be an integer in \[0, 16777216\], got 134217728",
        ),
        # No neurons and no data cannot claim more ticks than max_bytes allows either.
        (
            BITS_FRAME,
            {"n": 0, "bits": b"", "ticks": 2**32 - 1},
            r"'ticks' must be an integer in \[1, ",
        ),
        (
            VALUE_FRAME,
            {"shape": [0], "data": b"", "ticks": 2**23},
            r"ticks = 8388608 needs at least 4\*ticks = 33554432 bytes",
        ),
        (IDX_FRAME, {"net": b"seed"}, r"'net' must be a name \(1-64 characters.*got bytes"),
        (IDX_FRAME, {"probe": 3}, r"'probe' must be a name \(.*got int 3"),
        (IDX_FRAME, {"dt": 0.0}, r"'dt' must be a number in \[1e-06, 3600.0\], got 0.0"),
        (IDX_FRAME, {"dt": float("nan")}, r"'dt' must be a number in .* got nan"),
        (IDX_FRAME, {"t": float("inf")}, "'t' must be a finite number >= 0.0, got inf"),
        (IDX_FRAME, {"t": -0.5}, "'t' must be a finite number >= 0.0, got -0.5"),
        (IDX_FRAME, {"late_max": -1e-3}, "'late_max' must be a finite number >= 0.0, got -0.001"),
        (IDX_FRAME, {"wall": float("nan")}, "'wall' must be a finite number, got nan"),
        (IDX_FRAME, {"wall": "now"}, "'wall' must be a number, got str"),
        (IDX_FRAME, {"late_max": None}, "'late_max' must be a number, got NoneType"),
        # bool is an int subclass, but true/false in a time field is corruption, not 1/0.
        (IDX_FRAME, {"dt": True}, "'dt' must be a number, got bool True"),
        (IDX_FRAME, {"wall": False}, "'wall' must be a number, got bool False"),
        (IDX_FRAME, {"kind": "volts"}, "'kind' must be 'spikes' or 'values', got 'volts'"),
        (IDX_FRAME, {"n": -1}, r"'n' must be an integer in \[0, "),
        (IDX_FRAME, {"enc": "rle"}, "'enc' must be 'idx' or 'bits', got 'rle'"),
        (IDX_FRAME, {"dtype": "u8"}, "'dtype' must be 'u2' or 'u4', got 'u8'"),
        (IDX_FRAME, {"dtype": ["u2"]}, r"'dtype' must be 'u2' or 'u4', got \['u2'\]"),
        (IDX_FRAME, {"off": [1]}, "'off' must be msgpack bin bytes, got list"),
        (IDX_FRAME, {"idx": "\x02\x00"}, "'idx' must be msgpack bin bytes, got str"),
        (IDX_FRAME, {"idx": b""}, "'off' and 'idx' must be equal-length multiples of 2 bytes"),
        (IDX_FRAME, {"off": b"\x01", "idx": b"\x02"}, "equal-length multiples of 2 bytes"),
        (IDX_FRAME, {"dtype": "u4"}, r"multiples of 4 bytes \(u4\); got 2 and 2"),
        (IDX_FRAME, {"off": b"\x04\x00"}, "tick offset 4 out of range for ticks=4"),
        (IDX_FRAME, {"idx": b"\x0a\x00"}, "neuron index 10 out of range for n=10"),
        (IDX_FRAME, {"ticks": 1}, "tick offset 1 out of range for ticks=1"),
        (IDX_FRAME, {"n": 2**20, "ticks": 2**20}, "exceeds 8\\*max_bytes"),
        (
            BITS_FRAME,
            {"bits": b"\xff" * 4},
            r"'bits' must be ceil\(ticks\*n/8\) = 5 bytes .* got 4",
        ),
        (
            BITS_FRAME,
            {"bits": b"\xff" * 6},
            r"'bits' must be ceil\(ticks\*n/8\) = 5 bytes .* got 6",
        ),
        (BITS_FRAME, {"bits": ...}, "missing key 'bits'"),
        (BITS_FRAME, {"n": 9}, "non-zero padding bits"),  # 36 slots in 5 bytes, 4 pad bits set
        # Only the lowest padding bit (slot 36, bit 4 of the last byte) set.
        (BITS_FRAME, {"n": 9, "bits": b"\xff" * 4 + b"\x1f"}, "non-zero padding bits"),
        (
            VALUE_FRAME,
            {"shape": [4]},
            r"'data' must be 4\*ticks\*prod\(shape\) = 64 bytes .* got 48",
        ),
        (VALUE_FRAME, {"shape": 3}, "'shape' must be a list of at most 32 non-negative integers"),
        (VALUE_FRAME, {"shape": [-3]}, "'shape' must be a list"),
        (VALUE_FRAME, {"shape": [True, 3]}, "'shape' must be a list"),
        (VALUE_FRAME, {"shape": [1] * 33}, "'shape' must be a list of at most 32"),
        (VALUE_FRAME, {"shape": [2**32]}, "'shape' must be a list"),  # past uint32
        (VALUE_FRAME, {"shape": [0, 2**32 - 1, 2**32 - 1]}, "implausibly large"),
        (VALUE_FRAME, {"data": [1.0] * 12}, "'data' must be msgpack bin bytes, got list"),
    ],
)
def test_corrupt_frames_are_rejected(base: bytes, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(CodecError, match=message):
        decode_frame(repack(base, **changes))


def test_frames_without_data_claim_no_more_ticks_than_max_bytes_allows() -> None:
    # 1000 bytes: a spike frame of no neurons may span 8000 ticks (one bit each, as the
    # densest population of one would), a value frame of empty shape 250 (a float32 each).
    empty_spikes = repack(BITS_FRAME, n=0, bits=b"", ticks=8000)
    assert decode_frame(empty_spikes, max_bytes=1000).header.ticks == 8000
    with pytest.raises(CodecError, match=r"ticks\*max\(n, 1\) = 8001\*1 exceeds 8\*max_bytes"):
        decode_frame(repack(empty_spikes, ticks=8001), max_bytes=1000)
    empty_values = repack(VALUE_FRAME, shape=[3, 0], data=b"", ticks=250)
    assert decode_frame(empty_values, max_bytes=1000).header.ticks == 250
    with pytest.raises(CodecError, match="ticks = 251 needs at least 4\\*ticks = 1004 bytes"):
        decode_frame(repack(empty_values, ticks=251), max_bytes=1000)
    with pytest.raises(CodecError, match=r"'n' must be an integer in \[0, 1000\], got 1001"):
        decode_frame(repack(IDX_FRAME, n=1001, ticks=1, off=b"", idx=b""), max_bytes=1000)


def test_header_limits_are_inclusive() -> None:
    edge = repack(VALUE_FRAME, seq=MAX_TICK, dropped=MAX_TICK, tick=MAX_TICK - 4, dt=MIN_DT)
    header = decode_frame(edge).header
    assert (header.seq, header.tick + header.ticks, header.dt) == (MAX_TICK, MAX_TICK, MIN_DT)
    assert decode_frame(repack(VALUE_FRAME, dt=MAX_DT)).header.dt == MAX_DT


def test_the_element_bound_is_inclusive() -> None:
    """(ticks, *shape) may hold 2**40 elements, counting a 0 as 1 (an empty frame of
    such a shape decodes); one more row of the widest axis is refused."""
    edge = repack(VALUE_FRAME, shape=[0, 2**19, 2**19], data=b"")
    frame = decode_frame(edge)
    assert isinstance(frame, ValueFrame)
    assert frame.data.shape == (4, 0, 2**19, 2**19)
    with pytest.raises(CodecError, match=r"shape \(ticks, \*shape\) = .* is implausibly large"):
        decode_frame(repack(edge, shape=[0, 2**19, 2**19 + 1]))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "not valid msgpack"),
        (b"\xc1", "not valid msgpack"),
        (msgpack.packb([1, 2]), "expected a msgpack map, got list"),
        (msgpack.packb("frame"), "expected a msgpack map, got str"),
        (msgpack.packb({1: 2}), "not valid msgpack"),  # non-string map key
        (b"\x81\xc4\x01v\x01", "missing key 'v'"),  # bin key b"v" is not the str "v"
        (b"\x81\xa1v\xd4\x05\x00", r"not valid msgpack.*max_ext_len"),
        (b"\x81\xa1v\xc7\x00\x05", "extension type 5"),  # zero-length ext
        (b"\x81\xa1v\xd6\xff\x00\x00\x00\x01", "max_ext_len"),  # timestamp ext
        # Nesting beyond the stack: msgpack's StackError has no text, so its name is it.
        (b"\x91" * 5000 + b"\x00", "^frame is not valid msgpack: StackError$"),
        (b"\xdd\xff\xff\xff\xff", "not valid msgpack"),  # 4-billion-element array header
        (b"\x81\xa1v\xa2\xff\xfe", "not valid msgpack"),  # invalid UTF-8 string
    ],
)
def test_non_frames_are_rejected(payload: bytes, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        decode_frame(payload)


def test_an_extension_type_is_named_as_such() -> None:
    """The ext hook's own message arrives as it is, not wrapped as "not valid msgpack"."""
    with pytest.raises(CodecError, match=r"^frame contains a msgpack extension type 5; none"):
        decode_frame(b"\x81\xa1v\xc7\x00\x05")


@pytest.mark.parametrize(
    ("extra", "fits"),
    [
        ([None] * 1025, [None] * 1024),
        ({f"k{i}": 0 for i in range(257)}, {f"k{i}": 0 for i in range(256)}),
        ("x" * 65536, "x" * 65535),
    ],
    ids=["array", "map", "str"],
)
def test_unknown_keys_past_the_unpack_limits_are_refused(extra: Any, fits: Any) -> None:
    """Unknown keys are ignored, but only within msgpack's limits (1024 array items,
    256 map entries, 64 KiB strings): a 16 MiB frame of one-byte nils would otherwise
    unpack to a 128 MiB list. One item under each limit decodes."""
    assert decode_frame(repack(VALUE_FRAME, future=fits)).header == make_header(4)
    with pytest.raises(CodecError, match=r"^frame is not valid msgpack"):
        decode_frame(repack(VALUE_FRAME, future=extra))


def test_integers_are_accepted_for_float_fields() -> None:
    # JavaScript msgpack encoders send integral numbers as ints.
    frame = decode_frame(repack(VALUE_FRAME, dt=1, t=0, wall=1700000000, late_max=0))
    assert frame.header.dt == 1.0
    assert type(frame.header.dt) is float
    assert type(frame.header.wall) is float


def test_unknown_keys_are_ignored() -> None:
    frame = decode_frame(repack(VALUE_FRAME, future={"x": [1, 2]}))
    assert isinstance(frame, ValueFrame)
    assert frame.header == make_header(4)


def test_unsorted_index_pairs_from_other_encoders_decode() -> None:
    payload = repack(
        IDX_FRAME,
        off=np.array([3, 0], "<u2").tobytes(),
        idx=np.array([1, 9], "<u2").tobytes(),
    )
    frame = decode_frame(payload)
    assert isinstance(frame, SpikeFrame)
    assert frame.indices()[0].tolist() == [3, 0]
    assert sorted(zip(*np.nonzero(frame.spikes), strict=True)) == [(0, 9), (3, 1)]


def test_bytearray_and_memoryview_payloads_decode() -> None:
    for payload in (bytearray(IDX_FRAME), memoryview(IDX_FRAME)):
        frame = decode_frame(payload)
        assert isinstance(frame, SpikeFrame)
        np.testing.assert_array_equal(frame.spikes, SPIKES)


def test_memoryviews_of_any_format_decode_and_are_limited_by_their_bytes() -> None:
    """A memoryview of wider items, more axes or strides holds the same frame: it
    decodes (msgpack refuses views of wider items, and a BufferError escaped), and
    ``max_bytes`` counts its bytes, not ``len()``'s items of the first axis (a 2-D view
    was never refused)."""
    # An unknown key pads the frame to a multiple of 4 bytes, for a view of uint32.
    padded = next(p for k in range(4) if len(p := repack(IDX_FRAME, pad="x" * k)) % 4 == 0)
    views = [
        memoryview(padded).cast("B", (1, len(padded))),
        memoryview(padded).cast("I"),
        memoryview(bytes(b for c in padded for b in (c, 0)))[::2],  # every other byte
        # Fortran-ordered: msgpack read its memory order, not the view's (C) order.
        memoryview(np.asfortranarray(np.frombuffer(padded, np.uint8).reshape(2, -1))),
    ]
    for view in views:
        frame = decode_frame(view)
        assert isinstance(frame, SpikeFrame)
        np.testing.assert_array_equal(frame.spikes, SPIKES)
        with pytest.raises(PayloadTooLarge, match=rf"^frame of {len(padded)} bytes exceeds"):
            decode_frame(view, max_bytes=len(padded) - 1)


def test_numpy_scalars_in_the_header_are_packed_as_plain_numbers() -> None:
    header = make_header(
        np.int64(2),
        seq=np.uint64(5),
        tick=np.int32(9),
        late_max=np.float32(0.25),
        dropped=np.int64(0),
    )
    frame = decode_frame(encode_values(header, np.zeros((2, 1))))
    assert frame.header == make_header(2, seq=5, tick=9, late_max=0.25, dropped=0)
    assert type(frame.header.seq) is int
    assert type(frame.header.late_max) is float


def test_unpackable_header_field_is_a_codec_error_and_the_packer_recovers() -> None:
    with pytest.raises(CodecError, match="cannot pack object"):
        encode_values(make_header(1, net=object()), np.zeros((1, 1)))
    frame = decode_frame(encode_values(make_header(1), np.zeros((1, 1))))
    assert frame.header == make_header(1)


# ------------------------------------------------------------------- the naming rule

HOSTILE_NAMES = [
    "",
    "a" * 65,  # one over the limit
    "9lives",  # must start with a letter or '_'
    "-x",
    "a b",
    "a.b",  # would collide with '<pop>.spikes' keys in .npz files
    "a/b",
    "a+",
    "#",
    "a\n",  # '$' in a regular expression would let this through
    "a\x1b]0;pwned\x07",  # terminal: window title
    "a\x1b[2J",  # terminal: clear screen
    "[bold red]x[/]",  # rich markup
    "<img src=x onerror=alert(1)>",  # HTML
    "a$\\frac{$",  # matplotlib mathtext
    "caf\u00e9",  # non-ASCII
    "a\u202eb",  # right-to-left override
    "a\x00",
]


@pytest.mark.parametrize("key", ["net", "probe"])
@pytest.mark.parametrize("bad", HOSTILE_NAMES)
def test_names_breaking_the_rule_are_rejected_with_the_rule(key: str, bad: str) -> None:
    for base in (IDX_FRAME, VALUE_FRAME):
        with pytest.raises(CodecError, match=rf"'{key}' must be a name \(1-64 characters") as info:
            decode_frame(repack(base, **{key: bad}))
        # The message shows the value escaped (repr) and bounded, never raw.
        message = str(info.value)
        assert "\x1b" not in message
        assert "\n" not in message
        assert len(message) < 300


@settings(max_examples=300)
@given(name=st.text(max_size=70))
def test_any_string_is_accepted_exactly_when_it_follows_the_rule(name: str) -> None:
    ok = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,63}", name) is not None
    payload = repack(VALUE_FRAME, probe=name)
    if ok:
        assert decode_frame(payload).header.probe == name
    else:
        with pytest.raises(CodecError, match="'probe' must be a name"):
            decode_frame(payload)


@given(net=names, probe=names)
def test_valid_names_round_trip(net: str, probe: str) -> None:
    frame = decode_frame(encode_values(make_header(2, net=net, probe=probe), np.zeros((2, 1))))
    assert (frame.header.net, frame.header.probe) == (net, probe)


def test_long_strings_in_other_keys_are_reported_bounded() -> None:
    for key in ("kind", "enc", "dtype"):
        with pytest.raises(CodecError) as info:
            decode_frame(repack(IDX_FRAME, **{key: "\x1b[2J" + "x" * 60000}))
        assert len(str(info.value)) < 300
        assert "\x1b" not in str(info.value)


def _widest_header(ticks: int) -> FrameHeader:
    """A header as long as a frame's can be: the longest names, the largest numbers."""
    return make_header(
        ticks,
        net="n" * NAME_MAX_LENGTH,
        probe="p" * NAME_MAX_LENGTH,
        seq=MAX_TICK,
        tick=MAX_TICK - ticks,
        dropped=MAX_TICK,
        t=1.2345678901234567e300,
        wall=1.2345678901234567e300,
        late_max=1.2345678901234567e300,
    )


@pytest.mark.parametrize(
    ("kind", "shape"),
    [("spikes", (50,)), ("values", (50,)), ("values", (1,) * 32), ("values", (3, 7))],
)
def test_a_frame_at_the_tick_limit_fits_what_a_client_decodes(
    kind: str, shape: tuple[int, ...]
) -> None:
    """``frame_ticks_limit`` is the service's bound on ``ticks_per_frame``: a frame of
    that many ticks, with the widest header and the largest body (every neuron spiking:
    the bits form), is at most 16 MiB, decodes, and is within one tick and the header's
    allowance of the limit (the bound is not needlessly low)."""
    width = math.prod(shape)
    ticks = frame_ticks_limit("spikes" if kind == "spikes" else "values", width)
    header = _widest_header(ticks)
    if kind == "spikes":
        payload = encode_spikes(header, np.ones((ticks, width), np.bool_))
        per_tick = width / 8
    else:
        payload = encode_values(header, np.ones((ticks, *shape), np.float32))
        per_tick = 4 * width
    assert len(payload) <= DEFAULT_MAX_FRAME_BYTES
    assert len(payload) > DEFAULT_MAX_FRAME_BYTES - FRAME_HEADER_BYTES - per_tick
    frame = decode_frame(payload)
    assert frame.header.ticks == ticks


def test_the_tick_limit_is_never_past_max_frame_ticks_nor_negative() -> None:
    assert frame_ticks_limit("spikes", 1) == MAX_FRAME_TICKS
    assert frame_ticks_limit("values", 1, max_bytes=FRAME_HEADER_BYTES + 8) == 2
    assert frame_ticks_limit("values", 10**9) == 0
    assert frame_ticks_limit("values", 5, max_bytes=100) == 0


@pytest.mark.parametrize("kind", ["spikes", "values"])
def test_the_tick_limit_of_a_probe_of_width_zero_is_that_of_width_one(
    kind: Literal["spikes", "values"],
) -> None:
    """A probe of no neurons or values counts as one wide (as the decoder counts
    ``n = 0``): a limit, never a ZeroDivisionError."""
    assert frame_ticks_limit(kind, 0) == frame_ticks_limit(kind, 1) > 0


def test_a_frame_of_many_arrays_and_maps_is_refused_as_they_are_built() -> None:
    """One byte of msgpack (``0x90``) decodes to a 56-byte list: 15 MiB of nested empty
    arrays under a key no reader knows took 1.1 GB before any check of the frame ran. A
    frame holds at most MAX_FRAME_CONTAINERS arrays and maps (its map and ``shape`` are
    two of them), counted as the unpacker builds them, so the refusal costs next to nothing."""
    import tracemalloc

    from spikestream_client.codec.frames import MAX_FRAME_CONTAINERS

    good = encode_values(make_header(3), np.array([[1.0, 2.0]] * 3))
    room = MAX_FRAME_CONTAINERS - 3  # the frame's map, its shape and the list "extra"
    assert decode_frame(repack(good, extra=[[] for _ in range(room)])).header.ticks == 3
    with pytest.raises(CodecError, match=r"at most 256 arrays and maps; got more"):
        decode_frame(repack(good, extra=[[] for _ in range(room + 1)]))
    with pytest.raises(CodecError, match=r"at most 256 arrays and maps"):
        decode_frame(repack(good, extra=[{} for _ in range(room + 1)]))  # maps count too
    # A megabyte of empty arrays, 1024 to an array (the array length limit), nested.
    inner = b"\xdc\x04\x00" + b"\x90" * 1024
    hostile = b"\x81\xa1x\xdc\x04\x00" + inner * 1024
    tracemalloc.start()
    try:
        with pytest.raises(CodecError, match="arrays and maps"):
            decode_frame(hostile)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(hostile) > 2**20
    assert peak < 256 * 1024, peak
