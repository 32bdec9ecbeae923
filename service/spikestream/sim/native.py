"""Which interpreter runs fused programs: the C extension, or numba.

Both run the same program (:mod:`spikestream.sim.opcodes`) with the same kernels in the
same order of operations, and agree bit for bit (tests/sim/test_native.py). They differ in
what they cost at start: the C extension ``spikestream.sim._native`` loads in about a
millisecond, while importing numba and loading its cached ``run_program`` takes about half
a second in every process, more than a short offline run spends stepping. So the C
extension is the default wherever it was built; numba remains for a machine where the
install found no C compiler, and for the ops a program cannot hold (learning connections,
forced-dense weights), which call numba kernels one by one.

``SPIKESTREAM_PROGRAMS`` chooses: ``auto`` (the default: C if built, else numba), ``c`` or
``numba``.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Literal

import numpy as np
import numpy.typing as npt

from spikestream.errors import SimulationError

Runner = Literal["c", "numba"]
#: Environment variable choosing the interpreter (``auto``, ``c`` or ``numba``).
ENV = "SPIKESTREAM_PROGRAMS"


def extension() -> ModuleType | None:
    """The C extension module, or None when this install has none (no compiler)."""
    try:
        import spikestream.sim._native as ext
    except ImportError:
        return None
    return ext


def runner() -> Runner:
    """The interpreter ``SPIKESTREAM_PROGRAMS`` asks for, resolved against this install.

    Raises:
        SimulationError: the variable holds something else, or asks for ``c`` where the
            extension was not built.
    """
    wanted = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if wanted not in ("auto", "c", "numba"):
        raise SimulationError(
            f"{ENV}={os.environ[ENV]!r} is not allowed; expected auto, c or numba"
        )
    if wanted == "numba":
        return "numba"
    if extension() is not None:
        return "c"
    if wanted == "c":
        raise SimulationError(
            f"{ENV}=c, but the C extension spikestream.sim._native is not built in this "
            "install (reinstall with a C compiler present), or set it to auto or numba"
        )
    return "numba"


def program_args(
    program: npt.NDArray[np.int64],
    table: npt.NDArray[np.int64],
    scalars: npt.NDArray[np.floating],
    counts: npt.NDArray[np.int64],
) -> tuple[int, ...]:
    """The extension's first nine ``check_program``/``run_program``/``tick`` arguments:
    the data address and length of ``program`` ``(ops, 10)``, ``table`` ``(arrays, 3)``,
    ``scalars`` ``(rows, 8)`` and ``counts`` ``(slots,)``, then 1 for a float32 state
    (``scalars``' dtype) and 0 for float64. The caller keeps the arrays alive."""
    return tuple(
        int(x)
        for x in (
            program.ctypes.data,
            program.shape[0],
            table.ctypes.data,
            table.shape[0],
            scalars.ctypes.data,
            scalars.shape[0],
            counts.ctypes.data,
            counts.shape[0],
            scalars.dtype == np.float32,
        )
    )
