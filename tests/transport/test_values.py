"""The link's value types on their own (no broker): what a fresh link reports, the will a
status topic gets by default, and what a failed connection attempt carries. The link tests
build these only with every field given, or read them where a mutation audit found that a
wrong default or a lost field kept every test passing."""

from __future__ import annotations

import dataclasses

from spikestream_client.transport import MqttLink, Will, parse_broker_url
from spikestream_client.transport.values import ConnectFailure, Counters


def test_a_link_that_never_ran_reports_nothing_counted() -> None:
    """A service's stats (and its describe ``session``, the connects so far) start from a
    fresh link's counters: each must start at zero, with no error, or the first report
    already claims a connection, a failover or a dropped message that never happened."""
    assert dataclasses.asdict(Counters()) == {
        f.name: (None if f.name == "last_error" else 0) for f in dataclasses.fields(Counters)
    }
    link = MqttLink(parse_broker_url("mqtt://127.0.0.1:1"), client_id="values-fresh")
    stats = dataclasses.asdict(link.statistics())
    assert stats.pop("connected") is False
    assert stats.pop("protocol") is None
    assert stats.pop("last_error") is None
    assert stats.pop("broker") == "mqtt://127.0.0.1:1"
    assert stats == dict.fromkeys(stats, 0)


def test_a_will_is_retained_at_qos_1_unless_told_otherwise() -> None:
    """The documented default is what a status topic needs: a newcomer must still see
    ``offline`` after the broker published the will (retained), and it must not be lost on
    the way (QoS 1). ``Will(status, b"offline")`` is how the docs show it."""
    will = Will("net/status", b"offline")
    assert (will.qos, will.retain) == (1, True)


def test_a_connect_failure_keeps_each_fact_the_link_decides_by() -> None:
    """The link tells a refusal (by ``code``: auth, protocol), a broker that closed before
    CONNACK and one that never answered (``tcp_connected``) apart, and names the broker's
    reason (``text``) in the error it raises: every field must be kept as given."""
    refused = ConnectFailure(
        "Not authorized", code=135, closed_before_connack=False, tcp_connected=True
    )
    assert (refused.text, str(refused), refused.code) == ("Not authorized", "Not authorized", 135)
    assert (refused.closed_before_connack, refused.tcp_connected) == (False, True)
    closed = ConnectFailure("closed", code=None, closed_before_connack=True, tcp_connected=False)
    assert (closed.code, closed.closed_before_connack, closed.tcp_connected) == (None, True, False)
