"""``serve --metrics-port``'s HTTP server, over real sockets: idle connections, and ones
that trickle their request, are closed after the socket timeout, connections past the cap
are refused at once (prometheus_client's own server held an idle socket's thread and
descriptor forever, and a few hundred of them ran the service out of descriptors),
``?name[]=`` filters, HEAD answers like GET without a body, and a full descriptor table
does not make the accept loop spin."""

from __future__ import annotations

import errno
import select
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from spikestream.serving import metrics as metrics_module
from spikestream.serving.metrics import MetricsServer, start_metrics
from spikestream.serving.statistics import ServiceStatistics
from tests.serving import offline_service

#: Seconds a test waits for something the server does at once (never reached when it
#: works; it bounds a failure).
PATIENCE = 5.0


@pytest.fixture(scope="module")
def snapshot() -> Callable[[], ServiceStatistics]:
    """``statistics`` of a seed service that never reaches a broker (its figures are not
    what these tests look at)."""
    return offline_service().statistics  # type: ignore[no-any-return]


@pytest.fixture
def serve(snapshot: Callable[[], ServiceStatistics]) -> Iterator[Callable[..., MetricsServer]]:
    """Starts the endpoint on a free loopback port with the given keyword arguments of
    ``start_metrics``; shuts down what it started at the test's end."""
    started: list[MetricsServer] = []

    def start(**kwargs: Any) -> MetricsServer:
        server = start_metrics([snapshot], "127.0.0.1", 0, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()


def connect(port: int) -> socket.socket:
    """A client connection that waits at most ``PATIENCE`` s for each read."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
    sock.settimeout(PATIENCE)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset reads as the end)."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return b"".join(chunks)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def get(port: int, path: str = "/metrics", method: str = "GET") -> tuple[int, Any, bytes]:
    """Status, headers and body of one request."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(request, timeout=PATIENCE) as answer:
        return answer.status, answer.headers, answer.read()


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {PATIENCE} s"
        time.sleep(0.01)


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /metrics\r\n"],  # nothing; a request line without version (headers never come)
    ids=["idle", "no-version"],
)
def test_a_silent_connection_is_closed_after_the_socket_timeout(
    serve: Callable[..., MetricsServer], sent: bytes
) -> None:
    before = set(threading.enumerate())
    server = serve(socket_timeout=0.2)
    with connect(server.port) as sock:
        sock.sendall(sent)
        # Its thread does not keep the process alive at exit.
        wait_until(lambda: len(set(threading.enumerate()) - before) >= 2, "connection thread")
        assert all(t.daemon for t in set(threading.enumerate()) - before)
        try:
            assert sock.recv(65536) == b""  # closed by the server, nothing sent
        except TimeoutError:
            pytest.fail(f"the server kept a silent connection open for {PATIENCE} s")
    assert get(server.port)[0] == 200  # and it goes on answering


def test_a_request_trickled_a_byte_at_a_time_is_closed_at_the_deadline(
    serve: Callable[..., MetricsServer],
) -> None:
    # A deadline per read let a client that sends a byte every so often keep its slot for
    # good; the whole request must now arrive within the timeout.
    timeout = 0.5
    server = serve(socket_timeout=timeout)
    with connect(server.port) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nX-Trickle: ")
        start = time.monotonic()
        closed_after = None
        while time.monotonic() - start < PATIENCE:
            try:
                sock.sendall(b"a")  # well within the timeout of the byte before
            except OSError:  # reset: the server closed it
                closed_after = time.monotonic() - start
                break
            ready = select.select([sock], [], [], 0.05)[0]
            if ready:
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                assert data == b"", data  # nothing answered to a request never finished
                closed_after = time.monotonic() - start
                break
        assert closed_after is not None, f"a trickling client kept its slot for {PATIENCE} s"
        assert timeout * 0.9 <= closed_after <= timeout + 1.0, closed_after
    assert get(server.port)[0] == 200


def test_connections_past_the_cap_are_refused_at_once(
    serve: Callable[..., MetricsServer],
) -> None:
    server = serve(socket_timeout=60.0, max_connections=2)
    idle = [connect(server.port), connect(server.port)]  # each holds a slot: it says nothing
    try:
        with connect(server.port) as third:
            try:
                answer = read_all(third)
            except TimeoutError:
                pytest.fail(f"a connection past the cap waited {PATIENCE} s unanswered")
            assert answer.startswith(b"HTTP/1.0 503 "), answer
        # A slot freed is taken again: the next scrape is answered (once the server has
        # seen the close: until then it may still be refused).
        idle.pop().close()

        def scraped() -> bool:
            try:
                return get(server.port)[0] == 200
            except urllib.error.HTTPError as err:
                if err.code != 503:
                    raise
                return False
            except OSError:  # refused before its request was read: the close may reset it
                return False

        wait_until(scraped, "scrape answered after a slot was freed")
    finally:
        for sock in idle:
            sock.close()


def test_the_name_filter_selects_families(serve: Callable[..., MetricsServer]) -> None:
    server = serve()
    status, _, body = get(server.port, "/metrics?name[]=spikestream_ticks_total")
    samples = [line for line in body.decode().splitlines() if not line.startswith("#")]
    assert status == 200
    assert [s.rsplit(" ", 1)[0] for s in samples] == ['spikestream_ticks_total{net="seed"}']


def test_head_answers_like_get_without_a_body(serve: Callable[..., MetricsServer]) -> None:
    server = serve()
    status, headers, body = get(server.port, method="HEAD")
    _, get_headers, get_body = get(server.port)
    assert status == 200
    assert body == b""
    assert headers["Content-Type"] == get_headers["Content-Type"]
    assert int(headers["Content-Length"]) > 0  # the GET body's length, which varies a little
    assert len(get_body) > 0


class NoDescriptors:
    """A listening socket whose accept() fails as at the descriptor limit (EMFILE), counting
    the tries; the rest is the real socket's, so the pending connection stays queued."""

    def __init__(self, real: socket.socket) -> None:
        self.real = real
        self.accepts = 0

    def accept(self) -> tuple[socket.socket, Any]:
        self.accepts += 1
        raise OSError(errno.EMFILE, "Too many open files")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_accept_without_descriptors_waits_instead_of_spinning(
    serve: Callable[..., MetricsServer],
) -> None:
    server = serve()
    listener = server._server  # the socketserver; its socket is swapped for the test
    real = listener.socket
    failing = NoDescriptors(real)
    listener.socket = failing  # type: ignore[assignment]
    try:
        with connect(server.port):  # queued, so the listening socket stays readable
            wait_until(lambda: failing.accepts >= 1, "accept")
            time.sleep(0.5)
            tries = failing.accepts
    finally:
        listener.socket = real
    # About 0.5 s / ACCEPT_BACKOFF tries; retrying at once made thousands.
    assert tries <= 3 * 0.5 / metrics_module.ACCEPT_BACKOFF, tries
    assert get(server.port)[0] == 200  # descriptors back: it answers again


def test_shutdown_stops_the_server_and_frees_the_port() -> None:
    server = start_metrics([], "127.0.0.1", 0)
    port = server.port
    assert get(port)[0] == 200
    server.shutdown()
    assert not server._thread.is_alive()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=PATIENCE).close()
