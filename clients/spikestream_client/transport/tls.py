"""The client TLS context, and the sockets made while connecting (to close orphans).

paho leaks the TCP socket when the TLS or WebSocket handshake inside its ``connect()``
fails (the socket is never stored). The adapter records every socket created by the
connecting thread (:func:`collecting_sockets`, :func:`track`; the TLS context below
reports the sockets it wraps) and closes them if the connect fails.

The CA, certificate and key paths come from outside (a URL's ``?ca=``, a flag, the
environment): each is checked to be a regular file of at most
:data:`TLS_FILE_MAX_BYTES` before OpenSSL opens it, since OpenSSL would block for ever
on a FIFO (deaf to Ctrl-C: the wait is inside C) and read a device such as
``/dev/zero`` without end.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final, TypeVar

from spikestream_client.errors import ConfigError
from spikestream_client.files import UnreadableFile, read_small_text
from spikestream_client.transport.urls import TlsOptions

__all__ = ["TLS_FILE_MAX_BYTES", "collecting_sockets", "tls_context", "track"]

TLS_FILE_MAX_BYTES: Final = 4 * 2**20
"""Largest CA bundle, certificate or key file accepted, in bytes (4 MiB): the system's
whole CA bundle is about 200 KiB."""

_S = TypeVar("_S", bound=socket.socket)

# Sockets created by the current thread inside collecting_sockets().
_connect_scope = threading.local()


def track(sock: _S) -> _S:
    """Record ``sock`` if this thread is inside :func:`collecting_sockets`; return it."""
    created: list[socket.socket] | None = getattr(_connect_scope, "sockets", None)
    if created is not None:
        created.append(sock)
    return sock


class _TrackingSSLContext(ssl.SSLContext):
    """An SSLContext that reports the sockets it wraps to :func:`track`, so that a
    socket whose handshake fails inside paho's connect() can be closed."""

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        return track(
            super().wrap_socket(
                sock,
                server_side=server_side,
                do_handshake_on_connect=do_handshake_on_connect,
                suppress_ragged_eofs=suppress_ragged_eofs,
                server_hostname=server_hostname,
                session=session,
            )
        )


def tls_context(options: TlsOptions | None) -> ssl.SSLContext:
    """Build the client TLS context: CA pinning, optional client cert, verification on.

    Raises:
        ConfigError: A CA, certificate or key file is not a regular file of at most
            :data:`TLS_FILE_MAX_BYTES`, is unreadable, or is not PEM.
    """
    opts = options or TlsOptions()
    for name, path in (("ca", opts.ca_file), ("cert", opts.cert_file), ("key", opts.key_file)):
        if path is not None:
            _check_tls_file(name, path)
    # What ssl.create_default_context(SERVER_AUTH) does, with our tracking subclass.
    context = _TrackingSSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        if opts.ca_file is not None:
            context.load_verify_locations(cafile=str(opts.ca_file))
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if opts.cert_file is not None:
            context.load_cert_chain(
                str(opts.cert_file), None if opts.key_file is None else str(opts.key_file)
            )
    except (OSError, ssl.SSLError) as exc:
        files = ", ".join(
            f"{name}={path}"
            for name, path in (
                ("ca", opts.ca_file),
                ("cert", opts.cert_file),
                ("key", opts.key_file),
            )
            if path is not None
        )
        msg = f"cannot load TLS files ({files}): {exc}; expected readable PEM files"
        raise ConfigError(msg) from None
    if opts.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _check_tls_file(name: str, path: Path) -> None:
    """Refuse ``path`` (the ``name`` file: ca, cert or key) unless it is a readable
    regular file of at most :data:`TLS_FILE_MAX_BYTES`, before OpenSSL opens it.

    OpenSSL then opens the path again: a file swapped for a FIFO in between would still
    block, but that takes write access to its folder, not a mistyped path.

    Raises:
        ConfigError: ``cannot load TLS files (<name>=<path>): <why>; expected ...``.
    """
    try:
        read_small_text(path, TLS_FILE_MAX_BYTES)
    except UnreadableFile as err:
        if err.kind == "encoding":
            return  # small and regular: whether it is PEM is OpenSSL's to say
        reason = {
            "os": err.detail,
            "special": "not a regular file (a folder, FIFO or device)",
            "large": f"larger than {TLS_FILE_MAX_BYTES} bytes",
        }[err.kind]
        raise ConfigError(
            f"cannot load TLS files ({name}={path}): {reason}; expected a readable PEM "
            f"file of at most {TLS_FILE_MAX_BYTES} bytes"
        ) from None


@contextlib.contextmanager
def collecting_sockets() -> Iterator[list[socket.socket]]:
    """Collect the sockets :func:`track` sees in this thread until the block ends."""
    created: list[socket.socket] = []
    _connect_scope.sockets = created
    try:
        yield created
    finally:
        _connect_scope.sockets = None
