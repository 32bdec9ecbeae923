"""The ``.npz`` layout: its one writer, and ``docs/NPZ.md`` against the files that
``spikestream run`` and ``spikestream record`` really write."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spikestream.errors import ConfigError
from spikestream_client.npz import (
    COMMON_KEYS,
    COMMON_META,
    NpzWriter,
    check_zip_directory,
    header_arrays,
    layout_meta,
    read_npy_header,
    save_npz,
    value_dtype,
)
from spikestream_client.recorder import RESERVED
from tests.clients.conftest import SeedService, run_cli
from tests.serving import SEED

NPZ_DOC = Path(__file__).parents[2] / "docs" / "NPZ.md"


# ----------------------------------------------------------------------------- the doc


@dataclass(frozen=True)
class KeyRow:
    """One row of docs/NPZ.md's key table."""

    key: str  # e.g. "<pop>.gain"
    kind: str  # "spikes", "values" or "-"
    writers: frozenset[str]  # {"run"}, {"record"} or both
    dtype: str  # a numpy dtype name, "str", or "dtype" (the file's own dtype key)
    shape: tuple[str, ...]  # e.g. ("ticks", "*shape")

    def pattern(self) -> re.Pattern[str]:
        """The key as a regex, one named group per placeholder."""
        parts = re.split(r"(<\w+>)", self.key)
        return re.compile(
            "".join(
                f"(?P<{p[1:-1]}>[A-Za-z_][A-Za-z0-9_-]*)" if p.startswith("<") else re.escape(p)
                for p in parts
            )
        )


def _cells(line: str) -> list[str]:
    return [c.strip().strip("`") for c in line.strip().strip("|").split("|")]


def _table(section: str) -> list[list[str]]:
    """The rows of the first table after the heading ``## section``."""
    text = NPZ_DOC.read_text()
    body = text.split(f"\n## {section}\n", 1)[1]
    rows = []
    for line in body.splitlines():
        if line.startswith("| `"):
            rows.append(_cells(line))
        elif rows and not line.startswith("|"):
            break
    assert rows, f"no table under '## {section}' in {NPZ_DOC}"
    return rows


def _writers(cell: str) -> frozenset[str]:
    return frozenset({"run", "record"}) if cell == "both" else frozenset({cell})


def documented_keys() -> list[KeyRow]:
    out = []
    for key, kind, writers, dtype, shape, _contents in _table("Keys"):
        dims = tuple(d.strip() for d in shape.strip("()").split(",") if d.strip())
        out.append(KeyRow(key, kind, _writers(writers), dtype, dims))
    return out


def documented_meta() -> dict[str, frozenset[str]]:
    return {key: _writers(writers) for key, writers, _contents in _table("meta")}


# ----------------------------------------------------------------------------- checks


def _rows_for(key: str, rows: list[KeyRow], meta: dict[str, Any]) -> list[KeyRow]:
    """The documented rows that ``key`` of a file with ``meta`` is an instance of."""
    probes: dict[str, str] = meta["probes"]
    names = {
        "probe": set(probes),
        "pop": set(meta["populations"]),
        "input": set(meta["inputs"]) - set(probes),  # a probe's name wins (docs)
        "pre": set(meta["populations"]) | set(meta["inputs"]),
        "post": set(meta["populations"]),
    }
    found = []
    for row in rows:
        m = row.pattern().fullmatch(key)
        if m is None or any(v not in names[k] for k, v in m.groupdict().items()):
            continue
        if row.key == "<probe>" and row.kind != ("spikes" if probes[key] == "spikes" else "values"):
            continue
        found.append(row)
    return found


def check_file(path: Path, command: str) -> dict[str, np.ndarray]:
    """Every key of ``path`` is documented for ``command`` with its dtype and shape,
    every documented key that can be named from ``meta`` is there, and ``meta`` has
    exactly the documented keys. Returns the arrays."""
    rows = [r for r in documented_keys() if command in r.writers]
    with np.load(path) as npz:
        data = {k: npz[k] for k in npz.files}
    meta = json.loads(str(data["meta"]))
    ticks = data["t"].shape[0]
    assert ticks > 0
    for key, arr in data.items():
        found = _rows_for(key, rows, meta)
        assert len(found) == 1, f"{command}: key {key!r} matches documented rows {found}"
        row = found[0]
        if row.dtype == "str":
            assert arr.dtype.kind == "U", (key, arr.dtype)
        else:
            want = str(data["dtype"]) if row.dtype == "dtype" else row.dtype
            assert arr.dtype == np.dtype(want), (key, arr.dtype, want)
        fixed = [d for d in row.shape if not d.startswith("*")]
        if len(fixed) == len(row.shape):
            assert arr.ndim == len(fixed), (key, arr.shape, row.shape)
        else:
            assert arr.ndim >= len(fixed), (key, arr.shape, row.shape)
        for dim, size in zip(row.shape, arr.shape, strict=False):
            if dim == "ticks":
                assert size == ticks, (key, arr.shape)
    # Presence: what the table promises, for the names meta gives.
    probes: dict[str, str] = meta["probes"]
    inputs = [i for i in meta["inputs"] if i not in probes]
    for row in rows:
        holes = set(re.findall(r"<(\w+)>", row.key))
        if holes == {"probe"}:
            names = [p for p, k in probes.items() if (k == "spikes") == (row.kind == "spikes")]
            if row.key != "<probe>":
                names = list(probes)
            expected = [row.key.replace("<probe>", p) for p in names]
        elif holes == {"pop"}:
            expected = [row.key.replace("<pop>", p) for p in meta["populations"]]
        elif holes == {"input"}:
            expected = [row.key.replace("<input>", i) for i in inputs]
        elif holes:
            continue  # connections: meta does not list them
        else:
            expected = [row.key]
        for key in expected:
            assert key in data, f"{command}: documented key {key!r} missing from {sorted(data)}"
    documented = {k for k, writers in documented_meta().items() if command in writers}
    assert set(meta) == documented, (command, sorted(set(meta) ^ documented))
    assert meta["source"] == command
    assert meta["ticks"] == ticks
    assert meta["first_tick"] == int(data["tick"][0])
    assert meta["last_tick"] == int(data["tick"][-1])
    np.testing.assert_allclose(data["t"], (data["tick"] + 1) * float(data["dt"]))
    return data


def test_the_tables_name_what_the_writer_module_defines() -> None:
    rows = documented_keys()
    both = {r.key for r in rows if r.writers == {"run", "record"} and "<" not in r.key}
    assert both == set(COMMON_KEYS)
    meta = documented_meta()
    assert {k for k, w in meta.items() if w == {"run", "record"}} == set(COMMON_META)
    # The keys record refuses as probe names are the file's own, as documented.
    own = {r.key for r in rows if "record" in r.writers and "<" not in r.key}
    assert own == RESERVED
    for row in rows:
        assert row.writers <= {"run", "record"}, row
        assert row.dtype in ("str", "dtype") or np.dtype(row.dtype), row


@pytest.mark.broker
@pytest.mark.slow
def test_run_and_record_of_the_seed_network_follow_docs_npz(
    seed_service: SeedService, tmp_path: Path
) -> None:
    ran, recorded = tmp_path / "run.npz", tmp_path / "record.npz"
    done = run_cli("run", str(SEED), "--duration", "0.3", "--out", str(ran), "--no-progress")
    assert done.returncode == 0, done.stderr
    done = run_cli(
        "record", "--broker", seed_service.url, "--net", "seed", "--duration", "1.5",
        "--out", str(recorded),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = check_file(ran, "run")
    rec = check_file(recorded, "record")
    # The same network: the same keys for the same things, in the same dtypes and shapes
    # (but for the number of rows).
    shared = set(run) & set(rec)
    assert shared >= {*COMMON_KEYS, "a_spikes", "b_spikes", "a_filtered", "b_filtered", "u"}
    for key in sorted(shared):
        a, b = run[key], rec[key]
        if a.dtype.kind == "U":
            assert b.dtype.kind == "U", key
        else:
            assert a.dtype == b.dtype, (key, a.dtype, b.dtype)
        assert a.shape[1:] == b.shape[1:], (key, a.shape, b.shape)
    assert str(run["dtype"]) == str(rec["dtype"]) == "float64"
    run_meta, rec_meta = json.loads(str(run["meta"])), json.loads(str(rec["meta"]))
    for key in ("network", "dt", "dtype", "probes"):
        assert run_meta[key] == rec_meta[key], key


# ----------------------------------------------------------------------------- the writer


def test_meta_puts_the_common_keys_first_and_the_header_arrays_hold_it() -> None:
    meta = layout_meta(
        network="n", dt=0.001, dtype="float32", populations=["a"], inputs=[], probes={},
        source="run", ticks=0, first_tick=None, last_tick=None, order=["a"],
    )  # fmt: skip
    assert tuple(meta)[: len(COMMON_META)] == COMMON_META
    assert meta["order"] == ["a"]
    arrays = header_arrays(meta)
    assert set(arrays) == {"dt", "network", "dtype", "meta"}
    assert json.loads(str(arrays["meta"])) == meta
    assert value_dtype("float64") == np.float64
    assert value_dtype("float32") == np.float32
    assert value_dtype("complex128") == np.float32  # anything else: what frames carry
    assert value_dtype(None) == np.float32


def test_writer_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        NpzWriter(tmp_path / "missing" / "x.npz")
    with NpzWriter(tmp_path / "x.npz") as npz:
        s = npz.stream("v", (3, 2), np.dtype(np.float64), spool=True)
        with pytest.raises(ValueError, match="v: rows of float32"):
            s.write(np.zeros((1, 2), np.float32))
        s.write(np.ones((3, 2)))
        with pytest.raises(ValueError, match="more than the 3 rows"):
            s.write(np.ones((1, 2)))
    np.testing.assert_array_equal(np.load(tmp_path / "x.npz")["v"], np.ones((3, 2)))
    with (
        pytest.raises(ValueError, match="1 rows written of 3"),
        NpzWriter(tmp_path / "y.npz") as npz,
    ):
        npz.stream("w", (3,), np.dtype(np.int64), spool=True).write(np.arange(1))
    assert not (tmp_path / "y.npz").exists()


def test_a_target_that_is_not_a_regular_file_is_refused_and_left_as_it_is(
    tmp_path: Path,
) -> None:
    """The finished file replaces the target: run by root, ``run --out /dev/null``
    replaced the device node with a regular file. (Here a FIFO, and a link to
    /dev/null, which would only have lost the link.)"""
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    link = tmp_path / "null.npz"
    link.symlink_to("/dev/null")
    for target in (fifo, link, tmp_path):
        with pytest.raises(ConfigError, match="exists and is not a regular file"):
            NpzWriter(target)
    assert fifo.is_fifo()
    assert link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo.npz", "null.npz"]
    done = run_cli("run", str(SEED), "--duration", "0.05", "--out", str(fifo), timeout=60)
    assert done.returncode == 2, done.stderr
    assert "it exists and is not a regular file" in done.stderr
    assert fifo.is_fifo()


def test_a_failed_write_is_one_config_error_and_leaves_nothing(tmp_path: Path) -> None:
    # --out naming a folder: the rename into place fails.
    folder = tmp_path / "out.npz"
    folder.mkdir()
    with pytest.raises(ConfigError, match=r"cannot write .*out\.npz"):
        save_npz(folder, {"x": np.zeros(3)})
    # A write inside the block fails (as on a full disk).
    with (
        pytest.raises(ConfigError, match="No space left on device"),
        NpzWriter(tmp_path / "full.npz"),
    ):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]  # no partial file
    assert folder.is_dir()


def test_file_mode_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        path = save_npz(tmp_path / "m.npz", {"x": np.arange(3)})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640
    np.testing.assert_array_equal(np.load(path)["x"], np.arange(3))


class FullDisk:
    """A disk with room for ``room`` more bytes, shared by every file opened on it: a
    write past it fails with ENOSPC, as on a full file system."""

    def __init__(self, room: int) -> None:
        self.room = room

    def open(self, path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        disk = self

        class Raw(io.FileIO):
            def write(self, b: Any) -> int:
                n = memoryview(b).nbytes
                if n > disk.room:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                disk.room -= n
                return super().write(b)

        raw = Raw(path, mode.replace("b", ""))
        return io.BufferedRandom(raw) if "+" in mode else io.BufferedWriter(raw)


@pytest.mark.parametrize("room", [100, 5_000, 60_000])
def test_a_disk_filling_up_is_one_config_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, room: int
) -> None:
    """The disk fills while a long run streams (spooled): closing the partial file on
    the way out flushed its buffer to the full disk, and that second ENOSPC escaped
    ``__exit__`` as a traceback, leaving the ``.part`` file and the spool folder."""
    import spikestream_client.npz as npz_module

    monkeypatch.setattr(npz_module, "open", FullDisk(room).open, raising=False)

    def write() -> None:
        with NpzWriter(tmp_path / "x.npz") as npz:
            npz.add("weights", np.zeros(20))  # buffered: flushed only when the file closes
            s = npz.stream("v", (100, 100), np.dtype(np.float64), spool=True)
            for _ in range(100):
                s.write(np.ones((1, 100)))

    full = r"cannot write .*x\.npz.: No space left on device; expected room for the file in '"
    with pytest.raises(ConfigError, match=full + re.escape(str(tmp_path))):
        write()
    assert list(tmp_path.iterdir()) == []  # no .part file, no spool folder


def test_an_interrupted_write_to_a_full_disk_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM (SystemExit) with bytes buffered for a full disk: the exit goes on, the
    partial file goes."""
    import spikestream_client.npz as npz_module

    disk = FullDisk(100_000)
    monkeypatch.setattr(npz_module, "open", disk.open, raising=False)

    def interrupted() -> None:
        with NpzWriter(tmp_path / "x.npz") as npz:
            npz.add("weights", np.zeros(20))
            s = npz.stream("v", (10, 100), np.dtype(np.float64), spool=True)
            s.write(np.ones((1, 100)))
            disk.room = 0  # the 800 bytes of the row are in the spool file's buffer
            raise SystemExit(143)

    with pytest.raises(SystemExit):
        interrupted()
    assert list(tmp_path.iterdir()) == []


def test_a_zip_directory_is_bounded_in_bytes_as_well_as_members(tmp_path: Path) -> None:
    """Two members whose names take 60 KB each pass a bound of 4 members; the directory's
    bytes (512 a member) refuse them before zipfile reads a name."""
    long_names = tmp_path / "long.npz"
    with zipfile.ZipFile(long_names, "w") as zf:
        for i in range(2):
            zf.writestr(f"{i}" + "n" * 60_000 + ".npy", b"")
    refused = r"^its directory lists 2 member\(s\) in \d+ bytes; "
    with long_names.open("rb") as fh, pytest.raises(ValueError, match=refused) as info:
        check_zip_directory(fh, max_members=4)
    length = int(str(info.value).split(" in ")[1].split()[0])
    assert length > 120_000
    assert str(info.value).endswith("; expected at most 4 member(s) in 2048 bytes")
    short = tmp_path / "short.npz"
    with zipfile.ZipFile(short, "w") as zf:
        for i in range(4):
            zf.writestr(f"m{i}.npy", b"")
    with short.open("rb") as fh:
        check_zip_directory(fh, max_members=4)
        assert fh.tell() == 0  # left at the start, for zipfile


def _lying_zip64(path: Path, members: int, locator_offset: int | None = None) -> None:
    """``members`` stored empty members, a zip64 end record saying so, and a 32-bit end
    record that says 1 member in 46 bytes. The locator points at the zip64 record, or at
    ``locator_offset``."""
    local = struct.Struct("<4s2B4HL2L2H")
    central = struct.Struct("<4s4B4HL2L5H2L")
    body, directory = bytearray(), bytearray()
    for i in range(members):
        name = b"m%07d.npy" % i
        offset = len(body)
        body += local.pack(b"PK\x03\x04", 20, 0, 0, 0, 0, 0x21, 0, 0, 0, len(name), 0) + name
        directory += central.pack(
            b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0x21, 0, 0, 0, len(name), 0, 0, 0, 0, 0, offset
        )
        directory += name
    start = len(body)
    data = body + directory
    record = len(data)
    data += struct.pack(
        "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, members, members, len(directory), start
    )
    where = record if locator_offset is None else locator_offset
    data += struct.pack("<4sLQL", b"PK\x06\x07", 0, where, 1)
    data += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, 46, start, 0)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("locator_offset", [None, 0], ids=["located", "decoy offset"])
def test_a_zip64_record_counts_whatever_the_32_bit_record_says(
    tmp_path: Path, locator_offset: int | None
) -> None:
    """zipfile takes the zip64 end record just before the locator whatever the 32-bit
    record says, and the guard read it only when the 32-bit one held zip64's placeholder:
    a file claiming 1 member there and a million in zip64 cost 573 MB again."""
    path = tmp_path / "lying.npz"
    _lying_zip64(path, 50, locator_offset)
    with zipfile.ZipFile(path) as zf:  # what the guard is for: zipfile believes zip64
        assert len(zf.infolist()) == 50
    with path.open("rb") as fh, pytest.raises(ValueError, match=r"lists 50 member\(s\) in "):
        check_zip_directory(fh, max_members=4)
    with path.open("rb") as fh:
        check_zip_directory(fh, max_members=50)  # honest within the bound: taken


def _zip64(members: int, name_length: int) -> bytes:
    """A zip of ``members`` empty members with names ``name_length`` long, its end
    records rewritten the zip64 way: the classic end record says 0xFFFF members and
    0xFFFFFFFF bytes, and the zip64 end record holds the real count and size."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(members):
            zf.writestr(f"{i}".ljust(name_length, "n") + ".npy", b"")
    data = buf.getvalue()
    end = data.rindex(b"PK\x05\x06")
    *_, count, size, offset, _comment = struct.unpack_from("<4s4H2LH", data, end)
    assert count == members
    body = data[:end]
    zip64_end = struct.pack(
        "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, offset
    )
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, len(body), 1)
    classic = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0
    )
    return body + zip64_end + locator + classic


def test_a_zip64_directory_is_bounded_by_the_count_and_size_of_its_zip64_end_record() -> None:
    """In a zip64 file the classic end record says 0xFFFF and 0xFFFFFFFF: the bound is
    checked against the zip64 end record's member count and directory size, both read
    from their own fields."""
    big = _zip64(2, 60_000)  # two members, 120 KB of names
    with zipfile.ZipFile(io.BytesIO(big)) as zf:  # a zip64 file zipfile reads
        assert len(zf.infolist()) == 2
    refused = r"^its directory lists 2 member\(s\) in (\d+) bytes; expected at most 4 "
    with pytest.raises(ValueError, match=refused) as info:
        check_zip_directory(io.BytesIO(big), max_members=4)
    assert int(str(info.value).split(" in ")[1].split()[0]) > 120_000
    small = io.BytesIO(_zip64(3, 10))
    check_zip_directory(small, max_members=4)
    assert small.tell() == 0
    with pytest.raises(ValueError, match=r"lists 3 member\(s\) in \d+ bytes; expected at most 2"):
        check_zip_directory(io.BytesIO(_zip64(3, 10)), max_members=2)


@pytest.mark.parametrize(("extra", "allowed"), [(0, True), (1, False)])
def test_a_zip_directory_of_exactly_the_bound_in_bytes_passes(extra: int, allowed: bool) -> None:
    """The bound is ``max_members * ZIP_DIRECTORY_ENTRY_BYTES`` bytes inclusive: two
    entries of 46 bytes and a 978-byte name make 2048 bytes, as many as 4 members allow;
    a byte more is refused."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a" * (978 + extra), b"")
        zf.writestr("b" * 978, b"")
    data = buf.getvalue()
    size = struct.unpack_from("<4s4H2LH", data, data.rindex(b"PK\x05\x06"))[5]
    assert size == 2048 + extra
    fh = io.BytesIO(data)
    if allowed:
        check_zip_directory(fh, max_members=4)
    else:
        with pytest.raises(ValueError, match=r"in 2049 bytes; expected at most 4 member"):
            check_zip_directory(fh, max_members=4)


def test_a_file_that_is_not_a_zip_is_left_at_its_start() -> None:
    """Not a zip (no end record): nothing is refused here, and the stream is left at its
    start for zipfile, which says what is wrong with it."""
    fh = io.BytesIO(b"not a zip at all " * 100)
    check_zip_directory(fh, max_members=4)
    assert fh.tell() == 0


def test_a_format_2_npy_header_is_read() -> None:
    """``.npy`` format 2.0 (a 4-byte header length; numpy writes it for long headers)
    is read like 1.0, and the stream is left at the data."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.arange(6, dtype="<i4").reshape(3, 2), version=(2, 0))
    buf.seek(0)
    assert read_npy_header(buf) == ((3, 2), False, np.dtype("<i4"))
    assert np.frombuffer(buf.read(), "<i4").tolist() == list(range(6))


def test_an_unclosed_npy_header_is_a_value_error() -> None:
    """A header with an unclosed ``(``: numpy's tokenizer raises TokenError, which no
    caller's ``ValueError`` handler caught (a traceback); it comes out as ValueError."""
    text = b"{'descr': '<f8', 'fortran_order': False, 'shape': (3,"
    text += b" " * (64 - 10 - len(text) - 1) + b"\n"
    stream = io.BytesIO(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text)
    with pytest.raises(ValueError, match="not a Python literal"):
        read_npy_header(stream)


def test_a_negative_size_in_an_npy_header_is_a_value_error() -> None:
    """numpy's header parser takes ``'shape': (-1000000000000, 1)``; a caller's size
    check (shape times item size against the bytes that follow, or a budget) then saw a
    negative size. Refused here, for every caller."""
    text = b"{'descr': '<f8', 'fortran_order': False, 'shape': (-1000000000000, 1), }"
    text += b" " * (64 - 10 - len(text) % 64 - 1) + b"\n"
    stream = io.BytesIO(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text)
    with pytest.raises(
        ValueError, match=r"claims shape \(-1000000000000, 1\); expected sizes >= 0"
    ):
        read_npy_header(stream)


def test_rows_of_the_wrong_width_are_refused(tmp_path: Path) -> None:
    """A block whose rows are not the announced shape is refused, nothing written: its
    bytes would otherwise fill the member with misplaced values."""
    with NpzWriter(tmp_path / "x.npz") as npz:
        s = npz.stream("v", (2, 3), np.dtype(np.float64), spool=False)
        with pytest.raises(ValueError, match=r"v: rows of float64 \(2,\); expected float64 \(3,\)"):
            s.write(np.ones((3, 2)))
        s.write(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(np.load(tmp_path / "x.npz")["v"], np.arange(6.0).reshape(2, 3))


def test_compress_deflates_every_member(tmp_path: Path) -> None:
    """``compress=True`` stores the members deflated (a run of zeros shrinks), and the
    file reads back the same; without it they are stored."""
    arrays = {"x": np.zeros(100_000), "n": np.arange(10)}
    packed = save_npz(tmp_path / "c.npz", arrays, compress=True)
    plain = save_npz(tmp_path / "p.npz", arrays)
    with zipfile.ZipFile(packed) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}
    with zipfile.ZipFile(plain) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
    assert packed.stat().st_size < plain.stat().st_size // 10
    with np.load(packed) as npz:
        np.testing.assert_array_equal(npz["x"], arrays["x"])
        np.testing.assert_array_equal(npz["n"], arrays["n"])


def test_add_bytes_writes_the_member_from_its_chunks(tmp_path: Path) -> None:
    """A member given as raw C-order bytes in chunks (a spool file read piecewise) reads
    back as the array those bytes are."""
    arr = np.arange(12, dtype=np.int64).reshape(4, 3)
    raw = arr.tobytes()
    with NpzWriter(tmp_path / "b.npz") as npz:
        npz.add_bytes("b", (4, 3), arr.dtype, iter([raw[:40], raw[40:]]))
    with np.load(tmp_path / "b.npz") as data:
        np.testing.assert_array_equal(data["b"], arr)


def test_a_size_of_minus_one_in_an_npy_header_is_a_value_error() -> None:
    """Every negative size is refused, -1 as well as -10**12: ``(-1, 3)`` makes a size
    check's product negative just the same."""
    text = b"{'descr': '<f8', 'fortran_order': False, 'shape': (-1, 3), }"
    text += b" " * (64 - 10 - len(text) % 64 - 1) + b"\n"
    stream = io.BytesIO(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text)
    with pytest.raises(ValueError, match=r"claims shape \(-1, 3\); expected sizes >= 0"):
        read_npy_header(stream)


@pytest.mark.parametrize("trailing", [60_000, 65_535, 65_536])
def test_a_zip_directory_behind_a_long_comment_is_bounded(trailing: int) -> None:
    """zipfile finds the end record up to 65,536 bytes (and its own 22) before the end of
    the file, whatever the comment length says: the guard looked one byte less far, so
    a zip followed by 65,536 bytes passed unchecked and zipfile read its whole
    directory."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(50):
            zf.writestr(f"m{i}.npy", b"")
    data = buf.getvalue() + b"\0" * trailing
    with zipfile.ZipFile(io.BytesIO(data)) as zf:  # zipfile reads it all the same
        assert len(zf.infolist()) == 50
    with pytest.raises(ValueError, match=r"lists 50 member\(s\) in \d+ bytes; expected at most 4"):
        check_zip_directory(io.BytesIO(data), max_members=4)


@pytest.mark.parametrize("trailing", [65_516, 65_535, 65_536])
def test_a_zip64_record_is_counted_behind_a_long_comment(tmp_path: Path, trailing: int) -> None:
    """With a long comment the zip64 locator lies before the last 64 KiB of the file,
    where the guard looked for it: it took the 32-bit record's 1 member, and zipfile,
    which reads the locator wherever it is, built all 50."""
    path = tmp_path / "commented.npz"
    _lying_zip64(path, 50)
    data = path.read_bytes() + b"\0" * trailing
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert len(zf.infolist()) == 50
    with pytest.raises(ValueError, match=r"lists 50 member\(s\) in "):
        check_zip_directory(io.BytesIO(data), max_members=4)


def test_a_zip64_record_at_the_locators_offset_counts(tmp_path: Path) -> None:
    """A zip64 end record followed by extensible data (here 8 bytes) is not just before
    the locator, where zipfile looks, but at the offset the locator gives, where another
    reader looks: its count is checked too."""
    path = tmp_path / "extensible.npz"
    _lying_zip64(path, 50)
    data = path.read_bytes()
    locator = len(data) - 22 - 20
    data = data[:locator] + b"\0" * 8 + data[locator:]
    assert data[locator + 8 - 56 : locator + 8 - 52] != b"PK\x06\x06"  # not where zipfile looks
    with pytest.raises(ValueError, match=r"lists 50 member\(s\) in "):
        check_zip_directory(io.BytesIO(data), max_members=4)


@pytest.mark.parametrize(
    ("header", "error"),
    [
        (b"  1\n 2", "IndentationError"),  # numpy's re-tokenizing raises it (a SyntaxError)
        (b"-" * 5000 + b"1", "RecursionError"),  # ast.literal_eval walks 5000 levels down
        (b"-" * 9000 + b"1", "MemoryError"),  # CPython 3.11's parser: stack overflow
    ],
    ids=["indentation", "recursion", "parser stack"],
)
def test_a_header_python_cannot_parse_is_a_value_error(header: bytes, error: str) -> None:
    """What Python's parser raises on a header of at most 10,000 bytes comes out as
    ValueError, which callers refuse in one line: 9,000 minus signs made the parser
    raise MemoryError, a traceback out of ``plot_run_file``."""
    text = header + b" " * (64 - 10 - len(header) % 64 - 1) + b"\n"
    stream = io.BytesIO(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text)
    with pytest.raises(ValueError, match=rf"^.npy header is not a Python literal \({error}"):
        read_npy_header(stream)
