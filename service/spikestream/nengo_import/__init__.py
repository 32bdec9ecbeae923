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

from spikestream.nengo_import.naming import describe
from spikestream.nengo_import.network_file import (
    import_model,
    import_network,
    load_network_or_model,
)
from spikestream.nengo_import.objects import MAX_SAMPLES, FloatArray
from spikestream.nengo_import.script import (
    DEFAULT_VARIABLE,
    INSTALL_HINT,
    build_nengo_model,
    import_nengo,
    is_model_script,
    load_script_network,
    split_source,
)

__all__ = [
    "DEFAULT_VARIABLE",
    "INSTALL_HINT",
    "MAX_SAMPLES",
    "FloatArray",
    "build_nengo_model",
    "describe",
    "import_model",
    "import_nengo",
    "import_network",
    "is_model_script",
    "load_network_or_model",
    "load_script_network",
    "split_source",
]
