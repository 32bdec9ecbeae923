"""Whom the web monitor's server answers: its ``Host`` and ``Origin`` checks
(:class:`WebAccess`), its log of aborted connections (:class:`HandshakeLog`), and its
answer to requests its WebSocket library cannot read (:class:`MethodGate`).

``websockets``, which serves the browser monitor's page and stream on one port, parses
GET requests only: a request with any other method (``curl -I``'s HEAD, a health
check's HEAD or OPTIONS, a form's POST) had its connection closed without a word, which
a client reports as an empty reply. :class:`MethodGate` looks at a connection's first
bytes before ``websockets`` reads them:

- a request line whose method is ``GET`` goes to ``websockets`` at once, unchanged;
- a request line with another method gets ``405 Method Not Allowed`` with ``Allow: GET``
  once its head has arrived (or :data:`HEAD_LIMIT` bytes of it), and the connection is
  closed once the client has sent the rest (a body, read and dropped) or after
  :data:`LINGER_S`; HEAD gets the head of that answer only;
- bytes that begin no HTTP request line (a TLS hello, a port scanner's probe) go to
  ``websockets`` unchanged, which closes the connection as before.

A connection holds at most :data:`HEAD_LIMIT` bytes and one read here, and a peer that sends
part of a request line and then nothing is closed by ``websockets``' opening-handshake
timeout, which runs from the connection's start.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import sys
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import InvalidHandshake

from spikestream_client.errors import ConfigError

__all__ = [
    "HEAD_LIMIT",
    "LOCAL_NAMES",
    "WILDCARDS",
    "HandshakeLog",
    "MethodGate",
    "Verdict",
    "WebAccess",
    "classify",
    "not_allowed",
    "parse_origin",
]

LOCAL_NAMES: Final = ("localhost", "127.0.0.1", "::1")
"""Host names every monitor answers to (at its own port)."""
WILDCARDS: Final = ("", "0.0.0.0", "::")
"""Bind addresses that mean every address."""
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def parse_origin(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an origin such as ``http://pi.local:8080``.

    The host is lower-cased and IPv6 brackets are removed; a missing port is the
    scheme's default.

    Raises:
        ConfigError: Not an ``http``/``https`` URL with a host and nothing else but a port.
    """
    want = "an origin like http://HOST:PORT (scheme, host and optional port only)"
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ConfigError(f"--web-allow-origin {url!r:.100}: expected {want}") from None
    scheme = parts.scheme.lower()
    if (
        scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ConfigError(f"--web-allow-origin {url!r:.100}: expected {want}")
    return scheme, parts.hostname.lower(), _DEFAULT_PORTS[scheme] if port is None else port


def _parse_host(value: str) -> tuple[str, int | None] | None:
    """``(host, port or None)`` of a ``Host`` header, or None if it is malformed."""
    if not value or any(c in value for c in "/?#@\\ \t"):
        return None
    try:
        parts = urlsplit("//" + value)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower(), port


class WebAccess:
    """Which ``Host`` and ``Origin`` headers the web monitor answers.

    Args:
        bind_host: The address the server was bound to (``--host``).
        port: The port it listens on (the real one when ``--web 0``).
        allow_origins: Extra origins (``--web-allow-origin``), e.g.
            ``http://pi.local:8080``; each also allows its host as a ``Host`` header.
    """

    def __init__(self, bind_host: str, port: int, allow_origins: Sequence[str] = ()) -> None:
        names = {n.lower() for n in LOCAL_NAMES}
        bound = bind_host.strip("[]").lower()
        if bound not in WILDCARDS:
            names.add(bound)
        self.origins: set[tuple[str, str, int]] = {("http", name, port) for name in names}
        self.hosts: set[tuple[str, int | None]] = {(name, port) for name in names}
        if port == _DEFAULT_PORTS["http"]:
            self.hosts |= {(name, None) for name in names}
        for url in allow_origins:
            scheme, host, origin_port = parse_origin(url)
            self.origins.add((scheme, host, origin_port))
            self.hosts.add((host, origin_port))
            if origin_port == _DEFAULT_PORTS[scheme]:
                self.hosts.add((host, None))  # browsers leave the default port out

    def host_ok(self, value: str | None) -> bool:
        """Whether a ``Host`` header names this monitor (a missing one does not)."""
        parsed = _parse_host(value or "")
        return parsed is not None and parsed in self.hosts

    def origin_ok(self, value: str | None) -> bool:
        """Whether an ``Origin`` header is one of this monitor's pages.

        A missing header is allowed: browsers always send one with a WebSocket
        handshake, so its absence means a script or tool, not a web page."""
        if value is None:
            return True
        try:
            return parse_origin(value) in self.origins
        except ConfigError:
            return False  # "null" (sandboxed frames, file: pages) and anything malformed


class HandshakeLog(logging.LoggerAdapter[logging.Logger]):
    """websockets' logger for the web monitor, minus the noise of aborted connections.

    websockets logs "opening handshake failed" at ERROR with a traceback when a peer
    connects and closes, or sends garbage, before a complete HTTP request. On a listening
    port that is routine (port scanners, health checks), so it becomes one DEBUG line.
    Any other failure keeps its ERROR and traceback. websockets' own DEBUG tracing of
    each connection's states and frames is off, so an aborted connection costs exactly
    one DEBUG line.
    """

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if level >= logging.ERROR and msg == "opening handshake failed":
            exc = sys.exc_info()[1]
            if isinstance(exc, InvalidHandshake | OSError | EOFError):
                cause = exc.__cause__
                why = f"{exc}" + (f" ({cause})" if cause is not None else "")
                self.logger.debug("connection closed before a valid request: %s", why)
                return
        super().log(level, msg, *args, **kwargs)


#: Most bytes of a refused request's head read before the answer: the longest line
#: ``websockets`` itself reads.
HEAD_LIMIT: Final = 8192

#: Seconds a refused request's connection stays open for the rest of its bytes (read and
#: dropped) after the answer, unless the client closes first.
LINGER_S: Final = 2.0

#: The longest method judged: HTTP's registered methods are at most 17 characters.
METHOD_LIMIT: Final = 32

#: RFC 9110's ``tchar``: the characters of a method token.
_TOKEN: Final = frozenset(
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)


class Verdict(enum.Enum):
    """What to do with the bytes a connection has sent so far."""

    PASS = "pass"
    """Hand them to ``websockets``: a GET, or no HTTP request line."""
    WAIT = "wait"
    """Too few bytes to tell, or a refused request's head not yet complete."""
    REFUSE = "refuse"
    """Answer 405: a complete head (or :data:`HEAD_LIMIT` bytes) of another method."""


def classify(head: bytes) -> tuple[Verdict, bytes]:
    """Judge a connection's first bytes ``head``; returns the verdict and the method
    (``b""`` unless the verdict is :attr:`Verdict.REFUSE`)."""
    space = head.find(b" ", 0, METHOD_LIMIT + 1)
    token = head[:space] if space >= 0 else head[: METHOD_LIMIT + 1]
    if not all(c in _TOKEN for c in token):
        return Verdict.PASS, b""
    if space < 0:
        # A method may still be arriving, unless it is already longer than any method.
        return (Verdict.WAIT if len(head) <= METHOD_LIMIT else Verdict.PASS), b""
    if not token or token == b"GET":
        return Verdict.PASS, b""
    if b"\r\n\r\n" in head or b"\n\n" in head or len(head) >= HEAD_LIMIT:
        return Verdict.REFUSE, token
    return Verdict.WAIT, b""


def not_allowed(method: bytes) -> bytes:
    """The whole 405 answer to a request with ``method`` (token characters only, so it
    is echoed as it is); a HEAD gets the head alone, as RFC 9110 asks."""
    name = method.decode("ascii")
    body = f"method not allowed: {name}; this monitor answers GET only\n".encode()
    head = (
        "HTTP/1.1 405 Method Not Allowed\r\n"
        "Allow: GET\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    return head if method == b"HEAD" else head + body


class MethodGate(ServerConnection):
    """A ``websockets`` server connection that answers methods other than GET with 405
    (module docstring). Subclasses override :meth:`refused` to count the refusals."""

    # Class defaults, shadowed per connection on first use: ServerConnection's own
    # constructor stays as websockets calls it.
    _head: bytes = b""
    _open: bool = False
    _answered: bool = False
    _closing: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        """Hold the first bytes until they can be judged (:func:`classify`)."""
        if self._open:
            super().data_received(data)
            return
        if self._answered:
            return  # the rest of a refused request (a POST's body): read and dropped
        head = self._head + data
        verdict, method = classify(head)
        if verdict is Verdict.WAIT:
            self._head = head
            return
        self._head = b""
        if verdict is Verdict.PASS:
            self._open = True
            super().data_received(head)
            return
        self.refused(method.decode("ascii"))
        self._answered = True
        transport = self.transport
        transport.write(not_allowed(method))
        if not transport.can_write_eof():
            transport.close()
            return
        # A lingering close: closed at once with the rest of a POST unread, the socket
        # sends a reset, which may reach the client before the answer does. The answer
        # goes, then the end of our side; the rest is read and dropped until the client
        # closes, for at most LINGER_S.
        transport.write_eof()
        self._closing = asyncio.get_running_loop().call_later(LINGER_S, transport.close)

    def eof_received(self) -> None:
        if self._answered:
            self.transport.close()  # the client is done
            return
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._closing is not None:
            self._closing.cancel()
        super().connection_lost(exc)

    def refused(self, method: str) -> None:
        """Called once for each request answered 405, with its method."""
