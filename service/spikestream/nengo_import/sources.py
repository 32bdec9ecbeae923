"""Which a network argument is, a network file or a Nengo model script, and its network.

Kept apart from the importer: ``run`` and ``serve`` ask this of every network argument,
and the importer's modules are loaded only when the argument is a script.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from spikestream.nengo_import.script import is_model_script

if TYPE_CHECKING:
    from spikestream.spec import NetworkSpec


def load_network_or_model(path: str | Path, *, sample_duration: float = 10.0) -> NetworkSpec:
    """A network file, or a Nengo model script (``MODEL.py[:NAME]``) imported into a
    temporary folder that lives as long as the process (``sample_duration``: seconds of
    each function-of-t input sampled). ``run`` and ``serve`` use this."""
    if not is_model_script(path):
        from spikestream.spec import load_network

        return load_network(path)
    from spikestream.nengo_import.network_file import import_model_to_temp

    return import_model_to_temp(path, sample_duration=sample_duration)
