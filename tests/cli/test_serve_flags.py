"""``spikestream serve``'s own arguments (:mod:`spikestream.cli.serve`): the network files
and ``--config``, the two that are not settings."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from spikestream.cli.serve import add_parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spikestream")
    add_parser(parser.add_subparsers())
    return parser


def test_serve_needs_at_least_one_network(capsys: pytest.CaptureFixture[str]) -> None:
    """``serve`` alone is a usage error naming NETWORK (exit 2), not a service started
    with nothing to serve."""
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(["serve"])
    assert info.value.code == 2
    assert "the following arguments are required: NETWORK" in capsys.readouterr().err


def test_networks_and_config_arrive_as_paths() -> None:
    """Every NETWORK, in order, and ``--config`` are paths, as ``serve()`` and
    ``load_settings()`` take them."""
    args = _parser().parse_args(["serve", "a.toml", "model.py:net", "--config", "s.toml"])
    assert args.networks == [Path("a.toml"), Path("model.py:net")]
    assert args.config == Path("s.toml")


def test_serve_dispatches_to_its_main() -> None:
    """The dispatcher calls ``args.func``: without it ``spikestream serve NET`` ended in
    an AttributeError traceback instead of serving."""
    from spikestream.cli.serve import main

    assert _parser().parse_args(["serve", "a.toml"]).func is main
