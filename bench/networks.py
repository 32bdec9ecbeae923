"""Benchmark networks, built identically for spikestream and for the Nengo reference simulator.

Every network is described once, as a spikestream :class:`~spikestream.spec.NetworkSpec`, and
built once with :func:`spikestream.build.build`. The Nengo network is then made from the
*built* spikestream model (:func:`nengo_network`): the same gains, biases, encoders and
weight matrices, so both simulators do the same work on the same numbers, and the
event-driven spike propagation of spikestream sees the same activity that Nengo computes.

Shared by all networks:

* LIF neurons, ``tau_rc = 0.02`` s, ``tau_ref = 0.002`` s, max rates U[200, 400] Hz,
  intercepts U[-1, 1], unit encoders, ``dt = 0.001`` s;
* one input ``u = sin(t)`` encoded into the first population (``dim = 1``). Nengo: a
  ``Node(np.sin)`` connected with ``synapse=None``; spikestream: the same values fed per
  tick (:func:`input_values`);
* dense connections with a lowpass synapse, ``tau_s = 0.1`` s;
* voltages and refractory times start at 0 on both sides (Nengo's LIF default is a random
  initial voltage; the bench sets ``initial_state`` to 0 to match spikestream).

Weight scale of the large networks: ``std = DENSE_GAIN / (sqrt(n_pre) * RATE_SCALE)`` with
``DENSE_GAIN = 8`` and ``RATE_SCALE = 100`` Hz. The pre neurons fire at ~100-140 Hz on average
(RMS ~190 Hz), so the synaptic current into each post neuron has a standard deviation of
about 15, the same as the current a full-range input (``x = ±1``) drives through a typical
gain. ``b`` stays neither silent nor saturated: ~10 % of its neurons spike per tick, no
neuron fires above the 400 Hz top of the max-rate range, and the fraction of silent neurons
(~47 %) is the same as with no synaptic input (it is set by the intercepts).
"""

from __future__ import annotations

import math
import tomllib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from spikestream.build import Model
from spikestream.spec import NetworkSpec, SinSignal, parse_network

#: The project's first example network (``a`` 50 LIF -> ``b`` 40 LIF).
SEED_TOML = Path(__file__).resolve().parent.parent / "examples" / "seed.toml"

#: Weight scale of the large dense networks (see the module docstring).
DENSE_GAIN = 8.0
RATE_SCALE = 100.0  # Hz
SYNAPSE = 0.1  # s
SEED = 1

FloatArray = npt.NDArray[np.float64]


def dense_std(n_pre: int) -> float:
    """Standard deviation of the normal weights from a population of ``n_pre`` neurons."""
    return DENSE_GAIN / (math.sqrt(n_pre) * RATE_SCALE)


@dataclass(frozen=True)
class BenchNetwork:
    """One benchmark network.

    Attributes:
        key: the name used on the command line (``--networks seed,dense1000``).
        title: the row label of the results table.
        make_spec: returns the spikestream network (without probes).
        ticks: ticks per timed repeat, the same on both sides (~0.5-1 s of Nengo time).
        quick_ticks: ticks per timed repeat with ``--quick``.
    """

    key: str
    title: str
    make_spec: Callable[[], NetworkSpec]
    ticks: int
    quick_ticks: int


def seed_spec() -> NetworkSpec:
    """``examples/seed.toml`` without its probes (the timed loop runs no probes)."""
    with SEED_TOML.open("rb") as fh:
        data: dict[str, Any] = tomllib.load(fh)
    data.pop("probes", None)
    return parse_network(data, source=str(SEED_TOML))


def chain_spec(name: str, sizes: list[int]) -> NetworkSpec:
    """Populations ``p0 -> p1 -> ... `` of the given sizes, each connected to the next by a
    dense normal weight matrix (std :func:`dense_std`), with ``u = sin(t)`` into ``p0``."""
    pops = {f"p{i}": {"n": n} for i, n in enumerate(sizes)}
    conns = [
        {
            "pre": f"p{i}",
            "post": f"p{i + 1}",
            "synapse": SYNAPSE,
            "weights": {"dist": "normal", "mean": 0.0, "std": dense_std(sizes[i])},
        }
        for i in range(len(sizes) - 1)
    ]
    data = {
        "network": {"name": name, "dt": 0.001, "seed": SEED},
        "populations": pops,
        "inputs": {"u": {"dim": 1, "target": "p0", "signal": {"kind": "sin"}}},
        "connections": conns,
    }
    return parse_network(data, source=f"<bench {name}>")


NETWORKS: dict[str, BenchNetwork] = {
    b.key: b
    for b in (
        BenchNetwork("seed", "seed (50 → 40)", seed_spec, 20_000, 2_000),
        BenchNetwork(
            "dense1000",
            "1000 → 1000 dense",
            lambda: chain_spec("dense1000", [1000] * 2),
            5_000,
            500,
        ),
        BenchNetwork(
            "dense4096",
            "4096 → 4096 dense",
            lambda: chain_spec("dense4096", [4096] * 2),
            300,
            60,
        ),
        BenchNetwork(
            "chain20",
            "20 × 1000 chain",
            lambda: chain_spec("chain20", [1000] * 20),
            300,
            60,
        ),
    )
}


def check_sin_input(model: Model) -> str:
    """Name of the model's single input, after checking that it is ``sin(t)`` into a
    population (the only input :func:`nengo_network` can mirror with ``Node(np.sin)``)."""
    spec = model.spec
    if len(spec.inputs) != 1:
        raise ValueError(f"bench networks have exactly one input; got {list(spec.inputs)}")
    ((name, inp),) = spec.inputs.items()
    s = inp.signal
    if not (
        isinstance(s, SinSignal)
        and inp.target is not None
        and inp.dim == 1
        and s.amp == 1.0
        and s.angular == 1.0
        and s.phase == 0.0
        and s.offset == 0.0
    ):
        raise ValueError(f"input {name!r} must be sin(t) into a 1-d population; got {inp!r}")
    return str(name)


def input_values(model: Model, ticks: int) -> dict[str, FloatArray]:
    """Per input, the values spikestream is fed: ``sin(t)`` at ``t = (k + 1) * dt`` for tick
    ``k``, shape ``(ticks, 1)``.

    Nengo calls a node's function with the time at the *end* of the step it computes
    (``sim.trange()``: ``dt, 2 dt, ...``), whereas spikestream's offline signals are sampled
    at the start of each tick (``k * dt``). Feeding ``sin((k + 1) dt)`` gives both
    simulators the same input on every tick.
    """
    name = check_sin_input(model)
    t = (np.arange(ticks, dtype=np.float64) + 1.0) * model.dt
    return {name: np.sin(t)[:, None]}


def import_nengo() -> Any:
    """Import nengo, silencing the ``numpy.core`` deprecation warnings nengo 4.1 raises
    under numpy 2."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import nengo

    return nengo


def nengo_network(model: Model, *, probe_spikes: bool = False) -> tuple[Any, dict[str, Any]]:
    """The Nengo network equivalent to the built spikestream ``model``.

    Each population becomes a ``nengo.Ensemble`` with the model's own ``gain``, ``bias`` and
    (already unit-length) ``encoders``, so Nengo ignores ``max_rates`` and ``intercepts``.
    Each dense connection ``W`` (shape ``(pre.n, post.n)``) becomes
    ``nengo.Connection(pre.neurons, post.neurons, transform=W.T / gain_post[:, None],
    synapse=tau_s)``, stored C-contiguous (the layout of Nengo's own ``(post, pre)``
    transforms). The division is needed because Nengo 4.1 multiplies the current of every
    connection into ``ens.neurons`` by the post neurons' gains ("Apply neuron gains" in
    ``nengo/builder/connection.py``), while spikestream adds ``W.T @ y`` as it is (DESIGN.md
    §2). Nengo still does its elementwise gain multiply every tick, as it always would.

    Args:
        model: a built spikestream network whose only input is ``sin(t)``.
        probe_spikes: add a spike probe on every population (for the equivalence check only;
            timed runs have no probes).

    Returns:
        ``(network, probes)``, where ``probes`` maps population names to Nengo probes
        (empty unless ``probe_spikes``).
    """
    nengo = import_nengo()
    input_name = check_sin_input(model)
    zero_v = {"voltage": nengo.dists.Choice([0.0]), "refractory_time": nengo.dists.Choice([0.0])}
    probes: dict[str, Any] = {}
    with nengo.Network(label=model.name, seed=model.seed) as net:
        ens: dict[str, Any] = {}
        for name, p in model.populations.items():
            ens[name] = nengo.Ensemble(
                p.n,
                p.dim,
                neuron_type=nengo.LIF(
                    tau_rc=p.tau_rc,
                    tau_ref=p.tau_ref,
                    min_voltage=p.min_voltage,
                    initial_state=zero_v,
                ),
                gain=p.gain,
                bias=p.bias,
                encoders=p.encoders,
                normalize_encoders=False,
                label=name,
            )
        target = model.inputs[input_name].target
        node = nengo.Node(np.sin, label=input_name)
        nengo.Connection(node, ens[target], synapse=None)
        for c in model.connections:
            if c.weights is None:
                raise ValueError(f"connection {c.name!r}: the bench only mirrors dense weights")
            # Nengo multiplies every connection into ``ens.neurons`` by the post gains;
            # spikestream adds ``W.T @ y`` without gain (DESIGN.md §2). Divide them out.
            gain = model.populations[c.post].gain
            nengo.Connection(
                ens[c.pre].neurons,
                ens[c.post].neurons,
                transform=np.ascontiguousarray(c.weights.T / gain[:, None]),
                synapse=c.synapse,
            )
        if probe_spikes:
            probes = {name: nengo.Probe(e.neurons) for name, e in ens.items()}
    return net, probes


def nengo_simulator(net: Any) -> Any:
    """``nengo.Simulator(net, progress_bar=False, optimize=True)``, built quietly."""
    nengo = import_nengo()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return nengo.Simulator(net, progress_bar=False, optimize=True)
