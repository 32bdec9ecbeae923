"""The service's compiled frame encoder writes the client codec's bytes, byte for byte.

The wire protocol has one definition, ``spikestream_client.codec``; the service encodes
its frames in C (``spikestream.serving._frames``) for speed, and these tests hold the two
to the same bytes for every header and array the codec accepts: any non-negative int
that fits msgpack's uint64, any float64 (NaN and infinities included), spike matrices of
every density on both sides of the idx/bits choice, index widths u2 and u4, value arrays
of any per-tick shape. CI builds the extension, so these tests require it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spikestream.serving import framecodec
from spikestream.serving.framecodec import ProbeEncoder
from spikestream.serving.statistics import stats_payload
from spikestream_client.codec import (
    FrameHeader,
    SpikeFrame,
    ValueFrame,
    decode_frame,
    encode_spikes,
    encode_values,
)
from tests.serving import offline_service

# msgpack's int forms change at these values: each, and either side of it, is drawn often.
INT_EDGES = [0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1]
U64 = st.one_of(st.sampled_from(INT_EDGES), st.integers(0, 2**64 - 1))
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,40}", fullmatch=True)
FIELDS = st.fixed_dictionaries(
    {
        "seq": U64,
        "tick": U64,
        "t": FLOATS,
        "wall": FLOATS,
        "late_max": FLOATS,
        "dropped": U64,
    }
)

#: The largest ints and the floats a careless encoder would get wrong.
EDGES = {
    "seq": 2**64 - 1,
    "tick": 2**32,
    "t": float("nan"),
    "wall": float("inf"),
    "late_max": -0.0,
    "dropped": 2**16,
}


def header(net: str, probe: str, dt: float, ticks: int, f: dict[str, Any]) -> FrameHeader:
    """The client codec's header for the same frame."""
    return FrameHeader(
        net, probe, f["seq"], f["tick"], ticks, dt, f["t"], f["wall"], f["late_max"], f["dropped"]
    )


def test_the_extension_is_built() -> None:
    assert framecodec.extension() is not None, "spikestream.serving._frames was not built"
    assert ProbeEncoder("n", "p", 0.001, "spikes").compiled


@st.composite
def spike_matrices(draw: st.DrawFn) -> np.ndarray:
    ticks = draw(st.integers(1, 6))
    n = draw(st.integers(0, 300))
    # Densities from none to all, and about the index form's break-even points: 1/32 of
    # the cells with u2 indices, 1/64 with u4.
    density = draw(
        st.sampled_from([0.0, 0.002, 0.014, 0.0156, 0.017, 0.03, 0.031, 0.033, 0.1, 1.0])
    )
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).random((ticks, n)) < density


def tie(cells: int, spikes: int) -> np.ndarray:
    """One tick of ``cells`` neurons, the first ``spikes`` of them spiking."""
    row = np.zeros((1, cells), bool)
    row[0, :spikes] = True
    return row


def dense(ticks: int, n: int) -> np.ndarray:
    """Every other neuron spiking: the bitmask form."""
    rows = np.zeros((ticks, n), bool)
    rows[:, ::2] = True
    return rows


@settings(max_examples=400)
@given(net=NAMES, probe=NAMES, dt=FLOATS, fields=FIELDS, spikes=spike_matrices())
@example(net="seed", probe="a", dt=0.001, fields=EDGES, spikes=np.zeros((1, 50), bool))
# Names of 32 characters or more: msgpack's str8 (0xd9), which a packer without
# use_bin_type never writes (str16 instead); hypothesis draws them rarely.
@example(net="n" * 40, probe="p" * 32, dt=0.001, fields=EDGES, spikes=np.zeros((1, 50), bool))
# Ties between the forms (4 bytes of u2 pairs against 4 bytes of bits; 32 against 32)
# go to the bitmask; one cell more and the indices win.
@example(net="s", probe="a", dt=0.001, fields=EDGES, spikes=tie(32, 1))
@example(net="s", probe="a", dt=0.001, fields=EDGES, spikes=tie(33, 1))
@example(net="s", probe="a", dt=0.001, fields=EDGES, spikes=tie(256, 8))
@example(net="s", probe="a", dt=0.001, fields=EDGES, spikes=tie(257, 8))
# bin16 forms: a bitmask of 512 bytes, indices of 400 bytes.
@example(net="s", probe="a", dt=0.001, fields=EDGES, spikes=dense(1, 4096))
@example(net="s", probe="a", dt=0.001, fields=EDGES, spikes=tie(40_000, 200))
# Every cell spiking: more spikes in a block than a byte counts (the extension counts 8
# cells at a time, in byte lanes summed every 255 words).
@example(net="s", probe="a", dt=0.001, fields=EDGES, spikes=np.ones((3, 5000), bool))
# 256 spikes in one block: a count kept in one byte would read 0 and pick the index form.
@example(net="s", probe="a", dt=0.001, fields=EDGES, spikes=tie(2048, 256))
@example(net="s", probe="a", dt=0.001, fields=EDGES, spikes=tie(520, 256))
# u4 indices: a frame wider or longer than 65535.
@example(net="s", probe="a", dt=0.001, fields=EDGES, spikes=tie(65_536, 3))
@example(net="s", probe="a", dt=0.001, fields=EDGES, spikes=tie(65_536, 3).T.copy())
def test_spike_frames_are_the_client_codecs_bytes(
    net: str, probe: str, dt: float, fields: dict[str, Any], spikes: np.ndarray
) -> None:
    encoder = ProbeEncoder(net, probe, dt, "spikes")
    assert encoder.compiled  # else this would compare the codec with itself
    ours = encoder.encode(**fields, rows=spikes)
    assert ours == encode_spikes(header(net, probe, dt, spikes.shape[0], fields), spikes)


@pytest.mark.parametrize(
    "spikes",
    [dense(2, 300_000), np.ones((1, 600_001), bool), tie(700_000, 9)],
    ids=["bits-bin32", "all-spiking", "sparse-u4"],
)
def test_the_extension_writes_large_frames_as_the_codec_does(spikes: np.ndarray) -> None:
    """Frames above LARGE_SPIKE_FRAME go to the codec in service; the extension must still
    write them right when called (bin32, long runs of spikes, u4 indices)."""
    ext = framecodec.extension()
    assert ext is not None
    assert spikes.size > framecodec.LARGE_SPIKE_FRAME
    encoder = ProbeEncoder("seed", "a", 0.001, "spikes")
    ticks = spikes.shape[0]
    fields = {"seq": 1, "tick": 2, "t": 0.5, "wall": 1.5, "late_max": 0.0, "dropped": 0}
    ours = ext.encode_spikes(encoder._head, 1, 2, ticks, 0.001, 0.5, 1.5, 0.0, 0, spikes)
    assert ours == encode_spikes(header("seed", "a", 0.001, ticks, fields), spikes)
    assert encoder.encode(**fields, rows=spikes) == ours  # by the codec, in service


def test_large_spike_frames_carry_their_header_to_the_codec() -> None:
    """A spike frame above LARGE_SPIKE_FRAME is encoded by the client codec in service:
    its header goes with it whole, the probe's drop count too (the frames' ``dropped`` is
    how a subscriber learns of frames lost before it, on every path)."""
    spikes = dense(2, 40_000)
    assert spikes.size > framecodec.LARGE_SPIKE_FRAME
    encoder = ProbeEncoder("seed", "a", 0.001, "spikes", (40_000,))
    fields = {"seq": 3, "tick": 5, "t": 0.5, "wall": 1.5, "late_max": 0.25, "dropped": 7}
    want = encode_spikes(header("seed", "a", 0.001, 2, fields), spikes)
    assert encoder.encode(**fields, rows=spikes) == want
    buffer = np.concatenate([spikes, np.ones_like(spikes)])  # a buffer's first rows
    assert encoder.encode_rows(3, 5, 2, 0.5, 1.5, 0.25, 7, buffer) == want


@pytest.mark.parametrize("compiled", [True, False])
def test_value_frames_of_another_shape_are_refused(compiled: bool) -> None:
    """The extension writes the probe's packed shape and whatever values it is given:
    rows of another per-tick shape must be refused before it, or the frame would say
    shape [2] and hold 3 values. Without the extension the client codec would pack the
    rows' own shape, a frame of another shape than the probe's describe gives."""
    fields = {"seq": 0, "tick": 0, "t": 0.0, "wall": 0.0, "late_max": 0.0, "dropped": 0}
    values = ProbeEncoder("seed", "v", 0.001, "values", (2,), compiled=compiled)
    assert values.compiled is compiled
    with pytest.raises(ValueError, match=r"v: rows of shape \(3,\), expected \(2,\)"):
        values.encode(**fields, rows=np.zeros((1, 3), np.float32))
    # A spike encoder given its width refuses another (one made without takes any).
    spikes = ProbeEncoder("seed", "s", 0.001, "spikes", (50,), compiled=compiled)
    with pytest.raises(ValueError, match=r"s: rows of shape \(49,\), expected \(50,\)"):
        spikes.encode(**fields, rows=np.zeros((1, 49), bool))
    free = ProbeEncoder("seed", "s", 0.001, "spikes", compiled=compiled)
    assert decode_frame(free.encode(**fields, rows=np.zeros((1, 49), bool))).header.ticks == 1


@pytest.mark.parametrize(("ticks", "n"), [(1, 65536), (65536, 1)])
def test_wide_or_long_spike_frames_take_u4_indices_as_the_codec_does(ticks: int, n: int) -> None:
    spikes = np.zeros((ticks, n), bool)
    spikes.flat[[0, 7, ticks * n - 1]] = True
    fields = {"seq": 1, "tick": 2, "t": 0.5, "wall": 1.5, "late_max": 0.0, "dropped": 0}
    ours = ProbeEncoder("seed", "a", 0.001, "spikes").encode(**fields, rows=spikes)
    assert ours == encode_spikes(header("seed", "a", 0.001, ticks, fields), spikes)
    frame = decode_frame(ours)
    assert isinstance(frame, SpikeFrame)
    assert frame.encoding == "idx"
    assert np.array_equal(frame.spikes, spikes)


@settings(max_examples=300)
@given(
    net=NAMES,
    probe=NAMES,
    dt=FLOATS,
    fields=FIELDS,
    values=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 5)).flatmap(
            lambda t: hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5).map(
                lambda s: t + s
            )
        ),
    ),
)
@example(net="s", probe="v", dt=0.001, fields=EDGES, values=np.ones((1, 16_385), np.float32))
def test_value_frames_are_the_client_codecs_bytes(
    net: str, probe: str, dt: float, fields: dict[str, Any], values: np.ndarray
) -> None:
    encoder = ProbeEncoder(net, probe, dt, "values", values.shape[1:])
    assert encoder.compiled
    ours = encoder.encode(**fields, rows=values)
    assert ours == encode_values(header(net, probe, dt, values.shape[0], fields), values)


def test_header_fields_of_numpy_types_encode_as_the_codec_packs_them() -> None:
    """numpy ints and floats (which the codec packs as their Python values) give the same
    bytes; a bool or an int where a float belongs, which the codec would pack as another
    type, is refused rather than written differently."""
    rows = np.zeros((1, 2), np.float32)
    encoder = ProbeEncoder("seed", "v", 0.001, "values", (2,))
    fields = {
        "seq": np.uint64(2**64 - 1),
        "tick": np.int64(7),
        "t": np.float64(0.25),
        "wall": np.float32(1.5),
        "late_max": 0.0,
        "dropped": np.uint16(3),
    }
    assert encoder.encode(**fields, rows=rows) == encode_values(
        header("seed", "v", 0.001, 1, fields), rows
    )
    with pytest.raises(TypeError, match="seq must be an int; got bool"):
        encoder.encode(**(fields | {"seq": True}), rows=rows)
    with pytest.raises(TypeError, match="wall must be a float; got int"):
        encoder.encode(**(fields | {"wall": 2}), rows=rows)


def test_big_endian_values_go_out_little_endian() -> None:
    rows = np.array([[1.5, -2.0, np.inf]], dtype=">f4")
    fields = {"seq": 0, "tick": 0, "t": 0.001, "wall": 1.0, "late_max": 0.0, "dropped": 0}
    ours = ProbeEncoder("seed", "v", 0.001, "values", (3,)).encode(**fields, rows=rows)
    assert ours == encode_values(header("seed", "v", 0.001, 1, fields), rows)
    frame = decode_frame(ours)
    assert isinstance(frame, ValueFrame)
    assert frame.data.tolist() == [[1.5, -2.0, np.inf]]


def test_rows_in_any_layout_encode_as_their_values() -> None:
    """A frame buffer's rows are a view; a strided one is copied, never misread."""
    data = np.arange(24, dtype=np.float32).reshape(4, 6)
    rows = data[:, ::2]  # (4, 3), not C-contiguous
    fields = {"seq": 3, "tick": 9, "t": 0.01, "wall": 2.0, "late_max": 1e-4, "dropped": 5}
    ours = ProbeEncoder("seed", "v", 0.001, "values", (3,)).encode(**fields, rows=rows)
    frame = decode_frame(ours)
    assert isinstance(frame, ValueFrame)
    assert np.array_equal(frame.data, rows)
    assert frame.header == header("seed", "v", 0.001, 4, fields)
    spikes = np.eye(6, dtype=bool)[:, 1::2]
    got = ProbeEncoder("seed", "s", 0.001, "spikes").encode(**fields, rows=spikes)
    assert got == encode_spikes(header("seed", "s", 0.001, 6, fields), spikes)


@pytest.mark.parametrize("compiled", [True, False])
def test_both_paths_refuse_rows_of_the_wrong_kind(compiled: bool) -> None:
    fields = {"seq": 0, "tick": 0, "t": 0.0, "wall": 0.0, "late_max": 0.0, "dropped": 0}
    spikes = ProbeEncoder("seed", "s", 0.001, "spikes", compiled=compiled)
    values = ProbeEncoder("seed", "v", 0.001, "values", (2,), compiled=compiled)
    with pytest.raises(ValueError, match="spikes must be"):
        spikes.encode(**fields, rows=np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="spikes must be"):
        spikes.encode(**fields, rows=np.zeros(4, bool))  # no tick axis
    with pytest.raises(ValueError, match=r"(data|values) must be"):
        values.encode(**fields, rows=np.zeros((1, 2), np.int64 if compiled else np.complex64))


def test_the_extension_checks_its_arguments() -> None:
    """Called directly, the C functions refuse what would write a wrong frame."""
    ext = framecodec.extension()
    assert ext is not None
    head = b""
    rows = np.zeros((2, 3), bool)
    with pytest.raises(ValueError, match="ticks is 1 but spikes has 2 rows"):
        ext.encode_spikes(head, 0, 0, 1, 0.001, 0.0, 0.0, 0.0, 0, rows)
    with pytest.raises(ValueError, match=r"seq must be an int in 0\.\.2"):
        ext.encode_spikes(head, -1, 0, 2, 0.001, 0.0, 0.0, 0.0, 0, rows)
    with pytest.raises(TypeError, match="tick must be an int"):
        ext.encode_spikes(head, 0, 1.0, 2, 0.001, 0.0, 0.0, 0.0, 0, rows)
    with pytest.raises(TypeError, match="wall must be a float"):
        ext.encode_spikes(head, 0, 0, 2, 0.001, 0.0, "now", 0.0, 0, rows)
    with pytest.raises(ValueError, match="ticks is 3 but data has 2 rows"):
        ext.encode_values(head, 0, 0, 3, 0.001, 0.0, 0.0, 0.0, 0, b"", np.zeros((2, 1), "f4"))
    with pytest.raises(ValueError, match="format 'd'"):
        ext.encode_values(head, 0, 0, 2, 0.001, 0.0, 0.0, 0.0, 0, b"", np.zeros((2, 1)))
    with pytest.raises(TypeError, match="takes 11 arguments"):
        ext.encode_values(head, 0)


def test_stats_say_what_encodes_the_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """``frame_encoder`` in stats: compiled where the extension is built, and the client
    codec, said so, where it is not."""

    assert stats_payload(offline_service().statistics())["frame_encoder"] == "compiled"
    monkeypatch.setattr(framecodec, "extension", lambda: None)
    svc = offline_service()
    assert stats_payload(svc.statistics())["frame_encoder"].startswith("python (the C extension")
    assert not any(e.compiled for e in svc.frames._encoders.values())


def _buffer(rows: np.ndarray, extra: int, seed: int) -> np.ndarray:
    """A frame buffer holding ``rows`` and then ``extra`` rows of other values (rows past
    the frame's, which must not show in it)."""
    rng = np.random.default_rng(seed)
    tail = rng.random((extra, *rows.shape[1:]))
    junk = tail < 0.5 if rows.dtype == np.bool_ else (tail * 1e6).astype(rows.dtype)
    return np.concatenate([rows, junk])


@settings(max_examples=200)
@given(
    fields=FIELDS,
    spikes=spike_matrices(),
    extra=st.integers(0, 5),
    seed=st.integers(0, 2**32 - 1),
    compiled=st.booleans(),
)
@example(fields=EDGES, spikes=tie(65_536, 3), extra=2, seed=0, compiled=True)  # u4, to codec
def test_spike_frames_of_a_buffers_first_rows_are_those_rows_frames(
    fields: dict[str, Any], spikes: np.ndarray, extra: int, seed: int, compiled: bool
) -> None:
    encoder = ProbeEncoder("seed", "a", 0.001, "spikes", spikes.shape[1:], compiled=compiled)
    buf = _buffer(spikes, extra, seed)
    ticks = spikes.shape[0]
    ours = encoder.encode_rows(
        fields["seq"], fields["tick"], ticks, fields["t"], fields["wall"],
        fields["late_max"], fields["dropped"], buf,
    )  # fmt: skip
    assert ours == encode_spikes(header("seed", "a", 0.001, ticks, fields), spikes)


@settings(max_examples=200)
@given(
    fields=FIELDS,
    values=hnp.arrays(
        np.float32,
        st.tuples(st.integers(0, 5)).flatmap(
            lambda t: hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5).map(
                lambda s: t + s
            )
        ),
    ),
    extra=st.integers(0, 5),
    seed=st.integers(0, 2**32 - 1),
    compiled=st.booleans(),
)
def test_value_frames_of_a_buffers_first_rows_are_those_rows_frames(
    fields: dict[str, Any], values: np.ndarray, extra: int, seed: int, compiled: bool
) -> None:
    encoder = ProbeEncoder("seed", "v", 0.001, "values", values.shape[1:], compiled=compiled)
    buf = _buffer(values, extra, seed)
    ticks = values.shape[0]
    ours = encoder.encode_rows(
        fields["seq"], fields["tick"], ticks, fields["t"], fields["wall"],
        fields["late_max"], fields["dropped"], buf,
    )  # fmt: skip
    assert ours == encode_values(header("seed", "v", 0.001, ticks, fields), values)


@pytest.mark.parametrize("compiled", [True, False])
def test_a_buffer_that_is_not_the_probes_is_refused(compiled: bool) -> None:
    values = ProbeEncoder("seed", "v", 0.001, "values", (2, 3), compiled=compiled)
    spikes = ProbeEncoder("seed", "a", 0.001, "spikes", (4,), compiled=compiled)
    args = (1, 2, 3, 0.5, 1.5, 0.0, 0)
    with pytest.raises(ValueError, match="ticks is 3 but"):
        values.encode_rows(*args, np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match="ticks is 3 but"):
        spikes.encode_rows(*args, np.zeros((2, 4), bool))
    with pytest.raises(
        ValueError, match=r"data has shape \(4, 3, 2\); expected \(rows, \*\(2, 3\)\)"
    ):
        values.encode_rows(*args, np.zeros((4, 3, 2), np.float32))  # another shape
    with pytest.raises(ValueError, match=r"expected \(rows, \*\(2, 3\)\)"):
        values.encode_rows(*args, np.zeros((4, 6), np.float32))  # another number of axes
    with pytest.raises(ValueError, match=r"shape \(4, 4, 1\); expected"):
        spikes.encode_rows(*args, np.zeros((4, 4, 1), bool))  # not (rows, n)
    with pytest.raises(ValueError, match=r"shape \(4, 5\); expected \(rows, \*\(4,\)\)"):
        spikes.encode_rows(*args, np.zeros((4, 5), bool))  # another n
    if compiled:  # the client codec converts other real dtypes; the extension refuses them
        with pytest.raises(ValueError, match="array of 'f' items"):
            values.encode_rows(*args, np.zeros((4, 2, 3), np.float64))
        with pytest.raises(ValueError, match="not C-contiguous"):
            values.encode_rows(*args, np.zeros((4, 3, 2), np.float32).transpose(0, 2, 1))


def test_a_long_buffers_short_frame_takes_the_frames_index_width() -> None:
    """The index width (u2 or u4) follows the frame's ticks, not the buffer's rows: a
    2-tick frame in a buffer of 65,537 rows has u2 indices, as the codec gives it."""
    spikes = np.zeros((2, 40), bool)
    spikes[1, 7] = True
    buf = _buffer(spikes, 65_535, seed=1)
    fields = {"seq": 1, "tick": 2, "t": 0.5, "wall": 1.5, "late_max": 0.0, "dropped": 0}
    ours = ProbeEncoder("seed", "a", 0.001, "spikes", (40,)).encode_rows(
        1, 2, 2, 0.5, 1.5, 0.0, 0, buf
    )
    assert ours == encode_spikes(header("seed", "a", 0.001, 2, fields), spikes)
    frame = decode_frame(ours)
    assert isinstance(frame, SpikeFrame)
    assert frame.encoding == "idx"


def test_what_a_header_fields_conversion_raised_goes_on_as_it_came() -> None:
    class Failing:
        def __index__(self) -> int:
            raise MemoryError("from __index__")

        def __float__(self) -> float:
            raise MemoryError("from __float__")

    import spikestream.serving._frames as codec

    with pytest.raises(MemoryError, match="from __index__"):
        codec.encode_spikes(b"", Failing(), 0, 1, 0.001, 0.001, 0.0, 0.0, 0, b"")
    with pytest.raises(MemoryError, match="from __float__"):
        codec.encode_spikes(b"", 0, 0, 1, Failing(), 0.001, 0.0, 0.0, 0, b"")
    with pytest.raises(TypeError, match="seq must be an int; got str"):
        codec.encode_spikes(b"", "0", 0, 1, 0.001, 0.001, 0.0, 0.0, 0, b"")
