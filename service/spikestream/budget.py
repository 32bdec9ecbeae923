"""The memory budget: the bytes a network file and its settings will allocate.

``spikestream run`` and ``serve`` estimate, from the validated spec alone (before any
array exists), what building, simulating and streaming or recording the network will
allocate, and refuse to start when the estimate exceeds ``--memory-limit``. The live
``set ticks_per_frame`` command takes its upper bound from the same estimate.

The estimate counts the arrays the code keeps, plus the largest temporary of one build
step (the Gram matrix of a decoder solve, the encoders before they are normalised): build
steps run one after another, so their temporaries never coexist. It leaves out the
interpreter, numpy, numba and the MQTT client, a fixed ~100-200 MiB that does not grow
with the network. ``tests/test_budget.py`` checks it against the measured growth of the
peak resident set on a real network (226 MiB estimated, 195 MiB measured).

Sizes (bytes), with ``s`` the state's item size (8 for float64, 4 for float32) and ``P`` the
evaluation points of a decoder solve:

* population: ``5 n`` float64 tuning values and ``n dim`` float64 unit encoders (kept by
  the model; a temporary as large while they are drawn), ``6 n s`` state, ``n`` spike flags
  and ``3 n`` index arrays (8 bytes each);
* input into a population: its ``n dim`` scaled encoders in the state type;
* dense connection: the ``pre.n x post.n`` float64 weights and the simulator's scaled copy
  in the state type (made from a float64 temporary under float32);
* decoded connection or probe: decoders (``n_pre d`` float64, and in the state type, twice
  when learning); while solving, ``4 P n_pre`` float64 (tuning curves at the evaluation
  points), which the Gram matrix and the solver's copy (``2 min(n_pre, P)^2`` float64: the
  dual form with fewer points than neurons) never pass;
  a decoded probe's ``d`` (its values per tick) is its decoders file's columns or its
  expression's widest list when wider than its population;
* ``serve``: each probe's frame pool, ``(queue_capacity + 2) * rows * per-tick bytes`` with
  ``rows = ticks_per_frame`` (``8 * ticks_per_frame`` under ``coalesce``);
* ``run``: per tick, every population's spikes (1 byte per neuron), every probe's value,
  every input's value (float64, and in the state type as fed) and the time axis, for one
  block of at most 64 MiB of ticks (the rest streams to the file); with ``--replay``, the
  validated log (twice: one input's changes are copied while a block is expanded) and, per
  block, the expanded inputs (float64) and four int64 index arrays; an input's samples
  file is read whole for each block it feeds.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from spikestream.errors import ConfigError, SpikestreamError

if TYPE_CHECKING:  # annotations only: the CLI's parsers import this module for a constant
    from spikestream.spec import NetworkSpec, ProbeSpec

__all__ = [
    "COALESCE_FACTOR",
    "DEFAULT_SHARE",
    "LINK_MAX_QUEUED",
    "Estimate",
    "MemoryBudgetError",
    "check_budget",
    "check_frame_sizes",
    "default_limit",
    "estimate_network",
    "estimate_run",
    "estimate_serve",
    "format_bytes",
    "format_count",
    "frame_rows",
    "frame_tick_bound",
    "frame_tick_bounds",
    "parse_bytes",
    "physical_memory",
    "recording_bytes",
    "stream_bytes",
]

#: Under the ``coalesce`` queue policy a queued frame may grow to this many times
#: ``ticks_per_frame``, so its buffers are preallocated that large.
COALESCE_FACTOR: Final = 8

#: The default ``--memory-limit`` is this share of the physical memory (or of the
#: container's cgroup limit, when that is lower).
DEFAULT_SHARE: Final = 0.5

#: Evaluation points of a decoded probe's decoder solve (fixed in ``build``).
PROBE_EVAL_POINTS: Final = 750

_F64: Final = 8
_INTP: Final = 8
_FRAME_VALUE: Final = 4  # value frames carry float32
#: Messages ``serve``'s MQTT link may hold encoded at once (its ``max_queued_outgoing``,
#: which the service passes from here): the outgoing window, the link's reserve of a tenth
#: for statuses and events, and as many again kept from a lost connection to resend.
LINK_MAX_QUEUED: Final = 1000
_LINK_MESSAGES: Final = LINK_MAX_QUEUED + max(16, LINK_MAX_QUEUED // 10) + LINK_MAX_QUEUED
_FRAME_HEADER: Final = 512  # msgpack header keys and names, generously
QueuePolicy = Literal["drop-oldest", "coalesce"]


class MemoryBudgetError(ConfigError, MemoryError):
    """A network and its settings would allocate more than the memory limit allows."""


# --------------------------------------------------------------------------- sizes

_UNITS: Final = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "kib": 2**10,
    "m": 10**6,
    "mb": 10**6,
    "mib": 2**20,
    "g": 10**9,
    "gb": 10**9,
    "gib": 2**30,
    "t": 10**12,
    "tb": 10**12,
    "tib": 2**40,
}
_SIZE: Final = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*")
SIZE_RULE: Final = "a positive size in bytes, e.g. 2GiB, 512MiB, 1.5GB or 1000000"


def parse_bytes(value: str | int | float, *, key: str = "memory_limit") -> int:
    """A size in bytes from ``2GiB``, ``512MiB``, ``1.5GB``, ``1e9`` or a plain number.

    Units: ``B``, ``K``/``KB`` (10^3), ``KiB`` (2^10), likewise ``M``, ``G``, ``T``;
    case-insensitive.

    Raises:
        ConfigError: naming ``key``, the value and what is allowed.
    """
    if isinstance(value, bool):
        raise ConfigError(f"{key}: {value!r} is not allowed; expected {SIZE_RULE}")
    if isinstance(value, int | float):
        number, factor = float(value), 1
    else:
        match = _SIZE.fullmatch(value)
        unit = match.group(2).lower() if match else ""
        if match is None or unit not in _UNITS:
            raise ConfigError(f"{key}: {value!r} is not allowed; expected {SIZE_RULE}")
        number, factor = float(match.group(1)), _UNITS[unit]
    size = number * factor
    if not math.isfinite(size) or size < 1:
        raise ConfigError(f"{key}: {value!r} is not allowed; expected {SIZE_RULE}")
    return int(size)


def format_count(value: int) -> str:
    """An integer as digits, or in exponent form when it would be a wall of them."""
    return str(value) if abs(value) < 10**15 else f"{value:.3e}"


def format_bytes(size: float) -> str:
    """``size`` in binary units with 3 significant digits, e.g. ``'1.50 GiB'``."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(size) >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{int(size)} B"


def _cgroup_limit() -> int | None:
    # cgroup v2, then v1: a container's limit is what the kernel enforces, not the host's.
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # v1 writes a huge number for "no limit"
            return int(text)
    return None


def physical_memory() -> int:
    """Bytes of memory this process may use: physical memory, or the cgroup limit if
    lower. Falls back to 4 GiB where the platform does not say."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        total = 4 * 2**30
    limit = _cgroup_limit()
    return min(total, limit) if limit is not None else total


def default_limit() -> int:
    """The default ``--memory-limit``: :data:`DEFAULT_SHARE` of :func:`physical_memory`."""
    return int(physical_memory() * DEFAULT_SHARE)


# --------------------------------------------------------------------------- estimate


@dataclass(frozen=True)
class Estimate:
    """Estimated bytes, by what allocates them (label -> bytes).

    Attributes:
        parts: Arrays that live as long as the network.
        transient: Temporaries of one build step each (a decoder solve, say); they come
            and go one after another, so only the largest counts toward the peak.
    """

    parts: dict[str, int]
    transient: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """The peak in bytes: every lasting part plus the largest temporary."""
        return sum(self.parts.values()) + max(self.transient.values(), default=0)

    def largest(self, count: int = 2) -> str:
        """The ``count`` largest parts, e.g. ``'connection a->b 224 GiB'``."""
        both = [*self.parts.items(), *((f"building {k}", v) for k, v in self.transient.items())]
        top = sorted(both, key=lambda kv: -kv[1])[:count]
        return ", ".join(f"{label} {format_bytes(size)}" for label, size in top)

    def merged(self, prefix: str, other: Estimate) -> Estimate:
        """This estimate with ``other``'s entries added, their labels prefixed."""
        parts = {**self.parts, **{f"{prefix}{k}": v for k, v in other.parts.items()}}
        transient = {**self.transient, **{f"{prefix}{k}": v for k, v in other.transient.items()}}
        return Estimate(parts, transient)


def _itemsize(spec: NetworkSpec, dtype: str | None) -> int:
    return 4 if (dtype or spec.network.dtype) == "float32" else 8


def _d_out(spec: NetworkSpec, index: int) -> int:
    c = spec.connections[index]
    if isinstance(c.transform, list) and c.transform and isinstance(c.transform[0], list):
        return max(1, len(c.transform[0]))
    return spec.populations[c.post].dim


def _decoder_solve(n_pre: int, points: int) -> int:
    # Tuning curves at the evaluation points (currents, rates and the rate formula's
    # temporaries). The Gram matrix and the solver's copy, 2 min(n, P)^2 (build.
    # solve_decoders solves the dual form when there are fewer points), never pass it.
    return 4 * points * n_pre * _F64


def _function_evaluation(d_in: int, d_out: int, function: str | None, points: int) -> int:
    # The points (points, d_in), the result (points, d_out) and, for an expression, up to
    # two intermediate arrays as wide as its longest list literal at a time (a binary
    # operation's operands): a list of 399 numbers at 10^6 points needs 6.4 GB.
    from spikestream.functions import expression_width  # numpy: not for the CLI's parsers

    width = max(d_in, d_out, expression_width(function) if function else 1)
    return points * (d_in + d_out + 2 * width) * _F64


def _per_tick(spec: NetworkSpec, probe: ProbeSpec, s: int) -> tuple[int, int]:
    """(values per tick, bytes per value in the simulator) of one probe."""
    if probe.kind == "input":
        return spec.inputs[probe.target].dim, s
    pop = spec.populations[probe.target]
    if probe.kind == "spikes":
        return pop.n, 1
    if probe.kind == "decoded":
        return _decoded_width(spec, probe), s
    return pop.n, s


def _decoded_width(spec: NetworkSpec, probe: ProbeSpec) -> int:
    """Values per tick of a decoded probe: as many as its decoders file has columns (read
    from the ``.npy`` header alone), or at most the wider of its population's dim and its
    expression's longest list (a list's elements are one number per point each); not
    necessarily the population's dim. A Python callable's width is not known before it
    runs: the dim is counted (such files are trusted)."""
    dim = spec.populations[probe.target].dim
    if probe.decoders is not None:
        from spikestream.datafiles import NPY_HEADER_MAX_BYTES, open_regular, read_npy_header

        try:
            with open_regular(spec.resolve(probe.decoders), "") as fh:
                shape = read_npy_header(fh, NPY_HEADER_MAX_BYTES)[0]
        except (SpikestreamError, OSError, ValueError, EOFError, SyntaxError):
            return dim  # unreadable: the build refuses it, naming the key
        return max(dim, shape[1]) if len(shape) == 2 else dim
    if probe.function is not None:
        from spikestream.functions import expression_width  # numpy: not for the parsers

        return max(dim, expression_width(probe.function))
    return dim


def frame_rows(ticks_per_frame: int, policy: str) -> int:
    """Rows preallocated per frame buffer: a coalesced frame may grow past its size."""
    return ticks_per_frame * (COALESCE_FACTOR if policy == "coalesce" else 1)


def stream_bytes(
    spec: NetworkSpec,
    *,
    ticks_per_frame: int | None,
    queue_capacity: int,
    queue_policy: str,
) -> dict[str, int]:
    """Bytes of each probe's preallocated frame pool in ``serve``, by probe name.

    Each probe keeps ``queue_capacity`` queued frames, one being filled and one being
    encoded; spike frames hold one byte per neuron and tick, value frames float32.
    """
    out: dict[str, int] = {}
    for name, probe in spec.probes.items():
        values, _ = _per_tick(spec, probe, 8)
        item = 1 if probe.kind == "spikes" else _FRAME_VALUE
        rows = frame_rows(ticks_per_frame or probe.ticks_per_frame, queue_policy)
        out[name] = (queue_capacity + 2) * rows * values * item
    return out


def frame_tick_bound(kind: Literal["spikes", "values"], width: int, queue_policy: str) -> int:
    """The largest ``ticks_per_frame`` whose frames every client decodes, for a probe of
    ``width`` neurons or values a tick: a frame within the protocol's 16 MiB
    (:func:`spikestream_client.codec.frame_ticks_limit`), a coalesced one grown
    ``COALESCE_FACTOR``-fold included."""
    from spikestream_client.codec import frame_ticks_limit  # numpy: not for the parsers

    return frame_ticks_limit(kind, width) // frame_rows(1, queue_policy)


def frame_tick_bounds(spec: NetworkSpec, queue_policy: str) -> dict[str, int]:
    """:func:`frame_tick_bound` of every probe of ``spec``, by name."""
    out: dict[str, int] = {}
    for name, probe in spec.probes.items():
        values, _ = _per_tick(spec, probe, 8)
        kind: Literal["spikes", "values"] = "spikes" if probe.kind == "spikes" else "values"
        out[name] = frame_tick_bound(kind, values, queue_policy)
    return out


def check_frame_sizes(spec: NetworkSpec, *, ticks_per_frame: int | None, queue_policy: str) -> None:
    """Refuse settings under which a probe's frames could not be decoded by a client.

    A service once published frames of any size: past 16 MiB every client dropped them
    unread, and a broker with a packet limit (``max_packet_size``) closed the service's
    connection at each one.

    Raises:
        ConfigError: naming the network, the probe, ``ticks_per_frame`` and the most it
            allows.
    """
    bounds = frame_tick_bounds(spec, queue_policy)
    for name, probe in spec.probes.items():
        asked = ticks_per_frame or probe.ticks_per_frame
        if asked > bounds[name]:
            grown = (
                f" (up to {frame_rows(asked, queue_policy)} ticks once coalesced)"
                if queue_policy == "coalesce"
                else ""
            )
            raise ConfigError(
                f"network {spec.name!r}, probe {name!r}: ticks_per_frame={asked} makes frames"
                f"{grown} larger than the 16 MiB a client decodes; expected ticks_per_frame "
                f"<= {bounds[name]} for this probe"
            )


def _network(spec: NetworkSpec, s: int) -> Estimate:
    parts: dict[str, int] = {}
    transient: dict[str, int] = {}
    pops = spec.populations
    # Half-precision weights: each matrix the tick reads also has a float16 copy, and
    # decoders that do not learn a rounded copy beside the state (spikestream.sim.weights).
    h = 2 if spec.network.weights_dtype == "float16" else 0
    for name, p in pops.items():
        # Tuning values and unit encoders (float64, kept by the model), the simulator's
        # state; the encoders are drawn into a temporary before they are normalised.
        parts[f"population {name}"] = (
            5 * p.n * _F64 + p.n * p.dim * _F64 + 6 * p.n * s + p.n + 3 * p.n * _INTP
        )
        transient[f"population {name}"] = p.n * p.dim * _F64
    for name, inp in spec.inputs.items():
        if inp.target is not None:
            p = pops[inp.target]
            parts[f"input {name}"] = p.n * p.dim * (s + h)
            transient[f"input {name}"] = p.n * p.dim * _F64
    for i, c in enumerate(spec.connections):
        post = pops[c.post]
        label = f"connection {c.label}"
        parts[label] = post.n * s * 2
        if c.kind == "input":
            # The filtered input and its temporary, and the folded encoders (post.n, dim).
            dim = spec.inputs[c.pre].dim
            parts[label] += 2 * dim * s + post.n * dim * (s + h) + post.dim * dim * _F64
            continue
        pre = pops[c.pre]
        if c.kind == "dense":
            # The float64 weights and the simulator's scaled copy in the state type; a
            # float32 copy is made from a float64 temporary.
            parts[label] += pre.n * post.n * (_F64 + s + h)
            if s != _F64:
                transient[label] = pre.n * post.n * _F64
        else:
            d = _d_out(spec, i)
            learning = 2 if c.learning is not None else 1
            parts[label] += pre.n * d * (_F64 + learning * s) + post.n * post.dim * s
            if h and c.learning is None:
                # The rounded decoders and both copies, and the folded encoders' copy
                # (post.n, d), transposed for the compiled tick, with its own copy.
                parts[label] += pre.n * d * (s + h) + post.n * d * (2 * s + 2 * h)
            if c.decoders is None:  # solved here; a decoders file is only read
                transient[label] = max(
                    _decoder_solve(pre.n, c.eval_points),
                    _function_evaluation(pre.dim, d, c.function, c.eval_points),
                )
    for name, probe in spec.probes.items():
        values, item = _per_tick(spec, probe, s)
        parts[f"probe {name}"] = values * item
        if probe.kind == "decoded":
            pop = pops[probe.target]
            parts[f"probe {name}"] += pop.n * values * (_F64 + s + h)
            if probe.decoders is None:
                transient[f"probe {name}"] = max(
                    _decoder_solve(pop.n, PROBE_EVAL_POINTS),
                    _function_evaluation(pop.dim, values, probe.function, PROBE_EVAL_POINTS),
                )
    return Estimate(parts, transient)


def estimate_network(spec: NetworkSpec, *, dtype: str | None = None) -> Estimate:
    """Bytes building and simulating ``spec`` allocates, without frames or recordings."""
    return _network(spec, _itemsize(spec, dtype))


def estimate_serve(
    spec: NetworkSpec,
    *,
    dtype: str | None = None,
    ticks_per_frame: int | None = None,
    queue_capacity: int,
    queue_policy: str = "drop-oldest",
) -> Estimate:
    """Bytes ``serve`` allocates for ``spec``: the network and every probe's frame pool."""
    est = _network(spec, _itemsize(spec, dtype))
    pools = stream_bytes(
        spec,
        ticks_per_frame=ticks_per_frame,
        queue_capacity=queue_capacity,
        queue_policy=queue_policy,
    )
    for name, size in pools.items():
        est.parts[f"frames of {name}"] = size
    # Encoded frames waiting in (or kept for) the MQTT link: at most _LINK_MESSAGES of
    # them, each at most the largest frame (a value frame's float32 rows plus its header).
    largest = max(
        (
            size // (queue_capacity + 2) * (_FRAME_VALUE if spec.probes[n].kind == "spikes" else 1)
            for n, size in pools.items()
        ),
        default=0,
    )
    if largest:
        est.parts["MQTT send queue"] = _LINK_MESSAGES * (largest + _FRAME_HEADER)
    return est


def _run_per_tick(spec: NetworkSpec, s: int) -> tuple[int, int]:
    """(bytes ``run`` records per tick, input values per tick) of ``spec``."""
    per_tick = 2 * _F64  # the time axis, and the input signals' sample times
    per_tick += sum(p.n for p in spec.populations.values())
    for probe in spec.probes.values():
        values, item = _per_tick(spec, probe, s)
        per_tick += values * item
    input_values = sum(inp.dim for inp in spec.inputs.values())
    return per_tick + input_values * _F64, input_values


def recording_bytes(spec: NetworkSpec, *, ticks: int, dtype: str | None = None) -> int:
    """Bytes of the per-tick arrays of a ``run`` of ``ticks`` ticks (about the size of
    its uncompressed ``.npz``)."""
    return ticks * _run_per_tick(spec, _itemsize(spec, dtype))[0]


def _signal_file_bytes(spec: NetworkSpec, relative: str) -> int:
    """What reading an input's samples file allocates while a block is fed: the values as
    read, their float64 copy and the finiteness check's float64 and boolean temporaries.
    A ``.npy`` file's value count comes from its header; a CSV file holds at most one
    value per two bytes (``0,``). An unreadable file counts 0: the run refuses it."""
    from spikestream.datafiles import NPY_HEADER_MAX_BYTES, open_regular, read_npy_header

    path = spec.resolve(relative)
    try:
        with open_regular(path, "") as fh:
            if path.suffix != ".npy":
                size = os.fstat(fh.fileno()).st_size
                return size + (size // 2 + 1) * (3 * _F64 + 2)
            shape, _, dtype = read_npy_header(fh, NPY_HEADER_MAX_BYTES)
    except (SpikestreamError, OSError, ValueError, EOFError, SyntaxError):
        return 0
    return math.prod(shape) * (dtype.itemsize + 2 * _F64 + 2)


def estimate_run(
    spec: NetworkSpec,
    *,
    ticks: int,
    dtype: str | None = None,
    block_bytes: int | None = None,
    replay_bytes: int | None = None,
) -> Estimate:
    """Bytes ``run`` allocates for ``ticks`` ticks of ``spec``: the network, and every
    population's spikes, probe, input and the time axis recorded per tick.

    With ``block_bytes``, the recording is held one block of ticks at a time (the rest is
    streamed to the file), as ``run`` does: rows for ``min(ticks, block_bytes // per tick)``
    ticks, plus each input's signal for the block in the state type (what the simulator
    feeds from). ``replay_bytes``: the inputs come from a log of that many bytes in memory
    (:attr:`~spikestream.runtime.replay.ReplayLog.nbytes`), expanded block by block.
    """
    from spikestream.spec import FileSignal  # the spec is loaded by now

    s = _itemsize(spec, dtype)
    est = _network(spec, s)
    per_tick, input_values = _run_per_tick(spec, s)
    for name, inp in spec.inputs.items():
        if isinstance(inp.signal, FileSignal) and replay_bytes is None:
            est.parts[f"signal file of input {name}"] = _signal_file_bytes(spec, inp.signal.path)
    if block_bytes is None:
        est.parts[f"recording {format_count(ticks)} ticks"] = ticks * per_tick
        return est
    rows = max(1, min(ticks, block_bytes // max(1, per_tick)))
    est.parts[f"recording blocks of {format_count(rows)} ticks"] = rows * (
        per_tick + input_values * s
    )
    if replay_bytes is not None:
        # replay_block: the log and one input's changes copied with its default row; per
        # block, the inputs in float64 and the tick, reset and two change-index arrays.
        est.parts["replay log"] = 2 * replay_bytes
        est.parts["replayed inputs per block"] = rows * (input_values * _F64 + 4 * _F64)
    return est


def check_budget(what: str, estimate: Estimate, limit: int) -> None:
    """Raise unless ``estimate.total <= limit``.

    Raises:
        MemoryBudgetError: one line: what was asked, the estimate (and its largest parts)
            and the limit.
    """
    total = estimate.total
    if total > limit:
        raise MemoryBudgetError(
            f"{what} would allocate about {format_bytes(total)} ({format_count(total)} bytes; "
            f"largest: "
            f"{estimate.largest()}), over the memory limit of {format_bytes(limit)} "
            f"({format_count(limit)} bytes); shrink the network or its settings, or raise "
            "--memory-limit"
        )
