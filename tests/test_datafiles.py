"""Array files read as hostile (``spikestream.datafiles``): one file under two names, and
zip members in any layout numpy writes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spikestream.datafiles import read_npy_member, same_file
from tests.structure.imports import ROOT


def test_a_hard_link_is_the_same_file(tmp_path: Path) -> None:
    """Two names of one inode are one file (writing through one overwrites the other);
    two files with equal content are not."""
    a = tmp_path / "a.npz"
    a.write_bytes(b"x")
    b = tmp_path / "b.npz"
    os.link(a, b)
    c = tmp_path / "c.npz"
    c.write_bytes(b"x")
    assert same_file(a, b)
    assert not same_file(a, c)
    assert not same_file(a, tmp_path / "missing.npz")


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
