"""The service's subcommands: ``run``, ``serve`` and ``import``.

The ``spikestream`` command itself is the client distribution's dispatcher
(:mod:`spikestream_client.cli`); the service registers these modules in its
``spikestream.commands`` entry-point group. Each module here only parses flags and
dispatches to the layers below (``runtime`` for ``run``, ``serving`` for ``serve``).

``main`` is the dispatcher, re-exported so ``python -m spikestream`` works.
"""

from __future__ import annotations

from spikestream_client.cli import command_of, main, make_parser

__all__ = ["command_of", "main", "make_parser"]
