"""Asking the event loop for a writable-socket callback, for the connection's current
socket only.

paho asks for the callback from whichever thread it runs in (the connecting thread,
during ``connect()``), so the registration runs later, on the event loop. aiomqtt's own
registration read the fd number when asked and registered it when run: a connection torn
down meanwhile left asyncio to log a traceback at ERROR ("11 is not registered", "Bad file
descriptor"), and a reused fd number could get the old connection's writer. Free of
paho: the client is used through the two public methods :class:`Writes` names.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Writes", "writer_registration"]


class Writes(Protocol):
    """What the registration uses of the MQTT client (paho's ``Client``)."""

    def socket(self) -> Any: ...

    def loop_write(self) -> Any: ...


def writer_registration(
    loop: asyncio.AbstractEventLoop, client: Writes, on_error: Callable[[str], None]
) -> Callable[[Any, Any, Any], None]:
    """paho's ``on_socket_register_write`` callback ``(client, userdata, sock)``: when the
    loop runs it, it registers a writer that calls ``client.loop_write()`` if ``sock``
    is still the client's socket with the same fd; a write that raises ends the
    connection through ``on_error(reason)``, as aiomqtt's writer did."""

    def writable() -> None:
        try:
            client.loop_write()
        except Exception as exc:
            on_error(f"socket error: {exc}")

    def add_writer(sock: Any, fd: int) -> None:
        current = client.socket()
        if current is not None and current is sock and current.fileno() == fd:
            loop.add_writer(fd, writable)

    def register(_client: Any, _userdata: Any, sock: Any) -> None:
        fd = sock.fileno()
        if fd >= 0:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to do
                loop.call_soon_threadsafe(add_writer, sock, fd)

    return register
