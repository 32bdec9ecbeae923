"""The client library's typing holds for a program checked with ``mypy --strict``.

``spikestream_client/__init__.py`` loads its names lazily through a module-level
``__getattr__(name) -> Any``. mypy reads such a ``__getattr__`` as "every attribute
exists", so ``from spikestream_client import SpikeFrame`` (a name the package did not
export then: it lived in ``spikestream_client.codec`` only) passed ``mypy --strict`` as
``Any`` and failed only at run time with ImportError, and every misspelt name was
silently ``Any``. ``spikestream_client.codec`` and ``spikestream.serving`` load lazily the
same way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.structure.imports import ROOT


def _mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    program = tmp_path / "program.py"
    program.write_text(source)
    env = {**os.environ, "MYPYPATH": str(ROOT / "clients")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(program),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_a_name_the_package_does_not_export_is_a_type_error(tmp_path: Path) -> None:
    """Exported names keep their types; one the package lacks is refused by mypy, as
    Python refuses it at run time."""
    result = _mypy(
        tmp_path,
        "from spikestream_client import GapTracker, SpikestreamClient, NoSuchName\n"
        "reveal_type(SpikestreamClient)\n"
        "reveal_type(GapTracker)\n",
    )
    out = result.stdout
    assert "spikestream_client.client.SpikestreamClient" in out, out
    assert "spikestream_client.gaps.GapTracker" in out, out
    assert 'Module "spikestream_client" has no attribute "NoSuchName"' in out, out
    assert result.returncode == 1


@pytest.mark.slow
def test_the_frame_and_error_classes_a_client_needs_are_exported_with_their_types(
    tmp_path: Path,
) -> None:
    """The frames a client reads and the errors it catches come from the package's top
    level, typed; the lazily loaded codec refuses a name it lacks too."""
    result = _mypy(
        tmp_path,
        "from spikestream_client import SpikeFrame, TransportError, ValueFrame\n"
        "from spikestream_client.codec import NoSuchCodecName\n"
        "reveal_type(SpikeFrame)\n"
        "reveal_type(ValueFrame)\n"
        "reveal_type(TransportError)\n",
    )
    out = result.stdout
    assert "spikestream_client.codec.frames.SpikeFrame" in out, out
    assert "spikestream_client.codec.frames.ValueFrame" in out, out
    assert "spikestream_client.errors.TransportError" in out, out
    assert 'Module "spikestream_client.codec" has no attribute "NoSuchCodecName"' in out, out
