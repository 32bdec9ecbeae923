"""Solved decoders kept on disk between builds, as Nengo keeps its own.

A chain of ten 1000-neuron populations otherwise spends most of its start-up solving ten
1000 x 1000 systems. An entry is ``<key>.<digest>.npy``: ``key`` digests what the solve
read (``build._decoder_key``), ``digest`` the decoders themselves, so an entry changed or
cut short after it was written is never served.

A build opens one :class:`DecoderCache`: the folder is listed once, at the first lookup,
and trimmed once, when the build ends. (Listing and trimming at every solve made a build
of P decoded connections cost P times the folder's size: 2,000 connections against a
folder of 6,000 small entries spent 100 s in ``stat``.)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from spikestream.datafiles import load_npy
from spikestream.errors import BuildError, ConfigError, SpikestreamError

#: Oldest entries go first beyond this many bytes, or beyond this many entries (a bound
#: on the listing each build makes: many small populations give many small entries).
#: ``SPIKESTREAM_DECODER_CACHE=0`` turns the cache off.
DECODER_CACHE_BYTES = 256 * 2**20
DECODER_CACHE_ENTRIES = 10_000

FloatArray = npt.NDArray[np.float64]


#: SPIKESTREAM_DECODER_CACHE values that turn the cache off, and on (unset or empty: on).
CACHE_OFF: Final = ("0", "off", "false", "no")
CACHE_ON: Final = ("", "1", "on", "true", "yes")


def decoder_cache_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """The decoder cache folder, or None when the cache is off.

    ``$XDG_CACHE_HOME/spikestream/decoders``, else ``~/.cache/spikestream/decoders`` (the
    XDG base directory specification's place for non-essential data; a relative
    ``XDG_CACHE_HOME`` is ignored, as the specification says).
    """
    env = os.environ if environ is None else environ
    switch = env.get("SPIKESTREAM_DECODER_CACHE", "").strip().lower()
    if switch in CACHE_OFF:
        return None
    if switch not in CACHE_ON:  # "off" was taken as on
        raise ConfigError(
            f"SPIKESTREAM_DECODER_CACHE={switch!r:.40} is not allowed; expected one of "
            f"{', '.join(CACHE_OFF)} (off) or {', '.join(CACHE_ON[1:])} (on, the default)"
        )
    cache_home = env.get("XDG_CACHE_HOME", "")
    if os.path.isabs(cache_home):
        return Path(cache_home) / "spikestream" / "decoders"
    try:
        home = Path.home()
    except RuntimeError:  # no HOME and no passwd entry (some containers): no cache
        return None
    return home / ".cache" / "spikestream" / "decoders"


def content_digest(d: npt.NDArray[Any]) -> str:
    """A digest of the decoders themselves, part of the entry's file name."""
    a = np.ascontiguousarray(d, dtype=np.float64)
    return hashlib.sha256(repr(a.shape).encode() + a.tobytes()).hexdigest()[:32]


class DecoderCache:
    """The cache folder for one build (or none: every lookup misses, nothing is stored).

    Every failure to read or write is passed over: the cache only saves time. Entries
    are read as hostile: a FIFO or device is not opened for reading, a header claiming
    more than the file holds is refused before allocating, pickles are never loaded.
    """

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        #: name -> (mtime in s, size in bytes) of the ``.npy`` entries, once listed.
        self._entries: dict[str, tuple[float, int]] | None = None
        self._by_key: dict[str, list[str]] = {}
        self._stored = False
        self.listings = 0  # how many times the folder was listed (once per build)

    @classmethod
    def open(cls) -> DecoderCache:
        """The cache at :func:`decoder_cache_dir` (off when that is None)."""
        return cls(decoder_cache_dir())

    def _listing(self) -> dict[str, tuple[float, int]]:
        if self._entries is None:
            self._entries, self._by_key = {}, {}
            self.listings += 1
            assert self.folder is not None
            try:
                with os.scandir(self.folder) as it:
                    for entry in it:
                        if entry.name.endswith(".npy") and not entry.name.startswith("."):
                            try:
                                st = entry.stat(follow_symlinks=False)
                            except OSError:
                                continue  # removed meanwhile (another build's trim)
                            self._add(entry.name, st.st_mtime, st.st_size)
            except OSError:
                pass  # no folder yet, or unreadable: every lookup misses
        return self._entries

    def _add(self, name: str, mtime: float, size: int) -> None:
        assert self._entries is not None
        if name not in self._entries:
            self._by_key.setdefault(name.split(".", 1)[0], []).append(name)
        self._entries[name] = (mtime, size)

    def get(self, key: str, shape: tuple[int, int]) -> FloatArray | None:
        """The cached decoders of ``key``, or None (no cache, no entry, or one that is not
        a regular ``.npy`` file of finite float64 values of ``shape`` matching its
        digest)."""
        if self.folder is None:
            return None
        self._listing()

        def check(found: tuple[int, ...]) -> None:
            if found != shape:  # not this solve's: passed over unread
                raise BuildError(f"decoder cache: shape {found}; expected {shape}")

        for name in sorted(self._by_key.get(key, ())):
            try:
                d = load_npy(self.folder / name, "decoder cache", check)
            except SpikestreamError:
                continue
            if (
                d.shape == shape
                and d.dtype == np.float64
                and np.all(np.isfinite(d))
                and name == f"{key}.{content_digest(d)}.npy"
            ):
                return np.ascontiguousarray(d)
        return None

    def put(self, key: str, d: FloatArray) -> None:
        """Cache ``d`` under ``key`` (written to a temporary file, then renamed)."""
        if self.folder is None:
            return
        self._listing()
        name = f"{key}.{content_digest(d)}.npy"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f".{key}.{os.getpid()}.tmp"
            tmp.unlink(missing_ok=True)  # a stale file, or a link: never written through
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(tmp, flags, 0o666)
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, d, allow_pickle=False)
            os.replace(tmp, self.folder / name)
            st = (self.folder / name).lstat()
        except OSError:
            return  # a read-only home, a full disk: skipped
        self._add(name, st.st_mtime, st.st_size)
        self._stored = True

    def trim(
        self, max_bytes: int = DECODER_CACHE_BYTES, max_entries: int = DECODER_CACHE_ENTRIES
    ) -> None:
        """After a build that stored entries: remove the oldest until the folder holds at
        most ``max_bytes`` and ``max_entries`` (by this build's listing; entries other
        processes wrote since are left to their own trim)."""
        if self.folder is None or not self._stored:
            return
        entries = self._listing()
        total = sum(size for _, size in entries.values())
        count = len(entries)
        for name in sorted(entries, key=lambda n: entries[n][0]):
            if total <= max_bytes and count <= max_entries:
                break
            try:
                (self.folder / name).unlink(missing_ok=True)
            except OSError:
                return
            total -= entries[name][1]
            count -= 1
        self._stored = False
        self._entries = None  # listed again if the cache is used again
