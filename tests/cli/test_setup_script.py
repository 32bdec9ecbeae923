"""``.ci/setup`` says what it is doing: one ``setup: ...`` line on stderr per step.

The first ``make serve`` used to sit silent for ~20 s while it installed. These tests run
the real script in a scratch copy of the repository layout with a stand-in ``python``
(``PYTHON=...``) that records its calls instead of creating a venv or downloading, so the
fresh-install path runs without network and in a second.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[2]

FAKE_PYTHON = """#!/usr/bin/env bash
# Stands in for python3 and for .venv/bin/python: records its arguments.
echo "$*" >> "$FAKE_PYTHON_LOG"
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin" && cp "$0" "$3/bin/python"
fi
"""


#: The last step of every run: an editable install writes no .pyc where
#: PYTHONDONTWRITEBYTECODE is set, so setup byte-compiles both packages itself.
COMPILING = "setup: byte-compiling service/spikestream and clients/spikestream_client"
COMPILE = "-m compileall -q service/spikestream clients/spikestream_client"


def scratch(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy(ROOT / ".ci" / "setup", repo / ".ci" / "setup")
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (repo / "clients").mkdir()
    (repo / "clients" / "pyproject.toml").write_text("[project]\nname = 'y'\n")
    fake = tmp_path / "python3"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PYTHON": str(fake), "FAKE_PYTHON_LOG": str(tmp_path / "calls")}
    return repo, env


def setup(repo: Path, env: dict[str, str], *args: str) -> list[str]:
    proc = subprocess.run(
        ["bash", str(repo / ".ci" / "setup"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # progress goes to stderr, so scripts can still use stdout
    lines = proc.stderr.splitlines()
    assert lines
    assert all(line.startswith("setup: ") for line in lines), lines
    return lines


def test_a_fresh_setup_announces_each_step(tmp_path: Path) -> None:
    repo, env = scratch(tmp_path)
    lines = setup(repo, env)
    assert any("creating the virtual environment" in line for line in lines)
    assert any("upgrading pip" in line for line in lines)
    assert any("installing spikestream" in line for line in lines)
    assert lines[-2].startswith("setup: installed")
    assert lines[-1] == COMPILING
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[0] == "-m venv .venv"
    assert any("install -q -e ./clients -e .[dev]" in c for c in calls)
    assert calls[-1] == COMPILE


def test_a_second_run_says_it_has_nothing_to_do(tmp_path: Path) -> None:
    repo, env = scratch(tmp_path)
    setup(repo, env)
    (tmp_path / "calls").unlink()
    lines = setup(repo, env)
    assert lines == [
        "setup: virtual environment .venv exists",
        "setup: spikestream is installed in .venv (up to date with pyproject.toml)",
        COMPILING,
    ]
    # Nothing was installed again; only the byte-compiling ran (it compiles only what
    # changed since).
    assert (tmp_path / "calls").read_text().splitlines() == [COMPILE]


def test_with_tests_it_also_says_it_checks_system_packages(tmp_path: Path) -> None:
    repo, env = scratch(tmp_path)
    lines = setup(repo, env, "--tests")
    assert lines[0].startswith("setup: checking system packages")
