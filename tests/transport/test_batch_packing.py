"""The adapter's packed batch on its own: which messages a partial write leaves whole, and
the heads cache (no broker: the bytes are checked against MQTT's own packing)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spikestream_client.transport.batch import HEADS, Batch, Heads, whole
from spikestream_client.transport.packets import publish_qos0


def test_whole_counts_the_messages_written_to_their_last_byte() -> None:
    ends = [10, 25, 26, 40]
    assert [whole(ends, n) for n in (0, 9, 10, 24, 25, 26, 39, 40, 99)] == [
        0,
        0,
        1,
        1,
        2,
        3,
        3,
        4,
        4,
    ]
    assert whole([], 5) == 0


@given(
    payloads=st.lists(st.binary(max_size=300), min_size=1, max_size=12),
    writes=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_partial_writes_report_each_message_once_when_whole(
    payloads: list[bytes], writes: list[int]
) -> None:
    """However the socket takes the batch (in any number of pieces), each message is
    reported written exactly once, in order, and only once its last byte is out; what is
    left is exactly the unwritten tail of the packets."""
    heads = Heads(None)
    batch = Batch()
    packets = b""
    for mid, payload in enumerate(payloads, start=1):
        batch.add(heads.get("t/x", False, None, None), payload, mid)
        packets += publish_qos0(b"t/x", payload, False, None)
    assert bytes(batch.data) == packets
    out = 0
    reported: list[int] = []
    for take in [*writes, len(packets)]:
        take = min(take, len(batch.data))
        reported += batch.sent(take)
        out += take
        ends = [len(publish_qos0(b"t/x", p, False, None)) for p in payloads]
        cumulative = [sum(ends[: i + 1]) for i in range(len(ends))]
        assert reported == [i + 1 for i, end in enumerate(cumulative) if end <= out]
        assert bytes(batch.data) == packets[out:]
        assert batch.ends == [end - out for end in cumulative[len(reported) :]]
    assert reported == list(range(1, len(payloads) + 1))
    assert batch.mids == []
    assert batch.ends == []
    assert batch.data == b""


def test_an_oversized_message_leaves_the_batch_as_it_was() -> None:
    batch = Batch()
    head = Heads(None).get("t/x", False, None, None)
    batch.add(head, b"ok", 1)
    before = bytes(batch.data), list(batch.mids), list(batch.ends)

    class Huge(bytes):
        def __len__(self) -> int:  # a payload MQTT cannot carry, without 256 MB of it
            return 268_435_455

    with pytest.raises(ValueError, match="too large for MQTT"):
        batch.add(head, Huge(b"x"), 2)
    assert (bytes(batch.data), batch.mids, batch.ends) == before


def test_take_hands_everything_over_and_starts_empty() -> None:
    batch = Batch()
    head = Heads(None).get("t/x", False, None, None)
    batch.add(head, b"a", 7)
    batch.add(head, b"b", 8)
    data, mids, ends = batch.take()
    assert mids == [7, 8]
    assert ends[-1] == len(data)
    assert bytes(data) == publish_qos0(b"t/x", b"a", False, None) + publish_qos0(
        b"t/x", b"b", False, None
    )
    assert (batch.data, batch.mids, batch.ends) == (bytearray(), [], [])


def test_heads_are_packed_once_per_key_with_mqtt5_properties() -> None:
    calls: list[tuple[str | None, int | None]] = []

    def props(content_type: str | None, expiry: int | None) -> bytes:
        calls.append((content_type, expiry))
        return b"\x02\x02\x00"  # stands for packed properties, length first

    heads = Heads(props)
    first = heads.get("t/a", False, "application/msgpack", None)
    assert heads.get("t/a", False, "application/msgpack", None) is first
    assert calls == [("application/msgpack", None)]
    assert heads.get("t/a", True, "application/msgpack", None)[0] == 0x31  # retain flag
    assert heads.get("t/a", False, None, None)[1].endswith(b"t/a\x00")  # no properties
    assert calls == [("application/msgpack", None)] * 2
    with pytest.raises(ValueError, match="invalid publish topic"):
        heads.get("t/+", False, None, None)


def test_heads_are_bounded() -> None:
    heads = Heads(None)
    for i in range(HEADS + 10):
        heads.get(f"t/{i}", False, None, None)
    assert len(heads._heads) <= HEADS
