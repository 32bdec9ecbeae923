"""``spikestream feed`` reading signal files: a size cap checked before any byte is read,
memory bounded by the file's size, and files that are not regular files, or fields no
parser takes, refused in one line.

A 6 MB CSV of 3M lines of ``1`` took 857 MB (a Python list, string and float per value);
a field past the csv module's limit of 131072 characters ended the tool with a
``_csv.Error`` traceback; a FIFO or a folder named ``x.csv`` was said not to exist.
"""

from __future__ import annotations

import argparse
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from spikestream.errors import ConfigError
from spikestream_client.cli import feed as feed_cli
from spikestream_client.feed import load_samples, make_source
from spikestream_client.feed_sources import MAX_SIGNAL_FILE_BYTES
from tests.clients.conftest import run_cli

# Never reached: every refusal below comes before connecting.
NOWHERE = ("--no-check", "--broker", "mqtt://127.0.0.1:1", "--net", "seed", "--input", "u")


def _one_line_refusal(*args: str) -> str:
    """Run ``spikestream feed NOWHERE ARGS``, check it is refused with one line and no
    traceback, and return that line."""
    done = run_cli("feed", *NOWHERE, *args, timeout=30)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("spikestream feed: error: "), done.stderr
    return lines[0]


# ----------------------------------------------------------------------------- size


@pytest.mark.parametrize("suffix", [".csv", ".npy"])
def test_a_file_over_the_cap_is_refused_naming_its_size_and_the_cap(
    tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"big{suffix}"
    with path.open("wb") as fh:
        fh.truncate(MAX_SIGNAL_FILE_BYTES + 1)  # sparse: no disk, and nothing to parse
    expected = (
        f"signal file '{path}' is {MAX_SIGNAL_FILE_BYTES + 1} bytes (64.1 MiB); feed reads "
        f"files of at most {MAX_SIGNAL_FILE_BYTES} bytes (64 MiB; --max-mib sets it)"
    )
    with pytest.raises(ConfigError) as info:
        make_source(str(path), rate=10.0)
    assert str(info.value) == expected
    assert _one_line_refusal(str(path)) == f"spikestream feed: error: {expected}"


def test_the_cap_is_on_the_file_size_in_bytes(tmp_path: Path) -> None:
    """At the cap a file is read; one byte over, it is refused."""
    path = tmp_path / "x.csv"
    path.write_text("1.5\n" * 25)  # 100 bytes
    values, _, _ = load_samples(path, max_bytes=100)
    assert values.shape == (25, 1)
    path.write_text("1.5\n" * 25 + "2")
    with pytest.raises(ConfigError, match=r"is 101 bytes .* at most 100 bytes"):
        load_samples(path, max_bytes=100)


def test_max_mib_raises_the_cap_for_a_file_over_the_default(tmp_path: Path) -> None:
    """A valid ``.npy`` just over 64 MiB (sparse zeros: no disk) is refused by default and
    read with a cap above it; ``--max-mib`` below a small file refuses it, naming the cap
    and the flag."""
    path = tmp_path / "big.npy"
    count = MAX_SIGNAL_FILE_BYTES // 8 + 1
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1))
    header["shape"] = (count,)
    with path.open("wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        fh.truncate(fh.tell() + 8 * count)
    with pytest.raises(ConfigError, match="--max-mib sets it"):
        load_samples(path)
    values, _, _ = load_samples(path, max_bytes=65 * 2**20)
    assert values.shape == (count, 1)
    assert not values.any()
    small = tmp_path / "small.csv"
    small.write_text("0.5\n" * 50)  # 200 bytes
    shown = _one_line_refusal(str(small), "--max-mib", "0.0001")  # 104 bytes
    assert shown.endswith(
        "is 200 bytes (0.1 MiB); feed reads files of at most 104 bytes (as --max-mib set it)"
    ), shown


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1e-9"])
def test_a_max_mib_under_one_byte_or_not_finite_is_refused(value: str) -> None:
    shown = _one_line_refusal("sin", "--max-mib", value)
    assert "--max-mib must be a finite number of MiB > 0, at least one byte" in shown, shown
    assert repr(float(value)) in shown, shown


def test_the_flag_default_is_the_cap() -> None:
    """The parser's default, written as a literal (the parser does not import numpy), is
    the module's cap."""
    parser = argparse.ArgumentParser()
    feed_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["feed", "--net", "seed", "--input", "u", "sin"])
    assert args.max_mib * 2**20 == MAX_SIGNAL_FILE_BYTES


def test_reading_a_csv_takes_memory_bounded_by_its_size(tmp_path: Path) -> None:
    """Half a million lines of ``1`` (1 MB): the samples are 4 MB of float64 (the most a
    file of this size can hold), and the peak is that and one block of lines (2 MiB
    allowed). The old reader held a list and a string per row and a float per value:
    over 100 times the file."""
    rows = 500_000
    path = tmp_path / "ones.csv"
    path.write_text("1\n" * rows)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        values, offsets, _ = load_samples(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert values.shape == (rows, 1)
    assert offsets is None
    assert np.all(values == 1.0)
    assert peak <= 4 * size + 2 * 2**20, (
        f"peak {peak / 2**20:.1f} MiB for a file of {size / 2**20:.1f} MiB"
    )


def test_the_cap_is_in_the_help() -> None:
    shown = " ".join(run_cli("feed", "--help").stdout.split())
    assert f"at most {MAX_SIGNAL_FILE_BYTES // 2**20} MiB" in shown


# ----------------------------------------------------------------------- not a file


def test_a_fifo_or_a_folder_is_said_not_to_be_a_regular_file(tmp_path: Path) -> None:
    """Neither "does not exist" (it does) nor a wait: the FIFO is never opened (the
    subprocess would time out waiting for a writer)."""
    fifo = tmp_path / "x.csv"
    os.mkfifo(fifo)
    folder = tmp_path / "y.npy"
    folder.mkdir()
    assert _one_line_refusal(str(fifo)) == (
        f"spikestream feed: error: signal file '{fifo}' is a FIFO; expected a regular "
        ".npy or CSV file"
    )
    with pytest.raises(ConfigError, match=r"'.*y\.npy' is a folder; expected a regular"):
        load_samples(folder)
    with pytest.raises(ConfigError, match=r"'.*missing\.csv' does not exist"):
        load_samples(tmp_path / "missing.csv")


def test_values_past_the_input_limit_are_refused_naming_the_file_or_the_flags(
    tmp_path: Path,
) -> None:
    """Every decoder refuses a value beyond ±1e9. feed said only the codec's "x must lie
    within +-1e+09, got one of magnitude 1e+300", naming neither the file nor the sample
    nor the flag; a sin with --offset nan went as far as the first value."""
    big = tmp_path / "big.npy"
    np.save(big, np.array([[0.5], [-0.5], [-1e300], [2e9]]))
    assert _one_line_refusal(str(big)) == (
        f"spikestream feed: error: '{big}' holds values beyond ±1e+09 (the first in sample 2, "
        "counting from 0); every input value must lie within it"
    )
    edge = tmp_path / "edge.npy"
    np.save(edge, np.array([1e9, -1e9]))
    assert load_samples(edge)[0].ravel().tolist() == [1e9, -1e9]  # the limit itself is taken
    assert _one_line_refusal("constant", "--value", "0.5,-1e10") == (
        "spikestream feed: error: --value must lie within ±1e+09, got [0.5, -10000000000.0]"
    )
    assert _one_line_refusal("sin", "--amp", "6e8", "--offset=-5e8") == (
        "spikestream feed: error: --offset -5e+08 and --amp 6e+08 reach 1.1e+09 "
        "(|offset| + |amp|); every input value must lie within ±1e+09"
    )
    assert "reach 1.05e+09 (|offset| + 10 × |amp|)" in _one_line_refusal(
        "noise", "--amp", "1e8", "--offset", "5e7"
    )
    assert "--offset must be finite, got nan" in _one_line_refusal("square", "--offset", "nan")
    source, _ = make_source("square", rate=10.0, amp=5e8, offset=5e8)  # reaches 1e9 exactly
    assert float(source.at(0)[1].max()) <= 1e9


# ------------------------------------------------------------------------ CSV text


def test_a_field_past_the_csv_modules_limit_is_refused_in_one_line(tmp_path: Path) -> None:
    """The reproducer of the traceback: a 200,000-digit number, which as float64 is
    infinite; a 200,000-letter field names its line."""
    digits = tmp_path / "bigfield.csv"
    digits.write_text("1," + "9" * 200_000 + "\n")
    line = _one_line_refusal(str(digits))
    assert "holds NaN or infinite values (the first in sample 0" in line
    letters = tmp_path / "letters.csv"
    letters.write_text("x,y\n1,2\n3," + "z" * 200_000 + "\n")
    with pytest.raises(ConfigError, match=r"line 3: could not convert string 'zzz.* \(column 2\)"):
        load_samples(letters)
    header = tmp_path / "header.csv"
    header.write_text("time," + "v" * 200_000 + "\n0,1\n0.5,2\n")
    values, offsets, t0 = load_samples(header)
    assert values.tolist() == [[1.0], [2.0]]
    assert offsets is not None
    assert offsets.tolist() == [0.0, 0.5]
    assert t0 == 0.0


def test_csv_errors_name_their_line_past_the_first_block(tmp_path: Path) -> None:
    """Lines are counted in the file (comments and blank lines too), across blocks."""
    body = "# two columns\n\n" + "1,2\n" * 5000
    ragged = tmp_path / "ragged.csv"
    ragged.write_text(body + "3,4,5\n")
    with pytest.raises(ConfigError, match=r"line 5003 has 3 values; the rows before it have 2"):
        load_samples(ragged)
    short = tmp_path / "short.csv"
    short.write_text(body + "  # a comment\n3\n")
    with pytest.raises(ConfigError, match=r"line 5004 has 1 value; the rows before it have 2"):
        load_samples(short)
    bad = tmp_path / "bad.csv"
    bad.write_text(body + "3,four\n")
    with pytest.raises(ConfigError, match=r"line 5003: could not convert string 'four'"):
        load_samples(bad)


@pytest.mark.parametrize(
    ("text", "values", "times"),
    [
        ("1\n2\n3", [[1.0], [2.0], [3.0]], None),  # no newline at the end
        ("x,y\r\n1,2\r\n3,4\r\n", [[1.0, 2.0], [3.0, 4.0]], None),
        ("1\r2\r", [[1.0], [2.0]], None),  # old Mac line ends
        ('"t","x"\n"0.5"," 1"\n', [[1.0]], [0.5]),
        ("# note\n\n  # indented note\n1\n   \n\t\n2\n", [[1.0], [2.0]], None),
        ("\ufeffTime,x\n0,1\n1,2\n", [[1.0], [2.0]], [0.0, 1.0]),
    ],
    ids=["no-final-newline", "crlf-header", "cr", "quoted", "comments-blanks", "bom"],
)
def test_csv_layouts_read_as_before(
    tmp_path: Path, text: str, values: list[list[float]], times: list[float] | None
) -> None:
    """Headers, quotes, line ends, comments and blank lines read as the csv module read
    them; lines of blanks are skipped as empty ones are (they were refused as numbers
    that do not parse), and a UTF-8 byte order mark (Excel's) no longer hides a ``time``
    header (the rows were played at the rate, the times sent as values)."""
    path = tmp_path / "x.csv"
    path.write_bytes(text.encode())
    got, offsets, t0 = load_samples(path)
    assert got.tolist() == values
    if times is None:
        assert offsets is None
    else:
        assert offsets is not None
        assert (offsets + (t0 or 0.0)).tolist() == times
