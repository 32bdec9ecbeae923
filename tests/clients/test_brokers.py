"""Which broker a client connects to (``spikestream_client.brokers``), without a broker:
``$SPIKESTREAM_BROKER`` and its keywords, ``auto`` resolved to the local broker with
its credentials kept, and the lists a clustered broker is given as."""

from __future__ import annotations

import pytest

from spikestream.errors import ConfigError
from spikestream_client.brokers import (
    DEFAULT_BROKER,
    ENV_BROKER,
    client_broker_spec,
    client_broker_specs,
    default_broker,
)
from spikestream_client.transport import ENV_PASSWORD, ENV_USERNAME, parse_broker_url


def test_the_default_broker_is_the_local_one_without_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No ``$SPIKESTREAM_BROKER``: the tools talk to 127.0.0.1:1883, where ``serve``
    with ``auto`` puts its broker."""
    monkeypatch.delenv(ENV_BROKER, raising=False)
    assert default_broker() == DEFAULT_BROKER == "mqtt://127.0.0.1:1883"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("mqtt://broker.example:1884", "mqtt://broker.example:1884"),
        ("  mqtts://b.example:8883\n", "mqtts://b.example:8883"),  # as .env files leave it
        ("mqtt://a:1883,mqtt://b:1883", "mqtt://a:1883,mqtt://b:1883"),
        ("auto", DEFAULT_BROKER),
        ("AUTO", DEFAULT_BROKER),
        ("embedded", DEFAULT_BROKER),  # serve's in-process broker listens on the default
        (" ", DEFAULT_BROKER),
    ],
)
def test_the_environment_names_the_broker_the_tools_use(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    """The tools share ``$SPIKESTREAM_BROKER`` with ``serve``: a URL (or list) is used
    as given, stripped of stray whitespace; the service-side keywords ``auto`` and
    ``embedded`` mean the local default broker (a client cannot run one)."""
    monkeypatch.setenv(ENV_BROKER, value)
    assert default_broker() == expected
    client_broker_specs(default_broker())  # and the tools accept it


def test_auto_keeps_the_credentials_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``auto`` becomes the plain local URL and keeps the login the environment gives:
    dropping it would turn a correct setup into an anonymous login refused forever."""
    monkeypatch.setenv(ENV_USERNAME, "watcher")
    monkeypatch.setenv(ENV_PASSWORD, "s3cret")
    spec = client_broker_spec("auto")
    assert (spec.kind, spec.scheme, spec.host, spec.port) == ("url", "mqtt", "127.0.0.1", 1883)
    assert spec.username == "watcher"
    assert spec.password_value() == "s3cret"
    assert not spec.uses_tls


def test_a_given_spec_with_credentials_keeps_them_through_auto() -> None:
    """The same for a spec built in code rather than read from the environment."""
    spec = client_broker_spec(parse_broker_url("auto").with_credentials("u", "pw"))
    assert (spec.username, spec.password_value()) == ("u", "pw")


def test_embedded_is_refused_alone_and_in_a_list() -> None:
    """A client with an in-process broker would be alone on it: refused with a message
    that says what to give instead."""
    with pytest.raises(ConfigError, match=r"cannot use the 'embedded' broker.*mqtt://host:port"):
        client_broker_spec("embedded")
    with pytest.raises(ConfigError):
        client_broker_specs(["mqtt://a:1883", "embedded"])


def test_an_empty_list_of_brokers_is_a_config_error() -> None:
    """No broker at all is a configuration mistake, said at once, not a link that can
    never connect."""
    with pytest.raises(ConfigError, match="no broker given"):
        client_broker_specs([])


def test_a_list_keeps_its_failover_order() -> None:
    """Comma-separated URLs and sequences mix; the order given is the failover order."""
    specs = client_broker_specs(["mqtt://a:1883,mqtt://b:1884", parse_broker_url("mqtt://c:1")])
    assert [(s.host, s.port) for s in specs] == [("a", 1883), ("b", 1884), ("c", 1)]
