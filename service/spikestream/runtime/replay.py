"""Deterministic replay: record the tick-stamped inputs of a live run, play them offline.

The live engine calls :meth:`InputRecorder.record` only when an input's value changes (a
new message applied, or a TTL fallback), with the number of ticks executed so far,
:meth:`InputRecorder.mark` on resets and restores, and :meth:`InputRecorder.learning` when
``learn`` or ``set learning_rate`` changes the learning connections. :func:`replay_block`
turns the log back into one value per tick, so ``spikestream run NETWORK --replay FILE``
steps the simulator through exactly the inputs and learning settings the live run saw and
reproduces its spike trains. A ``restore`` replaced the state with a snapshot's, which the
log does not hold: the replay is exact up to the first one, and says so.

File layout (``.npz``): ``<input>.ticks`` (k,) int64 and ``<input>.values`` (k, dim)
float64 for each input, ``resets`` (r,) int64, ``learning.ticks`` (m,) int64 and
``learning.values`` (m, 2) float64 (the rate, or NaN if unchanged; 1.0 or 0.0 for learning
switched on or off, or NaN), ``restores`` (s,) int64, ``ticks`` (0-d, ticks executed), and
``network``, ``seed``, ``dtype`` (0-d) to check the replay runs the same build. Logs
written before the learning and restore members existed lack them, and read as holding
none.

Memory. The tick thread only appends changes to a queue; the asyncio side moves them to
spool files next to the target every :data:`SPOOL_INTERVAL` seconds (:meth:`flush`), and
:meth:`InputRecorder.save` streams the spool into the final file. So a run of any length
holds at most the changes of about one spool interval in memory, and every change is kept
(replay stays exact).

Reading. A log is hostile: :func:`load_replay` checks the zip directory, each ``.npy``
header and then the values against this network's inputs before anything is allocated or
inflated beyond what the memory limit allows.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import math
import os
import shutil
import stat
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from spikestream.build import Model
from spikestream.datafiles import open_regular, read_npy_member, zip_refusals
from spikestream.errors import ConfigError
from spikestream.runtime.offline import LearningChange
from spikestream.spec import VALUE_LIMIT, NetworkSpec
from spikestream_client.npz import NpzWriter, check_zip_directory

#: Seconds between moves of recorded changes from memory to the spool files.
SPOOL_INTERVAL = 0.5
#: Longest ``.npy`` header parsed in a log (numpy writes 128 bytes).
HEADER_MAX_BYTES = 4096
#: The number types a run's state may have (``run --dtype``).
RUN_DTYPES = ("float64", "float32")
#: Longest string (network name, dtype name) a log may hold, in characters.
TEXT_MAX_CHARS = 256
#: Most ticks a log may cover: float64 ``t = tick * dt`` stays exact.
MAX_TICKS = 2**53 - 1
_COPY_CHUNK = 1 << 20  # bytes copied from a spool file at a time
#: The largest rate ``set learning_rate`` takes, so the largest a log may hold (the
#: codec's, which a test holds it to: importing the codec here would load msgpack in
#: every ``run``).
LEARNING_RATE_LIMIT = 1.0
#: Bytes a reset or a change of learning costs a replay beyond its member's (the change as
#: an object, its block boundary, the lists and sets that order them): counted in the
#: memory budget, so a log of millions of them is refused before they are made.
EVENT_BYTES = 512
#: Members a log written before learning changes and restores were recorded lacks.
_OPTIONAL = frozenset({"learning.ticks", "learning.values", "restores"})
_NONE = np.zeros(0, np.int64)

_RESET = -1  # input index of a reset entry in the recorder's queue
_LEARNING = -2  # ... of a change of learning (value: [rate or NaN, 1.0/0.0 or NaN])
_RESTORE = -3  # ... of a restore
#: Queue index -> spool key of the entries that are not input changes.
_MARKS = {_RESET: "resets", _LEARNING: "learning", _RESTORE: "restores"}
_I8 = np.dtype("<i8")
_F8 = np.dtype("<f8")


def check_log_target(target: Path, flag: str = "--log-inputs", example: str = "inputs.npz") -> None:
    """Refuse a target the log (or, with ``flag``, another file written at the end of a
    run) could not be saved to, when recording starts rather than when the run ends: an
    existing folder, FIFO or device (the log is renamed into place at the end, and would
    replace a device's node). A missing file or an existing regular file (replaced) is
    fine; the folder is checked by the spool. ``example``: a file name to suggest inside a
    folder given by mistake.

    Raises:
        ConfigError: one line naming the flag, the path and what was expected.
    """
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as err:
        raise ConfigError(f"{flag}: cannot use {str(target)!r}: {err.strerror}") from None
    if stat.S_ISDIR(mode):
        raise ConfigError(
            f"{flag}: {str(target)!r} is a folder; expected a file name, e.g. "
            f"{str(target / example)!r}"
        )
    if not stat.S_ISREG(mode):
        raise ConfigError(
            f"{flag}: {str(target)!r} is not a regular file (a FIFO or device); "
            "expected a file name (an existing file is replaced)"
        )


class InputRecorder:
    """Collects input changes on the tick thread (appends only; no I/O) and spools them.

    Args:
        model: the network whose inputs are recorded.
        target: the log file :meth:`save` writes; the spool folder is created next to it
            (a hidden folder ``.<name>.*.spool``, removed by :meth:`save` or :meth:`close`).
    """

    def __init__(self, model: Model, target: str | Path) -> None:
        self.model = model
        self.target = Path(target)
        self._index = {name: i for i, name in enumerate(model.inputs)}
        # (input index or _RESET, executed tick, value or None); deque.append and popleft
        # are atomic, so the tick thread and the spooler need no lock.
        self._pending: collections.deque[tuple[int, int, npt.NDArray[np.float64] | None]] = (
            collections.deque()
        )
        self._carry: list[tuple[int, int, npt.NDArray[np.float64] | None]] = []
        # One flush at a time (a cancelled spool task's thread may still be flushing when
        # save() flushes): the spool files must stay in tick order. Never taken by the
        # tick thread.
        self._flush_lock = threading.Lock()
        self._spool: Path | None = None
        check_log_target(self.target)
        self._make_spool()
        self._counts = {name: 0 for name in model.inputs}
        self._marks = dict.fromkeys(_MARKS, 0)  # resets, learning changes, restores spooled

    @property
    def in_memory(self) -> int:
        """Changes and resets held in memory, not yet spooled."""
        return len(self._pending) + len(self._carry)

    def record(self, executed: int, name: str, value: npt.NDArray[np.floating]) -> None:
        """Input ``name`` holds ``value`` from executed tick ``executed`` on (tick thread)."""
        self._pending.append((self._index[name], executed, np.array(value, dtype=np.float64)))

    def mark(self, kind: str, executed: int) -> None:
        """Record a ``reset`` or a ``restore`` before executed tick ``executed`` (tick
        thread)."""
        index = {"reset": _RESET, "restore": _RESTORE}.get(kind)
        if index is not None:
            self._pending.append((index, executed, None))

    def learning(
        self, executed: int, *, rate: float | None = None, enabled: bool | None = None
    ) -> None:
        """Record a change of every learning connection's rate or switch (None:
        unchanged) before executed tick ``executed`` (tick thread)."""
        value = np.array(
            [math.nan if rate is None else rate, math.nan if enabled is None else float(enabled)]
        )
        self._pending.append((_LEARNING, executed, value))

    def _make_spool(self) -> Path:
        """The spool folder, created next to the target (so a target in a missing or
        read-only folder is refused when recording starts, not when the run ends).

        Raises:
            ConfigError: the folder cannot be created.
        """
        if self._spool is None:
            parent = self.target.parent
            try:
                self._spool = Path(
                    tempfile.mkdtemp(prefix=f".{self.target.name}.", suffix=".spool", dir=parent)
                )
            except OSError as err:
                raise ConfigError(
                    f"--log-inputs: cannot write next to {str(self.target)!r}: {err.strerror}"
                ) from None
        return self._spool

    def _file(self, key: str) -> Path:
        return self._make_spool() / key

    def flush(self) -> int:
        """Move the changes recorded so far to the spool files (the asyncio side, off the
        tick thread). Returns how many were moved.

        Raises:
            OSError: the spool could not be written; the changes stay in memory and the
                next flush retries them.
        """
        with self._flush_lock:
            return self._flush()

    def _flush(self) -> int:
        batch, self._carry = self._carry, []
        for _ in range(len(self._pending)):
            batch.append(self._pending.popleft())
        if not batch:
            return 0
        names = list(self.model.inputs)
        try:
            chunks: dict[str, list[bytes]] = collections.defaultdict(list)
            for index, executed, value in batch:
                key = _MARKS.get(index, f"{index}")
                chunks[f"{key}.ticks"].append(_I8.type(executed).tobytes())
                if value is not None:
                    chunks[f"{key}.values"].append(value.astype(_F8).tobytes())
            for key, parts in chunks.items():
                with self._file(key).open("ab") as fh:
                    fh.write(b"".join(parts))
        except OSError:
            # Keep every change: spool files are appended only after a whole batch is
            # encoded, so a failed write may leave a partial tail; rewrite from counts.
            self._truncate()
            self._carry = batch
            raise
        for index, _executed, _value in batch:
            if index in _MARKS:
                self._marks[index] += 1
            else:
                self._counts[names[index]] += 1
        return len(batch)

    def _truncate(self) -> None:
        """Cut the spool files back to the entries already counted (after a failed write)."""
        if self._spool is None:
            return
        sizes = {f"{key}.ticks": self._marks[index] * 8 for index, key in _MARKS.items()}
        sizes["learning.values"] = self._marks[_LEARNING] * 2 * 8
        for i, (name, inp) in enumerate(self.model.inputs.items()):
            sizes[f"{i}.ticks"] = self._counts[name] * 8
            sizes[f"{i}.values"] = self._counts[name] * inp.dim * 8
        for key, size in sizes.items():
            path = self._spool / key
            with contextlib.suppress(OSError):
                if path.exists():
                    os.truncate(path, size)

    def save(self, path: str | Path | None = None, *, ticks: int) -> None:
        """Write the log (``ticks`` = ticks executed by the live run) and remove the spool.

        The file is written beside its target and renamed into place, streaming the spool
        (memory does not grow with the log). If writing fails, the spool stays.
        """
        self.flush()
        target = Path(path) if path is not None else self.target
        with NpzWriter(target, compress=True) as out:
            for i, (name, inp) in enumerate(self.model.inputs.items()):
                k = self._counts[name]
                out.add_bytes(f"{name}.ticks", (k,), _I8, self._spooled(f"{i}.ticks"))
                out.add_bytes(f"{name}.values", (k, inp.dim), _F8, self._spooled(f"{i}.values"))
            out.add_bytes("resets", (self._marks[_RESET],), _I8, self._spooled("resets.ticks"))
            learned = self._marks[_LEARNING]
            out.add_bytes("learning.ticks", (learned,), _I8, self._spooled("learning.ticks"))
            out.add_bytes("learning.values", (learned, 2), _F8, self._spooled("learning.values"))
            restores = (self._marks[_RESTORE],)
            out.add_bytes("restores", restores, _I8, self._spooled("restores.ticks"))
            out.add("ticks", np.array(ticks, dtype=np.int64))
            out.add("network", np.array(self.model.name))
            out.add("seed", np.array(self.model.seed, dtype=np.int64))
            out.add("dtype", np.array(self.model.dtype.name))
        self.close()

    def _spooled(self, key: str) -> Iterator[bytes]:
        """The bytes of spool file ``key`` (none if nothing was spooled), in chunks."""
        path = self._make_spool() / key
        if not path.exists():
            return
        with path.open("rb") as src:
            while chunk := src.read(_COPY_CHUNK):
                yield chunk

    def close(self) -> None:
        """Remove the spool folder (the recorded changes are discarded)."""
        if self._spool is not None:
            shutil.rmtree(self._spool, ignore_errors=True)
            self._spool = None


# ---------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class ReplayLog:
    """A validated replay log.

    Attributes:
        ticks: ticks the live run executed.
        network: the network's name; seed: its build seed; dtype: its number type's
            name (``"float64"`` or ``"float32"``, as the log says).
        changes: per input, ``(at, values)``: ticks ``(k,)`` int64, sorted, in
            ``[0, ticks]``, and values ``(k, dim)`` float64, finite, ``|v| <= VALUE_LIMIT``.
        resets: ``(r,)`` int64, sorted, in ``[0, ticks]``.
        learning: the changes of learning, in the order the live run made them: ticks
            ``(m,)`` int64, sorted, in ``[0, ticks]``, and ``(m, 2)`` float64 rows of
            (rate, switch), NaN where unchanged (:meth:`learning_changes` gives them as
            objects, once the budget has counted them).
        restores: ``(s,)`` int64, sorted, in ``[0, ticks]``: ticks before which the live
            run's state was replaced by a snapshot's (which the log does not hold).
        nbytes: bytes the log takes in memory, replayed: its arrays, and
            :data:`EVENT_BYTES` for each reset and change of learning (an object, a
            block boundary and a simulator call each, in the run).
    """

    ticks: int
    network: str
    seed: int
    dtype: str
    changes: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]
    resets: npt.NDArray[np.int64]
    nbytes: int
    learning: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] = (
        np.zeros(0, np.int64),
        np.zeros((0, 2)),
    )
    restores: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))

    def learning_changes(self) -> tuple[LearningChange, ...]:
        """The changes of learning as :func:`~spikestream.runtime.offline.run_blocks`
        takes them."""
        at, values = self.learning
        return tuple(
            LearningChange(
                int(k),
                None if math.isnan(r) else float(r),
                None if math.isnan(e) else bool(e),
            )
            for k, (r, e) in zip(at, values, strict=True)
        )


def load_replay(path: str | Path, spec: NetworkSpec, *, limit: int) -> ReplayLog:
    """Read and validate a replay log for the network ``spec``.

    Args:
        path: the log file.
        spec: the network it is replayed into (its inputs' names and dimensions).
        limit: bytes the log may take once inflated (the memory limit).

    Raises:
        ConfigError: one line naming the file, the key and what was wrong; nothing larger
            than the members' declared sizes (themselves within ``limit``) was inflated.
    """
    return _LogReader(Path(path), spec, limit).read()


class _LogReader:
    def __init__(self, path: Path, spec: NetworkSpec, limit: int) -> None:
        self.path = path
        self.spec = spec
        self.limit = limit
        self.expected: dict[str, tuple[str, tuple[int | None, ...]]] = {
            "ticks": ("int", ()),
            "seed": ("int", ()),
            "resets": ("int", (None,)),
            "learning.ticks": ("int", (None,)),
            "learning.values": ("float", (None, 2)),
            "restores": ("int", (None,)),
            "network": ("text", ()),
            "dtype": ("text", ()),
        }
        for name, inp in spec.inputs.items():
            self.expected[f"{name}.ticks"] = ("int", (None,))
            self.expected[f"{name}.values"] = ("float", (None, inp.dim))

    def refuse(self, why: str) -> ConfigError:
        return ConfigError(f"replay log {str(self.path)!r} refused: {why}")

    def read(self) -> ReplayLog:
        with open_regular(self.path, "--replay", "a replay log (.npz)") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > self.limit:
                raise self.refuse(
                    f"the file is {size} bytes, over the memory limit of {self.limit} bytes"
                )
            try:  # before ZipFile reads the directory whole, an object per member
                # Some to spare: an unexpected member is then named by the member check.
                check_zip_directory(fh, len(self.expected) + 16)
            except ValueError as err:
                raise self.refuse(str(err)) from None
            with zip_refusals(self.refuse), zipfile.ZipFile(fh) as zf:
                arrays = self.members(zf)
        return self.check(arrays)

    def members(self, zf: zipfile.ZipFile) -> dict[str, npt.NDArray[Any]]:
        infos: dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            key = info.filename.removesuffix(".npy")
            if key not in self.expected or not info.filename.endswith(".npy"):
                raise self.refuse(
                    f"unexpected member {info.filename!r}; a log for network "
                    f"{self.spec.name!r} holds {_names(self.expected)}"
                )
            if key in infos:
                raise self.refuse(f"member {info.filename!r} appears twice")
            if info.flag_bits & 0x1 or info.compress_type not in (
                zipfile.ZIP_STORED,
                zipfile.ZIP_DEFLATED,
            ):
                raise self.refuse(
                    f"member {info.filename!r} is encrypted or uses compression method "
                    f"{info.compress_type}; expected stored (0) or deflated (8)"
                )
            infos[key] = info
        missing = [k for k in self.expected if k not in infos and k not in _OPTIONAL]
        if missing:
            raise self.refuse(f"missing {_names(missing)} for network {self.spec.name!r}")
        total = sum(info.file_size for info in infos.values())
        if total > self.limit:
            raise self.refuse(
                f"its members claim {total} bytes uncompressed, over the memory limit of "
                f"{self.limit} bytes"
            )
        return {
            key: read_npy_member(
                zf,
                info,
                max_bytes=info.file_size,
                header_max_bytes=HEADER_MAX_BYTES,
                check_header=functools.partial(self.check_header, key),
                refuse=self.refuse,
            )
            for key, info in infos.items()
        }

    def check_header(self, key: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
        kind, want = self.expected[key]
        if kind == "int":
            expected, ok = "integers", dtype.kind in "iu" and dtype.itemsize <= 8
        elif kind == "float":
            expected, ok = "float64 or float32", dtype.kind == "f" and dtype.itemsize in (4, 8)
        else:
            expected = f"a string of at most {TEXT_MAX_CHARS} characters"
            ok = dtype.kind == "U" and dtype.itemsize <= 4 * TEXT_MAX_CHARS
        if not ok:
            raise self.refuse(f"{key!r} holds {dtype}; expected {expected}")
        fits = len(shape) == len(want) and all(
            w is None or s == w for s, w in zip(shape, want, strict=True)
        )
        if not fits:
            shown = "(" + ", ".join("k" if w is None else str(w) for w in want) + ")"
            shown = "a single value" if not want else f"shape {shown}"
            raise self.refuse(f"{key!r} has shape {shape}; expected {shown}")

    def check(self, arrays: dict[str, npt.NDArray[Any]]) -> ReplayLog:
        ticks = int(arrays["ticks"])
        if not 0 <= ticks <= MAX_TICKS:
            raise self.refuse(f"'ticks' is {ticks}; expected an integer 0 <= ticks <= 2**53-1")
        seed = int(arrays["seed"])
        if not 0 <= seed < 2**63:
            raise self.refuse(f"'seed' is {seed}; expected an integer in [0, 2^63)")
        dtype = str(arrays["dtype"])
        if dtype not in RUN_DTYPES:  # no build has it: "pass --dtype float16" was no help
            raise self.refuse(
                f"'dtype' is {dtype!r:.40}; expected the number type of a run, one of "
                f"{', '.join(RUN_DTYPES)}"
            )
        changes: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = {}
        for name in self.spec.inputs:
            at = self.tick_list(f"{name}.ticks", arrays[f"{name}.ticks"], ticks)
            values = arrays[f"{name}.values"]
            if values.shape[0] != at.shape[0]:
                raise self.refuse(
                    f"'{name}.values' has {values.shape[0]} rows; '{name}.ticks' has "
                    f"{at.shape[0]}: expected one value per change"
                )
            values = values.astype(np.float64, copy=False)
            with np.errstate(invalid="ignore"):
                bad = int(np.count_nonzero(~(np.abs(values) <= VALUE_LIMIT)))  # NaN: False
            if bad:
                raise self.refuse(
                    f"'{name}.values' holds {bad} value(s) that are NaN, infinite or beyond "
                    f"+-{VALUE_LIMIT:g}; expected finite numbers with |value| <= {VALUE_LIMIT:g}"
                )
            changes[name] = (at, values)
        resets = self.tick_list("resets", arrays["resets"], ticks)
        learning = self.learning(arrays, ticks)
        restores = self.tick_list("restores", arrays.get("restores", _NONE), ticks)
        arrays_bytes = sum(a.nbytes + v.nbytes for a, v in changes.values()) + sum(
            a.nbytes for a in (resets, *learning, restores)
        )
        return ReplayLog(
            ticks=ticks,
            network=str(arrays["network"]),
            seed=seed,
            dtype=dtype,
            changes=changes,
            resets=resets,
            learning=learning,
            restores=restores,
            nbytes=arrays_bytes + EVENT_BYTES * (resets.size + learning[0].size),
        )

    def learning(
        self, arrays: dict[str, npt.NDArray[Any]], ticks: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The changes of learning, checked: ticks as any tick list, each rate NaN
        (unchanged) or within the ``set learning_rate`` bounds, each switch NaN, 0 or 1.
        Kept as arrays: an object per row would take several times the member's bytes
        before the budget has seen them."""
        at = self.tick_list("learning.ticks", arrays.get("learning.ticks", _NONE), ticks)
        values = arrays.get("learning.values", np.zeros((0, 2))).astype(np.float64, copy=False)
        if values.shape[0] != at.shape[0]:
            raise self.refuse(
                f"'learning.values' has {values.shape[0]} rows; 'learning.ticks' has "
                f"{at.shape[0]}: expected one row per change"
            )
        rate, switch = values[:, 0], values[:, 1]
        with np.errstate(invalid="ignore"):
            bad_rate = ~(np.isnan(rate) | ((rate >= 0) & (rate <= LEARNING_RATE_LIMIT)))
        bad_switch = ~(np.isnan(switch) | (switch == 0) | (switch == 1))
        if bad_rate.any() or bad_switch.any():
            row = int(np.argmax(bad_rate | bad_switch))
            raise self.refuse(
                f"'learning.values' row {row} is {values[row].tolist()}; expected a rate in "
                f"[0, {LEARNING_RATE_LIMIT:g}] or NaN (unchanged), then 1, 0 or NaN "
                "(learning on, off, or unchanged)"
            )
        return at, values

    def tick_list(self, key: str, raw: npt.NDArray[Any], ticks: int) -> npt.NDArray[np.int64]:
        """``raw`` as int64 if sorted and within ``[0, ticks]``."""
        if raw.size and (raw.dtype == np.uint64 and int(raw.max()) > ticks):
            raise self.refuse(f"{key!r} holds ticks beyond 'ticks' ({ticks})")
        at = raw.astype(np.int64, copy=False)
        if at.size and (int(at.min()) < 0 or int(at.max()) > ticks):
            raise self.refuse(
                f"{key!r} holds ticks from {int(at.min())} to {int(at.max())}; expected ticks "
                f"in [0, {ticks}]"
            )
        if at.size > 1 and bool(np.any(np.diff(at) < 0)):
            first = int(np.argmax(np.diff(at) < 0)) + 1
            raise self.refuse(
                f"{key!r} is out of order at entry {first} ({int(at[first - 1])} then "
                f"{int(at[first])}); expected ticks in increasing order"
            )
        return at


def _names(keys: Any) -> str:
    keys = sorted(keys)
    shown = ", ".join(repr(k) for k in keys[:8])
    return shown + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")


# ---------------------------------------------------------------------------- expansion


def check_build(model: Model, log: ReplayLog) -> None:
    """Refuse a log recorded from another network, seed or number type.

    Raises:
        ConfigError: naming both.
    """
    if log.network != model.name:  # no flag makes them match: --seed is no help
        raise ConfigError(
            f"replay log is for network {log.network!r}; this build is {model.name!r}: "
            "replay it with the network file it was recorded from"
        )
    if log.seed != model.seed:
        raise ConfigError(
            f"replay log is for network {log.network!r} with seed {log.seed}; "
            f"this build is {model.name!r} with seed {model.seed} (pass --seed to match)"
        )
    if log.dtype != model.dtype.name:  # the same inputs in another type: not the same run
        raise ConfigError(
            f"replay log is of a {log.dtype!r} run; this build is {model.dtype.name!r} "
            f"(pass --dtype {log.dtype} to match)"
        )


def replay_block(
    model: Model, log: ReplayLog, start: int, stop: int
) -> dict[str, npt.NDArray[np.float64]]:
    """The inputs fed at ticks ``[start, stop)``: ``{input: (stop - start, dim)}``.

    At each tick an input holds its latest change at or before that tick; a reset at a
    later tick than that change makes it fall back to its default (a reset forgets the
    input until the next message). A change and a reset at the same tick: the change wins
    (the reset happens before the tick, the change is applied at it).
    """
    k = np.arange(start, stop, dtype=np.int64)
    last_reset = np.full(k.shape, -1, np.int64)  # the latest reset at or before each tick
    if log.resets.size:
        r = np.searchsorted(log.resets, k, side="right") - 1
        last_reset[r >= 0] = log.resets[r[r >= 0]]
    out: dict[str, npt.NDArray[np.float64]] = {}
    for name, inp in model.inputs.items():
        at, values = log.changes[name]
        # Row k of `table` is the default: ticks with no live change index it.
        table = np.concatenate([values, np.asarray(inp.default, np.float64).reshape(1, -1)])
        row = np.full(k.shape, at.size, np.int64)
        if at.size:
            i = np.searchsorted(at, k, side="right") - 1
            live = (i >= 0) & (at[np.maximum(i, 0)] >= last_reset)
            row[live] = i[live]
        out[name] = np.take(table, row, axis=0)
    return out


def replay_inputs(
    model: Model, log: ReplayLog, ticks: int | None = None
) -> tuple[int, dict[str, npt.NDArray[np.float64]], npt.NDArray[np.int64]]:
    """Per-tick inputs for the first ``ticks`` ticks of the log (default: all of it):
    ``(ticks, {input: (ticks, dim)}, reset_ticks)``.

    Raises:
        ConfigError: the log belongs to another network, seed or number type.
    """
    check_build(model, log)
    n = log.ticks if ticks is None else min(ticks, log.ticks)
    return n, replay_block(model, log, 0, n), log.resets
