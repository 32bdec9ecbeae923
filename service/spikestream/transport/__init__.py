"""The embedded MQTT broker (amqtt), for ``--broker embedded`` and ``--broker auto``.

The MQTT client side (broker URLs, the self-healing link) is the client distribution's
:mod:`spikestream_client.transport`, which the service shares. This package is the only
place in spikestream that imports amqtt.

Typical use::

    spec = load_broker_spec(url)                       # spikestream_client.transport
    async with resolve_broker(spec) as broker:         # "embedded"/"auto" -> mqtt://...
        ...
"""

from spikestream.transport.embedded import EmbeddedBroker, broker_answers, resolve_broker

__all__ = ["EmbeddedBroker", "broker_answers", "resolve_broker"]
