"""A snippet run in a child Python whose address space is capped at 1 GiB, for tests of
files that would exhaust memory (``/dev/zero``) or block for ever (a FIFO) if read: the
cap and the timeout turn either into a failure instead of a stalled machine or suite."""

from __future__ import annotations

import subprocess
import sys

_CAP = "import resource\nresource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"


def run_capped(code: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``python -c code args...`` under the cap; its output as text, never raising on a
    non-zero exit (a ``subprocess.TimeoutExpired`` past ``timeout`` s is the hang)."""
    return subprocess.run(
        [sys.executable, "-c", _CAP + code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
