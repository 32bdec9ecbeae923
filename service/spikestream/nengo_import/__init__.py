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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spikestream.nengo_import.naming import describe
    from spikestream.nengo_import.network_file import import_model, import_network
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
    from spikestream.nengo_import.sources import load_network_or_model

#: Where each name lives. The modules load on first use (PEP 562): ``run`` and ``serve``
#: ask every network argument whether it is a model script, and the importer's modules
#: (about 13 ms of a 0.27 s start) are loaded only when one is.
_HOMES = {
    "describe": "naming",
    "import_model": "network_file",
    "import_network": "network_file",
    "MAX_SAMPLES": "objects",
    "FloatArray": "objects",
    "DEFAULT_VARIABLE": "script",
    "INSTALL_HINT": "script",
    "build_nengo_model": "script",
    "import_nengo": "script",
    "is_model_script": "script",
    "load_network_or_model": "sources",
    "load_script_network": "script",
    "split_source": "script",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # found directly from now on
    return value


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
