"""Moving bytes over MQTT: broker addresses and a self-healing link.

Its module ``aiomqtt_adapter`` is the only place in spikestream (client and service
alike) that imports aiomqtt or paho-mqtt; the service's embedded broker (amqtt) is
``spikestream.transport``. It knows topics (``str``) and payloads (``bytes``), nothing
about frames or networks.

Typical use::

    spec = load_broker_spec(url)                       # URL + env credentials
    async with resolve_broker(spec) as broker:         # service only: "auto" -> mqtt://...
        link = MqttLink(broker, client_id=..., will=Will(status, b"offline"),
                        on_message=handle)
        link.subscribe("spikestream/seed/in/#", qos=0)
        link.add_connect_hook(lambda: link.publish(status, b"online", qos=1, retain=True))
        async with asyncio.TaskGroup() as tg:
            tg.create_task(link.run(), name="mqtt-link")
            ...
            await link.publish(status, b"offline", qos=1, retain=True)
            await link.stop()                          # clean DISCONNECT: no will
"""

from spikestream_client.transport.link import (
    ConnectHook,
    LinkStatistics,
    MessageCallback,
    MessageMeta,
    MqttLink,
    ProtocolChoice,
    Will,
)
from spikestream_client.transport.urls import (
    ENV_PASSWORD,
    ENV_PASSWORD_FILE,
    ENV_USERNAME,
    BrokerSpec,
    TlsOptions,
    load_broker_spec,
    load_broker_specs,
    parse_broker_list,
    parse_broker_url,
    redacted_list,
    with_env_credentials,
)

__all__ = [
    "ENV_PASSWORD",
    "ENV_PASSWORD_FILE",
    "ENV_USERNAME",
    "BrokerSpec",
    "ConnectHook",
    "LinkStatistics",
    "MessageCallback",
    "MessageMeta",
    "MqttLink",
    "ProtocolChoice",
    "TlsOptions",
    "Will",
    "load_broker_spec",
    "load_broker_specs",
    "parse_broker_list",
    "parse_broker_url",
    "redacted_list",
    "with_env_credentials",
]
