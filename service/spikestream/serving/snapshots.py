"""Snapshot files: the whole dynamic state of one network as a ``.npz``, in one folder.

**Format.** A zip of ``.npy`` members, as :func:`numpy.savez` writes it:

* one member per state array of the simulator (:meth:`Simulator.state_layout`): real
  floats (float32 or float64) of the network's exact shapes, all finite and within the
  range of the network's number type;
* ``tick``: an integer scalar, ``0 <= tick <= 2**53 - 1``;
* the engine's frame counters, so a resumed process continues ``seq``:
  ``engine.seq.<probe>`` and ``engine.dropped.<probe>`` (integer scalars, same range) and
  ``engine.wall`` (Unix time of the snapshot, a finite float ``>= 0``);
* ``meta``: UTF-8 JSON as a 1-D ``uint8`` array (at most 4 KiB),
  ``{"format": "spikestream.snapshot", "version": 1, "net": "<network name>"}``. It marks
  the file as a snapshot of that network; files written before it existed are recognised
  by their members alone.

**Reading** treats the file as hostile (:func:`read_snapshot`). Before a byte is inflated:
the file size is bounded by what a snapshot of this network can take; the zip directory
must name only expected members, each claiming no more uncompressed bytes than it can
need, stored or deflated, unencrypted. Each member is then streamed through a reader that
refuses to deliver more bytes than the member can need (whatever the directory claimed),
its ``.npy`` header is parsed alone, and its dtype and shape are compared with this
network's before the array is allocated. There is no pickle path: object dtypes are
refused at the header. Values are checked last (finite floats, counters in range).

**Writing** (:meth:`SnapshotFolder.write`): into a temporary file of a fresh random name,
created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` inside the folder (opened once, all names
resolved against that descriptor), fsynced, then renamed over the target with
:func:`os.replace` and the folder fsynced. An existing target is replaced only when it is
a regular file holding a snapshot of the same network; anything else (a user's data file,
a symbolic link, a folder, another network's snapshot) is left alone and the write is
refused.

**Names** given over the control topic are plain file names ending in ``.npz`` directly in
the folder (or an absolute path whose folder is the snapshot folder): no sub-folders, no
``..``, no leading ``.`` (temporary files start with one), and symbolic links in the
folder are neither followed nor replaced.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import shutil
import stat
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import numpy.typing as npt

from spikestream.datafiles import read_npy_member, zip_refusals
from spikestream.errors import SnapshotError
from spikestream.runtime.engine import Engine
from spikestream.sim.simulator import state_limit
from spikestream_client.npz import check_zip_directory

FORMAT = "spikestream.snapshot"
VERSION = 1
META = "meta"
META_MAX_BYTES = 4096
# numpy writes a 128-byte .npy header for the arrays of a snapshot; 4 KiB leaves room for
# other writers and bounds what is parsed before the shape is known.
HEADER_MAX_BYTES = 4096
# Local header, central record and zip64 extras of one member, plus its name twice.
ZIP_MEMBER_OVERHEAD = 256
#: What a snapshot must leave free of its folder's file system: this share of it, or
#: DISK_RESERVE_BYTES if that is smaller (a nearly full disk of a small machine can still
#: take snapshots; none can take its last megabytes).
DISK_RESERVE = 0.05
DISK_RESERVE_BYTES = 128 * 2**20
MAX_COUNT = 2**53 - 1  # tick and frame counters: float64 t = tick * dt stays exact
#: Room a snapshot's counters must leave below MAX_COUNT, the largest a frame may carry:
#: 2**40 more ticks or frames (35 years at 1 kHz). A tick or seq restored at the very
#: limit was taken, and every frame after it broke the protocol: every client refused
#: them all, while the service stayed online.
COUNT_HEADROOM = 2**40
COUNT_LIMIT = MAX_COUNT - COUNT_HEADROOM

Array = npt.NDArray[Any]
Kind = Literal["float", "count", "time", "meta"]


@dataclass(frozen=True)
class Member:
    """What one member of a snapshot must hold.

    ``kind``: ``float`` (real floats of exactly ``shape``, all finite), ``count`` (an
    integer scalar in ``[0, 2**53 - 1]``), ``time`` (a finite float scalar ``>= 0``) or
    ``meta`` (1-D ``uint8``, at most :data:`META_MAX_BYTES`).
    """

    shape: tuple[int, ...]
    kind: Kind
    required: bool = True
    #: Largest magnitude a ``float`` member may hold: ``state_limit`` of the network's
    #: number type (2**-64 of its maximum), so a float64 file restored into a float32
    #: network cannot turn 1e300 into inf, nor a value near the maximum overflow in a tick.
    limit: float = float(np.finfo(np.float64).max)

    def max_data_bytes(self) -> int:
        """The most bytes the member's array can take (8 per element)."""
        return META_MAX_BYTES if self.kind == "meta" else math.prod(self.shape) * 8

    def max_bytes(self) -> int:
        """The most uncompressed bytes of the member: header plus array, in bytes."""
        return HEADER_MAX_BYTES + self.max_data_bytes()


Layout = Mapping[str, Member]


def snapshot_layout(engine: Engine) -> dict[str, Member]:
    """The members a snapshot of ``engine``'s network holds (what ``snapshot`` writes)."""
    layout: dict[str, Member] = {}
    for key, (shape, dtype) in engine.sim.state_layout().items():
        if key == "tick":
            layout[key] = Member(shape, "count")
        else:
            layout[key] = Member(shape, "float", limit=state_limit(dtype))
    # The engine adds its frame counters to the state it hands out for a snapshot.
    for probe in engine.streams:
        layout[f"engine.seq.{probe}"] = Member((), "count", required=False)
        layout[f"engine.dropped.{probe}"] = Member((), "count", required=False)
    layout["engine.wall"] = Member((), "time", required=False)
    layout[META] = Member((), "meta", required=False)
    return layout


def max_file_bytes(layout: Layout) -> int:
    """The largest file a snapshot with ``layout`` can be, in bytes (stored, uncompressed)."""
    members = sum(m.max_bytes() + ZIP_MEMBER_OVERHEAD + 2 * len(k) for k, m in layout.items())
    return members + 1024  # end-of-directory records


def meta_array(net: str) -> Array:
    """The ``meta`` member marking a snapshot of network ``net``."""
    text = json.dumps({"format": FORMAT, "version": VERSION, "net": net})
    return np.frombuffer(text.encode(), np.uint8).copy()


def default_snapshot_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The folder snapshots go to when ``--snapshot-dir`` is not given.

    ``$XDG_STATE_HOME/spikestream/snapshots``, else ``~/.local/state/spikestream/snapshots``
    (the XDG base directory specification's place for state that outlives a restart but is
    not user data). A relative ``XDG_STATE_HOME`` is ignored, as the specification says.

    Raises:
        SnapshotError: no home folder is known (set ``--snapshot-dir``).
    """
    env = os.environ if environ is None else environ
    state_home = env.get("XDG_STATE_HOME", "")
    if state_home and os.path.isabs(state_home):
        return Path(state_home) / "spikestream" / "snapshots"
    try:
        home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    except (RuntimeError, KeyError):
        raise SnapshotError(
            "no home folder to keep snapshots in (HOME is unset and the user has no "
            "passwd entry); set --snapshot-dir or SPIKESTREAM_SNAPSHOT_DIR"
        ) from None
    return home / ".local" / "state" / "spikestream" / "snapshots"


# ---------------------------------------------------------------------------- reading


def read_snapshot(fh: IO[bytes], layout: Layout, net: str, *, where: str) -> dict[str, Array]:
    """Read and validate a snapshot of network ``net`` from the binary file ``fh``.

    Args:
        fh: seekable binary file, positioned anywhere.
        layout: the members this network's snapshot holds (:func:`snapshot_layout`).
        net: the network's name; a ``meta`` member naming another network is refused.
        where: how to name the file in messages (its path).

    Returns:
        ``{member: array}`` for every member but ``meta``: float arrays of the layout's
        shapes (native byte order), integer and float scalars as 0-d arrays.

    Raises:
        SnapshotError: naming the file and what was wrong; nothing larger than the
            layout allows was allocated or inflated.
    """
    return _SnapshotReader(fh, layout, net, where).read()


def read_snapshot_file(path: Path, layout: Layout, net: str) -> dict[str, Array]:
    """:func:`read_snapshot` of the regular file at ``path`` (e.g. ``serve --restore``).

    The operator chose this path, so symbolic links are followed; the content is still
    validated in full.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        raise SnapshotError(f"cannot read snapshot {str(path)!r}: {_why(err)}") from None
    with _regular(fd, f"snapshot {str(path)!r} is not a regular file") as fh:
        return read_snapshot(fh, layout, net, where=str(path))


def _regular(fd: int, refusal: str) -> IO[bytes]:
    """``fd`` as a binary file if it is a regular file; else closed and refused (a FIFO
    or device must not block or feed the reader)."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SnapshotError(refusal)
    return os.fdopen(fd, "rb")


class _SnapshotReader:
    """One pass over one file: directory first, then ``meta``, then each member."""

    def __init__(self, fh: IO[bytes], layout: Layout, net: str, where: str) -> None:
        self.fh = fh
        self.layout = layout
        self.net = net
        self.where = where

    def refuse(self, why: str) -> SnapshotError:
        return SnapshotError(f"snapshot {self.where!r} refused: {why}")

    def read(self) -> dict[str, Array]:
        with zip_refusals(self.refuse), self.open() as zf:
            infos = self.directory(zf)
            if META in infos:
                self.check_meta(self.member(zf, META, infos[META]))
            return {key: self.member(zf, key, info) for key, info in infos.items() if key != META}

    def identify(self) -> str | None:
        """Why the file is not a snapshot of this network, or None when it is one.

        Reads the zip directory and ``meta`` only; the arrays are not checked.
        """
        try:
            with self.open() as zf:
                infos = self.directory(zf)
                if META in infos:
                    self.check_meta(self.member(zf, META, infos[META]))
        except SnapshotError as err:
            return str(err).removeprefix(f"snapshot {self.where!r} refused: ")
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError):
            return "it is not a zip of .npy arrays"
        except (TypeError, SyntaxError, NotImplementedError, RuntimeError) as err:
            return f"malformed content ({type(err).__name__})"
        return None

    def open(self) -> zipfile.ZipFile:
        size = self.fh.seek(0, os.SEEK_END)
        limit = max_file_bytes(self.layout)
        if size > limit:
            raise self.refuse(
                f"the file is {size} bytes; a snapshot of network {self.net!r} takes at most "
                f"{limit}"
            )
        try:  # before ZipFile reads the directory whole, an object per member
            # The meta member, and some to spare: an unexpected one is named later.
            check_zip_directory(self.fh, len(self.layout) + 17)
        except ValueError as err:
            raise self.refuse(str(err)) from None
        return zipfile.ZipFile(self.fh)

    def directory(self, zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
        """The members by key, checked against the layout from the zip directory alone."""
        infos: dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            key = info.filename.removesuffix(".npy")
            member = self.layout.get(key)
            if member is None or not info.filename.endswith(".npy"):
                raise self.refuse(
                    f"unexpected member {info.filename!r}; a snapshot of network "
                    f"{self.net!r} holds {_names(self.layout)}"
                )
            if key in infos:
                raise self.refuse(f"member {info.filename!r} appears twice")
            if info.flag_bits & 0x1:
                raise self.refuse(f"member {info.filename!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise self.refuse(
                    f"member {info.filename!r} uses zip compression method "
                    f"{info.compress_type}; expected stored (0) or deflated (8)"
                )
            if info.file_size > member.max_bytes():
                raise self.refuse(
                    f"member {info.filename!r} claims {info.file_size} bytes uncompressed; "
                    f"at most {member.max_bytes()} fit this network"
                )
            infos[key] = info
        missing = [k for k, m in self.layout.items() if m.required and k not in infos]
        if missing:
            raise self.refuse(f"missing {_names(missing)}: not a snapshot of network {self.net!r}")
        return infos

    def member(self, zf: zipfile.ZipFile, key: str, info: zipfile.ZipInfo) -> Array:
        member = self.layout[key]
        arr = read_npy_member(
            zf,
            info,
            max_bytes=member.max_bytes(),
            header_max_bytes=HEADER_MAX_BYTES,
            check_header=lambda shape, dtype: self.check_header(key, member, shape, dtype),
            refuse=self.refuse,
        )
        self.check_values(key, member, arr)
        return arr

    def check_header(
        self, key: str, member: Member, shape: tuple[int, ...], dtype: np.dtype[Any]
    ) -> None:
        """Refuse a member whose dtype or shape does not fit, before it is allocated."""
        if member.kind == "meta":
            ok = dtype == np.uint8 and len(shape) == 1 and shape[0] <= META_MAX_BYTES
            if not ok:
                raise self.refuse(
                    f"member {key!r} holds {dtype} of shape {shape}; expected uint8 of at most "
                    f"{META_MAX_BYTES} bytes"
                )
            return
        if member.kind == "count":
            expected, ok = "an integer", dtype.kind in "iu" and dtype.itemsize <= 8
        else:
            expected, ok = (
                "real floats (float32 or float64)",
                (dtype.kind == "f" and dtype.itemsize in (4, 8)),
            )
        if not ok:
            raise self.refuse(f"member {key!r} holds {_dtype_name(dtype)}; expected {expected}")
        if shape != member.shape:
            raise self.refuse(
                f"member {key!r} has shape {shape}; network {self.net!r} expects {member.shape}"
            )

    def check_values(self, key: str, member: Member, arr: Array) -> None:
        if member.kind == "count":
            value = int(arr)
            if not 0 <= value <= COUNT_LIMIT:
                raise self.refuse(
                    f"{key!r} is {value}; expected an integer 0 <= {key} <= 2**53-1 - 2**40 "
                    "(frames carry at most 2**53-1; 2**40 is the room left to count on)"
                )
        elif member.kind in ("float", "time"):
            bad = int(np.count_nonzero(~np.isfinite(arr)))
            if bad:
                raise self.refuse(f"member {key!r} holds {bad} NaN or infinite value(s)")
            # In float64: a float32 member compared with float64's limit would overflow.
            big = int(np.count_nonzero(np.abs(arr.astype(np.float64)) > member.limit))
            if big:
                raise self.refuse(
                    f"member {key!r} holds {big} value(s) beyond +-{member.limit:.4g}; "
                    "expected values the network's number type can hold through a tick"
                )
            if member.kind == "time" and float(arr) < 0:
                raise self.refuse(f"{key!r} is {float(arr)}; expected a Unix time >= 0")

    def check_meta(self, arr: Array) -> None:
        try:
            meta = json.loads(arr.tobytes().decode())
        except (UnicodeDecodeError, ValueError):
            raise self.refuse("member 'meta' is not UTF-8 JSON") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise self.refuse(f"member 'meta' does not say format {FORMAT!r}")
        if meta.get("version") != VERSION:
            raise self.refuse(
                f"snapshot format version {meta.get('version')!r}; this service reads {VERSION}"
            )
        if meta.get("net") != self.net:
            raise self.refuse(f"it is a snapshot of network {meta.get('net')!r}, not {self.net!r}")


def _names(keys: Any) -> str:
    keys = sorted(keys)
    shown = ", ".join(repr(k) for k in keys[:8])
    return shown + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")


def _dtype_name(dtype: np.dtype[Any]) -> str:
    kinds = {"U": "text", "S": "bytes", "O": "Python objects", "V": "raw or structured data"}
    return f"{dtype.str} ({kinds.get(dtype.kind, dtype.name)})"


# ---------------------------------------------------------------------------- the folder

_NAME = re.compile(r"[^./\x00-\x1f\x7f][^/\x00-\x1f\x7f]*\.npz")
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class SnapshotFolder:
    """The one folder a service reads and writes snapshots of one network in.

    Args:
        path: the folder; None for :func:`default_snapshot_dir` (resolved on first use).
        net: the network's name.
        layout: what a snapshot of the network holds (:func:`snapshot_layout`).
    """

    def __init__(self, path: Path | None, net: str, layout: Layout) -> None:
        self._path = path
        self.net = net
        self.layout = dict(layout)

    @property
    def path(self) -> Path:
        """The folder (absolute)."""
        if self._path is None:
            self._path = default_snapshot_dir()
        return self._path.absolute()

    def name_for(self, value: object) -> str:
        """The file name a control command's path names, checked.

        ``None`` or ``""`` is ``<net>-snapshot.npz``. An absolute path is allowed when its
        folder is the snapshot folder.

        Raises:
            SnapshotError: the name is not a plain ``.npz`` file name in the folder.
        """
        if value is None or value == "":
            return f"{self.net}-snapshot.npz"
        text = str(value)
        name = text
        if os.path.isabs(text):
            parent, name = os.path.split(text)
            if os.path.realpath(parent) != os.path.realpath(self.path):
                name = ""
        if not _NAME.fullmatch(name) or len(name.encode()) > 255:
            raise SnapshotError(
                f"snapshot file {text!r} is not allowed: expected a file name ending in .npz, "
                f"not starting with '.', directly inside the snapshot folder "
                f"{str(self.path)!r} (no sub-folders, no '..')"
            )
        return name

    def max_bytes(self) -> int:
        """The most bytes a snapshot of this network takes on disk (zip overhead included)."""
        return sum(m.max_bytes() + ZIP_MEMBER_OVERHEAD + len(k) * 2 for k, m in self.layout.items())

    def check_room(self, copies: int = 1) -> None:
        """Refuse a snapshot that, with ``copies - 1`` others being written, could leave
        less than the reserve free (:data:`DISK_RESERVE`), so that control messages cannot
        fill a disk.

        Raises:
            SnapshotError: saying how much is free and what the snapshot may take.
        """
        where = self.path
        while not where.exists() and where != where.parent:  # created when first written
            where = where.parent
        usage = shutil.disk_usage(where)
        reserve = min(int(DISK_RESERVE * usage.total), DISK_RESERVE_BYTES)
        need = self.max_bytes() * copies
        if usage.free - need < reserve:
            raise SnapshotError(
                f"no room for a snapshot in {str(self.path)!r}: it may take {need} bytes and "
                f"{usage.free} of {usage.total} are free; snapshots leave {reserve} bytes "
                f"free ({DISK_RESERVE:.0%} of the file system, at most {DISK_RESERVE_BYTES})"
            )

    def create(self) -> None:
        """Create the folder, and any missing parent, with mode 0700 (only the owner)."""
        missing: list[Path] = []
        p = self.path
        while not p.exists():
            missing.append(p)
            p = p.parent
        try:
            for d in reversed(missing):
                with contextlib.suppress(FileExistsError):
                    d.mkdir(mode=0o700)
        except OSError as err:
            raise SnapshotError(
                f"cannot create the snapshot folder {str(self.path)!r}: {err.strerror}"
            ) from None
        if not self.path.is_dir():
            # A file there: every periodic snapshot said control_ok, then failed.
            raise SnapshotError(
                f"the snapshot folder {str(self.path)!r} exists and is not a folder; "
                "expected a folder (--snapshot-dir)"
            )

    def exists(self, name: str) -> bool:
        """Whether ``name`` is in the folder (a symbolic link counts: it is not followed)."""
        return os.path.lexists(self.path / self.name_for(name))

    def read(self, name: str) -> dict[str, Array]:
        """:func:`read_snapshot` of ``name`` in the folder, never through a link.

        Raises:
            SnapshotError: missing, a link or not a regular file, or refused as data.
        """
        name = self.name_for(name)
        where = str(self.path / name)
        with self._folder(create=False) as dfd:
            try:
                fd = os.open(name, _READ_FLAGS, dir_fd=dfd)
            except FileNotFoundError:
                raise SnapshotError(f"no snapshot file {where!r}") from None
            except OSError as err:
                raise SnapshotError(f"cannot read snapshot {where!r}: {_why(err)}") from None
        with _regular(fd, f"snapshot {where!r} is not a regular file") as fh:
            return read_snapshot(fh, self.layout, self.net, where=where)

    def check_replaceable(self, name: str) -> None:
        """Refuse when ``name`` exists and is not a snapshot of this network.

        Raises:
            SnapshotError: naming the file and why it is left alone.
        """
        name = self.name_for(name)
        with self._folder(create=False, missing_ok=True) as dfd:
            if dfd is not None:
                self._check_target(dfd, name)

    def write(self, name: str, state: Mapping[str, Array]) -> Path:
        """Write ``state`` (with ``meta``) to ``name`` in the folder, atomically.

        Returns:
            The path written.

        Raises:
            SnapshotError: the name or the existing target is refused.
            OSError: the write itself failed (disk full, permissions); nothing is left
                behind but the folder as it was.
        """
        name = self.name_for(name)
        # Only numbers are written (np.savez would pickle an object array).
        odd = sorted(k for k, a in state.items() if np.asarray(a).dtype.kind not in "fiu")
        if odd or META in state:
            raise SnapshotError(
                f"cannot snapshot {_names(odd or [META])}: a snapshot holds numbers only, "
                f"and {META!r} is its own"
            )
        with self._folder(create=True) as dfd:
            assert dfd is not None
            self._check_target(dfd, name)
            # Of fixed length, so that every allowed name (up to 255 bytes) can be written;
            # a leading '.' and no '.npz' keep it apart from every snapshot name.
            tmp = f".snapshot-{secrets.token_hex(8)}.tmp"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(tmp, flags, 0o600, dir_fd=dfd)
            try:
                with os.fdopen(fd, "wb") as fh:
                    members: dict[str, Any] = {**state, META: meta_array(self.net)}
                    np.savez(fh, **members)
                    fh.flush()
                    os.fsync(fh.fileno())
                self._check_target(dfd, name)  # again: the check and the rename are close
                os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dfd)
                raise
            os.fsync(dfd)  # the rename itself survives a crash
        return self.path / name

    def _check_target(self, dfd: int, name: str) -> None:
        where = str(self.path / name)
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        keep = "a snapshot only replaces an earlier snapshot of the same network"
        if not stat.S_ISREG(st.st_mode):
            kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
            raise SnapshotError(f"{where!r} exists and is {kind}; {keep}")
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=dfd)
        except OSError as err:
            raise SnapshotError(
                f"cannot check {where!r} before replacing it: {_why(err)}"
            ) from None
        with _regular(fd, f"{where!r} exists and is not a regular file; {keep}") as fh:
            why = _SnapshotReader(fh, self.layout, self.net, where).identify()
        if why is not None:
            raise SnapshotError(
                f"{where!r} exists and is not a snapshot of network {self.net!r} ({why}); "
                f"{keep}: choose another name or move the file away"
            )

    @contextlib.contextmanager
    def _folder(self, *, create: bool, missing_ok: bool = False) -> Any:
        """The folder as an open descriptor, for names resolved against it (or None
        when it is missing and ``missing_ok``)."""
        if create:
            self.create()
        try:
            dfd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            if missing_ok:
                yield None
                return
            raise SnapshotError(f"the snapshot folder {str(self.path)!r} does not exist") from None
        except OSError as err:
            raise SnapshotError(
                f"cannot open the snapshot folder {str(self.path)!r}: {_why(err)}"
            ) from None
        try:
            yield dfd
        finally:
            os.close(dfd)


def _why(err: OSError) -> str:
    import errno

    if err.errno == errno.ELOOP:
        return "it is a symbolic link, which is never followed in the snapshot folder"
    return err.strerror or str(err)


def start_state(
    folder: SnapshotFolder, restore: Path | None, latest: Path | None
) -> tuple[Path, dict[str, Array]] | None:
    """The state a service starts from, read in full (blocking: call it off the loop).

    Args:
        folder: The network's snapshot folder.
        restore: ``--restore FILE``: read this regular file, wherever it is.
        latest: With ``--resume``, the latest periodic snapshot in ``folder``; a start
            from scratch when it does not exist yet.

    Returns:
        ``(path, state)``, or None to start fresh.

    Raises:
        SnapshotError: The file is refused; the start stops with one line naming it (exit
            2): starting fresh instead would throw away the state the operator asked for.
    """
    if restore is not None:
        return restore, read_snapshot_file(restore, folder.layout, folder.net)
    if latest is not None and folder.path.exists() and not folder.path.is_dir():
        # lexists() below said "no latest snapshot": a fresh start, the state lost unsaid.
        raise SnapshotError(
            f"the snapshot folder {str(folder.path)!r} exists and is not a folder; "
            "expected a folder (--snapshot-dir) for --resume to continue from"
        )
    if latest is None or not folder.exists(latest.name):
        return None
    try:
        return latest, folder.read(latest.name)
    except SnapshotError as err:
        raise SnapshotError(
            f"{err}; --resume cannot continue from it: move it out of the snapshot folder "
            "to start fresh"
        ) from None
