"""Output frames: the msgpack maps published on ``<prefix>/<net>/out/<probe>``.

A frame carries ``ticks`` consecutive ticks of one probe. Every frame is a msgpack map
with the header keys ``v, net, probe, seq, tick, ticks, dt, t, wall, late_max, dropped``
(see ``docs/PROTOCOL.md``) plus a ``kind``:

* ``kind = "spikes"`` adds ``n`` (neurons) and the spikes in the smaller of two forms:

  - ``enc = "idx"``: ``dtype`` (``"u2"`` or ``"u4"``), ``off`` (tick offsets within the
    frame) and ``idx`` (neuron indices), both little-endian unsigned integer bytes of
    equal length, one entry per spike, in row-major (tick, neuron) order;
  - ``enc = "bits"``: ``bits``, the row-major ``ticks × n`` boolean matrix packed by
    ``np.packbits(..., bitorder="little")`` over the flattened matrix (bit ``i`` of the
    matrix is bit ``i % 8`` of byte ``i // 8``; the last byte is zero-padded).

* ``kind = "values"`` adds ``shape`` (the per-tick shape, a list of ints) and ``data``,
  little-endian float32 bytes of the row-major ``(ticks, *shape)`` array.

Encoding runs on the service's I/O thread up to thousands of times per second and
competes with the tick thread for the GIL, so the encoders do the least Python work
they can: no validation beyond cheap shape checks, one numpy pass to pick the spike form,
and one ``Packer.pack`` call that packs numpy buffers without an extra ``tobytes`` copy.

:func:`decode_frame` is the one decoder that the service, the monitor, the recorder and
the client library share. It trusts nothing: it refuses oversize payloads before
unpacking and validates the schema version, every key's type and range, and every byte
length against ``ticks``, ``n`` and ``shape``. ``net`` and ``probe`` must follow the
naming rule of network files (:mod:`spikestream_client.names`); every other string key
(``kind``, ``enc``, ``dtype``) must be one of its few allowed values.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NoReturn

import msgpack
import numpy as np
import numpy.typing as npt

from spikestream_client.codec.bounds import (
    DEFAULT_MAX_FRAME_BYTES,
    MAX_DT,
    MIN_DT,
    ContainerCount,
)
from spikestream_client.errors import CodecError, PayloadTooLarge
from spikestream_client.names import NAME_RULE, is_name

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "FRAME_HEADER_BYTES",
    "MAX_DT",
    "MAX_FRAME_TICKS",
    "MAX_TICK",
    "MIN_DT",
    "SCHEMA_VERSION",
    "Frame",
    "FrameHeader",
    "SpikeFrame",
    "ValueFrame",
    "decode_frame",
    "encode_spikes",
    "encode_values",
    "frame_ticks_limit",
]

SCHEMA_VERSION: Final = 1
"""Value of the ``v`` key. Bumped only for changes an old decoder would misread."""

# Index dtypes: uint16 covers every frame with n and ticks up to 65535, which is nearly
# all of them and halves the bytes on the wire; uint32 otherwise.
_U16_LIMIT: Final = 65535
_U2: Final[np.dtype[np.uint16]] = np.dtype("<u2")
_U4: Final[np.dtype[np.uint32]] = np.dtype("<u4")
_F4: Final[np.dtype[np.float32]] = np.dtype("<f4")
_INDEX_DTYPES: Final[dict[str, np.dtype[np.unsignedinteger[Any]]]] = {
    "u2": _U2,
    "u4": _U4,
}

# Sanity bounds for the decoder. Counts above 2**32 - 1 cannot come from our encoder
# (uint32 indices), and a product of dimensions above 2**40 would make numpy refuse
# even a zero-size array, so both are rejected as corrupt rather than crashing later.
_MAX_COUNT: Final = 2**32 - 1
_MAX_ELEMENTS: Final = 2**40
_MAX_NDIM: Final = 32
MAX_TICK: Final = 2**53 - 1
"""Largest ``seq``, ``tick``, ``dropped`` and ``tick + ticks`` a frame may carry: the
integers a JavaScript number (and a float64 time axis) holds exactly, as everywhere else
in the protocol (docs/PROTOCOL.md §3.6). Tools then never overflow int64 arithmetic."""
MAX_FRAME_TICKS: Final = 2**24
"""Most ticks one frame may carry, whatever its size: the service's frame buffers hold
fewer rows (``MAX_ROWS``). The data must also account for them (see ``decode_frame``)."""
#: Arrays and maps one frame may hold: a frame is a map holding a ``shape`` array; the
#: rest is room for keys added later (each array or map costs 56+ bytes decoded, for one
#: byte of msgpack).
MAX_FRAME_CONTAINERS: Final = 256
FRAME_HEADER_BYTES: Final = 2048
"""Most bytes a frame takes besides its spikes or values: every header key with the
longest names and numbers, a shape of up to 32 sizes, and the spike form's keys."""


def frame_ticks_limit(
    kind: Literal["spikes", "values"], width: int, max_bytes: int = DEFAULT_MAX_FRAME_BYTES
) -> int:
    """The most ticks one frame of a probe can carry and still be decoded by a client
    that accepts ``max_bytes`` (:func:`decode_frame`'s default: 16 MiB).

    A frame takes at most :data:`FRAME_HEADER_BYTES` plus its body: for spikes of
    ``width`` neurons, ``ceil(ticks * width / 8)`` bytes (the bits form; the index form
    is sent only when smaller); for ``width`` values per tick, ``4 * ticks * width``
    (float32). Never more than :data:`MAX_FRAME_TICKS`; 0 when not even one tick fits.
    """
    room = max(0, max_bytes - FRAME_HEADER_BYTES)
    width = max(1, width)
    ticks = room * 8 // width if kind == "spikes" else room // (4 * width)
    return min(MAX_FRAME_TICKS, ticks)


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """The keys every output frame carries.

    Attributes:
        net: Network name.
        probe: Probe name.
        seq: Frame counter of this probe, from 0, never restarting while the service
            process lives; a gap means frames were lost.
        tick: Index of the first tick in the frame (the network's tick counter).
        ticks: Number of ticks in the frame (rows of the frame's array).
        dt: Tick length, in seconds.
        t: Simulated time at the end of the frame, in seconds.
        wall: Unix time at which the frame's last tick finished, in seconds.
        late_max: Worst tick lateness in the frame, in seconds.
        dropped: Frames this probe has dropped so far (backpressure), cumulative.
    """

    net: str
    probe: str
    seq: int
    tick: int
    ticks: int
    dt: float
    t: float
    wall: float
    late_max: float
    dropped: int


@dataclass(frozen=True, slots=True, eq=False)
class SpikeFrame:
    """A decoded spike frame.

    Only what arrived is stored; :attr:`spikes` and :meth:`indices` convert on each call,
    so a recorder that wants indices never builds the dense matrix and vice versa.

    Attributes:
        header: The common frame keys.
        n: Number of neurons (columns of :attr:`spikes`).
        encoding: The wire form that arrived, ``"idx"`` or ``"bits"``.
    """

    kind: Literal["spikes"] = field(default="spikes", init=False)
    header: FrameHeader = field(kw_only=True)
    n: int = field(kw_only=True)
    encoding: Literal["idx", "bits"] = field(kw_only=True)
    # Read-only views of the payload bytes: (offsets, neurons) for "idx", packed bits
    # for "bits"; the other slot is None.
    _offsets: npt.NDArray[np.unsignedinteger[Any]] | None = field(
        default=None, repr=False, kw_only=True
    )
    _neurons: npt.NDArray[np.unsignedinteger[Any]] | None = field(
        default=None, repr=False, kw_only=True
    )
    _bits: npt.NDArray[np.uint8] | None = field(default=None, repr=False, kw_only=True)

    @property
    def spikes(self) -> npt.NDArray[np.bool_]:
        """Spikes as a new writable bool array of shape ``(ticks, n)``; True = spike."""
        ticks, n = self.header.ticks, self.n
        if self._bits is not None:
            flat = np.unpackbits(self._bits, count=ticks * n, bitorder="little")
            return flat.view(np.bool_).reshape(ticks, n)
        assert self._offsets is not None
        assert self._neurons is not None
        out = np.zeros((ticks, n), dtype=np.bool_)
        out[self._offsets, self._neurons] = True
        return out

    def wire(
        self,
    ) -> tuple[
        npt.NDArray[np.uint8] | None,
        npt.NDArray[np.unsignedinteger[Any]] | None,
        npt.NDArray[np.unsignedinteger[Any]] | None,
    ]:
        """The arrays as they arrived, without expanding them: ``(bits, offsets,
        neurons)``, read-only views of the payload; ``bits`` (packed, little bit order,
        ``ticks * n`` bits) for ``"bits"``, else ``offsets`` and ``neurons`` of shape
        ``(k,)``; the others None. For readers that must stay within the payload's size
        (a 16 MiB bitmask frame expands to 2 GiB of indices)."""
        return self._bits, self._offsets, self._neurons

    def indices(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Spikes as ``(tick_offsets, neuron_ids)``, two int64 arrays of shape ``(k,)``.

        ``tick_offsets`` count from the frame's first tick (add ``header.tick`` for the
        absolute tick). For bitmask frames the pairs come out in row-major order; for
        index frames in the order they were sent (row-major from our encoder).
        """
        if self._bits is not None:
            offsets, neurons = np.nonzero(self.spikes)
            return offsets.astype(np.int64, copy=False), neurons.astype(np.int64, copy=False)
        assert self._offsets is not None
        assert self._neurons is not None
        return self._offsets.astype(np.int64), self._neurons.astype(np.int64)


@dataclass(frozen=True, slots=True, eq=False)
class ValueFrame:
    """A decoded value frame (filtered, decoded or voltage probes).

    Attributes:
        header: The common frame keys.
        shape: Per-tick shape, e.g. ``(d,)`` for a decoded vector or ``(n,)`` for
            voltages; ``()`` for a scalar per tick.
        data: Read-only float32 array of shape ``(ticks, *shape)``, a view of the payload.
    """

    kind: Literal["values"] = field(default="values", init=False)
    header: FrameHeader = field(kw_only=True)
    shape: tuple[int, ...] = field(kw_only=True)
    data: npt.NDArray[np.float32] = field(kw_only=True, repr=False)


Frame = SpikeFrame | ValueFrame
"""A decoded output frame (check ``frame.kind``: ``"spikes"`` or ``"values"``). The one
definition: the client library, the tools and the service all import it from here."""


# --------------------------------------------------------------------------- encoding

# A Packer is reusable and saves ~40% of the pack time over msgpack.packb, but it keeps
# an internal buffer, so each thread gets its own.
_local = threading.local()


def _pack_default(value: object) -> object:
    # Only called for types msgpack does not know, so it costs nothing on the normal
    # path; it lets header fields be numpy scalars (e.g. a tick counter kept in numpy).
    if isinstance(value, np.generic):
        return value.item()
    raise CodecError(f"cannot pack {type(value).__name__} {value!r:.60} into a frame")


def _packer() -> msgpack.Packer:
    try:
        packer: msgpack.Packer = _local.packer
    except AttributeError:
        packer = _local.packer = msgpack.Packer(
            use_bin_type=True, autoreset=True, default=_pack_default
        )
    return packer


def _header_map(h: FrameHeader, kind: str) -> dict[str, Any]:
    # One dict literal: key order is the documented order and costs nothing extra.
    return {
        "v": SCHEMA_VERSION,
        "net": h.net,
        "probe": h.probe,
        "seq": h.seq,
        "tick": h.tick,
        "ticks": h.ticks,
        "dt": h.dt,
        "t": h.t,
        "wall": h.wall,
        "late_max": h.late_max,
        "dropped": h.dropped,
        "kind": kind,
    }


def encode_spikes(header: FrameHeader, spikes: npt.NDArray[np.bool_]) -> bytes:
    """Encode a spike frame.

    Args:
        header: Frame header; ``header.ticks`` must equal ``spikes.shape[0]``. Its
            fields are not re-validated here (hot path); :func:`decode_frame` does.
        spikes: Bool array of shape ``(ticks, n)``, True where a neuron spiked in a tick.
            Any memory layout; C-contiguous is fastest.

    Returns:
        The msgpack frame. The spike form is whichever is smaller: index form
        (``2 * k * itemsize`` bytes for ``k`` spikes) or bitmask (``ceil(ticks*n/8)``
        bytes); ties go to the bitmask, which decodes faster.

    Raises:
        CodecError: ``spikes`` is not a 2-D bool array or disagrees with ``header.ticks``.
    """
    if spikes.dtype != np.bool_ or spikes.ndim != 2:
        raise CodecError(
            f"spikes must be a 2-D bool array (ticks, n); got dtype {spikes.dtype} "
            f"with shape {spikes.shape}"
        )
    ticks, n = spikes.shape
    if ticks != header.ticks:
        raise CodecError(f"header.ticks is {header.ticks} but spikes has {ticks} rows")
    frame = _header_map(header, "spikes")
    frame["n"] = n
    # count_nonzero is a single vectorised pass with no allocation; it lets us skip
    # the work for the form we would throw away.
    k = int(np.count_nonzero(spikes))
    dtype = _U2 if (n <= _U16_LIMIT and ticks <= _U16_LIMIT) else _U4
    if 2 * k * dtype.itemsize < (ticks * n + 7) // 8:
        # Flat nonzero plus divmod, not np.nonzero(spikes): the 2-D nonzero walks a
        # multi-index and is 3-10x slower on wide frames such as (1, 4096). ravel() is
        # a view for C-contiguous input. Flat order is row-major, so pairs come out
        # sorted by (tick, neuron).
        flat = spikes.ravel().nonzero()[0]
        frame["enc"] = "idx"
        frame["dtype"] = "u2" if dtype is _U2 else "u4"
        # astype gives fresh C-contiguous arrays; their memoryviews are packed as bin
        # directly, so there is no intermediate bytes object.
        if ticks == 1:
            # One tick per frame is common (lowest latency); skip the divmod.
            frame["off"] = bytes(k * dtype.itemsize)
            frame["idx"] = flat.astype(dtype).data
        else:
            offsets, neurons = np.divmod(flat, n)
            frame["off"] = offsets.astype(dtype).data
            frame["idx"] = neurons.astype(dtype).data
    else:
        frame["enc"] = "bits"
        frame["bits"] = np.packbits(spikes, axis=None, bitorder="little").data
    return _packer().pack(frame)


def encode_values(header: FrameHeader, values: npt.ArrayLike) -> bytes:
    """Encode a value frame.

    Args:
        header: Frame header; ``header.ticks`` must equal ``values.shape[0]``. Not
            re-validated here (hot path).
        values: Real array of shape ``(ticks, *shape)``; sent as little-endian float32
            (values outside float32 range become ±inf, as with any float32 cast).

    Returns:
        The msgpack frame, with ``shape = list(values.shape[1:])``.

    Raises:
        CodecError: ``values`` has no tick axis, is not real, or disagrees with
            ``header.ticks``.
    """
    arr = np.asarray(values)
    if arr.ndim < 1 or arr.dtype.kind not in "fiub":
        raise CodecError(
            f"values must be a real array of shape (ticks, *shape); got dtype "
            f"{arr.dtype} with shape {arr.shape}"
        )
    if arr.shape[0] != header.ticks:
        raise CodecError(f"header.ticks is {header.ticks} but values has {arr.shape[0]} rows")
    if arr.dtype == _F4:
        # No copy when the probe buffer already is C-contiguous little-endian float32.
        data = np.ascontiguousarray(arr)
    else:
        # Narrowing float64 may overflow to inf, which is the documented result; the
        # errstate keeps numpy from emitting a warning per frame. It costs ~1 µs, so
        # the float32 path above skips it.
        with np.errstate(over="ignore"):
            data = np.ascontiguousarray(arr, dtype=_F4)
    frame = _header_map(header, "values")
    frame["shape"] = list(arr.shape[1:])
    frame["data"] = data.data
    return _packer().pack(frame)


# --------------------------------------------------------------------------- decoding


def _reject_ext(code: int, data: bytes) -> NoReturn:
    raise CodecError(f"frame contains a msgpack extension type {code}; none are allowed")


def _fail(message: str) -> NoReturn:
    raise CodecError(f"invalid frame: {message}")


def _get(frame: dict[Any, Any], key: str) -> Any:
    try:
        return frame[key]
    except KeyError:
        _fail(f"missing key {key!r}")


def _int(frame: dict[Any, Any], key: str, hi: int = MAX_TICK, lo: int = 0) -> int:
    value = _get(frame, key)
    # bool is an int subclass; a frame with true/false here is corrupt, not 1/0.
    if type(value) is not int or not lo <= value <= hi:
        _fail(f"{key!r} must be an integer in [{lo}, {hi}], got {value!r:.60}")
    return value


def _float(frame: dict[Any, Any], key: str, *, within: tuple[float, float] | None = None) -> float:
    value = _get(frame, key)
    # Integers are accepted because some msgpack encoders (e.g. JavaScript's) send
    # integral numbers such as 0 as ints.
    if type(value) is not float and type(value) is not int:
        _fail(f"{key!r} must be a number, got {type(value).__name__} {value!r:.60}")
    out = float(value)  # msgpack integers are below 2**64: always a finite float
    if not math.isfinite(out) or (within is not None and not within[0] <= out <= within[1]):
        if within is None:
            want = "a finite number"
        elif within[1] == math.inf:
            want = f"a finite number >= {within[0]}"
        else:
            want = f"a number in [{within[0]}, {within[1]}]"
        _fail(f"{key!r} must be {want}, got {out!r}")
    return out


def _name(frame: dict[Any, Any], key: str) -> str:
    value = _get(frame, key)
    # Names reach HTML pages, terminals, plot labels and .npz keys: only the network
    # files' naming rule is accepted, so nothing downstream has to guess what is safe.
    if not is_name(value):
        _fail(f"{key!r} must be a name ({NAME_RULE}), got {type(value).__name__} {value!r:.80}")
    return value


def _bin(frame: dict[Any, Any], key: str) -> bytes:
    value = _get(frame, key)
    if type(value) is not bytes:
        _fail(f"{key!r} must be msgpack bin bytes, got {type(value).__name__}")
    return value


def _decode_header(frame: dict[Any, Any]) -> FrameHeader:
    version = _get(frame, "v")
    if type(version) is not int or version != SCHEMA_VERSION:
        _fail(f"unsupported schema version {version!r:.40}; this decoder reads v={SCHEMA_VERSION}")
    header = FrameHeader(
        net=_name(frame, "net"),
        probe=_name(frame, "probe"),
        seq=_int(frame, "seq"),
        tick=_int(frame, "tick"),
        # ticks = 0 is no frame at all (the tools divide and reshape by it); the data
        # must account for the ticks too, which the kind's decoder checks.
        ticks=_int(frame, "ticks", MAX_FRAME_TICKS, lo=1),
        dt=_float(frame, "dt", within=(MIN_DT, MAX_DT)),
        t=_float(frame, "t", within=(0.0, math.inf)),  # simulated time, never negative
        wall=_float(frame, "wall"),
        late_max=_float(frame, "late_max", within=(0.0, math.inf)),  # a lateness, s
        dropped=_int(frame, "dropped"),
    )
    if header.tick + header.ticks > MAX_TICK:
        _fail(f"tick + ticks = {header.tick} + {header.ticks} exceeds {MAX_TICK} (2**53 - 1)")
    return header


def _decode_spikes(frame: dict[Any, Any], header: FrameHeader, max_bytes: int) -> SpikeFrame:
    # A population of more than max_bytes neurons (16 Mi at the default; the service's
    # populations hold at most 10**7) would make every tool's per-neuron array larger
    # than the frame limit for a frame of a few bytes.
    n = _int(frame, "n", min(max_bytes, _MAX_COUNT))
    ticks = header.ticks
    # Bound the dense size even for index frames: .spikes allocates ticks*n bytes, and
    # a few bytes of header must not be able to demand terabytes. Our encoder never
    # exceeds this because it would have chosen the (then smaller) bitmask. n = 0 counts
    # as 1, so an empty population cannot claim unbounded ticks either.
    if ticks * max(n, 1) > 8 * max_bytes:
        _fail(
            f"ticks*max(n, 1) = {ticks}*{max(n, 1)} exceeds 8*max_bytes = {8 * max_bytes} "
            "spike slots"
        )
    enc = _get(frame, "enc")
    if enc == "bits":
        raw = _bin(frame, "bits")
        size = ticks * n
        expected = (size + 7) // 8
        if len(raw) != expected:
            _fail(
                f"'bits' must be ceil(ticks*n/8) = {expected} bytes for ticks={ticks}, "
                f"n={n}; got {len(raw)}"
            )
        bits = np.frombuffer(raw, dtype=np.uint8)
        # Padding bits must be zero: a cheap check that catches misaligned or
        # corrupted frames that happen to have the right length.
        if size % 8 and bits[-1] >> (size % 8):
            _fail("non-zero padding bits after the last spike slot")
        return SpikeFrame(header=header, n=n, encoding="bits", _bits=bits)
    if enc == "idx":
        dtype_name = _get(frame, "dtype")
        dtype = _INDEX_DTYPES.get(dtype_name) if type(dtype_name) is str else None
        if dtype is None:
            _fail(f"'dtype' must be 'u2' or 'u4', got {dtype_name!r:.60}")
        off_raw, idx_raw = _bin(frame, "off"), _bin(frame, "idx")
        if len(off_raw) != len(idx_raw) or len(off_raw) % dtype.itemsize:
            _fail(
                f"'off' and 'idx' must be equal-length multiples of {dtype.itemsize} "
                f"bytes ({dtype_name}); got {len(off_raw)} and {len(idx_raw)}"
            )
        offsets = np.frombuffer(off_raw, dtype=dtype)
        neurons = np.frombuffer(idx_raw, dtype=dtype)
        if offsets.size:
            if int(offsets.max()) >= ticks:
                _fail(f"tick offset {int(offsets.max())} out of range for ticks={ticks}")
            if int(neurons.max()) >= n:
                _fail(f"neuron index {int(neurons.max())} out of range for n={n}")
        return SpikeFrame(header=header, n=n, encoding="idx", _offsets=offsets, _neurons=neurons)
    _fail(f"'enc' must be 'idx' or 'bits', got {enc!r:.60}")


def _decode_values(frame: dict[Any, Any], header: FrameHeader, max_bytes: int) -> ValueFrame:
    shape_raw = _get(frame, "shape")
    if (
        type(shape_raw) is not list
        or len(shape_raw) > _MAX_NDIM
        or not all(type(d) is int and 0 <= d <= _MAX_COUNT for d in shape_raw)
    ):
        _fail(
            f"'shape' must be a list of at most {_MAX_NDIM} non-negative integers, "
            f"got {shape_raw!r:.80}"
        )
    shape = tuple(shape_raw)
    full = (header.ticks, *shape)
    if math.prod(max(d, 1) for d in full) > _MAX_ELEMENTS:
        _fail(f"shape (ticks, *shape) = {full} is implausibly large")
    # An empty tick shape (a 0 in it) carries no data, so the byte length below cannot
    # bound ticks: count each tick as at least one float32, as a scalar probe's would.
    if 4 * header.ticks > max_bytes:
        _fail(
            f"ticks = {header.ticks} needs at least 4*ticks = {4 * header.ticks} bytes of "
            f"data, more than max_bytes = {max_bytes}"
        )
    raw = _bin(frame, "data")
    expected = 4 * math.prod(full)
    if len(raw) != expected:
        _fail(
            f"'data' must be 4*ticks*prod(shape) = {expected} bytes of float32 for "
            f"shape {full}; got {len(raw)}"
        )
    data = np.frombuffer(raw, dtype=_F4).reshape(full)
    # '<f4' is float32 on little-endian hosts (no-op); on big-endian ones this swaps.
    return ValueFrame(header=header, shape=shape, data=data.astype(np.float32, copy=False))


def decode_frame(
    payload: bytes | bytearray | memoryview, *, max_bytes: int = DEFAULT_MAX_FRAME_BYTES
) -> Frame:
    """Decode and validate one output frame.

    Args:
        payload: The msgpack bytes of one frame.
        max_bytes: Size limit in bytes, checked before anything is unpacked.

    Returns:
        A :class:`SpikeFrame` or a :class:`ValueFrame` (check ``frame.kind``). Array
        views share memory with ``payload`` when it is ``bytes``.

    Raises:
        PayloadTooLarge: ``len(payload) > max_bytes``.
        CodecError: Anything else wrong: not msgpack, not a map, trailing bytes, wrong
            schema version, a missing or mistyped key, a ``net`` or ``probe`` that
            breaks the naming rule, byte lengths inconsistent with
            ``ticks``/``n``/``shape``, or indices out of range. Unknown extra keys are
            ignored so that additive changes need no version bump.
    """
    # len() of a memoryview counts the items of its first axis, not bytes: a 2-D view
    # passed the size limit whatever its size.
    size = payload.nbytes if isinstance(payload, memoryview) else len(payload)
    if size > max_bytes:
        raise PayloadTooLarge(f"frame of {size} bytes exceeds the limit of {max_bytes} bytes")
    if isinstance(payload, memoryview) and (payload.itemsize != 1 or not payload.c_contiguous):
        # msgpack refuses views of wider items (with BufferError, not a CodecError) and
        # reads a Fortran-ordered one in memory order: read such a view as its bytes in
        # C order, a copy within the limit just checked.
        payload = payload.tobytes()

    def too_many(limit: int) -> NoReturn:
        _fail(f"expected a frame of at most {limit} arrays and maps; got more")

    containers = ContainerCount(MAX_FRAME_CONTAINERS, too_many)

    def counted(obj: dict[Any, Any]) -> dict[Any, Any]:
        containers.count()
        return obj

    try:
        frame = msgpack.unpackb(
            payload,
            raw=False,
            use_list=True,
            strict_map_key=True,
            ext_hook=_reject_ext,
            list_hook=containers.list_hook,
            object_hook=counted,
            max_bin_len=max_bytes,
            max_str_len=65535,
            max_array_len=1024,
            max_map_len=256,
            max_ext_len=0,
        )
    except CodecError:
        raise
    except (ValueError, TypeError) as exc:
        # ValueError covers msgpack's FormatError, StackError, ExtraData, OutOfData,
        # limit violations and UnicodeDecodeError; TypeError covers unhashable map keys.
        raise CodecError(f"frame is not valid msgpack: {str(exc) or type(exc).__name__}") from exc
    if type(frame) is not dict:
        _fail(f"expected a msgpack map, got {type(frame).__name__}")
    header = _decode_header(frame)
    kind = _get(frame, "kind")
    if kind == "spikes":
        return _decode_spikes(frame, header, max_bytes)
    if kind == "values":
        return _decode_values(frame, header, max_bytes)
    _fail(f"'kind' must be 'spikes' or 'values', got {kind!r:.60}")
