"""The service's subcommands: ``run``, ``serve`` and ``import``.

The ``spikestream`` command itself is the client distribution's dispatcher
(:mod:`spikestream_client.cli`); the service registers these modules in its
``spikestream.commands`` entry-point group (``pyproject.toml``), which is how the
client's console script finds them. Each module here only parses flags and dispatches to
the layers below (``runtime`` for ``run``, ``serving`` for ``serve``).

``main`` is the dispatcher with the service's commands known beforehand, for
``python -m spikestream``: it needs no scan of the installed distributions, and works
from a source tree on ``PYTHONPATH``, where no entry point is installed.
"""

from __future__ import annotations

from collections.abc import Sequence

from spikestream_client.cli import main as client_main
from spikestream_client.cli import make_parser

#: The service's commands and their modules: the same as the ``spikestream.commands``
#: entry points in ``pyproject.toml`` (a test compares them).
COMMANDS = {
    "run": "spikestream.cli.run",
    "serve": "spikestream.cli.serve",
    "import": "spikestream.cli.importer",
}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m spikestream``: the ``spikestream`` command, knowing :data:`COMMANDS`."""
    return client_main(argv, own=COMMANDS)


__all__ = ["COMMANDS", "main", "make_parser"]
