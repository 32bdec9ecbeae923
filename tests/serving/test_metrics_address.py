"""``serve --metrics-host/--metrics-port``: an address that cannot be bound is one error
line naming the host, the port and the reason (it was a ``socket.gaierror`` or
``OSError: [Errno 98]`` traceback)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from spikestream.errors import ConfigError
from spikestream.serving.metrics import start_metrics
from tests.brokers import Mosquitto

SEED = Path(__file__).parents[2] / "examples" / "seed.toml"


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port bound and listened on for the test's length."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_host_that_does_not_resolve_is_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        start_metrics([], "999.1.1.1", 0)
    assert str(info.value).startswith(
        "metrics host '999.1.1.1' (from --metrics-host) and port 0 (from --metrics-port): "
        "cannot serve metrics there: "
    )
    assert str(info.value).endswith("; expected an address of this machine and a free port")


def test_a_port_in_use_is_one_line(taken_port: int) -> None:
    with pytest.raises(ConfigError) as info:
        start_metrics([], "127.0.0.1", taken_port)
    assert str(info.value) == (
        f"metrics host '127.0.0.1' (from --metrics-host) and port {taken_port} (from "
        "--metrics-port): cannot serve metrics there: Address already in use; expected an "
        "address of this machine and a free port"
    )


def test_serve_refuses_a_port_in_use_in_one_line_naming_its_route(
    mosquitto: Mosquitto, taken_port: int, tmp_path: Path
) -> None:
    """The refusal named the flags whatever set the port: in a container it comes from
    SPIKESTREAM_METRICS_PORT, and the message sent the operator to a flag never given."""
    logs = tmp_path / "logs"
    logs.mkdir()
    done = subprocess.run(
        [
            sys.executable, "-m", "spikestream", "serve", str(SEED), "--broker", mosquitto.url(),
            "--log-inputs", str(logs / "in.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "SPIKESTREAM_METRICS_PORT": str(taken_port)},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == (
        f"spikestream serve: error: metrics host '127.0.0.1' (from its default) and port "
        f"{taken_port} (from SPIKESTREAM_METRICS_PORT): cannot serve metrics there: Address "
        "already in use; expected an address of this machine and a free port"
    )
    assert list(logs.iterdir()) == []  # no spool folder of the input log left behind
