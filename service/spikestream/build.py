"""Builder: turn a :class:`~spikestream.spec.NetworkSpec` into arrays, allocated once.

Tuning follows the seed and Nengo's ``LIF.gain_bias``: ``max_rates ~ U[lo, hi]``,
``intercepts ~ U[lo, hi]``, encoders standard normal normalised to unit length, and

    x    = 1 / (1 - exp((tau_ref - 1/max_rate) / tau_rc))
    gain = (1 - x) / (intercept - 1)
    bias = 1 - gain * intercept

Every draw uses a ``numpy.random.Generator`` seeded from the network seed and the name of
what is drawn, so adding a population does not change the draws of the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import math
import zlib
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from spikestream.datafiles import check_values, load_npy
from spikestream.decodercache import DecoderCache
from spikestream.errors import BuildError, NetworkFileError, SpikestreamError
from spikestream.functions import compile_function
from spikestream.spec import (
    ConnectionSpec,
    NetworkSpec,
    PopulationSpec,
    ProbeSpec,
    WeightsDist,
    WeightsFile,
)

FloatArray = npt.NDArray[np.float64]


def gain_bias(
    max_rates: FloatArray, intercepts: FloatArray, tau_rc: float, tau_ref: float
) -> tuple[FloatArray, FloatArray]:
    """Gain and bias that give each neuron its max rate (Hz) at ``x = 1`` and zero rate below
    its intercept. Arrays of shape ``(n,)``.

    Raises:
        BuildError: a max rate is at or above ``1/tau_ref`` (unreachable by a LIF neuron).
    """
    if tau_ref > 0 and np.any(max_rates >= 1.0 / tau_ref):
        bad = float(np.max(max_rates))
        raise BuildError(
            f"max rate {bad} Hz is not reachable: LIF rates must be < 1/tau_ref = "
            f"{1.0 / tau_ref:g} Hz"
        )
    with np.errstate(all="ignore"):  # reported below, as a BuildError
        x = 1.0 / (1.0 - np.exp((tau_ref - 1.0 / max_rates) / tau_rc))
        gain = (1.0 - x) / (intercepts - 1.0)
        bias = 1.0 - gain * intercepts
    if not (np.all(np.isfinite(gain)) and np.all(np.isfinite(bias))):
        raise BuildError(
            f"max rates up to {float(np.max(max_rates))} Hz with tau_rc = {tau_rc} s and "
            f"tau_ref = {tau_ref} s give a non-finite gain or bias; lower the max rates or "
            "change the time constants"
        )
    return gain, bias


def lif_rates(j: FloatArray, tau_rc: float, tau_ref: float) -> FloatArray:
    """Analytic LIF firing rate (Hz) for constant input current ``j`` (any shape).

    ``rate = 1 / (tau_ref - tau_rc * log(1 - 1/J))`` for ``J > 1``, else 0.
    """
    j = np.asarray(j, dtype=np.float64)
    out = np.zeros_like(j)
    above = j > 1.0
    out[above] = 1.0 / (tau_ref + tau_rc * np.log1p(1.0 / (j[above] - 1.0)))
    return out


def _rng(seed: int, *key: str) -> np.random.Generator:
    # crc32 is stable across processes (unlike hash()), so draws depend only on the names.
    words = [seed, *(zlib.crc32(k.encode()) for k in key)]
    return np.random.default_rng(np.random.SeedSequence(words))


def sample_ball(rng: np.random.Generator, points: int, dim: int) -> FloatArray:
    """Points uniformly distributed in the unit ball, shape ``(points, dim)``."""
    v = rng.standard_normal((points, dim))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    radius = rng.uniform(0.0, 1.0, size=(points, 1)) ** (1.0 / dim)
    return v * radius


@dataclass(eq=False)
class Population:
    """Arrays of one LIF population. All per-neuron arrays have shape ``(n,)``."""

    name: str
    n: int
    dim: int
    tau_rc: float
    tau_ref: float
    min_voltage: float
    max_rates: FloatArray
    intercepts: FloatArray
    gain: FloatArray
    bias: FloatArray
    encoders: FloatArray  # (n, dim), unit rows
    radius: float = 1.0
    initial_voltage: FloatArray | None = None  # (n,); None: every neuron starts at 0

    @property
    def scaled_encoders(self) -> FloatArray:
        """``encoders * (gain / radius)``, shape ``(n, dim)``: input current per unit of x
        (Nengo's ``scaled_encoders``, computed the same way)."""
        return self.encoders * (self.gain / self.radius)[:, None]

    def rates(self, x: FloatArray) -> FloatArray:
        """Steady-state rates (Hz) for represented values ``x`` of shape ``(points, dim)``;
        returns ``(points, n)``."""
        j = x @ self.scaled_encoders.T + self.bias
        return lif_rates(j, self.tau_rc, self.tau_ref)


@dataclass(eq=False)
class Connection:
    """A connection from ``pre`` to ``post``.

    Dense connections hold ``weights`` of shape ``(pre.n, post.n)`` and add
    ``W.T @ lowpass(spikes)`` to the post current, without gain.

    Decoded connections hold ``decoders`` of shape ``(pre.n, d_out)`` and ``transform``
    of shape ``(post.dim, d_out)``; the post current is ``gain * E @ T @ lowpass(D.T @ s)``,
    kept factored so a tick costs ``O((pre.n + post.n) * d)``.
    """

    name: str
    pre: str
    post: str
    synapse: float
    weights: FloatArray | None = None
    decoders: FloatArray | None = None
    transform: FloatArray | None = None
    function: str | None = None
    learning_rate: float = 0.0
    learning_enabled: bool = False
    error_input: str | None = None
    error_synapse: float = 0.0  # lowpass of the error input before PES uses it, s
    from_input: bool = False  # pre is an input: post current = gain * E @ T @ lowpass(x)

    @property
    def decoded(self) -> bool:
        """True for a factored (NEF) connection."""
        return self.decoders is not None


@dataclass(eq=False)
class Input:
    """An input value of dimension ``dim`` encoded into ``target`` (or into nothing)."""

    name: str
    dim: int
    target: str | None
    default: FloatArray  # (dim,)
    ttl: float | None


@dataclass(eq=False)
class Probe:
    """What a probe records. ``decoders`` (``(n, d)``) is set for ``kind == "decoded"``."""

    name: str
    target: str
    kind: str
    synapse: float
    ticks_per_frame: int
    decoders: FloatArray | None = None


@dataclass(eq=False)
class Model:
    """A built network: every array the simulator needs, allocated once."""

    spec: NetworkSpec
    name: str
    dt: float
    dtype: np.dtype[np.floating]
    seed: int
    populations: dict[str, Population]
    connections: list[Connection]
    inputs: dict[str, Input]
    probes: dict[str, Probe]
    order: list[str] = field(default_factory=list)
    #: How the simulator stores the matrices its tick reads: None for the state dtype,
    #: float16 for half precision (``network.weights_dtype``; spikestream.sim.weights).
    weights_dtype: np.dtype[np.floating] | None = None

    def arrays(self) -> dict[str, FloatArray]:
        """Parameters in the ``.npz`` layout: ``<pop>.gain``, ``<pre>-><post>.weights``, …"""
        out: dict[str, FloatArray] = {}
        for p in self.populations.values():
            for key in ("gain", "bias", "encoders", "max_rates", "intercepts"):
                out[f"{p.name}.{key}"] = getattr(p, key)
        for c in self.connections:
            if c.weights is not None:
                out[f"{c.name}.weights"] = c.weights
            elif c.from_input:
                assert c.transform is not None
                out[f"{c.name}.transform"] = c.transform
            else:
                assert c.decoders is not None
                assert c.transform is not None
                out[f"{c.name}.decoders"] = c.decoders
                out[f"{c.name}.transform"] = c.transform
        return out


def _refuse_outside(
    values: FloatArray, bad: npt.NDArray[np.bool_], where: str, file: str, allowed: str
) -> None:
    """Refuse a per-neuron file with ``bad`` values, naming the first and how many."""
    if np.any(bad):
        i = int(np.argmax(bad))
        raise BuildError(
            f"{where}: {file!r} holds {int(bad.sum())} value(s) outside the allowed range "
            f"(neuron {i}: {float(values[i])!r}); expected {allowed}"
        )


def _build_population(spec: NetworkSpec, name: str, p: PopulationSpec, seed: int) -> Population:
    rng = _rng(p.seed, "population") if p.seed is not None else _rng(seed, "population", name)
    where = f"populations.{name}"
    max_rates = _per_neuron(spec, p.max_rates, p.n, rng, f"{where}.max_rates")
    intercepts = _per_neuron(spec, p.intercepts, p.n, rng, f"{where}.intercepts")
    if isinstance(p.max_rates, str):
        # A LIF neuron fires below 1/tau_ref; without a refractory period, at any rate.
        top = 1.0 / p.tau_ref if p.tau_ref > 0 else math.inf
        _refuse_outside(
            max_rates,
            (max_rates <= 0) | (max_rates >= top),
            f"{where}.max_rates",
            p.max_rates,
            f"rates in (0, {top:g}) Hz (below 1/tau_ref)",
        )
    if isinstance(p.intercepts, str):
        # 1 itself gives a neuron of infinite gain, as an inline high of 1 never draws.
        _refuse_outside(
            intercepts,
            (intercepts < -1) | (intercepts >= 1),
            f"{where}.intercepts",
            p.intercepts,
            "values in [-1, 1)",
        )
    if isinstance(p.initial_voltage, str):
        starts = _load_array(spec, p.initial_voltage, (p.n,), f"{where}.initial_voltage")
        if np.any(starts > 1):
            raise BuildError(
                f"{where}.initial_voltage: {p.initial_voltage!r} holds voltages above 1 (the "
                f"highest {float(starts.max())!r}); start voltages must be <= 1, the threshold"
            )
        v0: FloatArray | None = starts
    elif p.initial_voltage != 0:  # finite: the spec bounds it
        v0 = np.full(p.n, p.initial_voltage)
    else:
        v0 = None
    if p.encoders is None:
        enc = rng.standard_normal((p.n, p.dim))
    elif isinstance(p.encoders, str):
        enc = _load_array(spec, p.encoders, (p.n, p.dim), f"populations.{name}.encoders")
    else:
        enc = np.asarray(p.encoders, dtype=np.float64)
    norms = np.linalg.norm(enc, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise BuildError(
            f"populations.{name}.encoders: row {int(np.argmin(norms))} is all zeros; "
            "encoders must be non-zero vectors"
        )
    # Rows already of unit length (up to rounding) are kept bit for bit, so imported
    # encoders give exactly the scaled encoders their source built.
    unit = np.abs(norms - 1.0) <= 4 * np.finfo(np.float64).eps
    enc = np.where(unit, enc, enc / norms)
    try:
        gain, bias = gain_bias(max_rates, intercepts, p.tau_rc, p.tau_ref)
    except BuildError as err:
        raise BuildError(f"populations.{name}.max_rates: {err}") from None
    return Population(
        name=name,
        n=p.n,
        dim=p.dim,
        tau_rc=p.tau_rc,
        tau_ref=p.tau_ref,
        min_voltage=p.min_voltage,
        max_rates=max_rates,
        intercepts=intercepts,
        gain=gain,
        bias=bias,
        encoders=enc,
        radius=p.radius,
        initial_voltage=v0,
    )


def _per_neuron(
    spec: NetworkSpec,
    value: tuple[float, float] | str,
    n: int,
    rng: np.random.Generator,
    where: str,
) -> FloatArray:
    """``n`` values drawn uniformly from a ``[low, high]`` range, or read from a file."""
    if isinstance(value, str):
        return _load_array(spec, value, (n,), where)
    return rng.uniform(value[0], value[1], size=n)


def _load_array(spec: NetworkSpec, relative: str, shape: tuple[int, ...], where: str) -> FloatArray:
    path = spec.resolve(relative)

    def check(found: tuple[int, ...]) -> None:
        if found != shape:
            raise BuildError(f"{where}: {str(path)!r} has shape {found}; expected {shape}")

    data = load_npy(path, where, check)  # refused from its header, before it is read
    check(data.shape)
    return check_values(data, path, where)


#: Neurons from which decoders are solved with BLAS on one thread (a crash was seen from
#: about 15,500 neurons: well below that, so other point counts and BLAS builds keep a
#: margin; see solve_decoders).
BLAS_ONE_THREAD_FROM = 4096


def solve_decoders(activities: FloatArray, targets: FloatArray, reg: float) -> FloatArray:
    """Regularised least squares (Nengo's ``LstsqL2``).

    Solves ``(A.T A + m sigma^2 I) D = A.T Y``. With fewer points than neurons it solves
    the same problem in its dual form, ``D = A.T (A A.T + m sigma^2 I)^-1 Y`` (the two are
    equal for ``sigma > 0``), as Nengo's solver does: a ``points x points`` system instead
    of ``n x n``, so a population of 4,000 neurons at 750 points solves 30 times faster
    and its Gram matrix takes 4.5 MB instead of 128 MB. Without regularisation
    (``sigma = 0``) it returns the minimum-norm least-squares solution of ``A D = Y``.

    Args:
        activities: rates of the pre neurons at the evaluation points, ``(points, n)`` Hz.
        targets: function values at the evaluation points, ``(points, d)``.
        reg: regularisation as a fraction of the largest rate (``sigma = reg * max(A)``).

    Returns:
        Decoders of shape ``(n, d)``.
    """
    points, n = activities.shape
    with contextlib.ExitStack() as stack:
        if n >= BLAS_ONE_THREAD_FROM:
            # OpenBLAS 0.3.31 (numpy 2.4's wheel) with 2 threads segfaults computing the
            # Gram matrix of 750 points by ~15,500+ neurons (its threaded dsyrk, which
            # numpy calls for A.T @ A; fine at 15,000, or with one thread): a decoded
            # probe on a population of 16,000 killed the build. One thread was no slower
            # there, and threadpoolctl (~20 ms to import and scan the loaded libraries)
            # is paid only by solves of this size. (A @ A.T, the dual form's product, is
            # dsyrk too, over as many neurons: kept on one thread as well.)
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(limits=1, user_api="blas"))
        sigma = reg * float(activities.max()) if activities.size else 0.0
        if sigma == 0.0:
            # No regularisation (reg = 0, or a silent population): both Gram matrices may
            # be singular, and np.linalg.solve does not always notice. The minimum-norm
            # least-squares solution of A D = Y is defined whatever the shapes.
            return np.asarray(np.linalg.lstsq(activities, targets, rcond=None)[0], np.float64)
        dual = points < n
        if dual:
            gram = activities @ activities.T
            rhs = np.asarray(targets, dtype=np.float64)
        else:
            gram = activities.T @ activities
            rhs = activities.T @ targets
        gram[np.diag_indices_from(gram)] += points * sigma**2
        solved = np.linalg.solve(gram, rhs)  # positive definite: sigma > 0
        return np.asarray(activities.T @ solved if dual else solved, dtype=np.float64)


def decoders_for(
    pop: Population,
    function: str | None,
    *,
    reg: float,
    points: int,
    rng: np.random.Generator,
    where: str,
    cache: DecoderCache,
    allow_python: bool = False,
) -> tuple[FloatArray, int]:
    """Decoders of ``function`` (identity if None) for ``pop``; returns ``(D, d_out)``.

    ``allow_python`` lets ``function`` name a Python callable (``"module:attr"``), which
    imports and runs that module's code. ``cache``: the build's decoder cache (listed
    once, trimmed by the build when it ends).

    Raises:
        NetworkFileError: ``function`` is not an allowed expression or callable.
        BuildError: it fails, takes too long, or is not finite over the evaluation points.
    """
    eval_points = sample_ball(rng, points, pop.dim) * pop.radius
    if function is None:
        targets = eval_points
    else:
        fn = compile_function(function, where=where, allow_python=allow_python)
        try:
            targets = fn(eval_points)
        except SpikestreamError:
            raise
        except MemoryError:
            # A vector result of many components over many points (the memory budget
            # counts eval_points by dim, not by the function's output width).
            raise BuildError(
                f"{where}: {function!r} over {points} evaluation points needs more memory "
                "than is available; lower eval_points or the number of outputs"
            ) from None
        except (ValueError, TypeError, IndexError, ArithmeticError) as err:
            raise BuildError(
                f"{where}: {function!r} failed on points of shape {eval_points.shape}: {err}"
            ) from None
        _check_targets(targets, eval_points, function, where)
    # The key digests what the solve reads (rates at the points, the targets, reg) after
    # the function ran under its own checks and deadline, so neither the function's text
    # nor allow_python_functions can make a stale entry match; decoders read from files
    # never come here.
    key = _decoder_key(pop, eval_points, targets, reg)
    d = cache.get(key, (pop.n, targets.shape[1]))
    if d is None:
        d = solve_decoders(pop.rates(eval_points), targets, reg)
        if not np.all(np.isfinite(d)):
            raise BuildError(f"{where}: the decoders solved for {function or 'x'!r} are not finite")
        cache.put(key, d)
    return d, targets.shape[1]


def _check_targets(targets: FloatArray, points: FloatArray, function: str, where: str) -> None:
    """Refuse values of ``function`` at ``points`` (``(points, d)``) that are not one finite
    row per point, naming a point where it fails."""
    count = points.shape[0]
    if targets.ndim != 2 or targets.shape[0] != count or targets.shape[1] == 0:
        raise BuildError(
            f"{where}: {function!r} returned values of shape {targets.shape} for "
            f"{count} points; expected one row of at least one number per point"
        )
    bad = ~np.all(np.isfinite(targets), axis=1)
    if np.any(bad):
        first = int(np.argmax(bad))
        raise BuildError(
            f"{where}: {function!r} is not finite at {int(bad.sum())} of {count} evaluation "
            f"points (e.g. x = {np.round(points[first], 4).tolist()} gives "
            f"{targets[first].tolist()}), which is not allowed; a decoded function must be "
            "finite over the unit ball"
        )


def _decoder_key(pop: Population, eval_points: FloatArray, targets: FloatArray, reg: float) -> str:
    """A digest of everything the solve reads: the neurons' rates are set by the scaled
    encoders (radius included), bias, ``tau_rc`` and ``tau_ref``; then the points (scaled
    by the radius), the targets and ``reg``."""
    h = hashlib.sha256(b"spikestream decoders v3")
    for arr in (pop.scaled_encoders, pop.bias, eval_points, targets):
        a = np.ascontiguousarray(arr, dtype=np.float64)
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    h.update(np.array([pop.tau_rc, pop.tau_ref, reg], np.float64).tobytes())
    return h.hexdigest()


def _build_connection(
    spec: NetworkSpec,
    i: int,
    c: ConnectionSpec,
    pops: dict[str, Population],
    seed: int,
    allow_python: bool,
    cache: DecoderCache,
) -> Connection:
    post = pops[c.post]
    where = f"connections[{i}]"
    if c.kind == "input":
        dim = spec.inputs[c.pre].dim
        return Connection(
            name=c.label,
            pre=c.pre,
            post=c.post,
            synapse=c.synapse,
            transform=_transform(c, where, post.dim, dim, f"input {c.pre!r} has dim = {dim}"),
            from_input=True,
        )
    pre = pops[c.pre]
    if c.weights is not None:
        shape = (pre.n, post.n)
        if isinstance(c.weights, WeightsFile):
            w = _load_array(spec, c.weights.file, shape, f"{where}.weights.file")
        else:
            wd: WeightsDist = c.weights
            rng = (
                _rng(wd.seed, "weights") if wd.seed is not None else _rng(seed, "weights", c.label)
            )
            if wd.dist == "normal":
                w = rng.normal(wd.mean, wd.std, size=shape)
            else:
                w = rng.uniform(wd.low, wd.high, size=shape)
        return Connection(name=c.label, pre=c.pre, post=c.post, synapse=c.synapse, weights=w)
    if c.decoders is not None:
        if isinstance(c.transform, list):
            width = (len(c.transform[0]), "the transform's columns")  # rows of one length
        else:
            width = (
                post.dim,
                f"post population {c.post!r} has dim = {post.dim}; a transform "
                f"matrix of shape ({post.dim}, d_out) takes another width",
            )
        decoders = _load_decoders(spec, c.decoders, pre.n, f"{where}.decoders", width)
        d_out = decoders.shape[1]
        what = f"decoders {c.decoders!r} give {d_out} value(s)"
    else:
        decoders, d_out = decoders_for(
            pre,
            c.function,
            reg=c.reg,
            points=c.eval_points,
            rng=_rng(seed, "eval_points", c.label),
            where=f"{where}.function",
            allow_python=allow_python,
            cache=cache,
        )
        what = f"function {c.function!r} returns {d_out} value(s) per point"
    transform = _transform(c, where, post.dim, d_out, what)
    learn = c.learning
    return Connection(
        name=c.label,
        pre=c.pre,
        post=c.post,
        synapse=c.synapse,
        decoders=decoders,
        transform=transform,
        function=c.function,
        learning_rate=learn.rate if learn else 0.0,
        learning_enabled=bool(learn and learn.enabled),
        error_input=learn.error if learn else None,
        error_synapse=learn.synapse if learn else 0.0,
    )


def _load_decoders(
    spec: NetworkSpec, relative: str, n: int, where: str, width: tuple[int, str] | None = None
) -> FloatArray:
    """Decoders from a ``.npy`` file of shape ``(n, d_out)``; ``width``: the ``d_out``
    required, and why (a connection's, which the memory budget counted), or None (a
    probe's, any)."""
    path = spec.resolve(relative)

    def check(found: tuple[int, ...]) -> None:
        # From the header: a file of the wrong width is refused before it is read.
        if len(found) != 2 or found[0] != n or (width is not None and found[1] != width[0]):
            d_out = "d_out" if width is None else f"{width[0]}"
            why = "" if width is None else f" ({width[1]})"
            raise BuildError(
                f"{where}: {str(path)!r} has shape {found}; expected shape ({n}, {d_out}){why}"
            )

    # A regular file whose header fits it, refused from its header or else read once.
    data = load_npy(path, where, check)
    check(data.shape)
    return check_values(data, path, where)


def _transform(c: ConnectionSpec, where: str, post_dim: int, d_out: int, what: str) -> FloatArray:
    """The ``(post_dim, d_out)`` transform of ``c``: its matrix, or its scalar times the
    identity (which needs ``d_out == post_dim``)."""
    if isinstance(c.transform, list):
        transform = np.asarray(c.transform, dtype=np.float64)
        if transform.ndim != 2 or transform.shape != (post_dim, d_out):
            raise BuildError(
                f"{where}.transform: shape {transform.shape}; expected (post.dim, d_out) = "
                f"({post_dim}, {d_out})"
            )
        return transform
    if d_out != post_dim:
        raise BuildError(
            f"{where}: {what} but post population {c.post!r} has dim = {post_dim}; add a "
            f"transform matrix of shape ({post_dim}, {d_out})"
        )
    return c.transform * np.eye(post_dim)


def _build_probe(
    name: str,
    p: ProbeSpec,
    pops: dict[str, Population],
    spec: NetworkSpec,
    seed: int,
    allow_python: bool,
    cache: DecoderCache,
) -> Probe:
    probe = Probe(
        name=name,
        target=p.target,
        kind=p.kind,
        synapse=p.synapse,
        ticks_per_frame=p.ticks_per_frame,
    )
    if p.kind == "decoded" and p.decoders is not None:
        pop = pops[p.target]
        probe.decoders = _load_decoders(spec, p.decoders, pop.n, f"probes.{name}.decoders")
    elif p.kind == "decoded":
        pop = pops[p.target]
        probe.decoders, _ = decoders_for(
            pop,
            p.function,
            reg=0.1,
            points=750,
            rng=_rng(seed, "probe", name),
            where=f"probes.{name}.function",
            allow_python=allow_python,
            cache=cache,
        )
    return probe


def topological_order(pops: list[str], edges: list[tuple[str, str]]) -> list[str]:
    """Order populations so that each comes after the populations feeding it.

    Cycles are broken at the population declared first among those left, so a connection
    closing a cycle (and every self-connection) reads the previous tick's value.
    """
    # Kahn's algorithm with the declared-first rule: a heap of ready positions, and the
    # first unplaced position when none is ready (a cycle). O((P + E) log P); the file
    # may declare thousands of populations.
    index = {p: i for i, p in enumerate(pops)}
    successors: list[set[int]] = [set() for _ in pops]
    waiting = [0] * len(pops)  # feeding populations not yet placed
    for pre, post in edges:
        i, j = index[pre], index[post]
        if i != j and j not in successors[i]:
            successors[i].add(j)
            waiting[j] += 1
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    placed = [False] * len(pops)
    order: list[str] = []
    first = 0  # no position before it is unplaced
    while len(order) < len(pops):
        if ready:
            pick = heapq.heappop(ready)
        else:
            while placed[first]:
                first += 1
            pick = first
        placed[pick] = True
        order.append(pops[pick])
        for j in successors[pick]:
            waiting[j] -= 1
            if waiting[j] == 0 and not placed[j]:  # a cycle's breaker is placed already
                heapq.heappush(ready, j)
    return order


def build(
    spec: NetworkSpec,
    *,
    dtype: str | None = None,
    seed: int | None = None,
    allow_python_functions: bool = False,
) -> Model:
    """Build ``spec`` into a :class:`Model`.

    Args:
        spec: the validated network.
        dtype: ``"float64"`` or ``"float32"``; default is the file's ``network.dtype``.
        seed: overrides ``network.seed``; when both are absent a random seed is drawn
            (and recorded in ``Model.seed`` so the run can be repeated).
        allow_python_functions: let ``function = "module:attr"`` import and call Python
            code (off by default: a network file alone must not run code).

    Raises:
        NetworkFileError, BuildError: naming the network file and the key.
    """
    try:
        return _build(spec, dtype, seed, allow_python_functions)
    except (NetworkFileError, BuildError) as err:
        # Messages below name the key; the file is known only here.
        raise type(err)(f"{spec.source}: {err}") from None


def _build(spec: NetworkSpec, dtype: str | None, seed: int | None, allow_python: bool) -> Model:
    chosen = dtype if dtype is not None else spec.network.dtype
    if chosen not in ("float64", "float32"):
        raise BuildError(f"dtype {chosen!r} is not allowed; expected float64 or float32")
    if seed is None:
        seed = spec.network.seed
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    pops = {name: _build_population(spec, name, p, seed) for name, p in spec.populations.items()}
    cache = DecoderCache.open()  # listed once, trimmed once, whatever the number of solves
    try:
        conns = [
            _build_connection(spec, i, c, pops, seed, allow_python, cache)
            for i, c in enumerate(spec.connections)
        ]
        probes = {
            name: _build_probe(name, p, pops, spec, seed, allow_python, cache)
            for name, p in spec.probes.items()
        }
    finally:
        cache.trim()
    inputs = {
        name: Input(
            name=name,
            dim=i.dim,
            target=i.target,
            default=np.broadcast_to(np.asarray(i.default, dtype=np.float64), (i.dim,)).copy(),
            ttl=i.ttl,
        )
        for name, i in spec.inputs.items()
    }
    # With Nengo's timing every filtered connection delivers the previous tick's value, so
    # only unfiltered ones order the populations.
    nengo = spec.network.timing == "nengo"
    edges = [(c.pre, c.post) for c in conns if not c.from_input and not (nengo and c.synapse > 0)]
    order = topological_order(list(pops), edges)
    return Model(
        spec=spec,
        name=spec.network.name,
        dt=spec.network.dt,
        dtype=np.dtype(chosen),
        seed=seed,
        populations=pops,
        connections=conns,
        inputs=inputs,
        probes=probes,
        order=order,
        weights_dtype=None if spec.network.weights_dtype is None else np.dtype(np.float16),
    )
