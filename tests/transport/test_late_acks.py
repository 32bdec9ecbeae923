"""A SUBACK or UNSUBACK whose request was cancelled meanwhile (a client closed just after
subscribing) is a race of ours: aiomqtt logs it as an error with a KeyError traceback,
which the link keeps as a debug line without one."""

from __future__ import annotations

import inspect
import logging

import aiomqtt.client
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
