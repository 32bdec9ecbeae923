"""The decoder cache: one listing and one trim per build, whatever the number of solves;
trimmed oldest first to its byte and entry budgets. (That entries are read as hostile,
and keyed on what the solve reads, is in tests/build/test_build.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from spikestream.build import build
from spikestream.decodercache import DecoderCache, content_digest
from spikestream.spec import parse_network


def _chain(n: int) -> dict[str, object]:
    """``n`` small populations, each decoding x into the next, and a decoded probe."""
    pops = {f"p{i}": {"n": 10} for i in range(n)}
    conns = [{"pre": f"p{i}", "post": f"p{i + 1}", "function": "x"} for i in range(n - 1)]
    probes = {"last": {"target": f"p{n - 1}", "kind": "decoded"}}
    return {"network": {"seed": 3}, "populations": pops, "connections": conns, "probes": probes}


def test_a_build_lists_the_cache_once_and_serves_every_solve_from_it_the_second_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    opened: list[DecoderCache] = []
    real_open = DecoderCache.open

    def open_and_keep() -> DecoderCache:
        opened.append(real_open())
        return opened[-1]

    monkeypatch.setattr(DecoderCache, "open", open_and_keep)
    spec = parse_network(_chain(30))
    first = build(spec)
    folder = tmp_path / "spikestream" / "decoders"
    assert len(list(folder.glob("*.npy"))) == 30  # 29 connections and the probe
    solved: list[object] = []
    monkeypatch.setattr("spikestream.build.solve_decoders", lambda *a: solved.append(a))
    second = build(spec)
    assert solved == []  # every solve served from the cache
    assert [c.listings for c in opened] == [1, 1]  # one cache per build, listed once
    for c1, c2 in zip(first.connections, second.connections, strict=True):
        assert c1.decoders is not None
        assert c2.decoders is not None
        np.testing.assert_array_equal(c1.decoders, c2.decoders)


def _entry(folder: Path, key: str, n: int, mtime: float) -> str:
    d = np.full((n, 1), float(n))
    name = f"{key}.{content_digest(d)}.npy"
    np.save(folder / name, d)
    os.utime(folder / name, (mtime, mtime))
    return name


def test_the_trim_keeps_the_newest_entries_within_both_budgets(tmp_path: Path) -> None:
    folder = tmp_path / "decoders"
    folder.mkdir()
    names = [_entry(folder, f"k{i}", 100, 1000.0 + i) for i in range(8)]  # 928 bytes each
    size = (folder / names[0]).stat().st_size
    cache = DecoderCache(folder)
    cache.trim(max_bytes=0, max_entries=0)
    assert len(list(folder.iterdir())) == 8  # nothing stored by this cache: no trim
    cache.put("new", np.ones((100, 1)))
    cache.trim(max_bytes=10**9, max_entries=5)
    assert sorted(p.name.split(".")[0] for p in folder.iterdir()) == [
        "k4", "k5", "k6", "k7", "new"
    ]  # fmt: skip
    cache.put("newer", np.zeros((100, 1)))
    cache.trim(max_bytes=3 * size, max_entries=100)
    left = sorted(p.name.split(".")[0] for p in folder.iterdir())
    assert left == ["k7", "new", "newer"]


def test_an_entry_gone_between_the_listing_and_the_lookup_is_solved_again(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "decoders"
    folder.mkdir()
    d = np.arange(6.0).reshape(3, 2)
    name = f"k.{content_digest(d)}.npy"
    np.save(folder / name, d)
    cache = DecoderCache(folder)
    np.testing.assert_array_equal(cache.get("k", (3, 2)), d)
    (folder / name).unlink()
    assert cache.get("k", (3, 2)) is None
    assert DecoderCache(None).get("k", (3, 2)) is None


def test_a_symlink_at_the_temporary_name_is_not_written_through(tmp_path: Path) -> None:
    """A link planted at the name ``put`` writes its temporary file under (in a cache
    folder others can write, or left behind) must not make the build overwrite the file
    it points to: the entry is still stored, and the link's target keeps its bytes.
    Before, ``open("wb")`` followed the link and truncated the target."""
    folder = tmp_path / "cache"
    folder.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    (folder / f".k1.{os.getpid()}.tmp").symlink_to(victim)
    cache = DecoderCache(folder)
    d = np.arange(6, dtype=np.float64).reshape(3, 2)
    cache.put("k1", d)
    assert victim.read_bytes() == b"precious"
    got = DecoderCache(folder).get("k1", (3, 2))
    assert got is not None
    np.testing.assert_array_equal(got, d)
