"""Running a model script: finding Nengo, running the script, building its network."""

from __future__ import annotations

import contextlib
import os
import runpy
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from spikestream.errors import ConfigError, ModelImportError

#: What the commands print when Nengo is missing.
INSTALL_HINT = (
    "importing a Nengo model needs Nengo 4: pip install 'nengo>=4,<5' (spikestream's nengo "
    "extra; the .venv that make sets up has it)"
)

#: The variable a script's network is taken from when no ``:NAME`` is given.
DEFAULT_VARIABLE = "model"


def import_nengo() -> Any:
    """The ``nengo`` module, or a :class:`ConfigError` saying how to install it.

    Nengo 4.1 touches ``numpy.core`` on import, which numpy 2 deprecates; that warning is
    Nengo's own and is silenced for this import only.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import nengo
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return nengo


def is_model_script(path: str | Path) -> bool:
    """True if ``path`` names a Python model (``MODEL.py`` or ``MODEL.py:NAME``)."""
    script, _ = split_source(str(path))
    return script.suffix == ".py"


def split_source(source: str) -> tuple[Path, str]:
    """``"MODEL.py:NAME"`` -> ``(Path("MODEL.py"), "NAME")``; the name defaults to ``model``."""
    head, sep, tail = source.rpartition(":")
    if sep and head.endswith(".py") and tail.isidentifier():
        return Path(head), tail
    return Path(source), DEFAULT_VARIABLE


# --------------------------------------------------------------------------- loading


def load_script_network(
    script: Path, variable: str = DEFAULT_VARIABLE
) -> tuple[Any, dict[str, Any]]:
    """Run ``script`` and return ``(network, globals)``: its variable ``variable``, which
    must be a ``nengo.Network``. The script runs with ``__name__ != "__main__"``, so a
    ``if __name__ == "__main__":`` block (running Nengo's own simulator, say) is skipped.

    Raises:
        ModelImportError: the script is missing, raises, or has no such network.
    """
    nengo = import_nengo()
    if not script.is_file():
        raise ModelImportError(f"{script}: no such model script")
    folder = str(script.resolve().parent)
    sys.path.insert(0, folder)  # so the script can import its neighbours
    # The script runs as `python SCRIPT` would run it: its argv is its own path, not
    # spikestream's flags (an argparse in it would read those). What it changes of the
    # process's state (its folder, its argv) is put back, so --out and the rest of the
    # command mean what they meant before it ran.
    cwd, argv = os.getcwd(), sys.argv
    sys.argv = [str(script)]
    try:
        with warnings.catch_warnings(), _sigint_watch() as interrupted:
            warnings.simplefilter("ignore", DeprecationWarning)
            namespace = runpy.run_path(str(script), run_name="__spikestream_import__")
    except SystemExit as err:
        # exit("bye\nnow") is one line too: the code is shown as Python would write it.
        raise ModelImportError(f"{script}: the script called exit({err.code!r})") from None
    except KeyboardInterrupt:
        if interrupted:  # a real Ctrl-C (SIGINT) while the script ran: the user's stop
            raise
        raise ModelImportError(f"{script}: the script raised KeyboardInterrupt") from None
    except BaseException as err:  # the user's script: anything it raises is one line
        what = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        raise ModelImportError(_first_line(f"{script}: the script raised {what}")) from None
    finally:
        sys.argv = argv
        with contextlib.suppress(OSError):  # the folder may be gone; nothing to go back to
            os.chdir(cwd)
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
    net = namespace.get(variable)
    if not isinstance(net, nengo.Network):
        found = [k for k, v in namespace.items() if isinstance(v, nengo.Network)]
        what = "is not defined" if net is None else f"is a {type(net).__name__}"
        raise ModelImportError(
            f"{script}: variable {variable!r} {what}; expected a nengo.Network "
            f"(networks in the script: {', '.join(found) or 'none'}; pick one with "
            f"{script.name}:NAME)"
        )
    return net, namespace


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else text


@contextlib.contextmanager
def _sigint_watch() -> Iterator[list[bool]]:
    """Yield a list that becomes ``[True]`` if SIGINT arrives inside the block, which then
    raises KeyboardInterrupt as Python's own handler does: a KeyboardInterrupt with the list
    empty was raised by the script itself. Only the main thread can set a handler, and only
    Python's default one is replaced; elsewhere the list stays empty."""
    seen: list[bool] = []

    def handler(signum: int, frame: Any) -> None:
        seen.append(True)
        raise KeyboardInterrupt

    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield seen
        return
    signal.signal(signal.SIGINT, handler)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def build_nengo_model(net: Any, dt: float = 0.001) -> Any:
    """``net`` built by Nengo's builder (what ``nengo.Simulator`` builds, without stepping):
    a ``nengo.builder.Model``. Nengo's own warnings are silenced."""
    nengo = import_nengo()
    built = nengo.builder.Model(dt=dt, label=str(net))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built.build(net)
    return built
