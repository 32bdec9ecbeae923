"""One write's QoS 0 PUBLISH packets, packed by the MQTT adapter itself.

Inside ``Connection.write_batch`` the adapter packs QoS 0 messages into one buffer
(:class:`Batch`) instead of handing each to paho, from heads packed once per topic
(:class:`Heads`), and writes the buffer in one go at the block's end. This module holds
that bookkeeping: which message ends where in the buffer, and which are written whole
once the socket has taken part of it. It needs no MQTT library (the adapter passes in
the packed MQTT 5 properties), so it is tested and read on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from spikestream_client.transport.packets import append_publish_qos0, publish_head

__all__ = ["HEADS", "Batch", "Heads", "whole"]

#: The most packed PUBLISH heads a connection keeps.
HEADS = 256


def whole(ends: Sequence[int], written: int) -> int:
    """How many messages, ending at byte offsets ``ends`` (ascending) of a buffer, are
    written whole once its first ``written`` bytes are out."""
    count = 0
    while count < len(ends) and ends[count] <= written:
        count += 1
    return count


class Heads:
    """Each PUBLISH head (``publish_head``: first byte, topic, MQTT 5 properties) per
    topic, retain flag, content type and expiry, checked and packed once; at most
    :data:`HEADS` of them (a caller publishing to ever new topics starts it over).

    Args:
        properties: MQTT 5: the packed properties for a content type and an expiry
            (seconds), length included; ``None`` on MQTT 3.1.1, which has none.
    """

    def __init__(self, properties: Callable[[str | None, int | None], bytes] | None) -> None:
        self._properties = properties
        self._heads: dict[tuple[str, bool, str | None, int | None], tuple[int, bytes]] = {}

    def get(
        self, topic: str, retain: bool, content_type: str | None, expiry: int | None
    ) -> tuple[int, bytes]:
        """The head of a QoS 0 PUBLISH to ``topic``.

        Raises:
            ValueError: An invalid topic (nothing is kept).
        """
        key = (topic, retain, content_type, expiry)
        head = self._heads.get(key)
        if head is not None:
            return head
        props = None
        if self._properties is not None:
            props = (
                self._properties(content_type, expiry)
                if content_type or expiry is not None
                else b"\x00"
            )
        head = publish_head(topic.encode(), retain, props)
        if len(self._heads) >= HEADS:
            self._heads.clear()
        self._heads[key] = head
        return head


class Batch:
    """QoS 0 PUBLISH packets packed one after another for one write, each with its
    message id and the offset where it ends (the adapter reports each written once its
    last byte is out)."""

    def __init__(self) -> None:
        #: The packets, back to back.
        self.data = bytearray()
        #: Each packet's message id, in order.
        self.mids: list[int] = []
        #: Where each packet ends in :attr:`data`.
        self.ends: list[int] = []

    def add(self, head: tuple[int, bytes], payload: bytes, mid: int) -> None:
        """Pack a message (``head`` from :class:`Heads`) as message ``mid``.

        Raises:
            ValueError: A packet longer than MQTT allows; the batch is left as it was.
        """
        append_publish_qos0(self.data, head, payload)
        self.mids.append(mid)
        self.ends.append(len(self.data))

    def sent(self, count: int) -> list[int]:
        """The socket took the first ``count`` bytes: drop them, and return the ids of
        the messages now written whole (the rest stay, to be written later)."""
        mids = self.mids
        done = whole(self.ends, count)
        if done == len(mids):
            self.data, self.mids, self.ends = bytearray(), [], []
        else:
            del self.data[:count]
            self.mids = mids[done:]
            self.ends = [end - count for end in self.ends[done:]]
        return mids[:done]

    def take(self) -> tuple[bytearray, list[int], list[int]]:
        """Everything packed (data, ids, ends); the batch is empty after."""
        taken = self.data, self.mids, self.ends
        self.data, self.mids, self.ends = bytearray(), [], []
        return taken
