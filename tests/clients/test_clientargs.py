"""The flags the client tools share (``spikestream_client.cli.clientargs``), parsed as the
tools parse them.

Only ``mib_bytes`` was reached by the tools' tests: repeating ``--broker`` keeping only
the last URL, ``--probe`` keeping only the last probe, ``--net`` becoming optional or the
defaults of ``--prefix`` and ``--wait-net`` changing all passed the suite.
"""

from __future__ import annotations

import argparse

import pytest

from spikestream_client.cli.clientargs import (
    add_connection_args,
    add_find_args,
    add_probe_filter,
    mib_bytes,
)
from spikestream_client.codec import DEFAULT_PREFIX
from spikestream_client.errors import ConfigError


def _parser(*, net: bool = True, skippable: bool = False) -> argparse.ArgumentParser:
    """A parser with every shared flag, as ``record`` and ``feed`` build theirs."""
    p = argparse.ArgumentParser(prog="tool")
    add_connection_args(p, net=net)
    add_find_args(p, skippable=skippable)
    add_probe_filter(p)
    return p


def test_a_repeated_broker_joins_the_urls_in_order() -> None:
    """Each ``--broker`` adds a node of a clustered broker, in the order given, as one
    comma-separated list; one ``--broker`` is that URL, none leaves the default."""
    p = _parser()
    both = p.parse_args(["--net", "seed", "--broker", "mqtt://a", "--broker", "mqtt://b:1884"])
    assert both.broker == "mqtt://a,mqtt://b:1884"
    assert p.parse_args(["--net", "seed", "--broker", "mqtt://a"]).broker == "mqtt://a"
    assert p.parse_args(["--net", "seed"]).broker is None


def test_the_defaults_are_the_documented_ones() -> None:
    """``--prefix`` defaults to the services' prefix, ``--wait-net`` to 3 s, ``--probe``
    to every probe (None), and ``--no-check`` exists only where it is skippable."""
    args = _parser(skippable=True).parse_args(["--net", "seed"])
    assert (args.prefix, args.wait_net, args.probes, args.no_check) == (
        DEFAULT_PREFIX,
        3.0,
        None,
        False,
    )
    assert not hasattr(_parser().parse_args(["--net", "seed"]), "no_check")


def test_probe_repeats_and_net_is_required_unless_left_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--probe`` may be repeated (each one kept); a tool that reads one network
    refuses to start without ``--net``; ``ls`` (``net=False``) has no such flag."""
    args = _parser().parse_args(["--net", "seed", "--probe", "a", "--probe", "b"])
    assert args.probes == ["a", "b"]
    with pytest.raises(SystemExit):
        _parser().parse_args([])
    assert "the following arguments are required: --net" in capsys.readouterr().err
    listing = _parser(net=False)
    assert not hasattr(listing.parse_args([]), "net")
    with pytest.raises(SystemExit):  # an unknown flag there
        listing.parse_args(["--net", "seed"])


@pytest.mark.parametrize(
    ("mib", "expected"),
    [(1.0, 2**20), (0.5, 2**19), (2**-20, 1), (1.5 * 2**-20, 1), (3.0 * 2**-20 - 1e-12, 2)],
)
def test_mib_bytes_rounds_down_to_whole_bytes(mib: float, expected: int) -> None:
    """One byte is the smallest value taken, and a part of a byte is dropped."""
    assert mib_bytes("--max-mib", mib) == expected


@pytest.mark.parametrize("mib", [0.0, -1.0, 2**-21, float("nan"), float("inf"), -float("inf")])
def test_mib_bytes_refuses_what_is_no_byte_naming_the_flag_and_value(mib: float) -> None:
    with pytest.raises(ConfigError, match=rf"^--cap must be a finite .* got {mib!r}$"):
        mib_bytes("--cap", mib)


@pytest.mark.parametrize("given", ["nan", "-1", "inf", "abc"])
def test_wait_net_refuses_what_is_no_finite_wait_naming_the_value(
    given: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--wait-net nan`` never reached its deadline: under an ACL that refuses the sync
    topic (a read-only monitor) the tool waited for ever for a network that does not
    exist, instead of saying so. It is a usage error naming the flag and the value."""
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(["--net", "seed", "--wait-net", given])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --wait-net: must be a finite number of seconds >= 0, got {given!r}" in err


def test_wait_net_takes_zero_and_fractions() -> None:
    """0 s (look once, as after a sync) and fractions are waits."""
    assert _parser().parse_args(["--net", "seed", "--wait-net", "0"]).wait_net == 0.0
    assert _parser().parse_args(["--net", "seed", "--wait-net", "0.25"]).wait_net == 0.25
