"""The private names of aiomqtt and paho-mqtt that ``aiomqtt_adapter.py`` relies on, and
the versions they were verified against: the declaration, kept apart from the code.

Only the adapter reads these attributes; ``tests/transport/test_private_names.py``
checks that each still exists with the expected shape in the installed versions, that the
adapter uses no other private name and declares none it does not use, and that no other
module names one. This module imports neither library.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["PRIVATE_NAMES", "VERIFIED_WITH", "PrivateName"]

#: The aiomqtt and paho-mqtt versions the private names below were verified against
#: (``clients/pyproject.toml`` allows only these minor series).
VERIFIED_WITH = {"aiomqtt": "2.5.1", "paho-mqtt": "2.2.0"}


class PrivateName(NamedTuple):
    """A private name of aiomqtt or paho the adapter relies on.

    Attributes:
        owner: ``"aiomqtt.Client"``, ``"paho.Client"`` or ``"paho._WebsocketWrapper"``.
        name: The attribute.
        kind: ``"attribute"`` (instance state), ``"future"`` or ``"method"``.
        params: For a method: its parameter names after ``self``.
        why: What it is used for, and why nothing public does it.
    """

    owner: str
    name: str
    kind: str
    params: tuple[str, ...] = ()
    why: str = ""


PRIVATE_NAMES: tuple[PrivateName, ...] = (
    PrivateName(
        "aiomqtt.Client",
        "_client",
        "attribute",
        why="the paho client: publish without an await, paho's callbacks, keepalive",
    ),
    PrivateName(
        "aiomqtt.Client",
        "_disconnected",
        "future",
        why="fails when aiomqtt's socket callbacks hit an error (connection loss); "
        "resolved by abort() so that aiomqtt never sets an unretrieved exception",
    ),
    PrivateName(
        "paho.Client",
        "_create_socket_connection",
        "method",
        why="wrapped to record the TCP socket, which paho leaks when the TLS or "
        "WebSocket handshake inside connect() fails",
    ),
    PrivateName(
        "paho.Client",
        "_sock_close",
        "method",
        why="close the socket without an MQTT DISCONNECT (the broker sends the will), "
        "unregistering aiomqtt's reader/writer first",
    ),
    PrivateName(
        "paho.Client",
        "_ping_t",
        "attribute",
        why="when the outstanding PINGREQ was sent (0: none): the half-open watchdog",
    ),
    PrivateName(
        "paho.Client",
        "_packet_queue",
        "method",
        ("command", "packet", "mid", "qos", "info"),
        why="queue a write_batch()'s QoS 0 PUBLISH packets as one paho packet: paho's "
        "publish() and its per-packet write cost most of the I/O thread's time per frame, "
        "and there is no public way to hand paho bytes already packed",
    ),
    PrivateName(
        "paho.Client",
        "_out_packet",
        "attribute",
        why="on a connection loss, how much of a partly written write_batch() went out "
        "(its packet's 'mid', 'command' and 'pos'), so its whole messages are not sent twice",
    ),
    PrivateName(
        "paho.Client",
        "_mid_generate",
        "method",
        why="a message id for each message of a write_batch(), from paho's own sequence, "
        "so it never collides with the ids of messages paho sends itself",
    ),
    PrivateName(
        "paho.Client",
        "_handle_publish",
        "method",
        why="replaced by a reader of QoS 0 PUBLISH packets that calls the link directly, "
        "falling back to it for every other PUBLISH: paho's property and message objects "
        "cost most of the Python time per incoming message",
    ),
    PrivateName(
        "paho.Client",
        "_in_packet",
        "attribute",
        why="the PUBLISH packet being handled: its first byte ('command') and its body "
        "after the fixed header ('packet'), read by the QoS 0 PUBLISH reader; while a "
        "body is read ('have_remaining'), its 'remaining_length': past the link's limit, "
        "all but the head of 'packet' is dropped as it comes",
    ),
    PrivateName(
        "paho.Client",
        "_sock_recv",
        "method",
        ("bufsize",),
        why="wrapped so that a packet body past the link's limit is asked of the socket "
        "in chunks: paho asks for the whole rest of a body at once, and the socket module "
        "allocates what is asked",
    ),
    PrivateName(
        "paho._WebsocketWrapper",
        "_socket",
        "attribute",
        why="the TCP socket under a ws:// connection (TCP_NODELAY, diagnostics)",
    ),
)
