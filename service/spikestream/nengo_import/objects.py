"""Translating a built Nengo network's objects into a network document and side arrays.

:class:`_Import` maps each ensemble, input node, connection (through passthrough nodes)
and probe to its network-file table, keeps the arrays Nengo built for the side files, and
renders the whole document as TOML (:mod:`spikestream.nengo_import.tomltext`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from spikestream.build import gain_bias
from spikestream.errors import BuildError, ModelImportError
from spikestream.nengo_import.naming import (
    _SUPPORTED_TEXT,
    RESERVED_NAMES,
    _Names,
    _refuse,
    _sanitise,
    describe,
)
from spikestream.nengo_import.tomltext import _comment, _toml
from spikestream.spec import MIN_DT, VALUE_LIMIT
from spikestream_client.names import NAME_MAX_LENGTH

FloatArray = npt.NDArray[np.float64]

#: Most values sampled from one function-of-t input node (80 MB of float64).
MAX_SAMPLES = 10_000_000

#: The synapse written for Nengo's ``synapse=0`` (``Lowpass(0)``). Nengo's filters are
#: "update" operators, so even ``Lowpass(0)`` passes its input through unchanged but one
#: tick late; spikestream's ``synapse = 0`` means unfiltered *and undelayed*. A positive
#: tau is a filter, which ``timing = "nengo"`` delays one tick as Nengo does, and this one
#: is so short that ``exp(-dt / tau)`` underflows to exactly 0 for every allowed dt
#: (``dt / tau >= MIN_DT / DELAY_ONLY_TAU = 1000``, and ``exp(-746) == 0.0``): the filter's
#: output is its input, bit for bit. With ``timing = "spikestream"`` such a filter behaves
#: as ``synapse = 0`` does, as Nengo's ``Lowpass(0)`` then should.
DELAY_ONLY_TAU = 1e-9
assert math.exp(-MIN_DT / DELAY_ONLY_TAU) == 0.0  # the claim above, checked on import


@dataclass
class _Path:
    """A linear path from a source into a sink's input: ``sink_in += rest @ first @ src``.

    ``first`` is the matrix Nengo built for the connection leaving the source (decoders with
    the transform folded in, for an ensemble), kept as Nengo computed it; ``rest`` maps its
    output through any passthrough nodes into the sink's full input vector.
    """

    source: Any  # Ensemble (decoded), Neurons, or an input Node
    first: FloatArray  # (k, size of the source's output)
    rest: FloatArray  # (sink.size_in, k)
    synapse: float  # lowpass tau, s; 0 = none
    conn: Any  # the connection leaving the source (its learning rule, its label)


@dataclass
class _Import:
    nengo: Any
    net: Any
    built: Any
    out: Path
    dt: float
    sample_duration: float
    timing: str
    names: dict[int, str] = field(default_factory=dict)
    #: ``id(object)`` -> the script's variable bound to it: how refusals name unlabelled ones.
    variables: dict[int, str] = field(default_factory=dict)
    #: ``"populations.a"`` (a key of the network file) -> the Nengo object it came from, so a
    #: refusal of the written file can name the object.
    origins: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, FloatArray] = field(default_factory=dict)
    conn_keys: set[str] = field(default_factory=set)

    # ------------------------------------------------------------------ helpers

    def name(self, obj: Any) -> str:
        return self.names[id(obj)]

    def refuse(self, obj: Any, what: str, supported: str) -> ModelImportError:
        """The one-line refusal of ``obj``, named by its label or its script variable."""
        return _refuse(obj, what, supported, self.variables)

    def side_file(self, key: str, arr: FloatArray) -> str:
        """Store ``arr`` as ``<out stem>.arrays/<key>.npy``; returns the relative path."""
        rel = f"{self.out.stem}.arrays/{key}.npy"
        self.arrays[rel] = np.ascontiguousarray(arr, dtype=np.float64)
        return rel

    def conn_key(self, base: str) -> str:
        """``pre-post`` for a connection's side files, ``pre-post-2`` for a second one."""
        key, k = base, 2
        while key in self.conn_keys:
            key, k = f"{base}-{k}", k + 1
        self.conn_keys.add(key)
        return key

    def synapse(self, obj: Any, synapse: Any) -> float:
        nengo = self.nengo
        if synapse is None:
            return 0.0
        if type(synapse) is nengo.Lowpass:
            tau = float(synapse.tau)
            # Lowpass(0) still delays one tick in Nengo; 0 here would not (DELAY_ONLY_TAU).
            return tau if tau > 0 else DELAY_ONLY_TAU
        raise self.refuse(
            obj,
            f"synapse {type(synapse).__name__} is not supported",
            "nengo.Lowpass(tau) or None",
        )

    def is_input(self, node: Any) -> bool:
        return bool(node.size_in == 0)

    def is_passthrough(self, node: Any) -> bool:
        return node.output is None and node.size_in > 0

    # ------------------------------------------------------------------ objects

    def ensemble(self, ens: Any) -> dict[str, Any]:
        nengo = self.nengo
        nt = ens.neuron_type
        if type(nt) is not nengo.LIF:
            raise self.refuse(
                ens, f"neuron type {type(nt).__name__} is not supported", "nengo.LIF neurons"
            )
        if nt.amplitude != 1:
            raise self.refuse(ens, f"LIF amplitude {nt.amplitude} is not supported", "amplitude 1")
        if ens.noise is not None:
            raise self.refuse(ens, "neuron noise is not supported", "noise = None")
        params = self.built.params[ens]
        sig = self.built.sig[ens.neurons]
        explicit = self.refuse(
            ens,
            "gains and biases given explicitly (or clipped intercepts) are not supported",
            "max_rates and intercepts (distributions or arrays)",
        )
        if ens.gain is not None or ens.bias is not None:
            # Nengo then derives max_rates and intercepts from them (NaN for some): checked
            # before they are used, so the refusal says what the script did.
            raise explicit
        intercepts = np.asarray(params.intercepts, np.float64)
        if np.any((intercepts < -1) | (intercepts >= 1)):
            # Nengo accepts intercepts below -1; a network file does not (docs/MODEL.md).
            bad = float(intercepts[(intercepts < -1) | (intercepts >= 1)][0])
            raise self.refuse(
                ens, f"an intercept of {bad!r} is not supported", "intercepts in [-1, 1)"
            )
        try:
            gain, bias = gain_bias(
                np.asarray(params.max_rates, np.float64),
                intercepts,
                float(nt.tau_rc),
                float(nt.tau_ref),
            )
        except BuildError as err:  # unreachable max rates: say which ensemble has them
            raise self.refuse(ens, str(err), "max rates a LIF neuron reaches") from None
        if not (np.array_equal(gain, params.gain) and np.array_equal(bias, params.bias)):
            raise explicit
        norms = np.linalg.norm(np.asarray(params.encoders, np.float64), axis=1)
        if np.any(np.abs(norms - 1.0) > 1e-12):
            raise self.refuse(
                ens,
                "encoders that are not of unit length (normalize_encoders=False) are not supported",
                "unit-length encoders",
            )
        ref0 = np.asarray(sig["refractory_time"].initial_value)
        if np.any(ref0 != 0):
            raise self.refuse(
                ens, "a non-zero initial refractory_time is not supported", "refractory_time 0"
            )
        v0 = np.asarray(sig["voltage"].initial_value, np.float64)
        if np.any(v0 > 1):
            # Above the threshold, with a current between 1 and the voltage, a neuron has
            # no spike time (log1p of less than -1): the network file refuses it too.
            raise self.refuse(
                ens,
                f"initial voltages above 1 (the highest {float(v0.max())!r}) are not supported",
                "LIF initial_state voltages of at most 1, the threshold",
            )
        name = self.name(ens)
        return {
            "n": int(ens.n_neurons),
            "dim": int(ens.dimensions),
            "radius": float(ens.radius),
            "tau_rc": float(nt.tau_rc),
            "tau_ref": float(nt.tau_ref),
            "min_voltage": float(nt.min_voltage),
            "max_rates": self.side_file(f"{name}.max_rates", params.max_rates),
            "intercepts": self.side_file(f"{name}.intercepts", params.intercepts),
            "encoders": self.side_file(f"{name}.encoders", params.encoders),
            "initial_voltage": self.side_file(f"{name}.initial_voltage", v0),
        }

    def input_node(self, node: Any) -> dict[str, Any]:
        nengo = self.nengo
        out = node.output
        dim = int(node.size_out)
        name = self.name(node)
        entry: dict[str, Any] = {"dim": dim}
        if isinstance(out, nengo.Process):
            raise self.refuse(
                node,
                f"output {type(out).__name__} is a nengo.Process, which needs the simulator's "
                "time step",
                "constants and functions of t",
            )
        if not callable(out):
            value = np.broadcast_to(np.asarray(out, dtype=np.float64), (dim,))
            self.check_values(node, value)
            entry["signal"] = {"kind": "constant", "value": [float(v) for v in value]}
            entry["default"] = [float(v) for v in value]
            return entry
        # Nengo calls the function with the time at the end of each step (dt, 2 dt, ...);
        # spikestream feeds sample k at tick k, so sample k is f((k + 1) dt).
        steps = self.sample_duration / self.dt  # compared as a float: 1e308 s is refused
        if steps * dim > MAX_SAMPLES:
            raise self.refuse(
                node,
                f"sampling {self.sample_duration:g} s of it at dt = {self.dt:g} s takes "
                f"{steps * dim:,.0f} values",
                f"at most {MAX_SAMPLES:,} values per input (a shorter --sample-duration for "
                "import, or --duration for run)",
            )
        ticks = max(1, round(steps))
        samples = np.zeros((ticks, dim))
        try:
            for k in range(ticks):
                samples[k] = np.asarray(out((k + 1) * self.dt), dtype=np.float64).reshape(dim)
        except Exception as err:  # the user's function: report it, in one line
            raise self.refuse(
                node,
                f"calling its output at t = {(k + 1) * self.dt:g} s raised "
                f"{type(err).__name__}: {err}".splitlines()[0],
                "functions of t returning size_out numbers",
            ) from None
        self.check_values(node, samples)
        entry["signal"] = {"kind": "file", "path": self.side_file(f"{name}.signal", samples)}
        return entry

    def check_values(self, node: Any, values: FloatArray) -> None:
        """Refuse an input node whose output a network file cannot hold: NaN, infinite or
        beyond +-VALUE_LIMIT (``run`` would refuse the file, naming no Nengo object)."""
        if not np.all(np.isfinite(values)):
            raise self.refuse(node, "its output is NaN or infinite", "finite outputs")
        big = np.abs(values) > VALUE_LIMIT
        if np.any(big):
            raise self.refuse(
                node,
                f"its output {float(values[big].flat[0])!r} is beyond +-{VALUE_LIMIT:g}",
                f"outputs with |value| <= {VALUE_LIMIT:g}",
            )

    # ------------------------------------------------------------------ connections

    @staticmethod
    def _select(size: int, sl: Any) -> FloatArray:
        """Rows of the identity picked by a Nengo slice: ``(len(sl), size)``."""
        return np.asarray(np.eye(size)[sl], dtype=np.float64)

    def paths_into(self, conn: Any, seen: frozenset[int] = frozenset()) -> list[_Path]:
        """Every linear path feeding ``conn``'s sink input, through passthrough nodes."""
        nengo = self.nengo
        if conn.function is not None and not isinstance(conn.pre_obj, nengo.Ensemble):
            raise self.refuse(
                conn,
                "a function on a connection from a node or neurons is not supported",
                "functions on connections from ensembles",
            )
        if not isinstance(conn.transform, (nengo.transforms.Dense, nengo.transforms.NoTransform)):
            raise self.refuse(
                conn,
                f"transform {type(conn.transform).__name__} is not supported",
                "dense (scalar or matrix) transforms",
            )
        if conn.solver.weights:
            raise self.refuse(
                conn, "a solver with weights=True is not supported", "decoder solvers (LstsqL2)"
            )
        post_size = int(conn.post_obj.size_in)
        placement = self._select(post_size, conn.post_slice).T  # (post_size, size_out)
        synapse = self.synapse(conn, conn.synapse)
        built = self.built.params[conn].weights  # None for NoTransform from a node
        weights = np.asarray(1.0 if built is None else built, dtype=np.float64)
        pre = conn.pre_obj
        if isinstance(pre, nengo.Ensemble):
            # Nengo's decoders with the transform folded in: (size_out, n), always 2-D.
            return [_Path(pre, weights, placement, synapse, conn)]
        # Neurons or node: Nengo slices the pre output, then applies the transform.
        select = self._select(int(pre.size_out), conn.pre_slice)  # (size_mid, pre_size)
        if weights.ndim < 2:  # a scalar or a diagonal
            first = np.broadcast_to(weights, (conn.size_mid,))[:, None] * select
        else:
            first = weights @ select
        if isinstance(pre, nengo.ensemble.Neurons) or self.is_input(pre):
            return [_Path(pre, first, placement, synapse, conn)]
        if not self.is_passthrough(pre):
            raise self.refuse(
                pre,
                "a node that computes a Python function of its input is not supported",
                "input nodes (size_in = 0) and passthrough nodes (output = None)",
            )
        if id(pre) in seen:
            raise self.refuse(pre, "a cycle of passthrough nodes is not supported", _SUPPORTED_TEXT)
        if conn.learning_rule is not None:
            raise self.refuse(
                conn,
                "learning on a connection from a passthrough node",
                "PES on ensemble-to-ensemble connections",
            )
        out: list[_Path] = []
        for inner in self.net.all_connections:
            if inner.post_obj is not pre:
                continue
            if inner.learning_rule is not None:
                raise self.refuse(
                    inner,
                    "learning on a connection into a passthrough node",
                    "PES on ensemble-to-ensemble connections",
                )
            for p in self.paths_into(inner, seen | {id(pre)}):
                if p.synapse and synapse:
                    raise self.refuse(
                        pre,
                        "two synapses in series through this passthrough node are not supported",
                        "a synapse on at most one connection of a chain through passthrough "
                        "nodes (synapse=None on the others)",
                    )
                out.append(
                    _Path(
                        p.source, p.first, placement @ first @ p.rest, p.synapse or synapse, p.conn
                    )
                )
        return out

    def connection_entries(self) -> list[dict[str, Any]]:
        nengo = self.nengo
        entries: list[dict[str, Any]] = []
        for conn in self.net.all_connections:
            post = conn.post_obj
            if isinstance(post, nengo.Node):
                if self.is_passthrough(post):
                    continue  # folded into the connections leaving it
                raise self.refuse(
                    post,
                    "connections into a node that computes a Python function are not supported",
                    "connections into ensembles, neurons, passthrough nodes and PES rules",
                )
            if isinstance(post, nengo.connection.LearningRule):
                continue  # error connections: read with their learning rule
            for path in self.paths_into(conn):
                self.origins[f"connections[{len(entries)}]"] = conn  # the key a refusal names
                entries.append(self.entry(conn, post, path))
        # Connection names must be unique: number the second and later ones of a pair.
        seen: set[str] = set()
        for e in entries:
            base = e.get("name", f"{e['pre']}->{e['post']}")
            label, k = base, 2
            while label in seen:
                label, k = _numbered(base, k), k + 1
            seen.add(label)
            if label != base or "name" in e:
                e["name"] = label
        return entries

    def entry(self, conn: Any, post: Any, path: _Path) -> dict[str, Any]:
        nengo = self.nengo
        src = path.source
        label = _sanitise(conn.label)
        if isinstance(post, nengo.Ensemble):
            post_name = self.name(post)
            matrix = path.rest  # (post.dim, k)
            if isinstance(src, nengo.Node):
                e: dict[str, Any] = {
                    "pre": self.name(src),
                    "post": post_name,
                    "synapse": path.synapse,
                    "transform": _matrix(matrix @ path.first),
                }
            else:
                pre_ens = src if isinstance(src, nengo.Ensemble) else src.ensemble
                key = self.conn_key(f"{self.name(pre_ens)}-{post_name}")
                e = {
                    "pre": self.name(pre_ens),
                    "post": post_name,
                    "synapse": path.synapse,
                    "decoders": self.side_file(f"{key}.decoders", path.first.T),
                }
                if not _is_identity(matrix):
                    e["transform"] = _matrix(matrix)
        elif isinstance(post, nengo.ensemble.Neurons):
            if isinstance(src, nengo.Node):
                raise self.refuse(
                    conn,
                    "a connection from an input node into neurons is not supported",
                    "input nodes into ensembles; ensembles or neurons into neurons",
                )
            pre_ens = src if isinstance(src, nengo.Ensemble) else src.ensemble
            gain = np.asarray(self.built.params[post.ensemble].gain, np.float64)
            # Nengo multiplies a connection into neurons by the post gains; spikestream adds
            # W.T @ y as it is, so the gains go into W (docs/MODEL.md).
            w = (gain[:, None] * (path.rest @ path.first)).T
            key = self.conn_key(f"{self.name(pre_ens)}-{self.name(post.ensemble)}")
            e = {
                "pre": self.name(pre_ens),
                "post": self.name(post.ensemble),
                "synapse": path.synapse,
                "weights": {"file": self.side_file(f"{key}.weights", w)},
            }
        else:
            raise self.refuse(
                conn,
                f"a connection into {type(post).__name__} is not supported",
                "connections into ensembles, neurons, passthrough nodes and PES rules",
            )
        if label:
            e["name"] = label
        learning = self.learning(path.conn)
        if learning is not None:
            if path.conn is not conn or not isinstance(src, nengo.Ensemble) or "decoders" not in e:
                raise self.refuse(
                    conn,
                    "this learning connection is not supported",
                    "PES on ensemble-to-ensemble connections",
                )
            e["learning"] = learning
        return e

    def learning(self, conn: Any) -> dict[str, Any] | None:
        nengo = self.nengo
        rule = conn.learning_rule
        if rule is None:
            return None
        if isinstance(rule, (list, tuple, dict)) or type(rule.learning_rule_type) is not nengo.PES:
            kind = type(getattr(rule, "learning_rule_type", rule)).__name__
            raise self.refuse(conn, f"learning rule {kind} is not supported", "a single nengo.PES")
        pes = rule.learning_rule_type
        if type(pes.pre_synapse) is not nengo.Lowpass or not math.isclose(
            pes.pre_synapse.tau, 0.005
        ):
            raise self.refuse(
                conn,
                "PES with a pre_synapse other than Lowpass(0.005)",
                "PES(pre_synapse=Lowpass(0.005))",
            )
        errors = [
            c
            for c in self.net.all_connections
            if isinstance(c.post_obj, nengo.connection.LearningRule)
            and c.post_obj.connection is conn
        ]
        if len(errors) != 1:
            raise self.refuse(
                conn, f"{len(errors)} error connections into its PES rule", "exactly one"
            )
        err = errors[0]
        src = err.pre_obj
        dim = int(conn.size_out)
        ok = (
            isinstance(src, nengo.Node)
            and self.is_input(src)
            and int(src.size_out) == dim
            and err.function is None
            and _is_identity(self.paths_into(err)[0].rest @ self.paths_into(err)[0].first)
        )
        if not ok:
            raise self.refuse(
                err,
                "this PES error connection is not supported",
                "an error from an input node (size_in = 0, size_out = the connection's "
                "output size), untransformed, through a Lowpass or no synapse; the error then "
                "arrives as an MQTT input",
            )
        learning: dict[str, Any] = {
            "rule": "pes",
            "error": self.name(src),
            "rate": float(pes.learning_rate),
        }
        synapse = self.synapse(err, err.synapse)
        if synapse:
            learning["synapse"] = synapse
        return learning

    # ------------------------------------------------------------------ probes

    def probe(self, probe: Any) -> dict[str, Any]:
        nengo = self.nengo
        target = probe.target
        if probe.sample_every is not None and not math.isclose(probe.sample_every, self.dt):
            raise self.refuse(probe, "sample_every is not supported", "sample_every = None")
        synapse = self.synapse(probe, probe.synapse)
        if probe.slice is not None:
            # ``a[0]`` or ``a.neurons[:5]``: Nengo's target is then a view (ObjView), which
            # the refusal below named as "ObjView ..." while listing spikes as supported.
            part = getattr(target, "_slice_string", None) or str(probe.slice)
            raise self.refuse(
                probe,
                f"a probe of a slice, {describe(probe.obj, self.variables)}[{part}], is not "
                "supported",
                "probes of whole ensembles, neurons and input nodes (slice the recorded data)",
            )
        if isinstance(target, nengo.Ensemble) and probe.attr == "decoded_output":
            conns = [
                c
                for c in self.built.params
                if isinstance(c, nengo.Connection) and c.post_obj is probe
            ]
            weights = np.asarray(self.built.params[conns[0]].weights, np.float64)
            name = self.name(probe)
            return {
                "target": self.name(target),
                "kind": "decoded",
                "synapse": synapse,
                "decoders": self.side_file(f"{name}.decoders", weights.T),
            }
        if isinstance(target, nengo.ensemble.Neurons) and probe.slice in (None, slice(None)):
            if probe.attr == "output":
                kind = "filtered" if synapse else "spikes"
                return {"target": self.name(target.ensemble), "kind": kind, "synapse": synapse}
            if probe.attr == "voltage" and not synapse:
                return {"target": self.name(target.ensemble), "kind": "voltage"}
        if (
            isinstance(target, nengo.Node)
            and self.is_input(target)
            and probe.attr == "output"
            and not synapse
            and probe.slice in (None, slice(None))
        ):
            return {"target": self.name(target), "kind": "input"}
        raise self.refuse(
            probe,
            f"a probe of {describe(target, self.variables)}.{probe.attr} "
            f"(synapse {probe.synapse}) is not supported",
            "decoded ensemble values, neuron spikes (synapse=None or Lowpass), neuron voltages "
            "and input nodes (synapse=None)",
        )

    # ------------------------------------------------------------------ all of it

    def document(self, variables: dict[int, str], source: str) -> str:
        nengo = self.nengo
        net = self.net
        self.variables = variables
        objects = _Names(variables)
        for i, ens in enumerate(net.all_ensembles):
            self.names[id(ens)] = objects.take(ens, "ensemble", i)
        # Inputs and probes are stored in a run's .npz under their names: the file's own
        # keys (t, dt, meta, ...) are taken, so such a label gets a suffix like any clash.
        objects.used |= RESERVED_NAMES
        inputs = [n for n in net.all_nodes if self.is_input(n)]
        for i, node in enumerate(net.all_nodes):
            if self.is_input(node):
                self.names[id(node)] = objects.take(node, "node", i)
        probe_names = _Names(variables)
        probe_names.used |= {self.names[id(n)] for n in inputs} | RESERVED_NAMES
        for i, probe in enumerate(net.all_probes):
            self.names[id(probe)] = probe_names.take(probe, "probe", i)
        for obj in net.all_objects:
            # all_objects lists subnetworks (an EnsembleArray, any nested Network) besides
            # their objects, which the other all_* lists already include: a subnetwork
            # itself adds nothing to import.
            if not isinstance(
                obj, (nengo.Ensemble, nengo.Node, nengo.Connection, nengo.Probe, nengo.Network)
            ):  # pragma: no cover - Nengo has no other primitive objects
                raise self.refuse(obj, "this object type is not supported", _SUPPORTED_TEXT)
        for node in net.all_nodes:
            if not self.is_input(node) and not self.is_passthrough(node):
                raise self.refuse(
                    node,
                    "a node that computes a Python function of its input is not supported",
                    "input nodes (size_in = 0) and passthrough nodes (output = None)",
                )
        doc: dict[str, Any] = {
            "network": {
                "name": _sanitise(net.label) or "nengo",
                "dt": self.dt,
                "timing": self.timing,
                "dtype": "float64",
            }
        }
        if net.seed is not None:
            doc["network"]["seed"] = int(net.seed)
        for section, objs in (
            ("populations", net.all_ensembles),
            ("inputs", inputs),
            ("probes", net.all_probes),
        ):
            self.origins.update((f"{section}.{self.name(o)}", o) for o in objs)
        doc["populations"] = {self.name(e): self.ensemble(e) for e in net.all_ensembles}
        doc["inputs"] = {self.name(n): self.input_node(n) for n in inputs}
        doc["connections"] = self.connection_entries()
        doc["probes"] = {self.name(p): self.probe(p) for p in net.all_probes}
        if not doc["populations"]:
            raise self.refuse(
                net, "the network has no ensembles", "networks with at least one ensemble"
            )
        # Comments hold no control characters: a script or file name with a newline
        # would otherwise end the comment and break the file.
        header = (
            f"# Imported from {_comment(source)} by `spikestream import` "
            f"(nengo {nengo.__version__}).\n"
            f"# Arrays built by Nengo are in {_comment(self.out.stem)}.arrays/; re-import "
            "rather than\n# editing them. docs/NENGO.md describes the mapping.\n"
        )
        return header + _toml(doc)


def _numbered(base: str, k: int) -> str:
    """``base`` (``name`` or ``pre->post``) with ``-k`` on its last name, cut so that name
    keeps within NAME_MAX_LENGTH: a 64-character ``post`` plus ``-2`` is no name, and the
    network file refused what the import wrote."""
    head, sep, last = base.rpartition("->")
    suffix = f"-{k}"
    return f"{head}{sep}{last[: NAME_MAX_LENGTH - len(suffix)]}{suffix}"


def _is_identity(m: FloatArray) -> bool:
    return m.ndim == 2 and m.shape[0] == m.shape[1] and np.array_equal(m, np.eye(m.shape[0]))


def _matrix(m: FloatArray) -> list[list[float]]:
    return [[float(v) for v in row] for row in np.atleast_2d(m)]
