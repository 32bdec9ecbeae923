"""Incoming messages: count them and hand them to the link's callback, safely."""

from __future__ import annotations

from spikestream_client.transport.values import LOG, Counters, MessageCallback, MessageMeta

__all__ = ["Dispatcher"]


class Dispatcher:
    """Calls ``callback(topic, payload, meta)`` for every incoming message.

    Runs on the event loop thread, inside the socket's read callback: an exception
    escaping here would make paho drop the connection, so the callback's exceptions
    are counted and logged (the first, then every 1000th) instead.

    Args:
        counters: Where ``messages_in`` and ``callback_errors`` are counted.
        callback: The receiver, or ``None`` to drop incoming messages.
    """

    def __init__(self, counters: Counters, callback: MessageCallback | None) -> None:
        self._counters = counters
        self.callback = callback

    def __call__(self, topic: str, payload: bytes, meta: MessageMeta) -> None:
        counters = self._counters
        counters.messages_in += 1
        if meta.oversize is not None:
            counters.dropped_unread += 1
        callback = self.callback
        if callback is None:
            return
        try:
            callback(topic, payload, meta)
        except Exception:
            # A bad message must not cost every other message a reconnect.
            counters.callback_errors += 1
            if counters.callback_errors == 1 or counters.callback_errors % 1000 == 0:
                LOG.exception(
                    "on_message callback failed (%d failures so far)", counters.callback_errors
                )
