"""``deploy/healthcheck.py`` against a metrics endpoint whose ticks advance when the test
says: it waits up to ``--within`` for each network to tick once. Two scrapes a fixed half
second apart called a network that ticks once a second dead every other time (three
misses in a row restart a Kubernetes pod)."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType

import pytest

from tests.e2e.test_deploy_config import HEALTHCHECK


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("healthcheck", HEALTHCHECK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


healthcheck = _load()


@pytest.fixture
def endpoint() -> Iterator[tuple[str, list[Callable[[int], str]]]]:
    """A metrics URL and the function that writes its n-th scrape (set by the test)."""
    page: list[Callable[[int], str]] = [lambda n: ""]
    scrapes = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page[0](scrapes[0]).encode()
            scrapes[0] += 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics", page
    finally:
        server.shutdown()
        server.server_close()


def metrics(ticks: dict[str, int], paused: tuple[str, ...] = ()) -> str:
    return "".join(
        f'spikestream_connected{{net="{net}"}} 1.0\n'
        f'spikestream_ticks_total{{net="{net}"}} {count}.0\n'
        f'spikestream_paused{{net="{net}"}} {1.0 if net in paused else 0.0}\n'
        for net, count in ticks.items()
    )


def test_a_network_that_ticks_late_in_the_window_is_healthy(
    endpoint: tuple[str, list[Callable[[int], str]]],
) -> None:
    url, page = endpoint
    # "fast" ticks at once; "slow" only from the 8th scrape (after about 0.7 s).
    page[0] = lambda n: metrics({"fast": 10 + n, "slow": 5 if n < 8 else 6})
    assert healthcheck.check(url, within=3.0) == []


def test_a_network_that_never_ticks_is_named_after_the_window(
    endpoint: tuple[str, list[Callable[[int], str]]],
) -> None:
    url, page = endpoint
    page[0] = lambda n: metrics({"fast": 10 + n, "stuck": 7, "held": 3}, paused=("held",))
    assert healthcheck.check(url, within=0.5) == ["stuck: not ticking (ticks 7 -> 7)"]


def test_within_is_a_flag_with_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        healthcheck.main(["--within", "0", "--port", "1"])
    assert exit_info.value.code == 2
    assert "--within must be in (0, 3600] seconds, got 0" in capsys.readouterr().err


Endpoint = tuple[str, list[Callable[[int], str]]]


def test_a_network_not_connected_is_named_unless_only_ticking_is_asked(
    endpoint: Endpoint,
) -> None:
    """Readiness names a network whose broker connection is down; liveness
    (``connected=False``, ``--ticking-only``) does not: it ticks."""
    url, page = endpoint
    page[0] = lambda n: metrics({"seed": 10 + n}).replace(
        'spikestream_connected{net="seed"} 1.0', 'spikestream_connected{net="seed"} 0.0'
    )
    assert healthcheck.check(url, within=1.0) == ["seed: not connected to the broker"]
    assert healthcheck.check(url, connected=False, within=1.0) == []


def test_an_endpoint_that_reports_no_network_is_unhealthy(endpoint: Endpoint) -> None:
    """A service serving nothing (an empty metrics page) is not healthy."""
    url, page = endpoint
    page[0] = lambda n: ""
    assert healthcheck.check(url, within=0.3) == [f"{url} reports no network"]


def test_the_check_stops_scraping_once_every_network_ticked(endpoint: Endpoint) -> None:
    """Networks that tick at once are healthy after the second scrape: the check does not
    scrape on for the rest of the window (the probe's timeout must cover only slow ones)."""
    url, page = endpoint
    scrapes: list[int] = []

    def ticking(n: int) -> str:
        scrapes.append(n)
        return metrics({"fast": 10 + n, "held": 3}, paused=("held",))

    page[0] = ticking
    assert healthcheck.check(url, within=5.0) == []
    assert scrapes == [0, 1]


def test_main_waits_as_long_as_within_says(endpoint: Endpoint) -> None:
    """``--within`` reaches the check: a network that ticks only from the 15th scrape is
    unhealthy under ``--within 0.2``, healthy under ``--within 60``."""
    url, page = endpoint
    port = url.split(":")[2].split("/")[0]
    page[0] = lambda n: metrics({"slow": 5 if n < 15 else 6})
    assert healthcheck.main(["--host", "127.0.0.1", "--port", port, "--within", "0.2"]) == 1
    page[0] = lambda n: metrics({"slow": 5 if n < 15 else 6})
    assert healthcheck.main(["--host", "127.0.0.1", "--port", port, "--within", "60"]) == 0


@pytest.mark.parametrize("within", ["3600.5", "1e9", "-1"])
def test_within_beyond_an_hour_or_below_zero_is_refused(
    within: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--within`` is in (0, 3600] seconds."""
    with pytest.raises(SystemExit) as exit_info:
        healthcheck.main(["--within", within, "--port", "1"])
    assert exit_info.value.code == 2
    assert "--within must be in (0, 3600] seconds" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["abc", "70000", "0", "-1", "9100x"])
def test_a_bad_port_in_the_environment_or_flag_is_one_line(
    value: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SPIKESTREAM_METRICS_PORT=abc`` was a traceback when the parser was built, and
    ``--port 70000`` one from the socket (an OverflowError, no OSError): both are now a
    usage error naming what was expected."""
    monkeypatch.setenv("SPIKESTREAM_METRICS_PORT", value)
    with pytest.raises(SystemExit) as exit_info:
        healthcheck.main([])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"SPIKESTREAM_METRICS_PORT: {value!r} is not a port; expected 1 to 65535" in err
    monkeypatch.delenv("SPIKESTREAM_METRICS_PORT")
    with pytest.raises(SystemExit) as exit_info:
        healthcheck.main(["--port", value])
    assert exit_info.value.code == 2
    assert f"argument --port: expected a TCP port, 1 to 65535; got {value!r}" in (
        capsys.readouterr().err
    )


def test_the_host_and_port_come_from_the_services_variables(
    endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run beside ``serve`` with its environment, the check reads the address the service
    listens on: a wildcard one on loopback, a given one as given, the flags over both."""
    url, page = endpoint
    port = url.split(":")[2].split("/")[0]
    page[0] = lambda n: metrics({"seed": 10 + n})
    monkeypatch.setenv("SPIKESTREAM_METRICS_PORT", port)
    for host in ("0.0.0.0", "127.0.0.1", ""):
        monkeypatch.setenv("SPIKESTREAM_METRICS_HOST", host)
        assert healthcheck.main([]) == 0, capsys.readouterr().out
    monkeypatch.setenv("SPIKESTREAM_METRICS_HOST", "127.0.0.2")  # not listening there
    assert healthcheck.main([]) == 1
    assert f"cannot read http://127.0.0.2:{port}/metrics" in capsys.readouterr().out
    assert healthcheck.main(["--host", "127.0.0.1"]) == 0


def test_an_ipv6_host_is_bracketed() -> None:
    assert healthcheck.endpoint("::1", 9100) == "http://[::1]:9100/metrics"
    assert healthcheck.endpoint("[::1]", 9100) == "http://[::1]:9100/metrics"
    assert healthcheck.endpoint("10.0.0.7", 1) == "http://10.0.0.7:1/metrics"
    for wildcard, loopback in (("::", "::1"), ("0.0.0.0", "127.0.0.1")):
        assert healthcheck.WILDCARDS[wildcard] == loopback


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"SSH-2.0-OpenSSH\r\n", "cannot read"),  # not HTTP: BadStatusLine
        (None, "could not convert string to float"),  # a sample that is no number
    ],
)
def test_an_endpoint_that_is_not_the_services_is_unhealthy_in_one_line(
    body: bytes | None,
    expected: str,
    endpoint: Endpoint,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Pointed at another server, or at a page with a garbled sample, the check says
    unhealthy and why (exit 1), not a traceback."""
    import socket

    if body is None:
        url, page = endpoint
        page[0] = lambda n: 'spikestream_ticks_total{net="seed"} many\n'
        port = int(url.split(":")[2].split("/")[0])
        assert healthcheck.main(["--port", str(port)]) == 1
    else:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]

        def answer() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(body)

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        try:
            assert healthcheck.main(["--port", str(port)]) == 1
        finally:
            thread.join(5)
            server.close()
    out = capsys.readouterr().out
    assert out.startswith(f"unhealthy: cannot read http://127.0.0.1:{port}/metrics: "), out
    assert expected in out
    assert len(out.splitlines()) == 1
