"""Plugins of the ``spikestream`` command for the dispatcher's tests: a package written
into a temporary folder, put on ``sys.path``, and offered as installed commands."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from spikestream_client import cli


def install_plugins(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    package: str,
    sources: Mapping[str, str],
    commands: Mapping[str, str] | None = None,
) -> None:
    """Write ``package`` with a module per entry of ``sources`` ({module: source}) under
    ``tmp_path``, and make the dispatcher find the client's own commands plus each of
    ``commands`` ({command: module}; default: each module as the command of its name),
    as if their distributions were installed."""
    folder = tmp_path / package
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    for module, source in sources.items():
        (folder / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    named = commands if commands is not None else {m: m for m in sources}
    installed = {**cli._BUILTIN, **{c: f"{package}.{m}" for c, m in named.items()}}
    monkeypatch.setattr(cli, "commands", lambda: installed)
