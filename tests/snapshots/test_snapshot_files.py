"""Snapshot files (``spikestream.serving.snapshots``): hostile reads and safe writes.

Reads: every malformed member is refused with a message naming the file and the
problem, sizes are checked before anything is allocated or inflated (a 10^12-element
header, 1.5 GB zip bombs claiming the truth or lying), and hypothesis throws malformed
members and flipped bytes at the reader. Writes: atomic, exclusive temp files that never
follow links, and no file that is not a snapshot of this network is ever replaced.
"""

from __future__ import annotations

import io
import os
import stat
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikestream.build import build
from spikestream.datafiles import BoundedReader
from spikestream.errors import SimulationError, SnapshotError
from spikestream.runtime import FakeClock
from spikestream.runtime.engine import Command, Engine
from spikestream.serving.snapshots import (
    HEADER_MAX_BYTES,
    META,
    Member,
    SnapshotFolder,
    default_snapshot_dir,
    max_file_bytes,
    meta_array,
    read_snapshot,
    read_snapshot_file,
    snapshot_layout,
    start_state,
)
from spikestream.sim.simulator import state_limit
from spikestream.spec import load_network
from tests.serving import SEED
from tests.snapshot_files import (
    MIB,
    RawMember,
    deflate_bomb,
    npy_bytes,
    npy_header,
    npz_bytes,
    replace_member,
    zip_bytes,
)

NET = "seed"


@pytest.fixture(scope="module")
def engine() -> Engine:
    model = build(load_network(SEED))
    assert model.name == NET
    return Engine(model, clock=FakeClock())


@pytest.fixture(scope="module")
def state(engine: Engine) -> dict[str, Any]:
    """A state as the engine hands it out for a snapshot (with its frame counters),
    after some ticks so voltages are not all zero."""
    for _ in range(50):
        engine.sim.step()
    engine._apply(Command("snapshot", value="x.npz"))
    _, st = engine.snapshots.popleft()
    return st


@pytest.fixture
def folder(engine: Engine, tmp_path: Path) -> SnapshotFolder:
    return SnapshotFolder(tmp_path / "snaps", NET, snapshot_layout(engine))


def valid(state: dict[str, Any]) -> dict[str, Any]:
    return {**state, META: meta_array(NET)}


def read(folder: SnapshotFolder, data: bytes) -> dict[str, Any]:
    return read_snapshot(io.BytesIO(data), folder.layout, NET, where="/snaps/x.npz")


def with_member(state: dict[str, Any], key: str, npy: bytes) -> bytes:
    """A valid snapshot with member ``key`` replaced by the raw ``.npy`` bytes ``npy``."""
    return replace_member(npz_bytes(valid(state)), key, RawMember.stored(f"{key}.npy", npy))


def voltage_key(state: dict[str, Any]) -> str:
    return next(k for k in state if k.startswith("pop.") and k.endswith(".v"))


# ---------------------------------------------------------------------------- round trip


def test_write_then_read_round_trips_every_member(
    folder: SnapshotFolder, state: dict[str, Any], engine: Engine
) -> None:
    path = folder.write("a.npz", state)
    assert path == folder.path / "a.npz"
    # The folder and its missing parent were made for the owner only.
    assert stat.S_IMODE(folder.path.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.path.parent.stat().st_mode) == 0o700
    back = folder.read("a.npz")
    assert set(back) == set(state)
    for key, arr in state.items():
        np.testing.assert_array_equal(back[key], arr)
    with np.load(path, allow_pickle=False) as data:
        assert META in data.files
    assert int(back["tick"]) == engine.sim.tick == 50
    assert [p.name for p in folder.path.iterdir()] == ["a.npz"]  # no temp file left


def test_layout_is_the_network_state(engine: Engine, state: dict[str, Any]) -> None:
    layout = snapshot_layout(engine)
    required = {k for k, m in layout.items() if m.required}
    assert required == set(engine.sim.state())
    assert set(state) <= set(layout)
    v = voltage_key(state)
    assert layout[v] == Member(state[v].shape, "float", limit=state_limit(np.float64))


def test_a_restored_state_continues_exactly(folder: SnapshotFolder, state: dict[str, Any]) -> None:
    model = build(load_network(SEED))
    a, b = Engine(model, clock=FakeClock()), Engine(model, clock=FakeClock())
    a.sim.set_state(state)
    folder.write("rt.npz", state)
    b.sim.set_state(folder.read("rt.npz"))
    for _ in range(20):
        a.sim.step()
        b.sim.step()
    for key, arr in a.sim.state().items():
        np.testing.assert_array_equal(b.sim.state()[key], arr)


def test_files_written_before_meta_existed_are_read(
    folder: SnapshotFolder, state: dict[str, Any]
) -> None:
    assert int(read(folder, npz_bytes(state))["tick"]) == 50


# ---------------------------------------------------------------------------- the folder


def test_default_folder_is_xdg_state_never_the_working_directory(tmp_path: Path) -> None:
    xdg = default_snapshot_dir({"XDG_STATE_HOME": str(tmp_path / "st"), "HOME": "/home/u"})
    assert xdg == tmp_path / "st" / "spikestream" / "snapshots"
    # A relative XDG_STATE_HOME is ignored, as the XDG specification says.
    home = default_snapshot_dir({"XDG_STATE_HOME": "rel", "HOME": "/home/u"})
    assert home == Path("/home/u/.local/state/spikestream/snapshots")
    assert default_snapshot_dir({}) == Path.home() / ".local/state/spikestream/snapshots"
    assert default_snapshot_dir() != Path.cwd()


@pytest.mark.parametrize(
    "name",
    [
        "../outside.npz",
        "/etc/outside.npz",
        "sub/x.npz",
        "./x.npz",
        ".hidden.npz",
        ".x.npz.0123.tmp",
        "x.txt",
        "x.npz/",
        "a\nb.npz",
        "..",
        "x" * 300 + ".npz",
    ],
)
def test_names_outside_plain_npz_files_in_the_folder_are_refused(
    folder: SnapshotFolder, name: str
) -> None:
    with pytest.raises(SnapshotError, match="directly inside the snapshot folder"):
        folder.name_for(name)


def test_allowed_names(folder: SnapshotFolder) -> None:
    assert folder.name_for(None) == "seed-snapshot.npz"
    assert folder.name_for("") == "seed-snapshot.npz"
    assert folder.name_for("my run 2.npz") == "my run 2.npz"
    assert folder.name_for(str(folder.path / "abs.npz")) == "abs.npz"


# ---------------------------------------------------------------------------- hostile reads


def edited(state: dict[str, Any], **changes: Any) -> bytes:
    return npz_bytes({**valid(state), **changes})


CASES: list[tuple[str, Any, str]] = [
    ("tick", np.nan, r"member 'tick' holds <f8 \(float64\); expected an integer"),
    ("tick", "abc", r"member 'tick' holds <U3 \(text\); expected an integer"),
    ("tick", [1, 2], r"member 'tick' has shape \(2,\); network 'seed' expects \(\)"),
    ("tick", -5, r"'tick' is -5; expected an integer 0 <= tick <= 2\*\*53-1 - 2\*\*40 "),
    ("tick", 2**60, r"'tick' is 1152921504606846976; expected an integer"),
    # At the very limit every frame after it broke the protocol, and every client
    # refused them all: room is left to count on.
    ("tick", 2**53 - 1, r"'tick' is 9007199254740991; expected an integer 0 <= tick <= 2"),
    ("tick", 2**53 - 2**40, r"'tick' is 9006099743113216; expected an integer"),
    ("engine.seq.a_spikes", 2**53 - 1, r"'engine.seq.a_spikes' is 9007199254740991; expec"),
    ("engine.wall", -1.0, r"'engine.wall' is -1.0; expected a Unix time >= 0"),
    ("engine.wall", np.inf, r"'engine.wall' holds 1 NaN or infinite"),
]


@pytest.mark.parametrize(("key", "value", "message"), CASES)
def test_bad_scalars_are_refused(
    folder: SnapshotFolder, state: dict[str, Any], key: str, value: Any, message: str
) -> None:
    with pytest.raises(SnapshotError, match=r"snapshot '/snaps/x.npz' refused: .*" + message):
        read(folder, edited(state, **{key: value}))


def test_counters_up_to_the_room_left_are_taken(
    folder: SnapshotFolder, state: dict[str, Any]
) -> None:
    limit = 2**53 - 1 - 2**40
    out = read(folder, edited(state, **{"tick": limit, "engine.seq.a_spikes": limit}))
    assert (int(out["tick"]), int(out["engine.seq.a_spikes"])) == (limit, limit)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda v: v.astype("U2"), r"' holds <U2 \(text\); expected real floats"),
        # Longer text is bigger than floats: the zip directory gives it away.
        (lambda v: v.astype(str), r"\.npy' claims \d+ bytes uncompressed; at most \d+ fit"),
        (lambda v: v.astype("S8"), r"' holds \|S8 \(bytes\); expected real floats"),
        (lambda v: np.full_like(v, np.nan), r"' holds \d+ NaN or infinite value"),
        (lambda v: np.where(np.arange(v.size) == 3, np.inf, v), r"' holds 1 NaN or infinite"),
        (lambda v: v.astype(np.int64), r"' holds <i8 \(int64\); expected real floats"),
        (lambda v: v.astype(np.complex128), r"' holds <c16 \(complex128\); expected real"),
        (lambda v: v.astype(np.float16), r"' holds <f2 \(float16\); expected real floats"),
        (lambda v: v[:-1], r"' has shape \(\d+,\); network 'seed' expects \(\d+,\)"),
        (lambda v: v.reshape(1, -1), r"' has shape \(1, \d+\); network 'seed' expects"),
    ],
)
def test_bad_voltages_are_refused(
    folder: SnapshotFolder, state: dict[str, Any], make: Any, message: str
) -> None:
    v = voltage_key(state)
    with pytest.raises(SnapshotError, match=f"member '{v}" + message):
        read(folder, edited(state, **{v: make(state[v])}))


def test_object_arrays_are_refused_at_the_header(
    folder: SnapshotFolder, state: dict[str, Any]
) -> None:
    v = voltage_key(state)
    n = state[v].shape
    hostile = npy_header(n, "|O") + b"\x80\x04K\x01." * 4  # a pickle would follow
    data = with_member(state, v, hostile)
    with pytest.raises(SnapshotError, match=r"holds \|O \(Python objects\)"):
        read(folder, data)


def test_members_are_checked_against_this_network(
    folder: SnapshotFolder, state: dict[str, Any]
) -> None:
    v = voltage_key(state)
    without = {k: a for k, a in valid(state).items() if k != v}
    with pytest.raises(SnapshotError, match=f"missing '{v}': not a snapshot of network 'seed'"):
        read(folder, npz_bytes(without))
    with pytest.raises(SnapshotError, match=r"unexpected member 'extra.npy'"):
        read(folder, edited(state, extra=1.0))
    other = edited(state, **{META: meta_array("other")})
    with pytest.raises(SnapshotError, match="it is a snapshot of network 'other', not 'seed'"):
        read(folder, other)
    later = b'{"format": "spikestream.snapshot", "version": 2, "net": "seed"}'
    with pytest.raises(SnapshotError, match="snapshot format version 2; this service reads 1"):
        read(folder, edited(state, **{META: np.frombuffer(later, np.uint8)}))
    wrong = np.frombuffer(b'{"format": "x"}', np.uint8)
    with pytest.raises(SnapshotError, match=r"does not say format 'spikestream.snapshot'"):
        read(folder, edited(state, **{META: wrong}))
    with pytest.raises(SnapshotError, match="not UTF-8 JSON"):
        read(folder, edited(state, **{META: np.frombuffer(b"\xff\xfe", np.uint8)}))
    with pytest.raises(SnapshotError, match="corrupt zip data"):
        read(folder, b"this is not a zip file at all")
    dup = zip_bytes([RawMember.stored("tick.npy", npy_bytes(np.int64(1)))] * 2)
    with pytest.raises(SnapshotError, match=r"member 'tick.npy' appears twice"):
        read(folder, dup)


def test_a_header_claiming_10_12_elements_is_refused_without_allocating(
    folder: SnapshotFolder, state: dict[str, Any]
) -> None:
    v = voltage_key(state)
    huge = npy_header((10**12,)) + bytes(64)
    data = with_member(state, v, huge)
    tracemalloc.start()
    try:
        with pytest.raises(SnapshotError, match=r"has shape \(1000000000000,\)"):
            read(folder, data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * MIB


def test_a_file_larger_than_any_snapshot_of_the_network_is_refused_unread(
    folder: SnapshotFolder,
) -> None:
    limit = max_file_bytes(folder.layout)
    with pytest.raises(SnapshotError, match=f"takes at most {limit}"):
        read(folder, bytes(limit + 1))


# A layout with one big member, so a 1.5 GB bomb (1.5 MB on disk) fits the file limit and
# the member checks themselves are what stop it.
BIG = {"tick": Member((), "count"), "big": Member((200_000,), "float")}
GB_1_5 = 1_500_000_000


def big_read(data: bytes) -> dict[str, Any]:
    return read_snapshot(io.BytesIO(data), BIG, NET, where="bomb.npz")


def bomb_file(claim: int | None) -> bytes:
    bomb = deflate_bomb("big.npy", npy_header((200_000,)), GB_1_5, claim)
    tick = RawMember.stored("tick.npy", npy_bytes(np.int64(7)))
    data = zip_bytes([tick, bomb])
    assert len(data) < max_file_bytes(BIG)  # small on disk: the file limit lets it through
    return data


def test_a_bomb_whose_directory_tells_the_truth_is_refused_before_inflating() -> None:
    data = bomb_file(claim=None)
    started = time.perf_counter()
    with pytest.raises(SnapshotError, match=r"'big.npy' claims 1500000000 bytes uncompressed"):
        big_read(data)
    assert time.perf_counter() - started < 1.0  # nothing was inflated


@pytest.mark.parametrize("claim", [1000, 200_000 * 8 + 128, BIG["big"].max_bytes()])
def test_a_bomb_whose_directory_lies_inflates_no_further_than_the_member_can_need(
    claim: int,
) -> None:
    data = bomb_file(claim)
    tracemalloc.start()
    try:
        # zipfile inflates no more than the claim, then the CRC gives the lie away.
        with pytest.raises(SnapshotError, match=r"corrupt zip data \(Bad CRC-32 for file 'big"):
            big_read(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The member's own 1.6 MB array plus read buffers: megabytes, never the 1.5 GB.
    assert peak < 8 * MIB


def drain(reader: BoundedReader) -> None:
    while reader.read(256 * 1024):
        pass


def test_the_bounded_reader_stops_a_stream_at_its_limit_whatever_was_claimed() -> None:
    data = zip_bytes([deflate_bomb("big.npy", b"", GB_1_5)])
    with zipfile.ZipFile(io.BytesIO(data)) as zf, zf.open("big.npy") as raw:
        reader = BoundedReader(raw, MIB, "member 'big.npy'", SnapshotError)
        tracemalloc.start()
        try:
            with pytest.raises(SnapshotError, match=r"member 'big.npy' inflates past 1048576"):
                drain(reader)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert reader.count == MIB + 1
    assert peak < 4 * MIB


def test_a_header_larger_than_allowed_is_refused(
    folder: SnapshotFolder, state: dict[str, Any]
) -> None:
    v = voltage_key(state)
    text = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }" + " " * 2 * HEADER_MAX_BYTES
    header = b"\x93NUMPY\x02\x00" + len(text + "\n").to_bytes(4, "little") + (text + "\n").encode()
    data = with_member(state, v, header)
    with pytest.raises(SnapshotError, match="refused"):
        read(folder, data)


# ---------------------------------------------------------------------------- fuzzing

DTYPES = ["<f8", ">f8", "<f4", "<f2", "<i8", "<u8", "<i4", "|b1", "<U4", "|S4", "<c8", "|u1"]


@st.composite
def malformed_members(draw: st.DrawFn, keys: list[str]) -> tuple[str, Any]:
    key = draw(st.sampled_from([*keys, "zzz"]))
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = tuple(draw(st.lists(st.integers(0, 4), max_size=2)))
    values = draw(
        st.lists(
            st.floats(allow_nan=True, allow_infinity=True, width=16)
            | st.integers(-(2**63), 2**63 - 1),
            min_size=int(np.prod(shape)),
            max_size=int(np.prod(shape)),
        )
    )
    with np.errstate(all="ignore"):
        arr = np.array(values, dtype=object).reshape(shape)
        try:
            arr = arr.astype(dtype)
        except (ValueError, OverflowError, TypeError):
            arr = np.zeros(shape, dtype)
    return key, arr


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


def check_invariants(out: dict[str, Any], layout: dict[str, Member]) -> None:
    for key, arr in out.items():
        m = layout[key]
        assert arr.shape == m.shape
        if m.kind == "count":
            assert 0 <= int(arr) <= 2**53 - 1 - 2**40
        else:
            assert arr.dtype.kind == "f"
            assert np.isfinite(arr).all()


@FUZZ
@given(data=st.data())
def test_malformed_members_are_refused_or_valid(
    folder: SnapshotFolder, state: dict[str, Any], data: st.DataObject
) -> None:
    key, arr = data.draw(malformed_members(sorted(valid(state))))
    payload = edited(state, **{key: arr})
    try:
        out = read(folder, payload)
    except SnapshotError as err:
        message = str(err)
    else:
        check_invariants(out, folder.layout)
        return
    assert message.startswith("snapshot '/snaps/x.npz' refused: ")


@FUZZ
@given(data=st.data())
def test_flipped_bytes_are_refused_or_valid(
    folder: SnapshotFolder, state: dict[str, Any], data: st.DataObject
) -> None:
    payload = bytearray(npz_bytes(valid(state)))
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(payload) - 1))
        payload[i] = data.draw(st.integers(0, 255))
    try:
        out = read(folder, bytes(payload))
    except SnapshotError:
        return
    check_invariants(out, folder.layout)


# ---------------------------------------------------------------------------- safe writes


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Path]:
    """A user's file outside the snapshot folder, which must never change."""
    path = tmp_path / "precious.dat"
    path.write_bytes(b"user data\n")
    yield path
    assert path.read_bytes() == b"user data\n"


def test_a_symlinked_temp_file_is_not_written_through(
    folder: SnapshotFolder, state: dict[str, Any], outside: Path
) -> None:
    folder.create()
    # The temp name the service used to write through, and a link per likely name.
    (folder.path / "a.npz.tmp").symlink_to(outside)
    (folder.path / ".a.npz.tmp").symlink_to(outside)
    folder.write("a.npz", state)
    target = folder.path / "a.npz"
    assert target.is_file()
    assert not target.is_symlink()
    assert int(folder.read("a.npz")["tick"]) == 50


def test_the_temp_file_is_created_exclusively_never_through_a_planted_link(
    folder: SnapshotFolder,
    state: dict[str, Any],
    outside: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Someone who can guess the random temp name plants a link there first.
    import spikestream.serving.snapshots as snapshots

    monkeypatch.setattr(snapshots.secrets, "token_hex", lambda n: "0" * (2 * n))
    folder.create()
    planted = folder.path / f".snapshot-{'0' * 16}.tmp"
    planted.symlink_to(outside)
    with pytest.raises(FileExistsError):
        folder.write("a.npz", state)
    assert planted.is_symlink()  # left as it was, and nothing written through it
    assert not (folder.path / "a.npz").exists()


def test_a_symlinked_target_is_neither_followed_nor_replaced(
    folder: SnapshotFolder, state: dict[str, Any], outside: Path
) -> None:
    folder.create()
    link = folder.path / "link.npz"
    link.symlink_to(outside)
    with pytest.raises(SnapshotError, match="exists and is a symbolic link"):
        folder.check_replaceable("link.npz")
    with pytest.raises(SnapshotError, match="exists and is a symbolic link"):
        folder.write("link.npz", state)
    with pytest.raises(SnapshotError, match="symbolic link, which is never followed"):
        folder.read("link.npz")
    assert link.is_symlink()
    assert [p.name for p in folder.path.iterdir()] == ["link.npz"]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"results,1,2,3\n", "it is not a zip of .npy arrays"),
        (npz_bytes({"x": np.arange(3.0)}), "unexpected member 'x.npy'"),
        (None, "it is a snapshot of network 'other', not 'seed'"),
    ],
)
def test_a_file_that_is_not_a_snapshot_of_this_network_is_never_replaced(
    folder: SnapshotFolder, state: dict[str, Any], content: bytes | None, why: str
) -> None:
    folder.create()
    data = content if content is not None else edited(state, **{META: meta_array("other")})
    target = folder.path / "results.npz"
    target.write_bytes(data)
    for attempt in (folder.check_replaceable, lambda n: folder.write(n, state)):
        with pytest.raises(SnapshotError, match=f"is not a snapshot of network 'seed' \\({why}"):
            attempt("results.npz")
    assert target.read_bytes() == data
    assert [p.name for p in folder.path.iterdir()] == ["results.npz"]  # no temp left


def test_an_earlier_snapshot_of_this_network_is_replaced(
    folder: SnapshotFolder, state: dict[str, Any]
) -> None:
    folder.create()
    (folder.path / "old.npz").write_bytes(npz_bytes({**state, "tick": np.int64(3)}))  # no meta
    folder.write("old.npz", state)
    assert int(folder.read("old.npz")["tick"]) == 50
    folder.write("old.npz", {**state, "tick": np.int64(51)})
    assert int(folder.read("old.npz")["tick"]) == 51


def test_only_numbers_are_written(folder: SnapshotFolder, state: dict[str, Any]) -> None:
    with pytest.raises(SnapshotError, match="a snapshot holds numbers only"):
        folder.write("o.npz", {**state, "tick": np.array([object()], dtype=object)})
    assert not folder.path.exists() or not list(folder.path.iterdir())


def test_reading_a_missing_or_odd_file(folder: SnapshotFolder, tmp_path: Path) -> None:
    folder.create()
    with pytest.raises(SnapshotError, match=r"no snapshot file .*nope.npz"):
        folder.read("nope.npz")
    (folder.path / "dir.npz").mkdir()
    with pytest.raises(SnapshotError, match=r"dir.npz' is not a regular file"):
        folder.read("dir.npz")
    with pytest.raises(SnapshotError, match=r"cannot read snapshot .*No such file"):
        read_snapshot_file(tmp_path / "absent.npz", folder.layout, NET)
    os.mkfifo(folder.path / "fifo.npz")  # must not block the reader
    with pytest.raises(SnapshotError, match=r"fifo.npz' is not a regular file"):
        read_snapshot_file(folder.path / "fifo.npz", folder.layout, NET)


# ---------------------------------------------------------------------------- simulator


def test_set_state_refuses_nonfinite_and_negative_tick_and_changes_nothing(
    engine: Engine, state: dict[str, Any]
) -> None:
    sim = engine.sim
    before = sim.state()
    v = voltage_key(state)
    for bad, message in [
        ({v: np.full_like(state[v], np.nan)}, "NaN or infinite"),
        ({v: state[v].astype(str)}, "expected real floats"),
        ({"tick": np.int64(-1)}, "integer scalar in"),
        ({"tick": np.float64(3.0)}, "integer scalar in"),
    ]:
        with pytest.raises(SimulationError, match=message):
            sim.set_state({**state, **bad})
        for key, arr in before.items():
            np.testing.assert_array_equal(sim.state()[key], arr)


def test_values_beyond_the_network_number_type_are_refused(
    folder: SnapshotFolder, state: dict[str, Any], tmp_path: Path
) -> None:
    # 1e30 is a finite float64; copied into a float32 network it overflows within a tick
    # (the limit leaves 2**64 of headroom below the type's maximum: sim.state_limit).
    narrow = Engine(build(load_network(SEED), dtype="float32"), clock=FakeClock())
    folder32 = SnapshotFolder(tmp_path, NET, snapshot_layout(narrow))
    v = voltage_key(state)
    huge = state[v].astype(np.float64)
    huge[2] = 1e30
    data = edited(state, **{v: huge})
    with pytest.raises(
        SnapshotError, match=rf"member '{v}' holds 1 value\(s\) beyond \+-1\.845e\+19; expected"
    ):
        read(folder32, data)
    assert read(folder, data)[v][2] == 1e30  # float64 holds it
    huge[2] = 1e300
    with pytest.raises(SnapshotError, match=r"1 value\(s\) beyond \+-9\.745e\+288; expected"):
        read(folder, edited(state, **{v: huge}))
    # float32 values in a float64 network are fine, and compared without overflow warnings.
    narrow_values = state[v].astype(np.float32)
    assert read(folder, edited(state, **{v: narrow_values}))[v].dtype == np.float32
    wide = Engine(build(load_network(SEED)), clock=FakeClock()).sim
    wide.set_state({**wide.state(), v: narrow_values})
    np.testing.assert_array_equal(wide.state()[v], narrow_values)
    before = narrow.sim.state()
    huge[2] = 1e30
    with pytest.raises(SimulationError, match=rf"state '{v}' holds values beyond \+-1\.845e\+19"):
        narrow.sim.set_state({**before, v: huge})
    np.testing.assert_array_equal(narrow.sim.state()[v], before[v])


def test_an_unknown_npy_format_version_is_refused_naming_the_member(
    folder: SnapshotFolder, state: dict[str, Any]
) -> None:
    v = voltage_key(state)
    npy = bytearray(npy_bytes(state[v]))
    npy[6] = 3  # format 3.0 exists (utf-8 header); snapshots are written as 1.0
    with pytest.raises(
        SnapshotError,
        match=rf"refused: member '{v}.npy': it has .npy format \(3, 0\); expected 1.0 or 2.0$",
    ):
        read(folder, with_member(state, v, bytes(npy)))


def test_a_header_numpy_cannot_tokenize_is_refused_naming_the_member(
    folder: SnapshotFolder, state: dict[str, Any]
) -> None:
    """An unclosed "{" made numpy raise tokenize.TokenError, which no handler caught: a
    traceback at --restore, and a control command's restore gave no reply."""
    v = voltage_key(state)
    with pytest.raises(
        SnapshotError, match=rf"member '{v}.npy': its .npy header is not a Python literal"
    ):
        read(folder, with_member(state, v, b"\x93NUMPY\x01\x00\x06\x00{    \n"))


def test_a_directory_of_many_members_is_refused_before_it_is_read(
    folder: SnapshotFolder,
) -> None:
    """zipfile read the directory whole, an object per member, before any check (a
    million empty members took 570 MB); it is now refused from the zip's end record.
    (A file of this network is at most about 100 KB, so 1,000 members here; without
    the check the first of them is refused as unexpected, after the whole directory.)"""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(1000):
            zf.writestr(f"m{i}.npy", b"")
    with pytest.raises(SnapshotError, match=r"its directory lists 1000 member\(s\)"):
        read(folder, buf.getvalue())


def test_a_snapshot_folder_that_is_a_file_is_refused_at_the_start(
    folder: SnapshotFolder, tmp_path: Path
) -> None:
    """--snapshot-dir naming a file was taken: every periodic snapshot then said
    control_ok and failed with 'Not a directory'."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(SnapshotError, match=r"'.*afile' exists and is not a folder"):
        SnapshotFolder(afile, NET, folder.layout).create()
    SnapshotFolder(tmp_path / "new" / "deeper", NET, folder.layout).create()
    assert (tmp_path / "new" / "deeper").is_dir()


def test_a_restored_state_out_of_its_range_is_refused_naming_the_file(
    state: dict[str, Any], tmp_path: Path
) -> None:
    """A voltage above the threshold passes the file's checks and is refused by the
    simulator; serve --restore said which state, not which file."""
    from tests.clients.conftest import run_cli

    path = tmp_path / "hot.npz"
    path.write_bytes(npz_bytes({**valid(state), "pop.a.v": np.full_like(state["pop.a.v"], 5.0)}))
    done = run_cli("serve", str(SEED), "--broker", "mqtt://127.0.0.1:1", "--restore", str(path))
    assert done.returncode == 2, done.stderr
    assert f"error: snapshot {str(path)!r} refused: state 'pop.a.v' holds 50 value(s) outside" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr


def test_every_allowed_name_can_be_written(folder: SnapshotFolder, state: dict[str, Any]) -> None:
    """Names up to 255 bytes are allowed; the temporary file beside the target was named
    after it, 22 bytes longer, so names of 234-255 bytes were acknowledged and then failed
    with 'File name too long'."""
    name = "a" * 251 + ".npz"
    assert len(name.encode()) == 255
    assert folder.write(name, state) == folder.path / name
    assert not [p for p in folder.path.iterdir() if p.name.startswith(".")]
    with pytest.raises(SnapshotError, match="is not allowed"):
        folder.name_for("a" * 252 + ".npz")


def test_a_snapshot_that_would_fill_the_disk_is_refused(
    folder: SnapshotFolder, state: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A snapshot may not leave less than the reserve free (5 % of its file system, at most
    128 MiB), so control messages cannot fill a disk; the refusal says what is free and
    what one may take."""
    import spikestream.serving.snapshots as snapshots

    folder.check_room()  # this machine's disk has room for the seed's few kilobytes
    usage = os.statvfs(folder.path.parent)
    free = usage.f_bavail * usage.f_frsize
    # A reserve above what is free once one snapshot is written (by 64 MiB: other
    # processes may free some meanwhile).
    monkeypatch.setattr(snapshots, "DISK_RESERVE", 1.0)
    monkeypatch.setattr(snapshots, "DISK_RESERVE_BYTES", free - folder.max_bytes() + 64 * 2**20)
    with pytest.raises(SnapshotError, match=r"no room for a snapshot in .* it may take \d+ bytes"):
        folder.check_room()
    assert folder.max_bytes() > sum(np.asarray(a).nbytes for a in state.values())


def test_the_room_asked_counts_every_snapshot_being_written(
    folder: SnapshotFolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two snapshots being written at once need room for both: a disk with room for one
    and a half refuses the second."""
    import spikestream.serving.snapshots as snapshots

    one = folder.max_bytes()
    free = one * 3 // 2
    usage = SimpleNamespace(total=100 * one, used=100 * one - free, free=free)
    monkeypatch.setattr(snapshots.shutil, "disk_usage", lambda _: usage)
    monkeypatch.setattr(snapshots, "DISK_RESERVE_BYTES", 0)
    folder.check_room(copies=1)
    with pytest.raises(SnapshotError, match=f"it may take {2 * one} bytes and {free} "):
        folder.check_room(copies=2)


# ---------------------------------------------------------------------------- audit


def restored(npz: bytes, rename: dict[str, str] | None = None, method: int = 0) -> bytes:
    """``npz`` rewritten member by member: names changed by ``rename``, each member
    written with zip compression ``method``."""
    rename = rename or {}
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(npz)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(rename.get(info.filename, info.filename), src.read(info), method)
    return out.getvalue()


def test_a_member_without_the_npy_suffix_is_refused(
    folder: SnapshotFolder, state: dict[str, Any]
) -> None:
    """A member named like a state key but without ``.npy`` is not a snapshot member."""
    data = restored(npz_bytes(valid(state)), {"tick.npy": "tick"})
    with pytest.raises(SnapshotError, match=r"unexpected member 'tick'; a snapshot"):
        read(folder, data)


def test_an_encrypted_member_is_refused_naming_it(
    folder: SnapshotFolder, state: dict[str, Any]
) -> None:
    """A member whose flag bits say it is encrypted is refused from the directory."""
    raw = bytearray(zip_bytes([RawMember.stored("tick.npy", npy_bytes(np.int64(1)))]))
    raw[6] |= 1  # the local header's flag bits
    central = raw.index(b"PK\x01\x02")
    raw[central + 8] |= 1  # the central record's
    with pytest.raises(SnapshotError, match=r"member 'tick.npy' is encrypted"):
        read(folder, bytes(raw))


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_members_compressed_other_than_stored_or_deflated_are_refused(
    folder: SnapshotFolder, state: dict[str, Any], method: int
) -> None:
    """Only stored and deflated members are read; bzip2 or lzma ones, which zipfile
    could inflate, are refused before a byte is inflated."""
    data = restored(npz_bytes(valid(state)), method=method)
    with pytest.raises(SnapshotError, match=f"uses zip compression method {method}; expected"):
        read(folder, data)


def test_a_meta_member_longer_than_4_kib_is_refused(
    folder: SnapshotFolder, state: dict[str, Any]
) -> None:
    """``meta`` is bounded at 4 KiB even when it is valid JSON naming this network."""
    text = b'{"format": "spikestream.snapshot", "version": 1, "net": "seed"}'
    padded = np.frombuffer(text + b" " * (5000 - len(text)), np.uint8)
    with pytest.raises(SnapshotError, match=r"expected uint8 of at most 4096 bytes"):
        read(folder, edited(state, **{META: padded}))


def test_a_state_holding_meta_is_refused_unwritten(
    folder: SnapshotFolder, state: dict[str, Any]
) -> None:
    """``meta`` is the snapshot's own member: a state naming it is refused, nothing written."""
    with pytest.raises(SnapshotError, match="'meta' is its own"):
        folder.write("m.npz", {**state, META: meta_array("other")})
    assert not folder.path.exists() or not list(folder.path.iterdir())


def test_a_snapshot_is_readable_by_its_owner_only(
    folder: SnapshotFolder, state: dict[str, Any]
) -> None:
    """The written file has mode 0600, whatever the umask lets through."""
    path = folder.write("own.npz", state)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_failed_write_leaves_no_temp_file_and_keeps_the_old_snapshot(
    folder: SnapshotFolder, state: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fills up mid-write: the error goes out, the temporary file is removed
    and the earlier snapshot under the name stays as it was."""
    folder.write("s.npz", state)
    before = (folder.path / "s.npz").read_bytes()

    def full(fh: Any, **arrays: Any) -> None:
        fh.write(b"PK partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(OSError, match="No space left"):
        folder.write("s.npz", {**state, "tick": np.int64(51)})
    assert [p.name for p in folder.path.iterdir()] == ["s.npz"]
    assert (folder.path / "s.npz").read_bytes() == before


def test_a_file_put_at_the_target_while_writing_is_not_replaced(
    folder: SnapshotFolder, state: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The target is checked again just before the rename: a user's file that appears
    there while the snapshot is being written is left alone, and no temp file remains."""
    savez = np.savez
    folder.create()
    target = folder.path / "race.npz"

    def meanwhile(fh: Any, **arrays: Any) -> None:
        target.write_bytes(b"results,1,2,3\n")
        savez(fh, **arrays)

    monkeypatch.setattr(np, "savez", meanwhile)
    with pytest.raises(SnapshotError, match="is not a snapshot of network 'seed'"):
        folder.write("race.npz", state)
    assert target.read_bytes() == b"results,1,2,3\n"
    assert [p.name for p in folder.path.iterdir()] == ["race.npz"]


def test_resume_starts_fresh_only_while_no_latest_snapshot_exists(
    folder: SnapshotFolder, state: dict[str, Any]
) -> None:
    """``--resume`` without a latest snapshot starts from scratch; once one exists it is
    read in full and returned with its path."""
    latest = folder.path / f"{NET}-latest.npz"
    assert start_state(folder, None, latest) is None
    assert start_state(folder, None, None) is None
    folder.write(latest.name, state)
    got = start_state(folder, None, latest)
    assert got is not None
    assert got[0] == latest
    assert int(got[1]["tick"]) == 50


def test_resume_refuses_a_snapshot_folder_that_is_a_file(folder: SnapshotFolder) -> None:
    """``--resume`` with ``--snapshot-dir`` naming a regular file started from scratch
    without a word (with ``--snapshot-every`` the same path is refused at start): the
    state the operator asked to continue from was silently thrown away. It is refused in
    one line naming the path and what was expected."""
    folder.path.write_bytes(b"not a folder")
    latest = folder.path / f"{NET}-latest.npz"
    with pytest.raises(SnapshotError) as info:
        start_state(folder, None, latest)
    message = str(info.value)
    assert "\n" not in message
    assert f"{str(folder.path)!r} exists and is not a folder" in message
    assert start_state(folder, None, None) is None  # without --resume: nothing to read
