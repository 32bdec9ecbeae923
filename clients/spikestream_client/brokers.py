"""Which broker a client connects to: the default, ``$SPIKESTREAM_BROKER`` and the URL
lists of a clustered broker, resolved to concrete
:class:`~spikestream_client.transport.BrokerSpec` objects (no connection is made here).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Final

from spikestream_client.errors import ConfigError
from spikestream_client.transport import BrokerSpec, load_broker_spec, load_broker_specs

__all__ = [
    "DEFAULT_BROKER",
    "ENV_BROKER",
    "client_broker_spec",
    "client_broker_specs",
    "default_broker",
]

DEFAULT_BROKER: Final = "mqtt://127.0.0.1:1883"
"""The broker clients use when none is given and ``SPIKESTREAM_BROKER`` is unset."""

ENV_BROKER: Final = "SPIKESTREAM_BROKER"
"""Environment variable naming the broker URL (the same one ``serve`` reads)."""


def default_broker() -> str:
    """``$SPIKESTREAM_BROKER`` if set (and not ``auto``/``embedded``), else
    :data:`DEFAULT_BROKER`."""
    url = os.environ.get(ENV_BROKER, "").strip()
    return url if url and url.lower() not in ("auto", "embedded") else DEFAULT_BROKER


def client_broker_spec(broker: str | BrokerSpec) -> BrokerSpec:
    """The concrete broker a client connects to.

    URLs go through :func:`spikestream.transport.load_broker_spec` (so credentials may
    come from ``SPIKESTREAM_MQTT_USERNAME``/``_PASSWORD``/``_PASSWORD_FILE``). ``auto``
    means the local broker on 127.0.0.1:1883. ``embedded`` is refused: an in-process
    broker inside a client would have no service on it.

    Raises:
        ConfigError: Malformed URL, or ``embedded``.
    """
    spec = load_broker_spec(broker) if isinstance(broker, str) else broker
    if spec.kind == "embedded":
        msg = (
            "a client cannot use the 'embedded' broker (it would be alone on it); give the "
            "service's broker as mqtt://host:port"
        )
        raise ConfigError(msg)
    if spec.kind == "auto":
        spec = BrokerSpec(
            kind="url",
            scheme="mqtt",
            host=spec.host,
            port=spec.port,
            username=spec.username,
            password=spec.password,
        )
    return spec


def client_broker_specs(
    broker: str | BrokerSpec | Sequence[str | BrokerSpec],
) -> tuple[BrokerSpec, ...]:
    """The concrete brokers a client may use, in failover order.

    ``broker`` is one broker as :func:`client_broker_spec` takes it, a comma-separated
    list of URLs (the nodes of a clustered broker), or a sequence of either. The client
    connects to the first that answers and fails over to the next when it loses its node.

    Raises:
        ConfigError: Malformed URL, an empty list, ``embedded``, or ``auto`` in a list.
    """
    items = [broker] if isinstance(broker, str | BrokerSpec) else list(broker)
    specs: list[BrokerSpec] = []
    for item in items:
        parsed = load_broker_specs(item) if isinstance(item, str) else (item,)
        specs.extend(client_broker_spec(spec) for spec in parsed)
    if not specs:
        msg = "no broker given: expected at least one mqtt://host:port"
        raise ConfigError(msg)
    return tuple(specs)
