"""The client distribution installs alone, with one ``pip install``, and stays light.

A fresh virtual environment (no system site packages) gets ``pip install ./clients``
and nothing else. The tools must work there, and none of the service's heavy
dependencies may come along: a client on a robot's small computer should not pull in
numba, amqtt, prometheus-client or matplotlib.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.structure.imports import ROOT

#: The service's dependencies a client must not need.
HEAVY = (
    "numba",
    "llvmlite",
    "amqtt",
    "prometheus_client",
    "matplotlib",
    "pydantic",
    "pydantic_core",
    "pydantic_settings",
)


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    return subprocess.run(argv, capture_output=True, text=True, env=env, **kwargs)  # type: ignore[call-overload, no-any-return]


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only ``pip install <copy of clients/>``."""
    base = tmp_path_factory.mktemp("client-only")
    # Build from a copy: setuptools writes build/ and *.egg-info into the source tree.
    source = base / "clients"
    shutil.copytree(
        ROOT / "clients",
        source,
        ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"),
    )
    venv = base / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], timeout=120)
    assert made.returncode == 0, made.stderr
    pip = _run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(source)],
        timeout=600,
        cwd=base,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return venv


@pytest.mark.slow
def test_the_client_imports_and_its_tools_run(client_venv: Path) -> None:
    python = str(client_venv / "bin" / "python")
    code = (
        "import spikestream_client, spikestream_client.codec, spikestream_client.transport\n"
        "from spikestream_client import SpikestreamClient\n"
        "print(SpikestreamClient.__name__)\n"
    )
    proc = _run([python, "-c", code], timeout=60, cwd=client_venv)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "SpikestreamClient"

    feed = _run([str(client_venv / "bin" / "spikestream"), "feed", "--help"], timeout=60)
    assert feed.returncode == 0, feed.stderr
    assert "--input" in feed.stdout

    top = _run([str(client_venv / "bin" / "spikestream"), "--help"], timeout=60)
    assert top.returncode == 0, top.stderr
    for tool in ("feed", "monitor", "record", "ls"):
        assert tool in top.stdout
    # The service's subcommands are not there without the service...
    run = _run([str(client_venv / "bin" / "spikestream"), "run", "x.toml"], timeout=60)
    assert run.returncode == 2
    assert "invalid choice: 'run'" in run.stderr
    version = _run([str(client_venv / "bin" / "spikestream"), "--version"], timeout=60)
    assert "client only" in version.stdout
    # Without the plot extra, --plot is refused in one line before anything connects.
    record = [str(client_venv / "bin" / "spikestream"), "record", "--net", "seed"]
    where = ["--broker", "mqtt://127.0.0.1:9", "--out", str(client_venv / "r.npz")]
    plot = _run([*record, *where, "--plot", "r.png"], timeout=60)
    assert plot.returncode == 2, plot.stderr
    assert plot.stderr == (
        "spikestream record: error: --plot needs matplotlib, which is not installed; expected "
        "it with pip install 'spikestream-client[plot]' (or without --plot)\n"
    )
    # The browser monitor's page is package data: it must be installed too.
    shipped = _run(
        [
            python,
            "-c",
            "from spikestream_client.monitor.web import WEB_DIR\n"
            "print(sorted(p.name for p in WEB_DIR.iterdir()))",
        ],
        timeout=60,
        cwd=client_venv,
    )
    assert shipped.returncode == 0, shipped.stderr
    for name in ("index.html", "monitor.js", "monitor.css"):
        assert name in shipped.stdout


@pytest.mark.slow
def test_the_client_install_has_none_of_the_service_dependencies(client_venv: Path) -> None:
    python = str(client_venv / "bin" / "python")
    code = (
        "import importlib.util\n"
        f"print(' '.join(m for m in {HEAVY!r} if importlib.util.find_spec(m) is not None))\n"
    )
    proc = _run([python, "-c", code], timeout=60, cwd=client_venv)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == []
    # ...and the service package itself is absent (the client never needs it).
    service = _run([python, "-c", "import spikestream"], timeout=60, cwd=client_venv)
    assert service.returncode != 0
    assert "No module named 'spikestream'" in service.stderr
