"""Each probe's frame encoder: the client codec's frames, without its per-frame Python.

The I/O thread encodes every frame the service publishes (5,000 a second for the seed
network at one tick per frame), and a tick's frames go out one after another, so each
frame waits for the encoding of the ones before it. :class:`ProbeEncoder` packs what never
changes for a probe (``v``, ``net``, ``probe`` and, for values, ``kind`` and ``shape``)
once, with msgpack, and hands each frame's own fields and array to the C extension
``spikestream.serving._frames``, which writes the rest of the same msgpack map.

The bytes are exactly those of :func:`spikestream_client.codec.encode_spikes` and
:func:`~spikestream_client.codec.encode_values` (tests/serving/test_framecodec.py holds
them equal with hypothesis), so the wire protocol has one definition, the client codec's.
Where the extension was not built (no C compiler at install), the encoder calls the client
codec instead.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Literal

import msgpack
import numpy as np
import numpy.typing as npt

from spikestream_client.codec import (
    SCHEMA_VERSION,
    FrameHeader,
    encode_spikes,
    encode_values,
)

__all__ = ["LARGE_SPIKE_FRAME", "ProbeEncoder", "extension"]

#: Spike frames of more cells (ticks x neurons) than this go to the client codec: its
#: numpy passes are vectorised, the extension's are not, and past about 60k cells they
#: win (ad-hoc timeit, a half-full frame: 3.4 against 10.9 us at 10k cells, 15.6 against
#: 15.4 us at 60k, 25.6 against 19.1 us at 100k). Below it the extension's lack of
#: per-frame overhead wins, which is where live frames are.
LARGE_SPIKE_FRAME = 65_536


def extension() -> ModuleType | None:
    """The C frame encoder, or None when this install has none (no compiler)."""
    try:
        import spikestream.serving._frames as ext
    except ImportError:
        return None
    return ext


class ProbeEncoder:
    """Encodes one probe's frames.

    Args:
        net: the network's name.
        probe: the probe's name.
        dt: the tick length (s).
        kind: ``"spikes"`` (frames of bool ``(ticks, n)``) or ``"values"`` (float32
            ``(ticks, *shape)``).
        shape: the per-tick shape of a value probe (``()`` for a scalar).
        compiled: use the C extension where it was built (False: always the client
            codec, for comparison).
    """

    def __init__(
        self,
        net: str,
        probe: str,
        dt: float,
        kind: Literal["spikes", "values"],
        shape: tuple[int, ...] = (),
        *,
        compiled: bool = True,
    ) -> None:
        self.net = net
        self.probe = probe
        self.dt = float(dt)
        self.kind = kind
        self.shape = tuple(int(s) for s in shape)
        self._ext = extension() if compiled else None
        # Cells per tick (a spike probe's shape is (n,)): which spike frames are large.
        self._cells = int(np.prod(self.shape, dtype=np.int64))
        # The per-tick shape a frame buffer must have (encode_rows); a spike encoder made
        # without its width (shape ()) takes any.
        self._row_shape = self.shape if kind == "values" or self.shape else None
        pack = msgpack.Packer(use_bin_type=True).pack
        # The map entries before "seq" and, for values, those between "dropped" and the
        # data's bytes: the key order is the client codec's (_header_map).
        self._head = b"".join(pack(x) for x in ("v", SCHEMA_VERSION, "net", net, "probe", probe))
        self._tail = b"".join(
            pack(x) for x in ("kind", "values", "shape", list(self.shape), "data")
        )

    @property
    def compiled(self) -> bool:
        """Whether frames are encoded by the C extension."""
        return self._ext is not None

    def encode(
        self,
        seq: int,
        tick: int,
        t: float,
        wall: float,
        late_max: float,
        dropped: int,
        rows: npt.NDArray[np.bool_] | npt.NDArray[np.float32],
    ) -> bytes:
        """One frame of the probe's rows, as the client codec would encode it.

        Args:
            seq: the probe's frame counter.
            tick: the index of the frame's first tick.
            t: simulated time at the end of the frame (s).
            wall: Unix time at which the frame's last tick finished (s).
            late_max: the worst tick lateness in the frame (s).
            dropped: the probe's frames dropped so far.
            rows: bool ``(ticks, n)`` for spikes, float32 ``(ticks, *shape)`` (either
                byte order) for values; any memory layout. The frame's ``ticks`` is
                ``rows.shape[0]``. Frame buffers hold exactly these; the client codec
                also converts other real dtypes, which the C path refuses.

        Raises:
            ValueError: ``rows`` is of another dtype or shape than this probe's (on the
                client codec's path its CodecError, a ValueError too).
            TypeError: a header field of another type than the codec packs the same way
                (a bool for an int, an int for a float).
        """
        ticks = rows.shape[0]
        # Checked for both paths: the extension would pack the probe's shape beside other
        # values, and the client codec would pack the rows' own shape, not the probe's.
        if self._row_shape is not None and rows.shape[1:] != self._row_shape:
            msg = f"{self.probe}: rows of shape {rows.shape[1:]}, expected {self._row_shape}"
            raise ValueError(msg)
        ext = self._ext
        if ext is None:
            return self._codec(seq, tick, ticks, t, wall, late_max, dropped, rows)
        # The frame buffer's rows are C-contiguous; anything else is copied first.
        data: npt.NDArray[Any] = rows if rows.flags.c_contiguous else np.ascontiguousarray(rows)
        if self.kind == "spikes":
            if data.size > LARGE_SPIKE_FRAME:
                return self._codec(seq, tick, ticks, t, wall, late_max, dropped, data)
            return ext.encode_spikes(  # type: ignore[no-any-return]
                self._head, seq, tick, ticks, self.dt, t, wall, late_max, dropped, data
            )
        return ext.encode_values(  # type: ignore[no-any-return]
            self._head, seq, tick, ticks, self.dt, t, wall, late_max, dropped, self._tail, data
        )

    def encode_rows(
        self,
        seq: int,
        tick: int,
        ticks: int,
        t: float,
        wall: float,
        late_max: float,
        dropped: int,
        data: npt.NDArray[np.bool_] | npt.NDArray[np.float32],
    ) -> bytes:
        """:meth:`encode` of ``data[:ticks]``, for a frame buffer: ``data`` holds at least
        ``ticks`` rows, C-contiguous as frame buffers are, and the frame is its first
        ``ticks``. The extension reads them where they are (no view is made), which is
        what the I/O thread calls for each frame it sends. The per-tick shape is checked
        here, for both paths, as :meth:`encode` checks it.

        Raises:
            ValueError: ``data`` of another dtype or per-tick shape than the probe's (for
                a spike probe: not ``(rows, n)``, or another ``n`` than the encoder's
                ``shape`` when it was given one), with fewer than ``ticks`` rows, or (on
                the extension's path) not C-contiguous.
            TypeError: as :meth:`encode`.
        """
        if self._row_shape is not None and data.shape[1:] != self._row_shape:
            raise ValueError(f"data has shape {data.shape}; expected (rows, *{self._row_shape})")
        ext = self._ext
        if ext is None or (self.kind == "spikes" and ticks * self._cells > LARGE_SPIKE_FRAME):
            if data.shape[0] < ticks:
                raise ValueError(f"ticks is {ticks} but data has {data.shape[0]} rows")
            return self.encode(seq, tick, t, wall, late_max, dropped, data[:ticks])
        if self.kind == "spikes":
            return ext.encode_spikes_rows(  # type: ignore[no-any-return]
                self._head, seq, tick, ticks, self.dt, t, wall, late_max, dropped, data
            )
        return ext.encode_values_rows(  # type: ignore[no-any-return]
            self._head, seq, tick, ticks, self.dt, t, wall, late_max, dropped, self._tail, data
        )

    def _codec(
        self,
        seq: int,
        tick: int,
        ticks: int,
        t: float,
        wall: float,
        late_max: float,
        dropped: int,
        rows: npt.NDArray[Any],
    ) -> bytes:
        """The frame encoded by the client codec (the same bytes, by definition)."""
        header = FrameHeader(
            self.net, self.probe, seq, tick, ticks, self.dt, t, wall, late_max, dropped
        )
        if self.kind == "spikes":
            return encode_spikes(header, rows)
        return encode_values(header, rows)
