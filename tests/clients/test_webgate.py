"""The web monitor's method gate judged byte by byte (``monitor/webgate.py``); the
server's answers on a real socket are in test_web_server.py."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spikestream_client.monitor.webgate import (
    HEAD_LIMIT,
    METHOD_LIMIT,
    Verdict,
    WebAccess,
    classify,
    not_allowed,
)


@pytest.mark.parametrize("head", [b"GET ", b"GET / HTTP/1.1\r\n", b"GET /ws HTTP/1.1\r\nHost"])
def test_a_get_passes_as_soon_as_its_method_is_known(head: bytes) -> None:
    assert classify(head) == (Verdict.PASS, b"")


@pytest.mark.parametrize("head", [b"", b"G", b"GE", b"GET", b"POS", b"M-SEARCH"])
def test_a_method_still_arriving_waits(head: bytes) -> None:
    assert classify(head) == (Verdict.WAIT, b"")


def test_another_method_waits_for_the_end_of_its_head_or_the_limit() -> None:
    assert classify(b"POST / HTTP/1.1\r\nHost: x\r\n") == (Verdict.WAIT, b"")
    assert classify(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n") == (Verdict.REFUSE, b"POST")
    assert classify(b"HEAD / HTTP/1.1\n\n") == (Verdict.REFUSE, b"HEAD")
    long = b"OPTIONS /" + b"a" * HEAD_LIMIT
    assert classify(long[: HEAD_LIMIT - 1]) == (Verdict.WAIT, b"")
    assert classify(long[:HEAD_LIMIT]) == (Verdict.REFUSE, b"OPTIONS")


@pytest.mark.parametrize(
    "head",
    [
        b"\x16\x03\x01\x02\x00",  # a TLS hello
        b" GET / HTTP/1.1\r\n\r\n",  # no method
        b"P\xd3ST / HTTP/1.1\r\n\r\n",  # not a token
        b"X" * (METHOD_LIMIT + 1),  # longer than any method, no space yet
        b"X" * (METHOD_LIMIT + 1) + b" / HTTP/1.1\r\n\r\n",
    ],
)
def test_bytes_that_begin_no_request_line_pass_to_websockets(head: bytes) -> None:
    assert classify(head) == (Verdict.PASS, b"")


def test_the_answer_to_head_has_no_body_and_others_say_why() -> None:
    head = not_allowed(b"HEAD")
    assert head.startswith(b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\n")
    assert head.endswith(b"\r\n\r\n")
    post = not_allowed(b"POST")
    body = b"method not allowed: POST; this monitor answers GET only\n"
    # HEAD's answer is the head POST's would have ("HEAD" and "POST" are as long).
    assert post == head + body
    assert f"Content-Length: {len(body)}\r\n".encode() in head


@given(st.binary(max_size=HEAD_LIMIT + 64))
def test_any_bytes_get_a_verdict_and_a_refused_method_is_a_token(head: bytes) -> None:
    verdict, method = classify(head)
    if verdict is Verdict.REFUSE:
        assert head.startswith(method + b" ")
        assert 0 < len(method) <= METHOD_LIMIT
        assert method != b"GET"
        not_allowed(method).decode("ascii")  # echoed as it is
    else:
        assert method == b""
    if head.startswith(b"GET "):
        assert verdict is Verdict.PASS


def test_a_method_waits_up_to_the_longest_a_method_may_be() -> None:
    """A method of :data:`METHOD_LIMIT` bytes may still be followed by its space: wait;
    one byte more is no method: pass it on."""
    assert classify(b"A" * METHOD_LIMIT) == (Verdict.WAIT, b"")
    assert classify(b"A" * (METHOD_LIMIT + 1)) == (Verdict.PASS, b"")


def test_on_port_80_a_host_header_without_a_port_is_the_monitors() -> None:
    """Browsers leave the default port out of ``Host``: on port 80 ``localhost`` is the
    monitor's own name; on any other port it needs its port."""
    assert WebAccess("127.0.0.1", 80).host_ok("localhost")
    assert WebAccess("127.0.0.1", 80).host_ok("localhost:80")
    assert not WebAccess("127.0.0.1", 8080).host_ok("localhost")
    assert WebAccess("127.0.0.1", 8080).host_ok("localhost:8080")
