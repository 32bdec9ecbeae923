"""Nengo's reference LIF, imported for use as a test oracle.

nengo 4.1 touches ``numpy.core`` on import, which numpy 2 deprecates; the warning is
Nengo's, not ours, so it is silenced for this import only.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nengo

LIF = nengo.neurons.LIF

__all__ = ["LIF", "nengo"]
