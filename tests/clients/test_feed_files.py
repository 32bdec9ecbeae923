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
from spikestream_client.feed_sources import MAX_DIM, MAX_SIGNAL_FILE_BYTES
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


def test_a_row_wider_than_any_message_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    """A line of half a million ``1,`` (1 MB) is a row no message can carry (at most
    MAX_DIM values, and a time column): refused naming its line, before numpy's parser
    takes many times the line's size for its fields (a 63 MiB line of them took 1.1 GB
    and half a minute before the width was checked). The header line is checked too: it
    is parsed as a row first."""
    wide = "1," * 500_000 + "1\n"
    path = tmp_path / "wide.csv"
    path.write_text("x\n1\n" + wide)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match=rf"line 3 has more than {MAX_DIM + 1} columns"):
            load_samples(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= 4 * size + 2 * 2**20, f"peak {peak / 2**20:.1f} MiB for a {size} byte file"
    path.write_text(wide)
    with pytest.raises(ConfigError, match="line 1 has more than"):
        load_samples(path)
    # A timed row of MAX_DIM values is as wide as a row may be.
    path.write_text("t," + ",".join(["x"] * MAX_DIM) + "\n0," + ",".join(["1"] * MAX_DIM) + "\n")
    values, offsets, _ = load_samples(path)
    assert values.shape == (1, MAX_DIM)
    assert offsets is not None


@pytest.mark.parametrize(
    "times", ["0\n1\nnan", "0\n1\ninf", "nan\n0\n1", "0\n2\n1", "1e400\n1e401\n1e402"]
)
def test_a_time_column_that_is_not_finite_and_non_decreasing_is_refused(
    tmp_path: Path, times: str
) -> None:
    """The values are checked to be finite, the times are another column: a NaN time
    compares as neither earlier nor later, and an infinite last time is never due, so
    each is refused, naming the file, before the feed waits on it."""
    path = tmp_path / "timed.csv"
    rows = [f"{t},{k}" for k, t in enumerate(times.split("\n"))]
    path.write_text("time,x\n" + "\n".join(rows) + "\n")
    with pytest.raises(ConfigError, match=r"time column of '.*timed\.csv' must be finite and"):
        load_samples(path)


def test_a_fifo_or_an_oversized_file_is_refused_without_being_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opened non-blocking, a FIFO does not hang the feed, but opening it wakes a writer
    waiting for a reader (which then writes into a pipe closed under it), and opening a
    device can act (a tty, a watchdog): the path is refused from its stat alone. The
    check on the opened file is only for a path swapped in between."""
    opened: list[str] = []
    real_open = os.open

    def recording_open(path: str | os.PathLike[str], flags: int, *args: int) -> int:
        opened.append(os.fspath(path))
        return real_open(path, flags, *args)

    fifo = tmp_path / "x.csv"
    os.mkfifo(fifo)
    big = tmp_path / "big.csv"
    big.write_text("1\n" * 1000)
    monkeypatch.setattr(os, "open", recording_open)
    with pytest.raises(ConfigError, match="is a FIFO"):
        load_samples(fifo)
    with pytest.raises(ConfigError, match="is 2000 bytes"):
        load_samples(big, max_bytes=1000)
    assert opened == []
    values, _, _ = load_samples(big)  # the same file under the cap is opened, once
    assert (len(values), opened) == (1000, [str(big)])


def test_a_path_swapped_after_its_check_is_checked_again_once_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the path's stat and its opening, another process may put a FIFO or a
    larger file in its place: the opened file is checked again, and refused as what it
    is (the FIFO read as an empty file, the large one was read past the cap). It is
    opened non-blocking: opened blocking, a FIFO swapped in waited for a writer."""
    small = tmp_path / "small.csv"
    small.write_text("1\n")
    fifo = tmp_path / "x.csv"
    os.mkfifo(fifo)
    big = tmp_path / "big.csv"
    big.write_text("1\n" * 1000)
    real_stat = os.stat

    def stat_before_the_swap(
        path: str | os.PathLike[str], *args: object, **kwargs: object
    ) -> os.stat_result:
        if os.fspath(path) in (str(fifo), str(big)):
            return real_stat(small)  # what the path was when checked
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    real_open = os.open

    def open_never_blocking(path: str | os.PathLike[str], flags: int, *args: int) -> int:
        # Opened blocking, the swapped-in FIFO waits for a writer for ever: say so
        # rather than hang.
        assert flags & os.O_NONBLOCK, "a signal file is opened blocking"
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "stat", stat_before_the_swap)
    monkeypatch.setattr(os, "open", open_never_blocking)
    with pytest.raises(ConfigError, match=r"'.*x\.csv' is a FIFO"):
        load_samples(fifo)
    with pytest.raises(ConfigError, match=r"'.*big\.csv' is 2000 bytes"):
        load_samples(big, max_bytes=1000)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n   \n  # and another\n"])
def test_a_csv_without_rows_says_so(tmp_path: Path, text: str) -> None:
    """An empty file, or one of blank lines and comments, has no rows to play: said as
    such, not as an array of an odd shape."""
    path = tmp_path / "empty.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"cannot read samples from '.*empty\.csv': no rows$"):
        load_samples(path)


def test_every_row_of_a_csv_is_read_once_across_blocks(tmp_path: Path) -> None:
    """Rows are parsed in blocks of 4096 lines: a file of more than two blocks, with
    comments and blank lines among its rows and no newline after the last, gives every
    row once, in order (a block read twice or a last block dropped kept the shape of a
    plausible signal)."""
    rows = 2 * 4096 + 7
    lines = [f"{k},{-k}" for k in range(rows)]
    lines[10:10] = ["# a comment", "", "   "]
    lines[5000:5000] = ["  # another"]
    path = tmp_path / "long.csv"
    path.write_text("\n".join(lines))  # no newline at the end
    values, offsets, t0 = load_samples(path)
    assert offsets is None
    assert t0 is None
    np.testing.assert_array_equal(values[:, 0], np.arange(rows))
    np.testing.assert_array_equal(values[:, 1], -np.arange(rows))


@pytest.mark.parametrize("text", ["1\n2\n3", "1,2\n3,4", "t,x\n0,1\n1,2"])
def test_a_file_of_the_densest_rows_without_a_last_newline_is_read(
    tmp_path: Path, text: str
) -> None:
    """One-digit values, the last row without its newline: the most rows a file of this
    size can hold. The array reserved for them has room for that last row (one short, it
    was refused as a file that changed while being read)."""
    path = tmp_path / "dense.csv"
    path.write_text(text)
    values, _, _ = load_samples(path)
    assert values[-1, -1] == float(text[-1])
    assert len(values) == text.count("\n") + (0 if text.startswith("t") else 1)


def test_the_rows_reserved_but_not_read_are_given_back(tmp_path: Path) -> None:
    """The array is reserved for the most rows the file's size could hold; ten rows of
    long numbers hold far fewer. What load_samples returns keeps only the rows read, not
    a view of the reservation (which counts against a memory limit while it lives)."""
    path = tmp_path / "long_numbers.csv"
    path.write_text(("1." + "0" * 10_000 + "\n") * 10)  # 100 kB: room for 50 005 rows
    tracemalloc.start()
    try:
        values, _, _ = load_samples(path)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert values.shape == (10, 1)
    assert np.all(values == 1.0)
    assert held < 50_000, f"{held} bytes held for 10 values"


@pytest.mark.parametrize("first", ["1,2x", "0.5,,1", " -3 ,x"])
def test_a_bad_first_row_is_named_not_dropped_as_a_header(tmp_path: Path, first: str) -> None:
    """The first line that is not all numbers was taken as a header and skipped: a first
    row with one bad field lost its sample without a word. A header's first field (the
    times' or the index's name) is never a number."""
    path = tmp_path / "first.csv"
    path.write_text(f"# a comment\n{first}\n3,4\n")
    with pytest.raises(ConfigError, match=r"line 2"):
        load_samples(path)


@pytest.mark.parametrize("header", [",0", "x,1", "t,1"])
def test_a_header_may_name_its_other_columns_by_number(tmp_path: Path, header: str) -> None:
    """pandas writes ",0" for an index and a column named 0: still a header."""
    path = tmp_path / "pandas.csv"
    path.write_text(f"{header}\n3,4\n5,6\n")
    values, _, _ = load_samples(path)
    assert values.shape[0] == 2


def test_a_file_whose_one_line_is_a_header_says_so(tmp_path: Path) -> None:
    path = tmp_path / "tabs.csv"
    path.write_text("1\t2\n")  # tab-separated: one field, not a number
    with pytest.raises(ConfigError, match=r"no data rows \(line 1, the only one, is taken as"):
        load_samples(path)


@pytest.mark.parametrize("header", ["t,x", "time,x", " Time ,x", '"T",x', "TIME,x,# notes"])
def test_a_header_naming_t_or_time_first_makes_that_column_the_times(
    tmp_path: Path, header: str
) -> None:
    """``t`` or ``time``, in any case, quoted or padded, makes the first column the times
    (the rows play at them, from the first); any other header is only skipped."""
    path = tmp_path / "timed.csv"
    extra = ",0" if header.count(",") == 2 else ""
    path.write_text(f"{header}\n10,1{extra}\n10.5,2{extra}\n12,3{extra}\n")
    values, offsets, t0 = load_samples(path)
    assert t0 == 10.0
    assert offsets is not None
    assert offsets.tolist() == [0.0, 0.5, 2.0]
    assert values[:, 0].tolist() == [1.0, 2.0, 3.0]
    path.write_text(f"x,{header}\n10,1{extra}\n")
    values, offsets, t0 = load_samples(path)
    assert (offsets, t0) == (None, None)
    assert values[0, :2].tolist() == [10.0, 1.0]


def _opened_with_2_bytes(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``os.fstat`` of ``path`` say 2 bytes (``"1\n"``), as when it was opened before
    the rest was appended; other files are stat'ed as they are."""
    grown = os.stat(path).st_ino
    real_fstat = os.fstat

    def fstat_when_opened(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        if st.st_ino != grown:
            return st
        fields = list(st)
        fields[6] = 2  # st_size
        return os.stat_result(fields)

    monkeypatch.setattr(os, "fstat", fstat_when_opened)


def test_a_file_that_grows_while_read_is_refused_reading_no_more_than_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file appended to while the feed reads it (a log being written) is refused once
    it holds more than it did when opened, and what is read is bounded by that size: a
    line of megabytes appended is not read whole to find it is too long."""
    path = tmp_path / "growing.csv"
    path.write_text("1\n" + "1," * 1_000_000 + "1\n")
    _opened_with_2_bytes(path, monkeypatch)
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match="it grew past the 2 bytes it had when opened"):
            load_samples(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20, f"peak {peak} bytes reading a file of 2 bytes"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("1,2\n3,4\n5\n", "line 3 has 1 value; the rows before it have 2"),
        ("1\n\n# c\n2\n3,4,5\n", "line 5 has 3 values; the rows before it have 1"),
        ("1,2\n3\n4\n", "line 2 has 1 value; the rows before it have 2"),
    ],
)
def test_a_row_of_another_width_is_named_with_its_width(
    tmp_path: Path, text: str, said: str
) -> None:
    """A row shorter or longer than those before it is named by its line in the file
    (blank lines and comments counted) and its width, not as a range of lines."""
    path = tmp_path / "ragged.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"ragged\.csv': {said}$"):
        load_samples(path)


def test_a_file_one_byte_longer_than_when_opened_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The smallest growth, one byte, is growth: the file is refused as having grown,
    not read on into rows its size had no room for."""
    path = tmp_path / "grew.csv"
    path.write_text("1\n2")
    _opened_with_2_bytes(path, monkeypatch)
    with pytest.raises(ConfigError, match="it grew past the 2 bytes it had when opened"):
        load_samples(path)


@pytest.mark.parametrize(("text", "column"), [("1,2#3\n", 2), ("1 # one\n", 1)])
def test_a_hash_after_a_value_is_no_comment(tmp_path: Path, text: str, column: int) -> None:
    """Only a line whose first non-blank character is ``#`` is a comment: a ``#`` after
    a value is refused with the value, not taken as a comment that silently cuts the
    value short (``2#3`` read as 2)."""
    path = tmp_path / "hash.csv"
    path.write_text("0,0\n" + text if column == 2 else "0\n" + text)
    with pytest.raises(ConfigError, match=rf"line 2: could not convert .* \(column {column}\)"):
        load_samples(path)


def test_a_time_column_alone_is_refused(tmp_path: Path) -> None:
    """``t`` with no value column after it gives times and nothing to send at them."""
    path = tmp_path / "times.csv"
    path.write_text("t\n0\n1\n")
    with pytest.raises(ConfigError, match="a time column needs at least one value column"):
        load_samples(path)


@pytest.mark.parametrize("name", ["x.CSV", "x.Txt", "x.NPY"])
def test_a_signal_file_suffix_is_matched_in_any_case(tmp_path: Path, name: str) -> None:
    """``DATA.CSV`` from another system is a CSV file, ``X.NPY`` a ``.npy`` one."""
    path = tmp_path / name
    if name.endswith("NPY"):
        with path.open("wb") as fh:
            np.save(fh, np.array([[1.0, 2.0], [3.0, 4.0]]))
    else:
        path.write_text("1,2\n3,4\n")
    source, _ = make_source(str(path), rate=10.0)
    assert source.dim == 2
    assert source.at(1)[1].tolist() == [3.0, 4.0]  # type: ignore[index]
