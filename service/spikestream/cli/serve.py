"""``spikestream serve``: the real-time MQTT service (:mod:`spikestream.serving`).

Settings come from, highest priority first: command-line flags, ``SPIKESTREAM_*``
environment variables, a TOML settings file (``--config``), then the defaults. Every flag
but ``--config`` is derived from :class:`~spikestream.serving.settings.ServeSettings`.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

#: The one line ``spikestream --help`` shows for this command.
SUMMARY = "run a network in real time over MQTT"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``serve`` subcommand."""
    # Imported here, as in main(): the list of commands needs only SUMMARY. Through
    # importlib, not a from-import in this function: that way took 50 ms more (measured,
    # serve --help 0.32 against 0.27 s; the from-import's own cause was not pinned down).
    settings = importlib.import_module("spikestream.serving.settings")
    add_setting_flags = settings.add_setting_flags

    p = sub.add_parser(
        "serve",
        help=SUMMARY,
        description=(
            "Serve NETWORK in real time: advance it in fixed dt ticks paced to the wall "
            "clock, read inputs from <prefix>/<net>/in/<input>, publish msgpack frames on "
            "<prefix>/<net>/out/<probe>, a retained online/offline status, events and "
            "stats. Every flag but --config can also be set as SPIKESTREAM_<FLAG> in the "
            "environment or in a TOML settings file (--config)."
        ),
    )
    p.add_argument(
        "networks",
        type=Path,
        nargs="+",
        metavar="NETWORK",
        help="network file(s) (TOML), e.g. examples/seed.toml, or Nengo models MODEL.py[:NAME] "
        "(imported as by `spikestream import`, which runs the script); several are served by "
        "one process, each with its own tick thread and MQTT connection",
    )
    add_setting_flags(p, before={"broker": _add_config_flag})  # where it always was
    p.set_defaults(func=main)


def _add_config_flag(p: argparse.ArgumentParser) -> None:
    """``--config``: the settings file itself, the one flag that is not a setting."""
    p.add_argument("--config", type=Path, help="TOML settings file (flags and env win)")


def main(args: argparse.Namespace) -> int:
    """Merge the settings, then serve until SIGTERM or SIGINT. Returns the exit code."""
    # Imported here: ``serve --help`` (and the top-level ``--help``) need the settings
    # the flags derive from, not the service and its snapshot files.
    from spikestream.serving.serve import serve
    from spikestream.serving.settings import flags_of, load_settings

    return serve(list(args.networks), load_settings(flags_of(args), args.config))
