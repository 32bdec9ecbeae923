"""Simulation: pure in-place kernels and the simulator that steps them."""

from spikestream.sim.kernels import accumulate_rows, lif_step, lowpass_spikes, lowpass_step
from spikestream.sim.ops import decay
from spikestream.sim.simulator import Footprint, Simulator

__all__ = [
    "Footprint",
    "Simulator",
    "accumulate_rows",
    "decay",
    "lif_step",
    "lowpass_spikes",
    "lowpass_step",
]
