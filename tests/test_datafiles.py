"""Array files read as hostile (``spikestream.datafiles``): one file under two names, and
zip members in any layout numpy writes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spikestream.datafiles import (
    NPY_HEADER_MAX_BYTES,
    load_csv,
    load_npy,
    read_npy_header,
    read_npy_member,
)
from tests.structure.imports import ROOT


def _refuse(why: str) -> Exception:
    return ValueError(why)


@pytest.mark.parametrize(
    "arr",
    [
        np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        np.arange(6.0).reshape(2, 3).astype(">f8"),
    ],
    ids=["fortran-order", "big-endian"],
)
def test_a_member_comes_back_as_written_in_native_byte_order(arr: Any) -> None:
    """A Fortran-ordered or big-endian ``.npy`` member is read with its values in place,
    in native byte order."""
    buf = io.BytesIO()
    np.savez(buf, x=arr)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        out = read_npy_member(
            zf,
            zf.getinfo("x.npy"),
            max_bytes=4096,
            header_max_bytes=4096,
            check_header=lambda shape, dtype: None,
            refuse=_refuse,
        )
    assert out.dtype.isnative
    np.testing.assert_array_equal(out, np.arange(6.0).reshape(2, 3))


@pytest.mark.parametrize("text", ["", "# only a comment\n"], ids=["empty", "comment"])
def test_an_empty_csv_signal_is_one_line_without_numpys_warning(tmp_path: Path, text: str) -> None:
    """numpy's two-line UserWarning ("loadtxt: input contained no data") came before the
    one-line refusal, breaking ``--log-format json``; warnings are errors here, so the
    warning itself fails this test."""
    (tmp_path / "empty.csv").write_text(text)
    net = tmp_path / "net.toml"
    net.write_text(
        (ROOT / "examples" / "seed.toml")
        .read_text()
        .replace(
            'signal = { kind = "sin", amp = 1.0, omega = 1.0 }',
            'signal = { kind = "file", path = "empty.csv" }',
        )
    )
    assert 'path = "empty.csv"' in net.read_text()
    done = subprocess.run(
        [sys.executable, "-m", "spikestream", "--log-format", "json", "run", str(net),
         "--duration", "0.01", "--out", str(tmp_path / "o.npz")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert "empty.csv" in json.loads(line)["msg"]


def test_a_format_2_npy_header_is_read(tmp_path: Path) -> None:
    """numpy writes format 2.0 (a 4-byte header length) for headers past 64 KiB, and on
    request: such a file is read like a format 1.0 one."""
    path = tmp_path / "w.npy"
    arr = np.arange(12.0).reshape(3, 4)
    with path.open("wb") as fh:
        np.lib.format.write_array(fh, arr, version=(2, 0))
    with path.open("rb") as fh:
        assert read_npy_header(fh, NPY_HEADER_MAX_BYTES) == ((3, 4), False, np.dtype("<f8"))
    np.testing.assert_array_equal(load_npy(path, "weights"), arr)


def _member_zip(npy: bytes) -> zipfile.ZipFile:
    """A zip holding one stored member ``x.npy`` of bytes ``npy``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("x.npy", npy)
    return zipfile.ZipFile(io.BytesIO(buf.getvalue()))


def _npy(arr: Any, claimed: tuple[int, ...]) -> bytes:
    """``arr``'s ``.npy`` bytes under a header claiming shape ``claimed``."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf,
        {
            "descr": np.lib.format.dtype_to_descr(arr.dtype),
            "fortran_order": False,
            "shape": claimed,
        },
    )
    return buf.getvalue() + arr.tobytes()


def test_a_header_claiming_more_than_the_bound_leaves_is_refused_before_allocating() -> None:
    """The header's bytes count against the bound: a header whose array fits
    ``max_bytes`` but not what is left after the header is refused from the header, before
    the array is allocated (not once the read passes the bound)."""
    import tracemalloc

    n = 1_000_000
    npy = _npy(np.zeros(n), (n,))
    header = len(npy) - 8 * n
    with _member_zip(npy) as zf:
        tracemalloc.start()
        try:
            with pytest.raises(ValueError, match=r"header claims shape \(1000000,\)") as info:
                read_npy_member(
                    zf,
                    zf.getinfo("x.npy"),
                    max_bytes=8 * n + header - 1,
                    header_max_bytes=4096,
                    check_header=lambda shape, dtype: None,
                    refuse=_refuse,
                )
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert str(info.value).endswith(f"at most {8 * n - 1} bytes of data fit")
    assert peak < 8 * n // 2


@pytest.mark.timeout(30)
def test_a_member_shorter_than_its_header_says_is_refused() -> None:
    """A well-formed zip whose ``.npy`` member holds fewer bytes than its header claims:
    zipfile reads it to its end without complaint (the CRC is right), and the reader
    refuses it, naming how far it got, instead of waiting for more bytes."""
    truncated = r"member 'x\.npy' ends after 80 of 800 bytes"
    with (
        _member_zip(_npy(np.arange(10.0), (100,))) as zf,
        pytest.raises(ValueError, match=truncated),
    ):
        read_npy_member(
            zf,
            zf.getinfo("x.npy"),
            max_bytes=10_000,
            header_max_bytes=4096,
            check_header=lambda shape, dtype: None,
            refuse=_refuse,
        )


@pytest.mark.parametrize(
    ("text", "shape"),
    [("1,2,3\n", (1, 3)), ("1\n2\n3\n", (3, 1)), ("5\n", (1, 1)), ("1,2\n3,4\n", (2, 2))],
)
def test_a_csv_file_is_read_as_rows_and_columns(
    tmp_path: Path, text: str, shape: tuple[int, int]
) -> None:
    """A CSV file comes back 2-D, ``(rows, cols)``, even with one row or one column: a
    one-line file is one sample of many values, not many samples of one."""
    path = tmp_path / "u.csv"
    path.write_text(text)
    data = load_csv(path, "inputs.u.signal")
    assert data.shape == shape
    assert data.dtype == np.float64
    np.testing.assert_array_equal(
        data.ravel(), [float(v) for v in text.replace("\n", ",").split(",") if v]
    )


def test_files_read_finds_every_file_valued_key(tmp_path: Path) -> None:
    """Each kind of file-valued key is found, wherever the schema puts it: a field typed
    ``FilePath`` alone (a signal's ``path``, a weights ``file``), one of a union
    (``max_rates``, ``encoders``, ``initial_voltage``, a connection's ``decoders``), in a
    table of tables (populations, inputs) and in an array of tables (connections)."""
    from spikestream.datafiles import files_read
    from spikestream.spec import load_network

    net = tmp_path / "net.toml"
    net.write_text(
        """
[network]
dt = 0.001
[populations.a]
n = 4
max_rates = "rates.npy"
intercepts = "icpt.npy"
encoders = "enc.npy"
initial_voltage = "v0.npy"
[populations.b]
n = 3
[inputs.u]
target = "a"
signal = { kind = "file", path = "u.npy" }
[[connections]]
pre = "a"
post = "b"
name = "w"
weights = { file = "w.npy" }
[[connections]]
pre = "a"
post = "b"
name = "d"
decoders = "dec.npy"
[probes.p]
target = "a"
kind = "decoded"
decoders = "pdec.npy"
"""
    )
    found = files_read(load_network(net))
    assert found == [
        ("populations.a.max_rates", tmp_path / "rates.npy"),
        ("populations.a.intercepts", tmp_path / "icpt.npy"),
        ("populations.a.encoders", tmp_path / "enc.npy"),
        ("populations.a.initial_voltage", tmp_path / "v0.npy"),
        ("inputs.u.signal.path", tmp_path / "u.npy"),
        ("connections[0].weights.file", tmp_path / "w.npy"),
        ("connections[1].decoders", tmp_path / "dec.npy"),
        ("probes.p.decoders", tmp_path / "pdec.npy"),
    ]
