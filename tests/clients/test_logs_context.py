"""``log_context`` and ``report`` through ``setup_logging``: which fields a record carries
inside, after and across nested contexts, and where a tool's report line goes."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from spikestream_client.logs import log_context, log_fields, report, setup_logging

log = logging.getLogger("spikestream.test")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """setup_logging replaces the root logger's handlers: put them back after the test."""
    root, ours = logging.getLogger(), logging.getLogger("spikestream")
    saved = (root.handlers[:], root.level, ours.level)
    try:
        yield
    finally:
        setup_logging("info", "text")  # the report format back to text
        root.handlers[:], root.level = saved[0], saved[1]
        ours.setLevel(saved[2])


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_a_context_names_its_fields_within_it_only_and_nests(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Fields of the enclosing contexts are all carried; an inner one adds to them; a
    field given at the call site wins; after the block they are gone."""
    setup_logging("info", "json")
    with log_context(net="seed"):
        with log_context(shard="a"):
            log.info("inner")
            log.info("own", extra={"net": "other"})
        log.info("outer")
    log.info("after")
    inner, own, outer, after = _lines(capsys)
    assert (inner["net"], inner["shard"]) == ("seed", "a")
    assert (own["net"], own["shard"]) == ("other", "a")
    assert (outer["net"], "shard" in outer) == ("seed", False)
    assert ("net" in after, "shard" in after) == (False, False)


def test_a_report_under_json_is_a_record_at_its_level(capsys: pytest.CaptureFixture[str]) -> None:
    """Under ``--log-format json`` a report is a log record of the tool's logger, at the
    level the tool gave (a warning stays a warning for the collector)."""
    setup_logging("info", "json")
    report("spikestream ls", "2 refused", level=logging.WARNING)
    (said,) = _lines(capsys)
    assert (said["logger"], said["level"], said["msg"]) == (
        "spikestream.ls",
        "warning",
        "2 refused",
    )


def test_a_report_in_text_goes_to_stdout_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    """In text a report is ``prefix: text`` on stderr, or on stdout with ``stdout=True``."""
    setup_logging("info", "text")
    report("record", "on stderr")
    report("record", "on stdout", stdout=True)
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("record: on stdout\n", "record: on stderr\n")


def test_fields_named_like_a_record_attribute_are_kept_under_a_prefix(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Fields come from outside (a request's keys, a network's name): one called ``msg``
    or ``name`` given to ``extra=`` as is makes logging raise KeyError ("Attempt to
    overwrite"), losing the record and raising in the caller. They are kept, prefixed."""
    assert log_fields({"msg": "m", "name": "n", "net": "seed"}) == {
        "field_msg": "m",
        "field_name": "n",
        "net": "seed",
    }
    setup_logging("info", "json")
    with log_context(args="from the context", net="seed"):
        log.info("hello", extra=log_fields({"msg": "forged", "levelname": "CRITICAL"}))
    (said,) = _lines(capsys)
    assert (said["msg"], said["level"], said["logger"]) == ("hello", "info", "spikestream.test")
    assert (said["field_msg"], said["field_levelname"]) == ("forged", "CRITICAL")
    assert (said["field_args"], said["net"]) == ("from the context", "seed")


def test_setup_logging_replaces_the_handlers_and_sets_the_levels(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Called again (a tool run twice in one process, the CLI after a plugin set logging
    up), it replaces the handler rather than adding one: every record once, in the last
    format. spikestream's loggers follow ``level``; other libraries say warnings only."""
    setup_logging("info", "text")
    setup_logging("debug", "json")
    assert len(logging.getLogger().handlers) == 1
    log.debug("detail")
    logging.getLogger("aiomqtt.client").info("chatty")
    logging.getLogger("aiomqtt.client").warning("worth saying")
    said = _lines(capsys)
    assert [(s["logger"], s["msg"]) for s in said] == [
        ("spikestream.test", "detail"),
        ("aiomqtt.client", "worth saying"),
    ]
    setup_logging("error", "json")
    log.warning("quiet now")
    assert capsys.readouterr().err == ""
