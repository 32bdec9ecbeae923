"""A SUBACK or UNSUBACK whose request was cancelled meanwhile (a client closed just after
subscribing) is a race of ours: aiomqtt logs it as an error with a KeyError traceback,
which the link keeps as a debug line without one. paho's ERROR line for a connection lost
(a broker restart resets the socket) repeats the link's own warning: a debug line too."""

from __future__ import annotations

import inspect
import logging

import aiomqtt.client
import paho.mqtt.client
import pytest

import spikestream_client.transport.reconnect  # noqa: F401  (installs the filter)

MQTT_LOG = "spikestream.transport.mqtt"


def test_aiomqtt_still_words_a_late_ack_as_the_filter_expects() -> None:
    """The filter matches aiomqtt's message; this fails when aiomqtt rewords it."""
    source = inspect.getsource(aiomqtt.client)
    assert 'Unexpected message ID "%d" in on_subscribe callback' in source
    assert 'Unexpected message ID "%d" in on_unsubscribe callback' in source


def test_a_late_ack_is_a_debug_line_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger(MQTT_LOG)
    with caplog.at_level(logging.DEBUG, logger=MQTT_LOG):
        try:
            {}.pop(7)
        except KeyError:
            log.exception('Unexpected message ID "%d" in on_subscribe callback', 7)
        log.error("another error stays one")
    late, other = caplog.records
    assert (late.levelname, late.exc_info) == ("DEBUG", None)
    assert late.getMessage() == 'Unexpected message ID "7" in on_subscribe callback'
    assert other.levelname == "ERROR"
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=MQTT_LOG):
        try:
            {}.pop(7)
        except KeyError:
            log.exception('Unexpected message ID "%d" in on_unsubscribe callback', 7)
    assert caplog.records == []  # not shown at all unless debugging


def test_paho_still_words_a_lost_connection_as_the_filter_expects() -> None:
    """The filter matches paho's messages; this fails when paho rewords them."""
    source = inspect.getsource(paho.mqtt.client)
    assert "MQTT_LOG_ERR, 'failed to receive on socket: %s', err)" in source
    assert "MQTT_LOG_ERR, 'timeout on socket: %s', err)" in source


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("failed to receive on socket: %s", ConnectionResetError(104, "Connection reset by peer")),
        ("failed to receive on socket: %s", BrokenPipeError(32, "Broken pipe")),
        ("timeout on socket: %s", TimeoutError("timed out")),
    ],
)
def test_pahos_line_for_a_lost_connection_is_a_debug_line(
    message: str, error: OSError, caplog: pytest.LogCaptureFixture
) -> None:
    """A broker restart made every service and tool log paho's ERROR line beside the
    link's WARNING (``connection ... lost; reconnecting``): a page for a fault the service
    rides out. It is a debug line now, shown only when debugging."""
    log = logging.getLogger(MQTT_LOG)
    with caplog.at_level(logging.INFO, logger=MQTT_LOG):
        log.error(message, error)
        log.error("failed to connect: %s", error)  # not a loss the link reports: stays
    (other,) = caplog.records
    assert (other.levelname, other.getMessage()) == ("ERROR", f"failed to connect: {error}")
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=MQTT_LOG):
        log.error(message, error)
    (lost,) = caplog.records
    assert lost.levelname == "DEBUG"
