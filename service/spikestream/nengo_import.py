"""Import a Nengo model (a ``nengo.Network`` built by a Python script) as a network file.

Loading the script **runs it**: importing a model is executing its code, with your rights.
Import only scripts you trust, as you would run them with ``python``.

The script's network is built by Nengo's own builder (``nengo.builder.Model``, the first
half of ``nengo.Simulator``; nothing is stepped), and the built arrays are written next to
the network file as ``.npy`` side files: each ensemble's sampled ``max_rates``,
``intercepts``, ``encoders`` and initial voltages, each decoded connection's and probe's
decoders (Nengo's ``LstsqL2`` solution, transform included), and each neuron-to-neuron
weight matrix. spikestream then computes the same gains and biases with the same formula
(checked bit for bit here), so spike trains can be compared with Nengo's tick for tick
under ``timing = "nengo"``.

The supported subset and its mapping are in ``docs/NENGO.md``. Anything outside it raises
:class:`~spikestream.errors.ModelImportError` with one line naming the object, its label
and what is supported.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import re
import runpy
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from spikestream.build import gain_bias
from spikestream.errors import ConfigError, ModelImportError
from spikestream.spec import NetworkSpec, load_network
from spikestream_client.names import is_name

FloatArray = npt.NDArray[np.float64]

#: What the commands print when Nengo is missing.
INSTALL_HINT = "importing a Nengo model needs Nengo: pip install 'spikestream[nengo]'"

#: Most values sampled from one function-of-t input node (80 MB of float64).
MAX_SAMPLES = 10_000_000

#: The variable a script's network is taken from when no ``:NAME`` is given.
DEFAULT_VARIABLE = "model"

_SUPPORTED_TEXT = "see docs/NENGO.md for the supported subset"


def import_nengo() -> Any:
    """The ``nengo`` module, or a :class:`ConfigError` saying how to install it.

    Nengo 4.1 touches ``numpy.core`` on import, which numpy 2 deprecates; that warning is
    Nengo's own and is silenced for this import only.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import nengo
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return nengo


def is_model_script(path: str | Path) -> bool:
    """True if ``path`` names a Python model (``MODEL.py`` or ``MODEL.py:NAME``)."""
    script, _ = split_source(str(path))
    return script.suffix == ".py"


def split_source(source: str) -> tuple[Path, str]:
    """``"MODEL.py:NAME"`` -> ``(Path("MODEL.py"), "NAME")``; the name defaults to ``model``."""
    head, sep, tail = source.rpartition(":")
    if sep and head.endswith(".py") and tail.isidentifier():
        return Path(head), tail
    return Path(source), DEFAULT_VARIABLE


# --------------------------------------------------------------------------- loading


def load_script_network(
    script: Path, variable: str = DEFAULT_VARIABLE
) -> tuple[Any, dict[str, Any]]:
    """Run ``script`` and return ``(network, globals)``: its variable ``variable``, which
    must be a ``nengo.Network``. The script runs with ``__name__ != "__main__"``, so a
    ``if __name__ == "__main__":`` block (running Nengo's own simulator, say) is skipped.

    Raises:
        ModelImportError: the script is missing, raises, or has no such network.
    """
    nengo = import_nengo()
    if not script.is_file():
        raise ModelImportError(f"{script}: no such model script")
    folder = str(script.resolve().parent)
    sys.path.insert(0, folder)  # so the script can import its neighbours
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            namespace = runpy.run_path(str(script), run_name="__spikestream_import__")
    except SystemExit as err:
        raise ModelImportError(f"{script}: the script called exit({err.code})") from None
    except Exception as err:  # the user's script: any error is reported, in one line
        raise ModelImportError(
            f"{script}: the script raised {type(err).__name__}: {err}".splitlines()[0]
        ) from None
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
    net = namespace.get(variable)
    if not isinstance(net, nengo.Network):
        found = [k for k, v in namespace.items() if isinstance(v, nengo.Network)]
        what = "is not defined" if net is None else f"is a {type(net).__name__}"
        raise ModelImportError(
            f"{script}: variable {variable!r} {what}; expected a nengo.Network "
            f"(networks in the script: {', '.join(found) or 'none'}; pick one with "
            f"{script.name}:NAME)"
        )
    return net, namespace


# --------------------------------------------------------------------------- naming


def _sanitise(label: str | None) -> str | None:
    if not label:
        return None
    name = re.sub(r"[^A-Za-z0-9_-]", "_", label.strip())[:64]
    if name and not re.match(r"[A-Za-z_]", name[0]):
        name = ("_" + name)[:64]
    return name if name and is_name(name) else None


class _Names:
    """Stable names: the label (made a valid name), else the script's variable bound to the
    object, else ``<kind>_<index>`` by creation order. Unique within one namespace."""

    def __init__(self, variables: dict[int, str]) -> None:
        self.variables = variables
        self.used: set[str] = set()

    def take(self, obj: Any, kind: str, index: int) -> str:
        base = (
            _sanitise(getattr(obj, "label", None))
            or _sanitise(self.variables.get(id(obj)))
            or f"{kind}_{index}"
        )
        name, k = base, 2
        while name in self.used:
            name = f"{base[:60]}_{k}"
            k += 1
        self.used.add(name)
        return name


def describe(obj: Any) -> str:
    """``Ensemble 'a'`` or ``Connection <a -> b>``: how a refusal names an object."""
    kind = type(obj).__name__
    label = getattr(obj, "label", None)
    if label:
        return f"{kind} {label!r}"
    text = str(obj).replace("<", "").replace(">", "").strip()
    return text if text.startswith(kind) else f"{kind} {text}"


def _one_line(text: str) -> str:
    return text.splitlines()[0] if text else text


def _refuse(obj: Any, what: str, supported: str) -> ModelImportError:
    return ModelImportError(f"{describe(obj)}: {what}; supported: {supported}")


# --------------------------------------------------------------------------- the import


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
    arrays: dict[str, FloatArray] = field(default_factory=dict)
    conn_keys: set[str] = field(default_factory=set)

    # ------------------------------------------------------------------ helpers

    def name(self, obj: Any) -> str:
        return self.names[id(obj)]

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
            return float(synapse.tau)
        raise _refuse(
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
            raise _refuse(
                ens, f"neuron type {type(nt).__name__} is not supported", "nengo.LIF neurons"
            )
        if nt.amplitude != 1:
            raise _refuse(ens, f"LIF amplitude {nt.amplitude} is not supported", "amplitude 1")
        if ens.noise is not None:
            raise _refuse(ens, "neuron noise is not supported", "noise = None")
        params = self.built.params[ens]
        sig = self.built.sig[ens.neurons]
        gain, bias = gain_bias(
            np.asarray(params.max_rates, np.float64),
            np.asarray(params.intercepts, np.float64),
            float(nt.tau_rc),
            float(nt.tau_ref),
        )
        if not (np.array_equal(gain, params.gain) and np.array_equal(bias, params.bias)):
            raise _refuse(
                ens,
                "gains and biases given explicitly (or clipped intercepts) are not supported",
                "max_rates and intercepts (distributions or arrays)",
            )
        norms = np.linalg.norm(np.asarray(params.encoders, np.float64), axis=1)
        if np.any(np.abs(norms - 1.0) > 1e-12):
            raise _refuse(
                ens,
                "encoders that are not of unit length (normalize_encoders=False) are not supported",
                "unit-length encoders",
            )
        ref0 = np.asarray(sig["refractory_time"].initial_value)
        if np.any(ref0 != 0):
            raise _refuse(
                ens, "a non-zero initial refractory_time is not supported", "refractory_time 0"
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
            "initial_voltage": self.side_file(
                f"{name}.initial_voltage", sig["voltage"].initial_value
            ),
        }

    def input_node(self, node: Any) -> dict[str, Any]:
        nengo = self.nengo
        out = node.output
        dim = int(node.size_out)
        name = self.name(node)
        entry: dict[str, Any] = {"dim": dim}
        if isinstance(out, nengo.Process):
            raise _refuse(
                node,
                f"output {type(out).__name__} is a nengo.Process, which needs the simulator's "
                "time step",
                "constants and functions of t",
            )
        if not callable(out):
            value = np.broadcast_to(np.asarray(out, dtype=np.float64), (dim,))
            entry["signal"] = {"kind": "constant", "value": [float(v) for v in value]}
            entry["default"] = [float(v) for v in value]
            return entry
        # Nengo calls the function with the time at the end of each step (dt, 2 dt, ...);
        # spikestream feeds sample k at tick k, so sample k is f((k + 1) dt).
        ticks = max(1, round(self.sample_duration / self.dt))
        if ticks * dim > MAX_SAMPLES:
            raise _refuse(
                node,
                f"sampling {self.sample_duration:g} s of it at dt = {self.dt:g} s takes "
                f"{ticks * dim:,} values",
                f"at most {MAX_SAMPLES:,} values per input (a shorter --sample-duration)",
            )
        samples = np.zeros((ticks, dim))
        try:
            for k in range(ticks):
                samples[k] = np.asarray(out((k + 1) * self.dt), dtype=np.float64).reshape(dim)
        except Exception as err:  # the user's function: report it, in one line
            raise _refuse(
                node,
                f"calling its output at t = {(k + 1) * self.dt:g} s raised "
                f"{type(err).__name__}: {err}".splitlines()[0],
                "functions of t returning size_out numbers",
            ) from None
        if not np.all(np.isfinite(samples)):
            raise _refuse(node, "its output is NaN or infinite", "finite outputs")
        entry["signal"] = {"kind": "file", "path": self.side_file(f"{name}.signal", samples)}
        return entry

    # ------------------------------------------------------------------ connections

    @staticmethod
    def _select(size: int, sl: Any) -> FloatArray:
        """Rows of the identity picked by a Nengo slice: ``(len(sl), size)``."""
        return np.asarray(np.eye(size)[sl], dtype=np.float64)

    def paths_into(self, conn: Any, seen: frozenset[int] = frozenset()) -> list[_Path]:
        """Every linear path feeding ``conn``'s sink input, through passthrough nodes."""
        nengo = self.nengo
        if conn.function is not None and not isinstance(conn.pre_obj, nengo.Ensemble):
            raise _refuse(
                conn,
                "a function on a connection from a node or neurons is not supported",
                "functions on connections from ensembles",
            )
        if not isinstance(conn.transform, (nengo.transforms.Dense, nengo.transforms.NoTransform)):
            raise _refuse(
                conn,
                f"transform {type(conn.transform).__name__} is not supported",
                "dense (scalar or matrix) transforms",
            )
        if conn.solver.weights:
            raise _refuse(
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
            raise _refuse(
                pre,
                "a node that computes a Python function of its input is not supported",
                "input nodes (size_in = 0) and passthrough nodes (output = None)",
            )
        if id(pre) in seen:
            raise _refuse(pre, "a cycle of passthrough nodes is not supported", _SUPPORTED_TEXT)
        if conn.learning_rule is not None:
            raise _refuse(
                conn,
                "learning on a connection from a passthrough node",
                "PES on ensemble-to-ensemble connections",
            )
        out: list[_Path] = []
        for inner in self.net.all_connections:
            if inner.post_obj is not pre:
                continue
            if inner.learning_rule is not None:
                raise _refuse(
                    inner,
                    "learning on a connection into a passthrough node",
                    "PES on ensemble-to-ensemble connections",
                )
            for p in self.paths_into(inner, seen | {id(pre)}):
                if p.synapse and synapse:
                    raise _refuse(
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
                raise _refuse(
                    post,
                    "connections into a node that computes a Python function are not supported",
                    "connections into ensembles, neurons, passthrough nodes and PES rules",
                )
            if isinstance(post, nengo.connection.LearningRule):
                continue  # error connections: read with their learning rule
            entries.extend(self.entry(conn, post, path) for path in self.paths_into(conn))
        # Connection names must be unique: number the second and later ones of a pair.
        seen: set[str] = set()
        for e in entries:
            base = e.get("name", f"{e['pre']}->{e['post']}")
            label, k = base, 2
            while label in seen:
                label, k = f"{base}-{k}", k + 1
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
                raise _refuse(
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
            raise _refuse(
                conn,
                f"a connection into {type(post).__name__} is not supported",
                "connections into ensembles, neurons, passthrough nodes and PES rules",
            )
        if label:
            e["name"] = label
        learning = self.learning(path.conn)
        if learning is not None:
            if path.conn is not conn or not isinstance(src, nengo.Ensemble) or "decoders" not in e:
                raise _refuse(
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
            raise _refuse(conn, f"learning rule {kind} is not supported", "a single nengo.PES")
        pes = rule.learning_rule_type
        if type(pes.pre_synapse) is not nengo.Lowpass or not math.isclose(
            pes.pre_synapse.tau, 0.005
        ):
            raise _refuse(
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
            raise _refuse(conn, f"{len(errors)} error connections into its PES rule", "exactly one")
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
            raise _refuse(
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
            raise _refuse(probe, "sample_every is not supported", "sample_every = None")
        synapse = self.synapse(probe, probe.synapse)
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
        raise _refuse(
            probe,
            f"a probe of {describe(target)}.{probe.attr} (synapse {probe.synapse}) is not "
            "supported",
            "decoded ensemble values, neuron spikes (synapse=None or Lowpass), neuron voltages "
            "and input nodes (synapse=None)",
        )

    # ------------------------------------------------------------------ all of it

    def document(self, variables: dict[int, str], source: str) -> str:
        nengo = self.nengo
        net = self.net
        objects = _Names(variables)
        for i, ens in enumerate(net.all_ensembles):
            self.names[id(ens)] = objects.take(ens, "ensemble", i)
        inputs = [n for n in net.all_nodes if self.is_input(n)]
        for i, node in enumerate(net.all_nodes):
            if self.is_input(node):
                self.names[id(node)] = objects.take(node, "node", i)
        probe_names = _Names(variables)
        probe_names.used |= {self.names[id(n)] for n in inputs}
        for i, probe in enumerate(net.all_probes):
            self.names[id(probe)] = probe_names.take(probe, "probe", i)
        for obj in net.all_objects:
            if not isinstance(
                obj, (nengo.Ensemble, nengo.Node, nengo.Connection, nengo.Probe)
            ):  # pragma: no cover - Nengo has no other primitive objects
                raise _refuse(obj, "this object type is not supported", _SUPPORTED_TEXT)
        for node in net.all_nodes:
            if not self.is_input(node) and not self.is_passthrough(node):
                raise _refuse(
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
        doc["populations"] = {self.name(e): self.ensemble(e) for e in net.all_ensembles}
        doc["inputs"] = {self.name(n): self.input_node(n) for n in inputs}
        doc["connections"] = self.connection_entries()
        doc["probes"] = {self.name(p): self.probe(p) for p in net.all_probes}
        if not doc["populations"]:
            raise _refuse(
                net, "the network has no ensembles", "networks with at least one ensemble"
            )
        header = (
            f"# Imported from {source} by `spikestream import` (nengo {nengo.__version__}).\n"
            f"# Arrays built by Nengo are in {self.out.stem}.arrays/; re-import rather than\n"
            "# editing them. docs/NENGO.md describes the mapping.\n"
        )
        return header + _toml(doc)


# --------------------------------------------------------------------------- TOML


def _is_identity(m: FloatArray) -> bool:
    return m.ndim == 2 and m.shape[0] == m.shape[1] and np.array_equal(m, np.eye(m.shape[0]))


def _matrix(m: FloatArray) -> list[list[float]]:
    return [[float(v) for v in row] for row in np.atleast_2d(m)]


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ModelImportError(f"cannot write the non-finite number {v} to a network file")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a valid TOML basic string for the names and paths written here
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")  # pragma: no cover


def _toml(doc: dict[str, Any]) -> str:
    out: list[str] = []
    out.append("\n[network]")
    out.extend(f"{k} = {_value(v)}" for k, v in doc["network"].items())
    for section in ("populations", "inputs"):
        for name, table in doc[section].items():
            out.append(f"\n[{section}.{name}]")
            out.extend(f"{k} = {_value(v)}" for k, v in table.items())
    for table in doc["connections"]:
        out.append("\n[[connections]]")
        out.extend(f"{k} = {_value(v)}" for k, v in table.items())
    for name, table in doc["probes"].items():
        out.append(f"\n[probes.{name}]")
        out.extend(f"{k} = {_value(v)}" for k, v in table.items())
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- entry points


def import_model(
    source: str | Path,
    out: str | Path,
    *,
    dt: float = 0.001,
    sample_duration: float = 10.0,
    timing: str = "nengo",
) -> NetworkSpec:
    """Import ``MODEL.py[:NAME]`` into the network file ``out`` (plus its side files) and
    return the validated spec.

    Args:
        source: the script, optionally with ``:NAME`` (the variable holding the network).
        out: the ``.toml`` file to write; side files go to ``<stem>.arrays/`` next to it.
        dt: the tick length (s) Nengo builds with and the network file gets.
        sample_duration: seconds of each callable input node sampled as its offline signal.
        timing: ``"nengo"`` (every filtered connection delayed one tick, as in Nengo) or
            ``"spikestream"``.

    Raises:
        ConfigError: Nengo is not installed (the message says how to install it).
        ModelImportError: the script fails or uses something outside the supported subset.
    """
    import_nengo()
    script, variable = split_source(str(source))
    net, namespace = load_script_network(script, variable)
    variables: dict[int, str] = {}
    for key, value in namespace.items():
        if not key.startswith("_"):
            variables.setdefault(id(value), key)
    return import_network(
        net,
        out,
        dt=dt,
        sample_duration=sample_duration,
        timing=timing,
        variables=variables,
        source=f"{script.name}:{variable}",
    )


def import_network(
    net: Any,
    out: str | Path,
    *,
    dt: float = 0.001,
    sample_duration: float = 10.0,
    timing: str = "nengo",
    variables: dict[int, str] | None = None,
    source: str = "a nengo.Network",
    built: Any = None,
) -> NetworkSpec:
    """Import the ``nengo.Network`` ``net`` (see :func:`import_model`); ``variables`` maps
    ``id(object)`` to the script variable naming it (for unlabelled objects). ``built`` is
    a ``nengo.builder.Model`` that already built ``net`` with this ``dt`` (to share one
    build with a ``nengo.Simulator``); by default the network is built here."""
    nengo = import_nengo()
    if not (math.isfinite(dt) and 0 < dt <= 1):
        raise ConfigError(f"--dt must be in (0, 1] seconds; got {dt}")
    if not (math.isfinite(sample_duration) and sample_duration > 0):
        raise ConfigError(f"--sample-duration must be > 0 seconds; got {sample_duration}")
    if timing not in ("nengo", "spikestream"):
        raise ConfigError(f"timing {timing!r} is not allowed; expected nengo or spikestream")
    try:
        if built is None:
            built = build_nengo_model(net, dt)
        elif built.dt != dt:
            raise ConfigError(f"the given Nengo build has dt = {built.dt}; expected {dt}")
    except ConfigError:
        raise
    except Exception as err:  # Nengo's builder on the user's model: one line
        raise ModelImportError(
            _one_line(f"{source}: Nengo could not build it: {type(err).__name__}: {err}")
        ) from None
    out_path = Path(out)
    job = _Import(nengo, net, built, out_path, dt, sample_duration, timing)
    text = job.document(variables or {}, source)
    folder = out_path.parent / f"{out_path.stem}.arrays"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.npy"):  # a previous import's arrays; nothing else is touched
        old.unlink()
    for rel, arr in job.arrays.items():
        np.save(out_path.parent / rel, arr)
    out_path.write_text(text, encoding="utf-8")
    return load_network(out_path)


def build_nengo_model(net: Any, dt: float = 0.001) -> Any:
    """``net`` built by Nengo's builder (what ``nengo.Simulator`` builds, without stepping):
    a ``nengo.builder.Model``. Nengo's own warnings are silenced."""
    nengo = import_nengo()
    built = nengo.builder.Model(dt=dt, label=str(net))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built.build(net)
    return built


_TEMP_DIRS: list[str] = []


def _clean_temp_dirs() -> None:
    for d in _TEMP_DIRS:
        shutil.rmtree(d, ignore_errors=True)


def load_network_or_model(path: str | Path, *, sample_duration: float = 10.0) -> NetworkSpec:
    """A network file, or a Nengo model script (``MODEL.py[:NAME]``) imported into a
    temporary folder that lives as long as the process (``sample_duration``: seconds of
    each function-of-t input sampled). ``run`` and ``serve`` use this."""
    if not is_model_script(path):
        return load_network(path)
    if not _TEMP_DIRS:
        atexit.register(_clean_temp_dirs)
    folder = tempfile.mkdtemp(prefix="spikestream-import-")
    _TEMP_DIRS.append(folder)
    script, _ = split_source(str(path))
    return import_model(path, Path(folder) / f"{script.stem}.toml", sample_duration=sample_duration)
