"""``spikestream_client.plotting`` reading a run file: memory bounded whatever the run's
length, decimation that keeps each bucket's extremes and NaN gaps, and hostile member
headers refused in one line.

``spikestream run --plot`` used to ``np.load`` the file it had just written and plot
whole float64 copies of it: 1.95 GB for 100 s of a 1000-neuron voltage probe.
"""

from __future__ import annotations

import contextlib
import io
import struct
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib.axes
import matplotlib.image
import numpy as np
import numpy.typing as npt
import pytest

from spikestream_client import plotting
from spikestream_client.errors import ConfigError
from spikestream_client.npz import NpzWriter, header_arrays, layout_meta, save_npz, time_of
from spikestream_client.plotting import plot_run, plot_run_file

DT = 0.001
#: tracemalloc peak allowed while plotting the long file below. The old code held the
#: whole voltage probe as float32 and as float64 (240 MB) plus the spikes (20 MB).
PEAK_BOUND = 96 * 2**20


def _meta(ticks: int, probes: dict[str, str], pops: list[str], **extra: Any) -> dict[str, Any]:
    return layout_meta(
        network="long",
        dt=DT,
        dtype="float32",
        populations=pops,
        inputs=[],
        probes=probes,
        source="run",
        ticks=ticks,
        first_tick=0,
        last_tick=ticks - 1,
        **extra,
    )


def _write_long(path: Path, ticks: int, n: int) -> None:
    """A run of ``ticks`` rows: ``v`` (voltage, float32) and ``p.spikes`` (uint8) of ``n``
    neurons, written block by block with the project's writer (never held whole)."""
    rng = np.random.default_rng(1)
    block = 10_000
    with NpzWriter(path) as npz:
        for key, value in header_arrays(_meta(ticks, {"v": "voltage"}, ["p"])).items():
            npz.add(key, value)
        t = npz.stream("t", (ticks,), np.dtype(np.float64), spool=True)
        v = npz.stream("v", (ticks, n), np.dtype(np.float32), spool=True)
        s = npz.stream("p.spikes", (ticks, n), np.dtype(np.uint8), spool=True)
        for start in range(0, ticks, block):
            k = min(block, ticks - start)
            t.write(time_of(np.arange(start, start + k), DT))
            v.write(rng.random((k, n), dtype=np.float32))
            s.write((rng.random((k, n)) < 0.02).astype(np.uint8))


def _plot_loaded(npz: Path, png: Path) -> Path:
    with np.load(npz) as arrays:
        return plot_run(arrays, png)


@pytest.mark.slow
@pytest.mark.parametrize("plot", [plot_run_file, _plot_loaded], ids=["file", "np.load"])
def test_plotting_a_long_run_file_takes_bounded_memory(
    tmp_path: Path, plot: Callable[[Path, Path], Path]
) -> None:
    """200,000 ticks of 100 neurons (100 MB of data): the peak stays under 96 MiB
    (about 58 MiB measured, most of it matplotlib drawing 40 traces and 400,000 spikes). The
    bound does not depend on the length: values are read in chunks of at most 4 MiB and
    kept as 40 traces of 20,000 points, spikes as at most 2,000,000 events."""
    npz, png = tmp_path / "long.npz", tmp_path / "long.png"
    _write_long(npz, ticks=200_000, n=100)
    tracemalloc.start()
    try:
        plot(npz, png)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert png.stat().st_size > 0
    assert peak < PEAK_BOUND, f"plotting peaked at {peak / 2**20:.0f} MiB"


# ------------------------------------------------------------------ decimation


def _brute(t: npt.NDArray[Any], v: npt.NDArray[Any], step: int) -> tuple[Any, Any]:
    """Per bucket of ``step`` rows: the min and max in the order they occur (first
    occurrence), at their times; NaN at the bucket's first time when it holds a NaN."""
    xs, ys = [], []
    for a in range(0, len(t), step):
        tb, vb = t[a : a + step], v[a : a + step]
        x_col, y_col = [], []
        for c in range(v.shape[1]):
            col = vb[:, c]
            if np.isnan(col).any():
                x_col.append([tb[0], tb[0]])
                y_col.append([np.nan, np.nan])
                continue
            a, b = sorted([int(np.argmin(col)), int(np.argmax(col))])
            x_col.append([tb[a], tb[b]])
            y_col.append([col[a], col[b]])
        xs.append(np.array(x_col).T)
        ys.append(np.array(y_col).T)
    return np.concatenate(xs), np.concatenate(ys)


def _arrays(t: npt.NDArray[Any], v: npt.NDArray[Any], gaps: Any = None) -> dict[str, Any]:
    arrays = {"t": t, "v": v, **header_arrays(_meta(len(t), {"v": "values"}, []))}
    if gaps is not None:
        arrays["gaps"] = gaps
    return arrays


@pytest.mark.parametrize("chunk_rows", [7, 10, 1 << 16])
@pytest.mark.parametrize("source", ["memory", "file", "deflated"])
def test_decimated_traces_keep_each_buckets_extremes_and_nan_gaps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_rows: int, source: str
) -> None:
    """100 rows drawn as 10 buckets of 10 (MAX_POINTS 20): each bucket is its minimum and
    maximum in time order, and a bucket holding a NaN is a break, whatever the chunks."""
    with contextlib.ExitStack() as stack:
        _check_decimation(tmp_path, monkeypatch, stack, chunk_rows, source)


def _check_decimation(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stack: contextlib.ExitStack,
    chunk_rows: int,
    source: str,
) -> None:
    monkeypatch.setattr(plotting, "MAX_POINTS", 20)
    monkeypatch.setattr(plotting, "CHUNK_ROWS", chunk_rows)
    rng = np.random.default_rng(3)
    t = time_of(np.arange(100), DT)
    v = rng.standard_normal((100, 3)).astype(np.float32)
    v[35, 1] = np.nan  # bucket 3 of trace 1 is a gap
    v[90:, 2] = np.nan  # the last bucket of trace 2 too
    v[41, 0], v[47, 0] = 9.0, -9.0  # max before min in bucket 4
    gaps = np.zeros(100, dtype=bool)
    gaps[35:37] = True
    arrays = _arrays(t, v, gaps)
    src: Any
    if source == "memory":
        src = plotting._InMemory(arrays)
    else:
        npz = save_npz(tmp_path / "d.npz", arrays, compress=source == "deflated")
        src = plotting._NpzFile(npz, stack.enter_context(zipfile.ZipFile(npz)))
    axis = plotting._read_axis(src, 100, src.keys())
    assert axis.step == 10
    x, y = plotting._trace(src, "v", plotting._header(src, "v", "f", 100), axis)
    want_x, want_y = _brute(t, v.astype(np.float64), 10)
    np.testing.assert_array_equal(x, want_x)
    np.testing.assert_array_equal(y, want_y)  # NaN where expected, values exact
    assert np.isnan(y[6:8, 1]).all()
    assert np.isnan(y[18:, 2]).all()
    assert list(y[8:10, 0]) == [9.0, -9.0]  # in the order they occur
    # The gap rows 35-36 shade their bucket, from its first row to the next bucket's.
    assert axis.spans() == [(t[30], t[40])]


def test_a_short_run_is_drawn_tick_by_tick_and_the_same_from_memory_or_file(
    tmp_path: Path,
) -> None:
    """At most MAX_POINTS ticks: every row is drawn (x is t, y the values), gap spans as
    before, and plot_run and plot_run_file draw the same image."""
    t = time_of(np.arange(500), DT)
    v = np.sin(np.arange(500.0))[:, None] * np.ones(3)
    v[100:120] = np.nan
    gaps = np.zeros(500, dtype=bool)
    gaps[100:120] = True
    arrays = _arrays(t, v, gaps)
    src = plotting._InMemory(arrays)
    axis = plotting._read_axis(src, 500, src.keys())
    x, y = plotting._trace(src, "v", plotting._header(src, "v", "f", 500), axis)
    np.testing.assert_array_equal(x, t)
    np.testing.assert_array_equal(y, v)
    assert axis.spans() == [(t[100], t[120])]
    npz = save_npz(tmp_path / "s.npz", arrays)
    a = plot_run(arrays, tmp_path / "a.png")
    b = plot_run_file(npz, tmp_path / "b.png")
    np.testing.assert_array_equal(matplotlib.image.imread(a), matplotlib.image.imread(b))


def test_a_raster_past_max_spikes_is_thinned_evenly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every spike of 10 neurons for 500 ticks (5,000) with MAX_SPIKES 1,000: every 8th
    is kept, evenly over the run, and the panel says so."""
    monkeypatch.setattr(plotting, "MAX_SPIKES", 1000)
    monkeypatch.setattr(plotting, "CHUNK_ROWS", 33)
    t = time_of(np.arange(500), DT)
    spikes = np.ones((500, 10), dtype=np.uint8)
    arrays = {"t": t, "p.spikes": spikes, **header_arrays(_meta(500, {}, ["p"]))}
    src = plotting._InMemory(arrays)
    header = plotting._header(src, "p.spikes", "u", 500, ndim=2)
    got = plotting._raster(src, "p.spikes", header, np.arange(10))
    assert (got.total, got.stride, got.kept) == (5000, 8, 625)
    times, neurons = got.joined()
    all_ticks, all_neurons = np.nonzero(spikes)
    np.testing.assert_array_equal(times, t[all_ticks][::8])
    np.testing.assert_array_equal(neurons, all_neurons[::8])
    drawn: list[str] = []
    real_text = matplotlib.axes.Axes.text

    def text(self: Any, x: float, y: float, s: str, *args: Any, **kwargs: Any) -> Any:
        drawn.append(s)
        return real_text(self, x, y, s, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "text", text)
    plot_run(arrays, tmp_path / "thin.png")
    assert drawn == ["625 of 5,000 spikes drawn"]


# ------------------------------------------------------------------ hostile headers


def _npy(shape: tuple[int, ...], descr: str = "<f8", fortran: bool = False) -> bytes:
    fh = io.BytesIO()
    header = {"descr": descr, "fortran_order": fortran, "shape": shape}
    np.lib.format.write_array_header_1_0(fh, header)
    return fh.getvalue()


def _hostile(path: Path, v: bytes, method: int = zipfile.ZIP_STORED) -> Path:
    """A run file of 10 ticks whose ``v`` member is ``v`` (a header and some bytes)."""
    arrays = {"t": time_of(np.arange(10), DT), **header_arrays(_meta(10, {"v": "voltage"}, []))}
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        for key, arr in arrays.items():
            with zf.open(f"{key}.npy", "w") as fh:
                np.lib.format.write_array(fh, np.asanyarray(arr), allow_pickle=False)
        zf.writestr("v.npy", v)
    return path


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
@pytest.mark.parametrize(
    ("member", "message"),
    [
        (
            _npy((10, 10**9)) + b"\0" * 64,
            r"member 'v.npy': its header claims shape \(10, 1000000000\) of float64 "
            r"\(80,000,000,000 bytes\) but the member holds 64 bytes of data$",
        ),
        (_npy((10, 2), "<c16") + b"\0" * 320, r"holds complex128 values; expected float or"),
        (_npy((10, 2), "|O") + b"\0" * 160, r"holds object values; expected float or"),
        (_npy((10, 2), "<f8", fortran=True) + b"\0" * 160, r"is stored in Fortran order"),
        (_npy((11, 2)) + b"\0" * 176, r"member 'v.npy': its shape is \(11, 2\); expected 10 rows"),
        (b"\x93NUMPY\x01\x00\xff\xff" + b"{" * 70_000, r"malformed content \(ValueError"),
        (b"not an npy file", r"malformed content \(ValueError"),
    ],
)
def test_a_hostile_member_header_is_refused_in_one_line(
    tmp_path: Path, method: int, member: bytes, message: str
) -> None:
    npz = _hostile(tmp_path / "h.npz", member, method)
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match=message) as err:
            plot_run_file(npz, tmp_path / "h.png")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "\n" not in str(err.value)
    assert str(err.value).startswith(f"cannot plot {str(npz)!r}: ")
    assert peak < 8 * 2**20  # nothing was allocated for the claimed shape
    assert not (tmp_path / "h.png").exists()


def test_a_member_shorter_than_its_zip_entry_claims_is_refused(tmp_path: Path) -> None:
    """A truncated file: the data ends before the rows the header (and zip) promise."""
    arrays = {"t": time_of(np.arange(10), DT), "v": np.zeros((10, 4))}
    npz = save_npz(
        tmp_path / "ok.npz", {**arrays, **header_arrays(_meta(10, {"v": "voltage"}, []))}
    )
    broken = tmp_path / "broken.npz"
    with zipfile.ZipFile(npz) as src, zipfile.ZipFile(broken, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "v.npy":
                body = body[:-100]  # the header stays, 100 bytes of data go
            dst.writestr(info.filename, body)
    with pytest.raises(ConfigError, match=r"member 'v.npy': its header claims shape \(10, 4\)"):
        plot_run_file(broken, tmp_path / "b.png")


def test_a_missing_or_non_zip_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot plot '.*nope.npz': No such file"):
        plot_run_file(tmp_path / "nope.npz", tmp_path / "p.png")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ConfigError, match=r"corrupt zip data \(File is not a zip file\)"):
        plot_run_file(tmp_path / "text.npz", tmp_path / "p.png")
    # A directory of many members is refused from the zip's end record, before zipfile
    # builds an object per member (a million took 570 MB).
    with zipfile.ZipFile(tmp_path / "many.npz", "w") as zf:
        for i in range(70_000):
            zf.writestr(f"m{i}.npy", b"")
    with pytest.raises(ConfigError, match=r"its directory lists 70000 member\(s\)"):
        plot_run_file(tmp_path / "many.npz", tmp_path / "p.png")


# ------------------------------------------------------------------ wide rows


def _wide(
    path: Path, member: str, shape: tuple[int, ...], descr: str, meta: dict[str, Any]
) -> Path:
    """A deflated run file of ``shape[0]`` ticks whose ``member`` is zeros of ``shape``
    (a few KB of the file, written piece by piece, never held whole)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for key, arr in {"t": time_of(np.arange(shape[0]), DT), **header_arrays(meta)}.items():
            with zf.open(f"{key}.npy", "w") as fh:
                np.lib.format.write_array(fh, np.asanyarray(arr), allow_pickle=False)
        with zf.open(f"{member}.npy", "w", force_zip64=True) as fh:
            header = {"descr": descr, "fortran_order": False, "shape": shape}
            np.lib.format.write_array_header_1_0(fh, header)
            left = int(np.prod(shape)) * np.dtype(descr).itemsize
            piece = b"\0" * 2**20
            while left > 0:
                fh.write(piece[:left])
                left -= len(piece)
    return path


@pytest.mark.parametrize(
    ("member", "shape", "descr", "probes", "pops"),
    [
        ("p.spikes", (1, 2**25), "|u1", {}, ["p"]),  # a raster: 200 of 33,554,432 neurons
        ("v", (1, 2**22), "<f8", {"v": "voltage"}, []),  # a trace panel: 40 of 4,194,304
    ],
    ids=["raster", "values"],
)
def test_a_row_wider_than_chunk_bytes_is_never_held_whole(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    member: str,
    shape: tuple[int, ...],
    descr: str,
    probes: dict[str, str],
    pops: list[str],
) -> None:
    """A file may claim rows of any width: 1 row of (1, 10**9) uint8 (a 973 KB file of
    deflated zeros) took 7.9 GB, a whole row joined in memory and an index per neuron.
    With CHUNK_BYTES at 1 MiB, a 32 MiB row is read in 32 pieces, keeping only the
    columns drawn: the peak stays under half a row."""
    monkeypatch.setattr(plotting, "CHUNK_BYTES", 2**20)
    npz = _wide(tmp_path / "wide.npz", member, shape, descr, _meta(shape[0], probes, pops))
    tracemalloc.start()
    try:
        plot_run_file(npz, tmp_path / "wide.png")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (tmp_path / "wide.png").stat().st_size > 0
    assert peak < 16 * 2**20, f"plotting peaked at {peak / 2**20:.0f} MiB"


@pytest.mark.parametrize("compress", [False, True], ids=["stored", "deflated"])
def test_a_wide_row_read_in_pieces_keeps_exactly_the_columns_drawn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compress: bool
) -> None:
    """Rows of 4,000 float64 (32,000 bytes) and 5,000 uint8 read in pieces of 1,000
    bytes: the columns kept, on and across the pieces' edges, are those of the array,
    and the file draws the image the arrays in memory draw."""
    monkeypatch.setattr(plotting, "CHUNK_BYTES", 1000)
    rng = np.random.default_rng(5)
    v = rng.standard_normal((3, 4, 1000))
    spikes = (rng.random((3, 5000)) < 0.1).astype(np.uint8)
    arrays = {
        "t": time_of(np.arange(3), DT),
        "v": v,
        "p.spikes": spikes,
        **header_arrays(_meta(3, {"v": "voltage"}, ["p"])),
    }
    npz = save_npz(tmp_path / "w.npz", arrays, compress=compress)
    cols = np.array([0, 1, 124, 125, 126, 999, 1000, 2500, 3999])
    with zipfile.ZipFile(npz) as zf:
        src = plotting._NpzFile(npz, zf)
        for chunk in (1, 2):
            got = np.concatenate(list(src.rows("v", chunk, cols)))
            np.testing.assert_array_equal(got, v.reshape(3, -1)[:, cols])
        got = np.concatenate(list(src.rows("p.spikes", 1, cols)))
        np.testing.assert_array_equal(got, spikes[:, cols])
    a = plot_run(arrays, tmp_path / "a.png")
    b = plot_run_file(npz, tmp_path / "b.png")
    np.testing.assert_array_equal(matplotlib.image.imread(a), matplotlib.image.imread(b))


def _flagged(
    path: Path, change: dict[str, int], method: int = zipfile.ZIP_STORED, member: bytes = b""
) -> Path:
    """A run file of 10 ticks whose ``v`` member (``member``, or zeros of ``(10, 2)``)
    then gets ``change`` in its directory entry (flag bits, zip version, size) as a
    hostile file would have it."""
    v = io.BytesIO(member)
    if not member:
        np.lib.format.write_array(v, np.zeros((10, 2)))
    with zipfile.ZipFile(path, "w") as zf:  # only v is compressed (with method)
        arrays = {"t": time_of(np.arange(10), DT), **header_arrays(_meta(10, {"v": "voltage"}, []))}
        for key, arr in arrays.items():
            with zf.open(f"{key}.npy", "w") as fh:
                np.lib.format.write_array(fh, np.asanyarray(arr), allow_pickle=False)
        info = zipfile.ZipInfo("v.npy")
        info.compress_type = method
        zf.writestr(info, v.getvalue())
        for attr, value in change.items():  # only the directory, written on close, has it
            setattr(info, attr, getattr(info, attr) | value if attr == "flag_bits" else value)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"flag_bits": 0x1}, r"member 'v.npy' is encrypted$"),
        ({"flag_bits": 0x20}, r"compressed patched data \(flag bit 5\)"),
        ({"flag_bits": 0x40}, r"strong encryption \(flag bit 6\)"),
        ({"extract_version": 99}, r"zip file version 9\.9"),
    ],
    ids=["encrypted", "patched", "strong encryption", "version"],
)
def test_a_zip_feature_zipfile_cannot_read_is_refused_in_one_line(
    tmp_path: Path, change: dict[str, int], message: str
) -> None:
    """An encrypted member made zipfile ask for a password (RuntimeError), and patched
    data, strong encryption or a zip version newer than zipfile reads made it raise
    NotImplementedError: each escaped as a traceback."""
    npz = _flagged(tmp_path / "f.npz", change)
    with pytest.raises(ConfigError, match=message) as err:
        plot_run_file(npz, tmp_path / "f.png")
    assert str(err.value).startswith(f"cannot plot {str(npz)!r}: ")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "f.png").exists()


def test_a_member_of_another_compression_method_is_refused(tmp_path: Path) -> None:
    """Only stored and deflated members (what numpy and the writer make) are read: a
    bzip2 member is refused, naming the method, rather than decompressed."""
    npz = _flagged(tmp_path / "b.npz", {}, zipfile.ZIP_BZIP2)
    with pytest.raises(
        ConfigError, match=r"member 'v.npy' uses zip compression method 12; expected stored"
    ):
        plot_run_file(npz, tmp_path / "b.png")


def test_a_member_that_appears_twice_is_refused(tmp_path: Path) -> None:
    """Two ``v.npy`` members: which one is drawn would depend on the reader, so the file
    is refused, naming the member."""
    npz = _hostile(tmp_path / "d.npz", _npy((10, 2)) + b"\0" * 160)
    with zipfile.ZipFile(npz, "a") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("v.npy", _npy((10, 2)) + b"\0" * 160)
    with pytest.raises(ConfigError, match=r"member 'v.npy' appears twice$"):
        plot_run_file(npz, tmp_path / "d.png")


def test_corrupt_deflated_data_is_refused_in_one_line(tmp_path: Path) -> None:
    """A deflated member whose compressed bytes are damaged: zlib's error is one line
    saying the zip data is corrupt."""
    good = save_npz(
        tmp_path / "good.npz",
        {"t": time_of(np.arange(1000), DT), "v": np.arange(4000.0).reshape(1000, 4),
         **header_arrays(_meta(1000, {"v": "voltage"}, []))},
        compress=True,
    )  # fmt: skip
    with zipfile.ZipFile(good) as zf:
        info = zf.getinfo("v.npy")
    data = bytearray(good.read_bytes())
    name, extra = struct.unpack_from("<2H", data, info.header_offset + 26)
    start = info.header_offset + 30 + name + extra  # the compressed bytes
    for at in range(start + 200, start + info.compress_size - 8, 7):
        data[at] ^= 0xFF
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match=r"corrupt zip data \(") as err:
        plot_run_file(bad, tmp_path / "bad.png")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("shape", [(10,), (10, 1)])
def test_a_fortran_order_header_of_one_column_is_read(
    tmp_path: Path, shape: tuple[int, ...]
) -> None:
    """Fortran and C order store one column the same bytes: such a member is read, only
    a wider one refused."""
    v = np.arange(10.0)
    npz = _hostile(tmp_path / "f.npz", _npy(shape, fortran=True) + v.tobytes())
    with zipfile.ZipFile(npz) as zf:
        got = np.concatenate(list(plotting._NpzFile(npz, zf).rows("v", 4, np.arange(1))))
    np.testing.assert_array_equal(got[:, 0], v)
    assert plot_run_file(npz, tmp_path / "f.png").stat().st_size > 0


def test_members_that_are_not_npy_are_not_arrays(tmp_path: Path) -> None:
    """np.load reads only ``<key>.npy`` as arrays: a ``meta`` member without the suffix
    (a note beside the arrays) is neither a second ``meta`` nor a key."""
    npz = _hostile(tmp_path / "n.npz", _npy((10, 2)) + b"\0" * 160)
    with zipfile.ZipFile(npz, "a") as zf:
        zf.writestr("meta", b"a note, not an array")
    with zipfile.ZipFile(npz) as zf:
        assert sorted(plotting._NpzFile(npz, zf).keys()) == sorted(
            ["t", "dt", "network", "dtype", "meta", "v"]
        )
    assert plot_run_file(npz, tmp_path / "n.png").stat().st_size > 0


def test_a_deflated_member_shorter_than_its_directory_entry_says_is_refused(
    tmp_path: Path,
) -> None:
    """The directory may claim more bytes than the member's deflate stream holds (its CRC
    right for what is there): the header's shape then fits the claim, and the data ends
    early. Refused in one line saying where it ended."""
    v = _npy((10, 2)) + b"\0" * 96  # 160 bytes of data claimed, 96 there
    npz = _flagged(tmp_path / "s.npz", {}, zipfile.ZIP_DEFLATED, member=v)
    with zipfile.ZipFile(npz) as zf:
        assert zf.getinfo("v.npy").file_size == len(v)
    npz = _flagged(tmp_path / "s.npz", {"file_size": len(v) + 64}, zipfile.ZIP_DEFLATED, member=v)
    with pytest.raises(ConfigError, match=r"member 'v.npy' ends after 96 bytes of data$") as err:
        plot_run_file(npz, tmp_path / "s.png")
    assert "\n" not in str(err.value)


def test_a_stored_member_running_past_the_end_of_the_file_is_refused(tmp_path: Path) -> None:
    """A directory entry claiming more stored bytes than the file holds after the member:
    zipfile raises a bare EOFError when the file ends, refused in one line naming it
    (the message was ``corrupt zip data ()``)."""
    v = _npy((10, 200)) + b"\0" * 16  # 16,000 bytes claimed, 16 there
    size = len(v) + 16_000
    npz = _flagged(tmp_path / "e.npz", {"file_size": size, "compress_size": size}, member=v)
    assert npz.stat().st_size < size  # the claim runs past the end of the file
    with pytest.raises(
        ConfigError,
        match=r"corrupt zip data \(a member runs past the end of the file: truncated\?\)$",
    ) as err:
        plot_run_file(npz, tmp_path / "e.png")
    assert "\n" not in str(err.value)
