"""The Nengo side of ``bench/wholeprocess.py``: a plain Nengo script, run as its own process.

    python bench/nengo_run.py PARAMS.npz OUT.npz

``PARAMS.npz`` (written by ``wholeprocess.py`` from the built spikestream network) holds
the network as plain numbers: each population's gain, bias and encoders, each dense
connection's weights, and a JSON description (``spec``) of inputs, connections and probes.
This script imports only numpy and nengo, builds the same network, runs it, and writes what
``spikestream run`` writes: every population's spikes (0/1 uint8), every probe, the inputs
and ``t``, with ``np.savez`` (uncompressed, like ``spikestream run`` by default).

It prints one JSON line with its own split (seconds since the script started): imports
done, network built, simulator built, run done, file written.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import json  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # nengo 4.1 under numpy 2
    import nengo


def main(params_path: str, out_path: str) -> None:
    """Build, run and save; print the split as JSON."""
    marks = {"imports": time.perf_counter() - START}
    params = np.load(params_path)
    spec = json.loads(str(params["spec"]))
    dt, ticks = spec["dt"], spec["ticks"]
    zero = {"voltage": nengo.dists.Choice([0.0]), "refractory_time": nengo.dists.Choice([0.0])}
    with nengo.Network(seed=spec["seed"]) as net:
        ens = {}
        for name, p in spec["populations"].items():
            ens[name] = nengo.Ensemble(
                p["n"],
                p["dim"],
                neuron_type=nengo.LIF(
                    tau_rc=p["tau_rc"],
                    tau_ref=p["tau_ref"],
                    min_voltage=p["min_voltage"],
                    initial_state=zero,
                ),
                gain=params[f"{name}.gain"],
                bias=params[f"{name}.bias"],
                encoders=params[f"{name}.encoders"],
                normalize_encoders=False,
                label=name,
            )
        nodes = {}
        for name, inp in spec["inputs"].items():
            if inp["kind"] == "sin":
                # spikestream samples at the start of a tick, Nengo at its end: shift by dt.
                nodes[name] = nengo.Node(lambda t: np.sin(t - dt), label=name)
            else:
                nodes[name] = nengo.Node(np.full(inp["dim"], inp["value"]), label=name)
            nengo.Connection(nodes[name], ens[inp["target"]], synapse=None)
        for k, c in enumerate(spec["connections"]):
            if c["kind"] == "weights":
                # Nengo multiplies currents into .neurons by the post gains; spikestream adds
                # W.T @ y as it is (bench/README.md): divide the gains out.
                w = params[f"conn{k}.weights"]
                gain = params[f"{c['post']}.gain"]
                nengo.Connection(
                    ens[c["pre"]].neurons,
                    ens[c["post"]].neurons,
                    transform=np.ascontiguousarray(w.T / gain[:, None]),
                    synapse=c["synapse"],
                )
            else:
                nengo.Connection(ens[c["pre"]], ens[c["post"]], synapse=c["synapse"])
        spikes = {name: nengo.Probe(e.neurons) for name, e in ens.items()}
        probes = {}
        for name, p in spec["probes"].items():
            if p["kind"] == "spikes":
                probes[name] = spikes[p["target"]]
            elif p["kind"] == "input":
                probes[name] = nengo.Probe(nodes[p["target"]])
            elif p["kind"] == "filtered":
                probes[name] = nengo.Probe(ens[p["target"]].neurons, synapse=p["synapse"])
            else:
                probes[name] = nengo.Probe(ens[p["target"]], synapse=p["synapse"])
        inputs = {name: nengo.Probe(node) for name, node in nodes.items() if name not in probes}
    marks["network"] = time.perf_counter() - START
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        sim = nengo.Simulator(net, progress_bar=False, optimize=True)
    marks["simulator"] = time.perf_counter() - START
    with sim:
        sim.run_steps(ticks)
    marks["run"] = time.perf_counter() - START
    out = {}
    for name, probe in spikes.items():
        out[f"{name}.spikes"] = (sim.data[probe] > 0).view(np.uint8)
    for name, probe in probes.items():
        data = sim.data[probe]
        out[name] = (data > 0).view(np.uint8) if spec["probes"][name]["kind"] == "spikes" else data
    for name, probe in inputs.items():
        out[name] = sim.data[probe]
    out["t"] = sim.trange()
    np.savez(out_path, **out)
    marks["written"] = time.perf_counter() - START
    print(json.dumps(marks))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
